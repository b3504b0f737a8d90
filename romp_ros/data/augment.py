"""Augmentation: one source frame -> one :class:`~romp_ros.data.sample.TrainingSample`.

Images and labels move together. The geometry is ONE affine map from the source image to the
S x S network input, applied with one ``cv2.warpAffine``:

1. fit: the whole image, zero-padded to a centred square and resized to S (what inference
   does, so scale 1 with no other change reproduces the inference input);
2. zoom by ``scale`` and rotate by ``rotation`` about the input centre, then shift;
3. mirror left/right (u -> S - u).

The same map moves 2D keypoints and boxes. 3D labels follow in the camera of the new image:

* zoom and shift change only the intrinsics: ``f' = s f``, ``c' = A c + b`` (the principal
  point moves with the pixels), exactly;
* an in-plane rotation by theta of pixels is a rotation of the camera about its optical axis
  by theta, whatever the rotation centre: with square pixels (fx = fy) the points rotate by
  ``Rz(theta)`` and the principal point moves with the pixels, exactly. With fx != fy it is an
  approximation (error ~ |fx - fy| / f * sin(theta));
* a mirror negates camera x and swaps left/right joints; the principal point mirrors too.

SMPL labels: the global orientation turns with the camera (``Rz @ R``), a mirror flips the pose
(``joint_sets.flip_smpl_pose``). The translation turns about the body's rest root joint
(``t' = Rz t + (Rz - I) j0``), known from the labels as ``pelvis_3d - translation``; without
a labelled pelvis a rotated sample's translation is dropped (``has_translation`` False)
rather than made wrong. A mirror uses ``t' = M t + (I - M R M)(M j0 - j0)``: exact for a body
model symmetric about x = 0, and ``M t`` when j0 is unknown (off by < 1 cm for SMPL, whose
root is within 2 mm of the symmetry plane).

Photometric changes (colour jitter, Gaussian blur, synthetic occlusion by random rectangles of
flat colour, noise, or texture copied from elsewhere in the image) touch pixels only. A
keypoint under an occluder keeps its label and weight: the network is meant to infer
occluded joints, and the labels are still true.

Keypoints that land outside the S x S input get weight 0. A person none of whose keypoints or
box reaches the input is dropped from the sample. Distortion is not modelled: 2D labels are
pixels of the (distorted) image, K is its pinhole part.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Mapping

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.data.dataset_format import DatasetError, FrameLabel
from romp_ros.data.joint_sets import FLIP_PERMUTATION, JointMapping, flip_smpl_pose
from romp_ros.data.sample import NUM_SHAPE, NUM_TRAIN_JOINTS, TrainingSample

_PELVIS = 0  # row of the SMPL pelvis (the root joint) among the training joints
_PRE_SHRINK_BELOW = 0.5  # downscales stronger than this are pre-filtered by halving
OCCLUDER_KINDS: tuple[str, ...] = ('colour', 'noise', 'texture')


class LabelError(DatasetError):
    """A frame's labels cannot be used; the message starts with the reason category."""


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be two numbers (low, high), got {value!r}') from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f'{name}={value!r} must be finite with low <= high')
    return low, high


@dataclass(frozen=True)
class AugmentConfig:
    """How training images are augmented (validated on construction).

    Attributes:
        input_size: S, side of the square network input, pixels.
        scale_range: zoom factor range relative to fitting the whole image (> 0; > 1
            zooms in, cropping the borders; < 1 zooms out, padding).
        rotation_deg: largest in-plane rotation, degrees (0 - 180).
        rotation_prob: probability that a sample is rotated at all.
        translate: largest shift of the image, fraction of S (0 - 1).
        flip_prob: probability of a left/right mirror.
        colour_prob: probability of colour jitter.
        brightness, contrast, saturation: jitter amplitudes: each factor is drawn in
            [1 - a, 1 + a] (0 - 1).
        blur_prob: probability of a Gaussian blur.
        blur_sigma: blur sigma range, pixels of the input.
        occlusion_prob: probability of synthetic occlusion.
        occlusion_size: occluder side range, fraction of S.
        max_occluders: at most this many occluders (at least one when occluding).
    """

    input_size: int = 512
    scale_range: tuple[float, float] = (0.7, 1.4)
    rotation_deg: float = 30.0
    rotation_prob: float = 0.3
    translate: float = 0.1
    flip_prob: float = 0.5
    colour_prob: float = 0.8
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    blur_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    occlusion_prob: float = 0.3
    occlusion_size: tuple[float, float] = (0.05, 0.2)
    max_occluders: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or not 16 <= self.input_size <= 4096:
            raise ValueError(f'input_size={self.input_size!r} must be an int in [16, 4096]')
        for name in ('scale_range', 'blur_sigma', 'occlusion_size'):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        if self.scale_range[0] <= 0:
            raise ValueError(f'scale_range={self.scale_range} must be positive')
        if self.blur_sigma[0] < 0:
            raise ValueError(f'blur_sigma={self.blur_sigma} must be >= 0')
        if not (0 < self.occlusion_size[0] and self.occlusion_size[1] <= 1):
            raise ValueError(f'occlusion_size={self.occlusion_size} must lie in (0, 1]')
        ranges = {'rotation_deg': (0, 180), 'translate': (0, 1), 'brightness': (0, 1),
                  'contrast': (0, 1), 'saturation': (0, 1)}
        for name in ('rotation_prob', 'flip_prob', 'colour_prob', 'blur_prob',
                     'occlusion_prob'):
            ranges[name] = (0, 1)
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ValueError(f'{name}={value!r} must be a number in [{low}, {high}]')
        if not isinstance(self.max_occluders, int) or self.max_occluders < 1:
            raise ValueError(f'max_occluders={self.max_occluders!r} must be an int >= 1')

    @classmethod
    def identity(cls, input_size: int = 512) -> 'AugmentConfig':
        """No augmentation: the inference preprocessing only (evaluation, debugging)."""
        return cls(input_size=input_size, scale_range=(1.0, 1.0), rotation_deg=0.0,
                   rotation_prob=0.0, translate=0.0, flip_prob=0.0, colour_prob=0.0,
                   blur_prob=0.0, occlusion_prob=0.0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'AugmentConfig':
        """From a config mapping (ValueError naming unknown keys)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f'unknown augmentation keys {unknown}; known: {sorted(known)}')
        return cls(**dict(values))


@dataclass(frozen=True)
class Occluder:
    """One synthetic occluder.

    Attributes:
        box: (u0, v0, u1, v1) input pixels, clipped to the input, u1 > u0, v1 > v0.
        kind: 'colour' (flat), 'noise' (random pixels) or 'texture' (pixels copied from
            ``source`` of the same image).
        colour: RGB of a flat occluder.
        source: top-left (u, v) of the texture's origin.
        seed: seed of a noise occluder's pixels.
    """

    box: tuple[int, int, int, int]
    kind: str = 'colour'
    colour: tuple[int, int, int] = (127, 127, 127)
    source: tuple[int, int] = (0, 0)
    seed: int = 0


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the augmentation (identity by default).

    Attributes:
        scale: zoom relative to the fit of the whole image.
        rotation_deg: in-plane rotation of the image content, degrees, counter-clockwise as
            seen in the image (positive turns the content from +u toward -v).
        shift: (du, dv) shift of the content, input pixels.
        flip: mirror left/right.
        brightness, contrast, saturation: colour factors (1 = unchanged).
        blur_sigma: Gaussian blur sigma, input pixels (0 = none).
        occluders: synthetic occluders, drawn in order.
    """

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    flip: bool = False
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    blur_sigma: float = 0.0
    occluders: tuple[Occluder, ...] = ()


# -- labels in the training joint set ---------------------------------------------------------

@dataclass
class TrainingLabels:
    """The people of a frame in the 71 training joints, still in source-image pixels.

    Attributes (P people):
        keypoints_2d: (P, 71, 3) u, v pixels and a label weight (1 labelled, 0 not).
        joints_3d: (P, 71, 3) metres, camera frame; NaN rows where unknown.
        smpl_pose: (P, 72); smpl_shape: (P, 11); translation: (P, 3); zeros where unknown.
        has_pose, has_shape, has_age, has_translation, has_joints_3d: (P,) bool.
        root_joint: (P, 3) the rest root joint of the body model (pelvis - translation),
            NaN when unknown.
        bbox: (P, 4) pixels, NaN when the source has no box.
        track_ids: (P,) int64.
        camera_k: (3, 3) K of the source image, NaN without a camera.
    """

    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    smpl_pose: np.ndarray
    smpl_shape: np.ndarray
    translation: np.ndarray
    has_pose: np.ndarray
    has_shape: np.ndarray
    has_age: np.ndarray
    has_translation: np.ndarray
    has_joints_3d: np.ndarray
    root_joint: np.ndarray
    bbox: np.ndarray
    track_ids: np.ndarray
    camera_k: np.ndarray

    @property
    def num_people(self) -> int:
        """P."""
        return int(self.keypoints_2d.shape[0])

    def select(self, keep: np.ndarray) -> 'TrainingLabels':
        """The people where ``keep`` (P,) is True."""
        values = {name: getattr(self, name)[keep] for name in self.__dataclass_fields__
                  if name != 'camera_k'}
        return TrainingLabels(camera_k=self.camera_k, **values)


def _checked(value: Any, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        reason = 'wrong keypoint count' if what in ('keypoints_2d', 'joints_3d') else \
            'bad label shape'
        raise LabelError(f'{reason}: {what} has shape {array.shape}, expected {shape} '
                         f'({where})')
    return array


def labels_from_frame(frame: FrameLabel, mapping: JointMapping,
                      where: str = '') -> TrainingLabels:
    """Map a frame's people into the training joints, checking every field.

    Missing fields become unlabelled; a person without 2D keypoints but with 3D joints and a
    camera gets the projections of those joints as 2D labels.

    Raises:
        LabelError: a keypoint array with the wrong joint count ('wrong keypoint count'),
            NaN / infinite values in a labelled field ('non-finite label'), a field of the
            wrong shape ('bad label shape').
    """
    num = len(frame.people)
    joints = mapping.num_source_joints
    kp = np.zeros((num, NUM_TRAIN_JOINTS, 3))
    j3d = np.full((num, NUM_TRAIN_JOINTS, 3), np.nan)
    pose, shape = np.zeros((num, 72)), np.zeros((num, NUM_SHAPE))
    trans, root = np.zeros((num, 3)), np.full((num, 3), np.nan)
    bbox = np.full((num, 4), np.nan)
    flags = {k: np.zeros(num, bool) for k in ('has_pose', 'has_shape', 'has_age',
                                               'has_translation', 'has_joints_3d')}
    k_mat = frame.camera.matrix() if frame.camera is not None else np.full((3, 3), np.nan)
    for i, person in enumerate(frame.people):
        if person.keypoints_2d is not None:
            raw = _checked(person.keypoints_2d, (joints, 3), 'keypoints_2d', where)
            labelled = raw[:, 2] > 0
            if not np.isfinite(raw[labelled]).all():
                raise LabelError(f'non-finite label: keypoints_2d has NaN/inf ({where})')
            values = np.where(labelled[:, None], raw, 0.0)
            values[:, 2] = labelled
            kp[i] = mapping.to_training(values, 0.0)
        if person.joints_3d is not None:
            raw = _checked(person.joints_3d, (joints, 3), 'joints_3d', where)
            finite, unknown = np.isfinite(raw).all(1), np.isnan(raw).all(1)
            if not (finite | unknown).all():
                raise LabelError(f'non-finite label: joints_3d rows partly NaN/inf ({where})')
            j3d[i] = mapping.to_training(raw, np.nan)
            flags['has_joints_3d'][i] = bool(np.isfinite(j3d[i]).all(1).any())
        for name, size in (('smpl_pose', (72,)), ('translation', (3,)), ('bbox', (4,))):
            value = getattr(person, name)
            if value is None:
                continue
            array = _checked(value, size, name, where)
            if not np.isfinite(array).all():
                raise LabelError(f'non-finite label: {name} has NaN/inf ({where})')
            if name == 'smpl_pose':
                pose[i], flags['has_pose'][i] = array, True
            elif name == 'translation':
                trans[i], flags['has_translation'][i] = array, True
            else:
                bbox[i] = array
        if person.smpl_shape is not None:
            betas = np.asarray(person.smpl_shape, dtype=np.float64)
            if betas.shape not in ((10,), (11,)):
                raise LabelError(f'bad label shape: smpl_shape has shape {betas.shape}, '
                                 f'expected (10,) or (11,) ({where})')
            if not np.isfinite(betas).all():
                raise LabelError(f'non-finite label: smpl_shape has NaN/inf ({where})')
            shape[i, :betas.size] = betas
            flags['has_shape'][i], flags['has_age'][i] = True, betas.size == 11
        if flags['has_translation'][i] and np.isfinite(j3d[i, _PELVIS]).all():
            root[i] = j3d[i, _PELVIS] - trans[i]
        if person.keypoints_2d is None and flags['has_joints_3d'][i] and frame.camera:
            kp[i] = _project(j3d[i], k_mat)
    return TrainingLabels(
        keypoints_2d=kp, joints_3d=j3d, smpl_pose=pose, smpl_shape=shape, translation=trans,
        root_joint=root, bbox=bbox,
        track_ids=np.array([p.track_id for p in frame.people], dtype=np.int64),
        camera_k=k_mat, **flags)


def _project(points: np.ndarray, k_mat: np.ndarray) -> np.ndarray:
    """(J, 3) pixels + weight of camera-frame points (weight 0 behind or unknown)."""
    out = np.zeros((points.shape[0], 3))
    ok = np.isfinite(points).all(1) & (points[:, 2] > 1e-6)
    uvw = points[ok] @ k_mat.T
    out[ok, :2] = uvw[:, :2] / uvw[:, 2:]
    out[ok, 2] = 1.0
    return out


# -- the geometry -----------------------------------------------------------------------------

def input_affine(image_hw: tuple[int, int], params: AugmentParams,
                 input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The continuous map source pixel -> input pixel: ``u' = A @ u + b``.

    Pixel coordinates span [0, W] x [0, H] (pixel centres at i + 0.5).

    Returns:
        A (2, 2) and b (2,).
    """
    height, width = image_hw
    size = float(input_size)
    fit = size / max(height, width)
    pad = np.array([(size - fit * width) / 2, (size - fit * height) / 2])
    angle = math.radians(params.rotation_deg)
    # positive angles turn content counter-clockwise on screen (v points down)
    rot = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    centre = np.array([size / 2, size / 2])
    lin = params.scale * rot * fit  # (2, 2)
    off = centre + params.scale * rot @ (pad - centre) + np.asarray(params.shift, float)
    if params.flip:
        mirror = np.diag([-1.0, 1.0])
        lin, off = mirror @ lin, mirror @ off + np.array([size, 0.0])
    return lin, off


def camera_rotation(params: AugmentParams) -> np.ndarray:
    """(3, 3) the map of camera-frame points of the source to those of the input.

    The image rotation turns the camera about its optical axis; a mirror negates x. It is a
    reflection (det -1) when flipping: apply it to points, not to rotation matrices.
    """
    angle = math.radians(params.rotation_deg)
    rz = np.array([[math.cos(angle), math.sin(angle), 0.0],
                   [-math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    if params.flip:
        rz = np.diag([-1.0, 1.0, 1.0]) @ rz
    return rz


def transform_labels(labels: TrainingLabels, image_hw: tuple[int, int],
                     params: AugmentParams, input_size: int) -> TrainingLabels:
    """Move labels from source pixels to input pixels and into the input's camera.

    Keypoints stay in input pixels here (weights unchanged); see :func:`to_sample` for the
    normalised frame and the out-of-input weights.
    """
    lin, off = input_affine(image_hw, params, input_size)
    kp = labels.keypoints_2d.copy()
    kp[..., :2] = kp[..., :2] @ lin.T + off
    bbox = np.full_like(labels.bbox, np.nan)
    known = np.isfinite(labels.bbox).all(1)
    if known.any():
        x0, y0, x1, y1 = labels.bbox[known].T
        corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                            np.stack([x0, y1], 1), np.stack([x1, y1], 1)], 1)  # (p, 4, 2)
        moved = corners @ lin.T + off
        bbox[known] = np.concatenate([moved.min(1), moved.max(1)], axis=1)
    rz = camera_rotation(AugmentParams(rotation_deg=params.rotation_deg))  # no mirror
    j3d = labels.joints_3d @ rz.T
    pose = labels.smpl_pose.copy()
    trans = labels.translation.copy()
    has_trans = labels.has_translation.copy()
    root = labels.root_joint  # the rest root joint is a body-frame quantity: it never turns
    known_root = np.isfinite(root).all(1)
    if params.rotation_deg != 0.0:
        pose[:, :3] = _rotvec(rz @ _matrices(pose[:, :3]))
        # t' = Rz t + (Rz - I) j0: the body turns about its root joint, not the origin
        trans = trans @ rz.T + np.where(known_root[:, None], root, 0.0) @ (rz - np.eye(3)).T
        has_trans &= known_root
    if params.flip:
        mirror = np.diag([-1.0, 1.0, 1.0])
        j3d = j3d[:, FLIP_PERMUTATION] @ mirror
        kp = kp[:, FLIP_PERMUTATION]
        # t' = M t + (I - M R M)(M j0 - j0), R the orientation before the mirror
        mrm = mirror @ _matrices(pose[:, :3]) @ mirror  # (P, 3, 3)
        delta = np.where(known_root[:, None], root @ mirror - root, 0.0)  # (P, 3)
        trans = trans @ mirror + delta - np.einsum('pij,pj->pi', mrm, delta)
        pose = flip_smpl_pose(pose)
    k_mat = labels.camera_k.copy()
    if np.isfinite(k_mat).all():
        scale = math.sqrt(abs(np.linalg.det(lin)))  # s * fit, the zoom of the pixels
        centre = lin @ k_mat[:2, 2] + off
        k_mat = np.array([[scale * k_mat[0, 0], 0.0, centre[0]],
                          [0.0, scale * k_mat[1, 1], centre[1]], [0.0, 0.0, 1.0]])
    return TrainingLabels(
        keypoints_2d=kp, joints_3d=j3d, smpl_pose=np.where(labels.has_pose[:, None], pose, 0.0),
        smpl_shape=labels.smpl_shape, translation=np.where(has_trans[:, None], trans, 0.0),
        has_pose=labels.has_pose, has_shape=labels.has_shape, has_age=labels.has_age,
        has_translation=has_trans, has_joints_3d=labels.has_joints_3d, root_joint=root,
        bbox=bbox, track_ids=labels.track_ids, camera_k=k_mat)


def _matrices(rotvecs: np.ndarray) -> np.ndarray:
    """(P, 3, 3) rotation matrices of (P, 3) axis-angle vectors (P may be 0)."""
    if not len(rotvecs):
        return np.zeros((0, 3, 3))
    return Rotation.from_rotvec(rotvecs).as_matrix()


def _rotvec(matrices: np.ndarray) -> np.ndarray:
    """(P, 3) axis-angle vectors of (P, 3, 3) rotation matrices."""
    if not len(matrices):
        return np.zeros((0, 3))
    return Rotation.from_matrix(matrices).as_rotvec()


def warp_image(image: np.ndarray, params: AugmentParams, input_size: int) -> np.ndarray:
    """The S x S input: ``image`` (H, W, 3) uint8 under :func:`input_affine`, zero-padded."""
    lin, off = input_affine(image.shape[:2], params, input_size)
    zoom = math.sqrt(abs(np.linalg.det(lin)))
    source = image
    while zoom < _PRE_SHRINK_BELOW and min(source.shape[:2]) >= 4:
        # a bilinear warp this strong would alias: halve first by 2 x 2 averaging (the fast
        # integer-ratio path of INTER_AREA; an odd last row / column is dropped, so the
        # continuous map stays exactly u / 2)
        height, width = source.shape[:2] // np.array(2)
        source = cv2.resize(source[:2 * height, :2 * width], (int(width), int(height)),
                            interpolation=cv2.INTER_AREA)
        lin, zoom = lin * 2.0, zoom * 2.0
    # OpenCV addresses pixel centres at integers: shift the continuous map by half a pixel
    half = np.array([0.5, 0.5])
    matrix = np.concatenate([lin, (lin @ half + off - half)[:, None]], axis=1)
    return cv2.warpAffine(source, matrix, (input_size, input_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


# -- pixels -----------------------------------------------------------------------------------

def adjust_colour(image: np.ndarray, brightness: float, contrast: float,
                  saturation: float) -> np.ndarray:
    """Saturation (blend with grey), then contrast about the mean and brightness (uint8)."""
    if saturation != 1.0:
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        image = cv2.addWeighted(image, saturation, grey, 1.0 - saturation, 0.0)
    if brightness != 1.0 or contrast != 1.0:
        mean = float(image.mean())
        alpha = brightness * contrast
        beta = brightness * (1.0 - contrast) * mean
        image = cv2.addWeighted(image, alpha, image, 0.0, beta)
    return image


def draw_occluders(image: np.ndarray, occluders: tuple[Occluder, ...]) -> np.ndarray:
    """Paint occluders into a copy-free ``image`` (it is modified and returned)."""
    for occ in occluders:
        u0, v0, u1, v1 = occ.box
        if occ.kind == 'colour':
            image[v0:v1, u0:u1] = occ.colour
        elif occ.kind == 'noise':
            noise = np.random.default_rng(occ.seed).integers(0, 256, (v1 - v0, u1 - u0, 3))
            image[v0:v1, u0:u1] = noise.astype(np.uint8)
        else:
            su, sv = occ.source
            image[v0:v1, u0:u1] = image[sv:sv + v1 - v0, su:su + u1 - u0].copy()
    return image


# -- sampling and the whole step -------------------------------------------------------------

def sample_params(config: AugmentConfig, rng: np.random.Generator,
                  image_hw: tuple[int, int], labels: TrainingLabels | None = None
                  ) -> AugmentParams:
    """Draw one augmentation.

    The draws are made in a fixed order, so a seeded ``rng`` gives the same parameters
    everywhere.

    Half of the occluders are centred on a random labelled keypoint (when ``labels`` has
    any), so that occlusion actually covers people.
    """
    size = config.input_size
    flip = bool(rng.random() < config.flip_prob)
    scale = float(rng.uniform(*config.scale_range))
    rotate = bool(rng.random() < config.rotation_prob)
    angle = float(rng.uniform(-config.rotation_deg, config.rotation_deg))
    shift = tuple(float(v) for v in rng.uniform(-config.translate, config.translate, 2) * size)
    colour = bool(rng.random() < config.colour_prob)
    factors = rng.uniform(-1.0, 1.0, 3) * (config.brightness, config.contrast,
                                           config.saturation) + 1.0
    blur = bool(rng.random() < config.blur_prob)
    sigma = float(rng.uniform(*config.blur_sigma))
    occlude = bool(rng.random() < config.occlusion_prob)
    count = int(rng.integers(1, config.max_occluders + 1))
    params = AugmentParams(scale=scale, rotation_deg=angle if rotate else 0.0, shift=shift,
                           flip=flip)
    lin, off = input_affine(image_hw, params, size)
    anchors = np.zeros((0, 2))
    if labels is not None and labels.num_people:
        points = labels.keypoints_2d[labels.keypoints_2d[..., 2] > 0][:, :2] @ lin.T + off
        anchors = points[((points >= 0) & (points < size)).all(1)]
    # texture is copied from where the image is, not from the black padding
    height, width = image_hw
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]]) @ lin.T + off
    area_lo = np.clip(np.floor(corners.min(0)), 0, size).astype(int)
    area_hi = np.clip(np.ceil(corners.max(0)), 0, size).astype(int)
    occluders = []
    for _ in range(count):
        side = rng.uniform(*config.occlusion_size, 2) * size
        centre = rng.uniform(0, size, 2)
        if len(anchors) and rng.random() < 0.5:
            centre = anchors[int(rng.integers(len(anchors)))]
        kind = OCCLUDER_KINDS[int(rng.integers(len(OCCLUDER_KINDS)))]
        colour_rgb = tuple(int(c) for c in rng.integers(0, 256, 3))
        seed = int(rng.integers(2 ** 31))
        u0, v0 = np.clip(np.round(centre - side / 2), 0, size - 1).astype(int)
        u1, v1 = np.clip(np.round(centre + side / 2), 1, size).astype(int)
        u1, v1 = max(u1, u0 + 1), max(v1, v0 + 1)
        extent = np.array([u1 - u0, v1 - v0])
        low = np.minimum(area_lo, size - extent)
        high = np.maximum(np.minimum(area_hi - extent, size - extent), low)
        source = rng.integers(low, high + 1)
        occluders.append(Occluder(box=(int(u0), int(v0), int(u1), int(v1)), kind=kind,
                                  colour=colour_rgb, source=(int(source[0]), int(source[1])),
                                  seed=seed))
    return AugmentParams(
        scale=scale, rotation_deg=params.rotation_deg, shift=shift, flip=flip,
        brightness=float(factors[0]) if colour else 1.0,
        contrast=float(factors[1]) if colour else 1.0,
        saturation=float(factors[2]) if colour else 1.0,
        blur_sigma=sigma if blur and sigma > 0 else 0.0,
        occluders=tuple(occluders) if occlude else ())


def to_sample(image: np.ndarray, labels: TrainingLabels, input_size: int, *,
              dataset: str = '', source: str = '') -> TrainingSample:
    """Pack input-pixel labels into a sample.

    2D goes to the normalised [-1, 1] frame, keypoints outside the input get weight 0 and
    people who left the input are dropped.
    """
    size = float(input_size)
    kp = labels.keypoints_2d.copy()
    kp[..., :2] = kp[..., :2] / size * 2.0 - 1.0
    inside = (np.abs(kp[..., :2]) <= 1.0).all(-1)
    kp[..., 2] = np.where(inside & (kp[..., 2] > 0), 1.0, 0.0)
    bbox = labels.bbox / size * 2.0 - 1.0
    known_box = np.isfinite(bbox).all(1)
    labelled = labels.keypoints_2d[..., 2] > 0
    for i in np.nonzero(~known_box & labelled.any(1))[0]:
        points = kp[i, labelled[i], :2]  # the box of the labelled keypoints
        bbox[i] = np.concatenate([points.min(0), points.max(0)])
    known_box = np.isfinite(bbox).all(1)
    box_inside = known_box & (bbox[:, 2] >= -1) & (bbox[:, 0] <= 1) & (bbox[:, 3] >= -1) & (
        bbox[:, 1] <= 1)
    has_2d = known_box | labelled.any(1)
    keep = (kp[..., 2] > 0).any(1) | box_inside | ~has_2d
    bbox = np.where(known_box[:, None], np.clip(bbox, -1.0, 1.0), 0.0)
    kept = labels.select(keep)
    nan_k = np.full((3, 3), np.nan)
    sample = TrainingSample(
        image=np.ascontiguousarray(image, dtype=np.uint8),
        keypoints_2d=kp[keep].astype(np.float32),
        joints_3d=kept.joints_3d.astype(np.float32),
        smpl_pose=kept.smpl_pose.astype(np.float32),
        smpl_shape=kept.smpl_shape.astype(np.float32),
        translation=kept.translation.astype(np.float32),
        has_pose=kept.has_pose.copy(), has_shape=kept.has_shape.copy(),
        has_age=kept.has_age.copy(), has_translation=kept.has_translation.copy(),
        has_joints_3d=kept.has_joints_3d.copy(), bbox=bbox[keep].astype(np.float32),
        track_ids=kept.track_ids.astype(np.int64),
        camera_k=(labels.camera_k if np.isfinite(labels.camera_k).all() else nan_k).astype(
            np.float32),
        dataset=dataset, source=source)
    return sample


def apply_params(image: np.ndarray, labels: TrainingLabels, params: AugmentParams,
                 input_size: int, *, dataset: str = '', source: str = '') -> TrainingSample:
    """Apply one drawn augmentation to an image (H, W, 3) uint8 RGB and its labels."""
    moved = transform_labels(labels, image.shape[:2], params, input_size)
    pixels = warp_image(image, params, input_size)
    if params.brightness != 1.0 or params.contrast != 1.0 or params.saturation != 1.0:
        pixels = adjust_colour(pixels, params.brightness, params.contrast, params.saturation)
    if params.blur_sigma > 0:
        pixels = cv2.GaussianBlur(pixels, (0, 0), params.blur_sigma)
    if params.occluders:
        pixels = draw_occluders(pixels, params.occluders)
    return to_sample(pixels, moved, input_size, dataset=dataset, source=source)


def augment(image: np.ndarray, frame: FrameLabel, mapping: JointMapping,
            config: AugmentConfig, rng: np.random.Generator, *, dataset: str = '',
            source: str = '') -> TrainingSample:
    """One training sample from a source image and its labels.

    Args:
        image: (H, W, 3) uint8 RGB.
        frame: the frame's labels, keypoints in ``mapping.source_names`` order.
        mapping: the source's joints -> the 71 training joints.
        config: augmentation ranges and probabilities.
        rng: the generator every random choice is drawn from (seed it per sample for
            reproducible augmentation).

    Raises:
        LabelError: unusable labels (see :func:`labels_from_frame`).
        ValueError: an image that is not (H, W, 3) uint8.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'images must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}')
    labels = labels_from_frame(frame, mapping, where=source)
    params = sample_params(config, rng, image.shape[:2], labels)
    return apply_params(image, labels, params, config.input_size, dataset=dataset,
                        source=source)
