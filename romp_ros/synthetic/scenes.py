"""Rendered synthetic scenes with ground truth.

People of the body model on a ground plane, seen by a known camera (optionally with lens
distortion), over varied backgrounds.

One frame is made like this:

1. **Camera**: a pinhole of random horizontal field of view, with probability
   ``distortion_prob`` a plumb_bob, rational_polynomial or equidistant (fisheye) lens whose
   coefficients are checked to be one-to-one over the image; mounted ``camera_height_m``
   above a flat ground, pitched and rolled a little (:class:`CameraMount`).
2. **People**: 1..N on the ground 1.5-20 m away (log-uniform, so every distance octave gets
   as many people), inside the field of view or straddling its edges, some placed behind
   others so that they occlude each other. Each has SMPL betas, for children (with SMPL-A)
   BEV's age offset, a walking gait plus random joint rotations within joint limits
   (:mod:`romp_ros.synthetic.poses`), and clothes: per-vertex colours by body part, some with
   stripes. Their lowest vertex touches the ground.
3. **Render** with the core renderer (z-buffer, smooth shading, 2x2 supersampled edges) on a
   pinhole *canvas* that covers everything the lens sees, over a background (a scikit-image
   photograph or a procedural texture, often with a perspective ground below the horizon),
   then warp canvas, depth and person maps through the lens (``cv2.remap``), then exposure /
   colour variation, focus or motion blur and sensor noise.
4. **Ground truth** per person (:class:`ScenePerson`): SMPL pose (global orientation in the
   camera frame) and shape, translation, 3D joints in the camera frame, 2D keypoints projected
   through the full camera model with visibility, the box of the projected body, the track id.

With ``sequence=True`` consecutive frames share the camera, background and light, and the
people walk consistently at ``fps`` (smoothly turning, keeping apart, entering and leaving the
view); track ids stay constant. Every random draw comes from generators seeded by
(seed, sequence, frame), so a (spec, seed) pair always gives identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import math
from typing import Iterator

import cv2
import numpy as np
import torch

from romp_ros.core.body.smpl import BodyModel
from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.core.render import (
    VISIBILITY_TOL_M,
    LightSpec,
    points_visible,
    render_meshes,
)
from romp_ros.data.dataset_format import (
    VIS_ABSENT,
    VIS_OCCLUDED,
    VIS_VISIBLE,
    CameraLabel,
    PersonLabel,
)
from romp_ros.synthetic import backgrounds, poses

LOG = logging.getLogger(__name__)

MAX_AGE_OFFSET = 0.8  # above it BEV switches to the SMIL infant model; children stay below
_MIN_SEPARATION_M = 0.7  # between two people's pelvises on the ground
_CANVAS_FACTOR = 2.5  # the lens canvas is at most this many times the image size per side
_CANVAS_MARGIN_PX = 2
_CORNER_RADIUS_MARGIN = 1.3  # the lens must be one-to-one this far beyond the image corners


class SceneSpecError(ValueError):
    """An unusable scene specification; the message names the field and the fix."""


@dataclass(frozen=True)
class SceneSpec:
    """What synthetic scenes to make.

    All ranges are (min, max), sampled uniformly unless stated.

    Attributes:
        width, height: image size, pixels.
        people: (min, max) people per frame (per sequence with ``sequence``); min may be 0.
        distance_m: horizontal distance of people from the camera, metres (log-uniform).
        hfov_deg: horizontal field of view, degrees (of the pinhole, or the fisheye's angle).
        camera_height_m: camera height above the ground, metres.
        camera_pitch_deg: downward tilt of the camera, degrees (negative looks up).
        camera_roll_deg: largest roll about the optical axis, degrees.
        distortion_prob: share of cameras with lens distortion.
        fisheye_share: share of the distorted cameras that are equidistant fisheyes (the rest:
            70 % plumb_bob, 30 % rational_polynomial).
        child_prob: share of children (SMPL-A age offset 0.3-0.8; needs the 'smpla' model).
        walking_prob: share of people walking (the others stand).
        speed_m_s: walking speeds, m/s.
        pose_noise: strength of random joint rotations (0 = pure gait, 1 = a sixth of each
            joint's range as standard deviation).
        photo_prob: share of photographic backgrounds (else procedural textures).
        ground_prob: share of backgrounds with a textured ground plane below the horizon.
        pattern_prob: share of people whose shirts are striped (else plain colours).
        blur_prob: share of images with focus blur (Gaussian, sigma up to ``max_blur_px``).
        max_blur_px: largest focus blur sigma, pixels.
        motion_blur_prob: share of images with linear motion blur (3-9 px).
        noise_sigma: largest sensor noise standard deviation, grey levels (0..255).
        lighting_strength: scale of the exposure / contrast / colour variation (0 = none).
        supersample: render sub-samples per pixel side (anti-aliased edges; cost ~ s^2).
        sequence: consecutive frames form sequences (see the module docstring).
        sequence_length: frames per sequence (0: all frames form one sequence).
        fps: frame rate of sequences (stamps, motion).
        min_visible_pixels: people with fewer rendered pixels are not labelled.
    """

    width: int = 512
    height: int = 512
    people: tuple[int, int] = (1, 6)
    distance_m: tuple[float, float] = (1.5, 20.0)
    hfov_deg: tuple[float, float] = (40.0, 100.0)
    camera_height_m: tuple[float, float] = (0.5, 2.5)
    camera_pitch_deg: tuple[float, float] = (-5.0, 20.0)
    camera_roll_deg: float = 3.0
    distortion_prob: float = 0.3
    fisheye_share: float = 0.25
    child_prob: float = 0.15
    walking_prob: float = 0.7
    speed_m_s: tuple[float, float] = (0.4, 1.8)
    pose_noise: tuple[float, float] = (0.1, 0.7)
    photo_prob: float = 0.5
    ground_prob: float = 0.6
    pattern_prob: float = 0.4
    blur_prob: float = 0.3
    max_blur_px: float = 1.5
    motion_blur_prob: float = 0.1
    noise_sigma: float = 4.0
    lighting_strength: float = 1.0
    supersample: int = 2
    sequence: bool = False
    sequence_length: int = 0
    fps: float = 15.0
    min_visible_pixels: int = 8

    def __post_init__(self) -> None:
        def fail(text: str) -> None:
            raise SceneSpecError(text)

        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            fail(f'image size {self.width}x{self.height} must be 16..8192 pixels per side')
        lo, hi = self.people
        if not 0 <= lo <= hi <= 64:
            fail(f'people={self.people} must be (min, max) with 0 <= min <= max <= 64')
        self._check_range('distance_m', 0.5, 200.0)
        self._check_range('hfov_deg', 10.0, 150.0)
        self._check_range('camera_height_m', 0.05, 20.0)
        self._check_range('camera_pitch_deg', -45.0, 60.0)
        self._check_range('speed_m_s', 0.0, 5.0)
        self._check_range('pose_noise', 0.0, 1.0)
        if self.hfov_deg[1] > 120.0 and self.distortion_prob * self.fisheye_share < 1.0:
            fail(f'hfov_deg up to {self.hfov_deg[1]} needs fisheye lenses only: set '
                 'distortion_prob and fisheye_share to 1, or keep hfov_deg <= 120')
        for name in ('distortion_prob', 'fisheye_share', 'child_prob', 'walking_prob',
                     'photo_prob', 'ground_prob', 'pattern_prob', 'blur_prob',
                     'motion_blur_prob'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                fail(f'{name}={value} must be a probability in [0, 1]')
        for name in ('camera_roll_deg', 'max_blur_px', 'noise_sigma', 'lighting_strength'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                fail(f'{name}={value} must be a non-negative number')
        if not (isinstance(self.supersample, int) and 1 <= self.supersample <= 4):
            fail(f'supersample={self.supersample} must be an integer 1..4')
        if not (math.isfinite(self.fps) and self.fps > 0):
            fail(f'fps={self.fps} must be positive')
        if self.sequence_length < 0:
            fail(f'sequence_length={self.sequence_length} must be >= 0 (0: one sequence)')
        if self.min_visible_pixels < 1:
            fail(f'min_visible_pixels={self.min_visible_pixels} must be >= 1')

    def _check_range(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        if (len(value) != 2 or not all(math.isfinite(v) for v in value)
                or not low <= value[0] <= value[1] <= high):
            raise SceneSpecError(f'{name}={value} must be (min, max) with {low} <= min <= max '
                                 f'<= {high}')


@dataclass(frozen=True)
class CameraMount:
    """Where the camera sits over the ground.

    ``height_m`` above the ground, pitched down by ``pitch`` and rolled by ``roll`` (radians);
    see :func:`romp_ros.synthetic.poses.camera_from_level`.
    """

    height_m: float
    pitch: float
    roll: float

    def cam_from_level(self) -> np.ndarray:
        """(3, 3) rotation: level frame (y down, z forward horizontal) -> camera frame."""
        return poses.camera_from_level(self.pitch, self.roll)


@dataclass(frozen=True)
class ScenePerson:
    """Ground truth of one labelled person (J joints, B shape parameters).

    Attributes:
        track_id: identity, constant over a sequence.
        smpl_pose: (72,) axis-angle, radians; joint 0 is the global orientation in the camera
            frame.
        smpl_shape: (B,) 10 SMPL betas, or 11 with SMPL-A (the 11th: age offset, 0 adults).
        translation: (3,) metres: camera point = body-model point + translation.
        joints_3d: (J, 3) metres, camera frame.
        keypoints_2d: (J, 3) pixels (u, v) and visibility 0 / 1 / 2 (outside the image or not
            projectable / hidden by another person or by the own body / visible); points the
            lens cannot image (behind the camera, beyond its valid field) are (0, 0, 0).
        bbox: (4,) (u_min, v_min, u_max, v_max) of the projected mesh vertices, clipped to
            the image (the whole body, occluded parts included).
        age_offset: 0 for adults, 0.3-0.8 for children.
        visible_pixels: pixels where this person is the nearest surface.
    """

    track_id: int
    smpl_pose: np.ndarray
    smpl_shape: np.ndarray
    translation: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    bbox: np.ndarray
    age_offset: float
    visible_pixels: int

    def label(self) -> PersonLabel:
        """The person as a dataset label."""
        return PersonLabel(track_id=self.track_id, bbox=self.bbox,
                           keypoints_2d=self.keypoints_2d, joints_3d=self.joints_3d,
                           smpl_pose=self.smpl_pose, smpl_shape=self.smpl_shape,
                           translation=self.translation)


@dataclass(frozen=True)
class SceneFrame:
    """One rendered frame and its ground truth.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        camera: the camera model (K and lens) the image was taken with.
        mount: the camera's height, pitch and roll over the ground.
        people: the labelled people.
        person_index: (H, W) int16: index into ``people`` of the nearest surface at each
            pixel, -1 for background (and for people too little visible to be labelled).
        depth: (H, W) float32 z of the nearest person surface, metres (inf: background).
        index: frame number in the dataset.
        sequence: sequence name ('' for independent frames).
        stamp_ns: capture time (sequences), else None.
    """

    image: np.ndarray
    camera: CameraModel
    mount: CameraMount
    people: tuple[ScenePerson, ...]
    person_index: np.ndarray
    depth: np.ndarray
    index: int
    sequence: str = ''
    stamp_ns: int | None = None

    def camera_label(self) -> CameraLabel:
        """The camera as a dataset label."""
        cam = self.camera
        return CameraLabel(width=cam.width, height=cam.height, k=cam.k,
                           distortion_model=cam.distortion_model, d=cam.d)


# --------------------------------------------------------------------------------- camera

def sample_camera(rng: np.random.Generator, spec: SceneSpec) -> CameraModel:
    """A random camera of the spec: field of view, principal point, maybe a lens.

    A sampled lens is kept only if it is one-to-one to 1.3x beyond the image corners (so
    every image point has one ray) and, for fisheyes, the corners are under 80 degrees off
    axis (so a pinhole canvas can cover them); otherwise it is drawn again.
    """
    w, h = spec.width, spec.height
    hfov = math.radians(rng.uniform(*spec.hfov_deg))
    cx = w / 2.0 + rng.normal(0.0, 0.01 * w)
    cy = h / 2.0 + rng.normal(0.0, 0.01 * h)
    aspect = 1.0 + rng.normal(0.0, 0.004)
    distorted = rng.random() < spec.distortion_prob
    fisheye = distorted and (rng.random() < spec.fisheye_share or hfov > math.radians(120))
    rational = rng.random() < 0.3
    for _ in range(30):
        if fisheye:
            d = (rng.uniform(-0.05, 0.08), rng.uniform(-0.03, 0.02), rng.uniform(-0.01, 0.01),
                 rng.uniform(-0.004, 0.004))
            theta = hfov / 2.0
            theta_d = theta * (1 + sum(c * theta ** (2 * i + 2) for i, c in enumerate(d)))
            f = (w / 2.0) / theta_d
            cam = CameraModel(w, h, (f, f * aspect, cx, cy), 'equidistant', d)
        else:
            f = (w / 2.0) / math.tan(hfov / 2.0)
            k = (f, f * aspect, cx, cy)
            if not distorted:
                return CameraModel(w, h, k)
            k1 = rng.uniform(-0.35, 0.05)
            k2 = rng.uniform(0.0, 0.12) if k1 < 0 else rng.uniform(-0.02, 0.02)
            p1, p2 = rng.normal(0.0, 0.0015, 2)
            if rational:
                k4, k5, k6 = rng.uniform(0.0, 1.2), rng.uniform(0.0, 0.3), rng.uniform(0, 0.05)
                d = (k1 + k4, k2 + k5, p1, p2, k6 + rng.uniform(-0.01, 0.01), k4, k5, k6)
                cam = CameraModel(w, h, k, 'rational_polynomial', d)
            else:
                cam = CameraModel(w, h, k, 'plumb_bob', (k1, k2, p1, p2, 0.0))
        if _lens_is_usable(cam):
            return cam
    LOG.debug('no usable lens drawn in 30 tries; using an ideal pinhole')
    f = (w / 2.0) / math.tan(min(hfov, math.radians(120)) / 2.0)
    return CameraModel(w, h, (f, f * aspect, cx, cy))


def _border_pixels(width: int, height: int, per_side: int = 64) -> np.ndarray:
    """(4 * per_side, 2) pixels along the image border, corners included."""
    t = np.linspace(0.0, 1.0, per_side)
    top = np.stack([t * width, np.zeros_like(t)], 1)
    bottom = np.stack([t * width, np.full_like(t, height)], 1)
    left = np.stack([np.zeros_like(t), t * height], 1)
    right = np.stack([np.full_like(t, width), t * height], 1)
    return np.concatenate([top, bottom, left, right])


def _corner_extent(cam: CameraModel) -> float:
    """Largest off-axis extent of the image border: ideal radius, or angle for fisheyes."""
    rays = cam.pixel_rays(_border_pixels(cam.width, cam.height))
    if cam.distortion_model == 'equidistant':
        return float(np.arccos(np.clip(rays[:, 2], -1.0, 1.0)).max())
    return float(np.hypot(rays[:, 0] / rays[:, 2], rays[:, 1] / rays[:, 2]).max())


def _lens_is_usable(cam: CameraModel) -> bool:
    extent = _corner_extent(cam)
    if not math.isfinite(extent):
        return False
    if cam.distortion_model == 'equidistant' and extent > math.radians(80):
        return False
    if not cam.radial_monotonic_up_to(extent * _CORNER_RADIUS_MARGIN):
        return False
    # the inverse must reproduce the border (no point beyond the fold-back radius)
    border = _border_pixels(cam.width, cam.height)
    back = cam.project(cam.pixel_rays(border))
    return bool(np.all(np.abs(back - border) < 1e-3))


def sample_mount(rng: np.random.Generator, spec: SceneSpec) -> CameraMount:
    """A random camera height, pitch and roll within the spec."""
    roll = math.radians(spec.camera_roll_deg)
    return CameraMount(height_m=float(rng.uniform(*spec.camera_height_m)),
                       pitch=math.radians(rng.uniform(*spec.camera_pitch_deg)),
                       roll=float(np.clip(rng.normal(0.0, roll / 2.0), -roll, roll)))


@dataclass(frozen=True)
class LensWarp:
    """The pinhole canvas a camera's image is rendered on, and the warp through the lens.

    Attributes:
        camera: the real camera.
        canvas_k: (fx, fy, cx, cy) of the canvas.
        canvas_size: (H, W) of the canvas.
        map_x, map_y: (H, W) float32 ``cv2.remap`` maps, image pixel -> canvas array
            coordinates; None when the camera is an ideal pinhole (canvas = image).
        valid_extent: points farther off-axis than this (ideal radius, or angle for fisheyes)
            cannot be imaged reliably (the lens model folds back there); inf for a pinhole.
    """

    camera: CameraModel
    canvas_k: tuple[float, float, float, float]
    canvas_size: tuple[int, int]
    map_x: np.ndarray | None
    map_y: np.ndarray | None
    valid_extent: float

    @classmethod
    def for_camera(cls, cam: CameraModel) -> 'LensWarp':
        """Build the canvas covering everything the lens sees, and the remap tables."""
        if not cam.is_distorted:
            return cls(cam, cam.k, (cam.height, cam.width), None, None, math.inf)
        fx, fy = cam.k[:2]
        rays = cam.pixel_rays(_border_pixels(cam.width, cam.height, 256))
        ideal = rays[:, :2] / rays[:, 2:3]
        (xmin, ymin), (xmax, ymax) = ideal.min(0), ideal.max(0)
        scale = min(1.0, _CANVAS_FACTOR * cam.width / ((xmax - xmin) * fx),
                    _CANVAS_FACTOR * cam.height / ((ymax - ymin) * fy))
        cfx, cfy = fx * scale, fy * scale
        width = int(math.ceil((xmax - xmin) * cfx)) + 2 * _CANVAS_MARGIN_PX
        height = int(math.ceil((ymax - ymin) * cfy)) + 2 * _CANVAS_MARGIN_PX
        k = (cfx, cfy, _CANVAS_MARGIN_PX - xmin * cfx, _CANVAS_MARGIN_PX - ymin * cfy)
        # every image pixel centre, undistorted, located on the canvas
        vv, uu = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64) + 0.5
        xy = cam.undistort_points(cam.to_normalised(np.stack([uu, vv], axis=-1)))
        map_x = (k[0] * xy[..., 0] + k[2] - 0.5).astype(np.float32)
        map_y = (k[1] * xy[..., 1] + k[3] - 0.5).astype(np.float32)
        extent = _corner_extent(cam) * _CORNER_RADIUS_MARGIN
        return cls(cam, k, (height, width), map_x, map_y, extent)

    def imageable(self, points_cam: np.ndarray) -> np.ndarray:
        """(...) bool: in front of the lens and within its valid field."""
        x, y, z = points_cam[..., 0], points_cam[..., 1], points_cam[..., 2]
        if self.camera.distortion_model == 'equidistant':
            return np.arctan2(np.hypot(x, y), z) < self.valid_extent
        with np.errstate(divide='ignore', invalid='ignore'):
            radius = np.hypot(x, y) / z
        return (z > 1e-6) & (radius < self.valid_extent)

    def canvas_rays(self) -> np.ndarray:
        """(H, W, 3) unit rays of the canvas pixel centres, camera frame."""
        fx, fy, cx, cy = self.canvas_k
        height, width = self.canvas_size
        vv, uu = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
        rays = np.stack([(uu - cx) / fx, (vv - cy) / fy, np.ones_like(uu)], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def warp(self, image: np.ndarray, interpolation: int) -> np.ndarray:
        """A canvas-sized array seen through the lens (image-sized)."""
        if self.map_x is None:
            return image
        border = cv2.BORDER_REFLECT if interpolation != cv2.INTER_NEAREST else \
            cv2.BORDER_CONSTANT
        return cv2.remap(image, self.map_x, self.map_y, interpolation, borderMode=border,
                         borderValue=-1)


# ------------------------------------------------------------------------------ appearance

# Body parts by the joint that dominates each vertex's skinning weights.
_PART_OF_JOINT = {
    0: 'pelvis', 1: 'thigh', 2: 'thigh', 3: 'torso', 4: 'shin', 5: 'shin', 6: 'torso',
    7: 'shoe', 8: 'shoe', 9: 'torso', 10: 'shoe', 11: 'shoe', 12: 'neck', 13: 'torso',
    14: 'torso', 15: 'head', 16: 'upper_arm', 17: 'upper_arm', 18: 'forearm', 19: 'forearm',
    20: 'hand', 21: 'hand', 22: 'hand', 23: 'hand',
}
_SKIN_TONES = np.array([[0.98, 0.84, 0.72], [0.92, 0.74, 0.6], [0.8, 0.6, 0.45],
                        [0.62, 0.44, 0.31], [0.45, 0.3, 0.2], [0.3, 0.2, 0.14]])
_HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.3, 0.18, 0.1], [0.6, 0.45, 0.25],
                          [0.75, 0.7, 0.65], [0.45, 0.15, 0.08]])


@dataclass(frozen=True)
class BodyParts:
    """Per-vertex body-part masks of a body model, for clothing colours.

    Attributes:
        parts: name -> (V,) bool mask ('hair' is the top and back of the head).
        height: (V,) rest-pose vertex height, metres (stripes follow it).
    """

    parts: dict[str, np.ndarray] = field(default_factory=dict)
    height: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, body: BodyModel) -> 'BodyParts':
        """Segment the template of ``body`` by dominant skinning joint."""
        weights = body.lbs_weights.cpu().numpy()  # (V, 24)
        template = body.v_template.cpu().numpy()  # (V, 3)
        joints = body.j_regressor.cpu().numpy() @ template  # (24, 3)
        dominant = weights.argmax(axis=1)
        parts = {}
        for name in set(_PART_OF_JOINT.values()):
            joint_ids = [j for j, p in _PART_OF_JOINT.items() if p == name]
            parts[name] = np.isin(dominant, joint_ids)
        head = joints[15]
        hair = parts['head'] & ((template[:, 1] > head[1] + 0.03)
                                | ((template[:, 2] < head[2] - 0.02)
                                   & (template[:, 1] > head[1] - 0.06)))
        parts['hair'] = hair
        parts['head'] = parts['head'] & ~hair
        return cls(parts, template[:, 1].copy())


def sample_clothes(rng: np.random.Generator, parts: BodyParts,
                   pattern_prob: float) -> np.ndarray:
    """(V, 3) per-vertex colours in [0, 1] of one person's skin, hair and clothes.

    Shirt (maybe striped), trousers and shoes; sleeves and trouser legs long or short.
    """
    skin = np.clip(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
                   + rng.normal(0.0, 0.03, 3), 0.0, 1.0)
    hair = np.clip(_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))]
                   + rng.normal(0.0, 0.03, 3), 0.0, 1.0)
    shirt = backgrounds.random_colour(rng)
    trousers = backgrounds.random_colour(rng, saturation=(0.0, 0.6), value=(0.1, 0.8))
    shoes = backgrounds.random_colour(rng, saturation=(0.0, 0.4), value=(0.05, 0.6))
    long_sleeves = rng.random() < 0.5
    long_trousers = rng.random() < 0.75
    striped = rng.random() < pattern_prob
    stripe_colour = backgrounds.random_colour(rng)
    stripe_period = rng.uniform(0.04, 0.15)
    num = parts.height.shape[0]
    colours = np.tile(skin, (num, 1))
    p = parts.parts
    upper = p['torso'] | p['upper_arm'] | (p['forearm'] if long_sleeves else False)
    lower = p['pelvis'] | p['thigh'] | (p['shin'] if long_trousers else False)
    shirt_colours = np.tile(shirt, (num, 1))
    if striped:
        stripes = (np.sin(2 * math.pi * parts.height / stripe_period) > 0.0)
        shirt_colours[stripes] = stripe_colour
    colours[upper] = shirt_colours[upper]
    colours[lower] = trousers
    colours[p['shoe']] = shoes
    colours[p['hair']] = hair
    return colours


def sample_light(rng: np.random.Generator) -> LightSpec:
    """A directional light from above and mostly in front, with random strengths."""
    direction = (float(rng.normal(0.0, 0.6)), -float(rng.uniform(0.3, 1.2)),
                 -float(rng.uniform(0.1, 1.0)))
    return LightSpec(direction=direction, ambient=float(rng.uniform(0.25, 0.5)),
                     diffuse=float(rng.uniform(0.45, 0.8)),
                     specular=float(rng.uniform(0.0, 0.2)),
                     shininess=float(rng.uniform(8.0, 40.0)))


# ------------------------------------------------------------------------------- the people

@dataclass
class _Walker:
    """One person of a scene and how it moves (mutable: sequences step it)."""

    track_id: int
    betas: np.ndarray  # (B,)
    age: float
    colours: np.ndarray  # (V, 3)
    noise: poses.PoseNoise  # one person
    phase0: float
    speed: float  # m/s, 0 standing
    x: float  # level frame, metres
    z: float
    direction: float  # walking direction: velocity (sin, cos) * speed
    facing: float  # heading of standing people
    lean: float
    turn_rate: float = 0.0

    def heading(self) -> float:
        if self.speed > 0.0:
            return float(poses.heading_from_velocity(math.sin(self.direction),
                                                     math.cos(self.direction)))
        return self.facing

    def phase(self, t: float) -> float:
        cadence = 0.55 + 0.25 * self.speed if self.speed > 0 else 0.0  # strides per second
        return self.phase0 + 2 * math.pi * cadence * t


class SceneGenerator:
    """Makes :class:`SceneFrame` s for a :class:`SceneSpec` with one body model.

    Example::

        gen = SceneGenerator(SceneSpec(width=256, height=256), BodyModel.from_models_dir(d))
        for frame in gen.frames(10, seed=0): ...
    """

    def __init__(self, spec: SceneSpec, body: BodyModel,
                 photos: backgrounds.PhotoLibrary | None = None,
                 device: str | torch.device = 'cpu') -> None:
        """Prepare the body model's parts, faces and which body parts may cover each joint.

        ``device``: where the body model and the renderer run ('cuda' renders on the GPU;
        frames are identical for a seed on one device, not across devices).
        """
        self.spec = spec
        self.device = torch_device(device)
        self.body = body.eval().to(self.device)
        self.photos = photos or backgrounds.PhotoLibrary()
        self.num_betas = int(body.num_betas)
        self.has_age = self.num_betas == 11
        self.joint_names = tuple(body.joint_names)
        self.faces = body.faces.cpu().numpy()
        self.parts = BodyParts.of(body)
        self.num_joints = len(self.joint_names)
        self._vertex_part, self._allowed_parts, self._on_surface = self._joint_parts()
        if spec.child_prob > 0 and not self.has_age:
            LOG.info('the body model is %s (no age offset): no children are generated; '
                     "prepare SMPL-A ('smpla', prepare-models --extra) for children",
                     body.kind)

    def _joint_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which body parts may cover each joint without hiding it.

        Returns:
            vertex_part (V,) int: the SMPL joint dominating each vertex's skinning weights;
            allowed (J, 24) bool: the parts around joint j (its home part, that part's parent
            and children), whose skin lies over the joint;
            on_surface (J,) bool: joints that are mesh vertices (face, toes, finger tips),
            which any nearer surface of their own body hides.
        """
        body = self.body
        weights = body.lbs_weights.cpu().numpy()  # (V, 24)
        rows = [body.j_regressor.cpu().numpy()]  # (24, V): each joint as vertex weights
        if self.num_joints > 24:
            picks = np.zeros((len(body.extra_joints_index), weights.shape[0]))
            picks[np.arange(len(picks)), body.extra_joints_index.cpu().numpy()] = 1.0
            rows += [picks, body.j_regressor_extra.cpu().numpy()]
        joint_weights = np.concatenate(rows)  # (J, V)
        home = (joint_weights @ weights).argmax(axis=1)  # (J,)
        parents = body.parents.cpu().numpy()
        allowed = np.zeros((len(home), 24), bool)
        for j, part in enumerate(home):
            allowed[j, part] = True
            if parents[part] >= 0:
                allowed[j, parents[part]] = True
            allowed[j, parents == part] = True
        # the vertex picks are surface points; every other joint lies inside the body
        on_surface = np.zeros(len(home), bool)
        on_surface[24:24 + (len(body.extra_joints_index) if self.num_joints > 24 else 0)] = True
        return weights.argmax(axis=1), allowed, on_surface

    # -------------------------------------------------------------------------- frames

    def frames(self, count: int, seed: int) -> Iterator[SceneFrame]:
        """Yield ``count`` frames made from ``seed`` (identical for identical arguments)."""
        spec = self.spec
        if count < 0:
            raise SceneSpecError(f'frame count {count} must be >= 0')
        if seed < 0:
            raise SceneSpecError(f'seed {seed} must be >= 0')
        length = (spec.sequence_length or max(count, 1)) if spec.sequence else 1
        index = 0
        seq = 0
        while index < count:
            n = min(length, count - index)
            yield from self._sequence(seed, seq, index, n)
            index += n
            seq += 1

    def _sequence(self, seed: int, seq: int, first_index: int,
                  count: int) -> Iterator[SceneFrame]:
        spec = self.spec
        rng = np.random.default_rng([seed, seq, 0])
        camera = sample_camera(rng, spec)
        mount = sample_mount(rng, spec)
        lens = LensWarp.for_camera(camera)
        cam_from_level = mount.cam_from_level()
        rays_level = lens.canvas_rays() @ cam_from_level
        background = backgrounds.make_background(
            rng, lens.canvas_size[0], lens.canvas_size[1], self.photos,
            photo_prob=spec.photo_prob, ground_prob=spec.ground_prob, rays_level=rays_level,
            camera_height=mount.height_m, pixel_angle=1.0 / lens.canvas_k[0])
        light = sample_light(rng)
        look_seed = int(rng.integers(2 ** 31))
        blur_sigma = (rng.uniform(0.3, spec.max_blur_px)
                      if spec.max_blur_px > 0.3 and rng.random() < spec.blur_prob else 0.0)
        target = int(rng.integers(spec.people[0], spec.people[1] + 1))
        walkers = self._place(rng, lens, mount, target, next_id=0)
        next_id = len(walkers)
        name = f'seq{seq:05d}' if spec.sequence else ''
        dt = 1.0 / spec.fps
        for f in range(count):
            frame_rng = np.random.default_rng([seed, seq, f + 1])
            if f > 0:
                next_id = self._step(frame_rng, walkers, lens, mount, target, next_id, dt)
            stamp = (round((first_index + f) * 1e9 / spec.fps) if spec.sequence else None)
            yield self._render(frame_rng, walkers, f * dt, camera, mount, lens, background,
                               light, look_seed, blur_sigma, first_index + f, name, stamp)

    # ----------------------------------------------------------------------- placement

    def _new_walker(self, rng: np.random.Generator, track_id: int, x: float,
                    z: float) -> _Walker:
        spec = self.spec
        child = self.has_age and rng.random() < spec.child_prob
        betas = np.zeros(self.num_betas)
        betas[:10] = np.clip(rng.normal(0.0, 0.6 if child else 0.9, 10), -2.5, 2.5)
        age = float(rng.uniform(0.3, MAX_AGE_OFFSET)) if child else 0.0
        if self.has_age:
            betas[10] = age
        walking = rng.random() < spec.walking_prob
        speed = float(rng.uniform(*spec.speed_m_s)) if walking else 0.0
        if child:
            speed *= 0.7
        strength = rng.uniform(*spec.pose_noise)
        noise = poses.sample_pose_noise(rng, 1, strength)
        # walkers mostly cross the view; standing people mostly face the camera
        direction = float(rng.uniform(-math.pi, math.pi))
        facing = float(rng.normal(0.0, 1.0))
        return _Walker(track_id=track_id, betas=betas, age=age,
                       colours=sample_clothes(rng, self.parts, spec.pattern_prob),
                       noise=noise, phase0=float(rng.uniform(0, 2 * math.pi)), speed=speed,
                       x=x, z=z, direction=direction, facing=facing,
                       lean=float(rng.normal(0.03, 0.03)))

    def _place(self, rng: np.random.Generator, lens: LensWarp, mount: CameraMount,
               count: int, next_id: int) -> list[_Walker]:
        """``count`` people on the ground, in view (or straddling its edges), kept apart.

        About a third are placed behind someone already there (occlusions).
        """
        spec = self.spec
        lo, hi = spec.distance_m
        half_fov = _half_fov(lens)
        walkers: list[_Walker] = []
        for _ in range(count):
            for _attempt in range(60):
                if walkers and rng.random() < 0.35:
                    front = walkers[int(rng.integers(len(walkers)))]
                    bearing = math.atan2(front.x, front.z) + rng.normal(0.0, 0.04)
                    dist = math.hypot(front.x, front.z) + rng.uniform(0.8, 4.0)
                else:
                    bearing = rng.uniform(-1.1, 1.1) * half_fov
                    dist = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                if not lo <= dist <= hi:
                    continue
                x, z = dist * math.sin(bearing), dist * math.cos(bearing)
                # the first person well inside the image, the others may straddle its edges
                if not _in_view(lens, mount, x, z, margin=0.1 if walkers else -0.1):
                    continue
                if any(math.hypot(x - w.x, z - w.z) < _MIN_SEPARATION_M for w in walkers):
                    continue
                walkers.append(self._new_walker(rng, next_id + len(walkers), x, z))
                break
        return walkers

    def _step(self, rng: np.random.Generator, walkers: list[_Walker], lens: LensWarp,
              mount: CameraMount, target: int, next_id: int, dt: float) -> int:
        """Move everyone by one frame; remove people who left, add people who enter."""
        spec = self.spec
        lo, hi = spec.distance_m
        half_fov = _half_fov(lens)
        for w in walkers:
            # Ornstein-Uhlenbeck turn rate: smooth paths with bounded curvature
            w.turn_rate += -w.turn_rate * dt / 1.5 + rng.normal(0.0, 0.5) * math.sqrt(dt)
            if w.speed <= 0.0:
                continue
            dist = math.hypot(w.x, w.z)
            radial = (w.x * math.sin(w.direction) + w.z * math.cos(w.direction)) / dist
            if (dist < lo + 0.3 and radial < 0) or (dist > hi - 0.3 and radial > 0):
                w.direction += math.pi * dt  # turn away from the distance limits
            w.direction += w.turn_rate * dt
            w.x += w.speed * math.sin(w.direction) * dt
            w.z += w.speed * math.cos(w.direction) * dt
        _keep_apart(walkers)
        # people well outside the view (30 % of the image size beyond its edges) have left
        walkers[:] = [w for w in walkers if _in_view(lens, mount, w.x, w.z, margin=0.3)]
        if len(walkers) < target and rng.random() < 0.8 * dt:
            side = 1.0 if rng.random() < 0.5 else -1.0
            bearing = side * (half_fov + 0.15)
            dist = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            new = self._new_walker(rng, next_id, dist * math.sin(bearing),
                                   dist * math.cos(bearing))
            if new.speed == 0.0:
                new.speed = float(rng.uniform(*spec.speed_m_s)) or 1.0
            # walk in, towards the other side of the view
            new.direction = -side * (math.pi / 2 + rng.uniform(-0.4, 0.4))
            if all(math.hypot(new.x - w.x, new.z - w.z) >= _MIN_SEPARATION_M for w in walkers):
                walkers.append(new)
                next_id += 1
        return next_id

    # ------------------------------------------------------------------------- rendering

    def pose_people(self, walkers: list[_Walker], t: float,
                    mount: CameraMount) -> tuple[np.ndarray, ...]:
        """Body-model parameters and camera-frame geometry of ``walkers`` at time ``t``.

        Returns:
            betas (N, B), thetas (N, 72), translation (N, 3), verts (N, V, 3) and
            joints (N, J, 3) in the camera frame, float64.
        """
        num = len(walkers)
        cam_from_level = mount.cam_from_level()
        betas = np.stack([w.betas for w in walkers]) if num else np.zeros((0, self.num_betas))
        thetas = np.zeros((num, 72))
        if num:
            heading = np.array([w.heading() for w in walkers])
            lean = np.array([w.lean for w in walkers])
            thetas[:, :3] = poses.global_orientation(heading, lean, cam_from_level)
            noise = np.concatenate([w.noise.at(t) for w in walkers])  # (N, 23, 3)
            thetas[:, 3:] = poses.body_pose(np.array([w.phase(t) for w in walkers]),
                                            np.array([w.speed for w in walkers]), noise)
        with torch.no_grad():
            out = self.body(torch.as_tensor(betas, dtype=torch.float32, device=self.device),
                            torch.as_tensor(thetas, dtype=torch.float32, device=self.device))
        verts = out.verts.double().cpu().numpy()  # (N, V, 3) body-model frame
        joints = out.joints.double().cpu().numpy()  # (N, J, 3)
        # In the level frame (y down): lift the lowest vertex onto the ground and put the
        # pelvis over the person's ground position; then express that shift in the camera.
        verts_level = verts @ cam_from_level  # rows: v_level = R^T v_cam
        pelvis_level = joints[:, 0] @ cam_from_level  # (N, 3)
        shift_level = np.zeros((num, 3))
        shift_level[:, 0] = np.array([w.x for w in walkers]) - pelvis_level[:, 0]
        shift_level[:, 2] = np.array([w.z for w in walkers]) - pelvis_level[:, 2]
        shift_level[:, 1] = mount.height_m - verts_level[..., 1].max(axis=1) if num else 0.0
        translation = shift_level @ cam_from_level.T  # (N, 3) camera frame
        return (betas, thetas, translation, verts + translation[:, None],
                joints + translation[:, None])

    def _render(self, rng: np.random.Generator, walkers: list[_Walker], t: float,
                camera: CameraModel, mount: CameraMount, lens: LensWarp,
                background: np.ndarray, light: LightSpec, look_seed: int, blur_sigma: float,
                index: int, sequence: str, stamp: int | None) -> SceneFrame:
        spec = self.spec
        betas, thetas, translation, verts, joints = self.pose_people(walkers, t, mount)
        num = len(walkers)
        colours = (np.stack([w.colours for w in walkers]) if num
                   else np.zeros((0, self.parts.height.shape[0], 3)))
        render = render_meshes(torch.as_tensor(verts, dtype=torch.float32, device=self.device),
                               self.faces, lens.canvas_k,
                               lens.canvas_size, colors=colours, background=background,
                               light=light, supersample=spec.supersample)
        image = lens.warp(render.image, cv2.INTER_LINEAR)
        person = lens.warp(render.person_index.astype(np.float32),
                           cv2.INTER_NEAREST).astype(np.int16)
        depth = lens.warp(np.where(np.isfinite(render.depth), render.depth, -1.0)
                          .astype(np.float32), cv2.INTER_NEAREST)
        depth = np.where(depth > 0, depth, np.inf).astype(np.float32)
        image = self._photometric(rng, image, look_seed, blur_sigma)

        # ground truth
        w, h = camera.width, camera.height
        imageable = lens.imageable(joints)  # (N, J)
        with np.errstate(invalid='ignore'):
            uv = camera.project(joints)  # (N, J, 2)
        uv = np.where(imageable[..., None] & np.isfinite(uv), uv, 0.0)
        imageable &= np.isfinite(uv).all(-1)
        inside = imageable & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (
            uv[..., 1] < h)
        unhidden = points_visible(joints, None, render, lens.canvas_k)  # other people
        own_hidden = self._self_occluded(joints, verts, render, lens.canvas_k)
        vis = np.where(inside, np.where(unhidden & ~own_hidden, VIS_VISIBLE, VIS_OCCLUDED),
                       VIS_ABSENT).astype(np.float64)
        keypoints = np.concatenate([uv, vis[..., None]], axis=-1)  # (N, J, 3)

        counts = np.bincount(person[person >= 0].ravel(), minlength=num)[:num]
        labelled = [n for n in range(num) if counts[n] >= spec.min_visible_pixels]
        remap = np.full(num + 1, -1, np.int16)  # index -1 maps through the last entry
        people = []
        for new_index, n in enumerate(labelled):
            remap[n] = new_index
            bbox = self._bbox(verts[n], lens)
            people.append(ScenePerson(
                track_id=walkers[n].track_id, smpl_pose=thetas[n].copy(),
                smpl_shape=betas[n].copy(), translation=translation[n].copy(),
                joints_3d=joints[n].copy(), keypoints_2d=keypoints[n], bbox=bbox,
                age_offset=walkers[n].age, visible_pixels=int(counts[n])))
        person_index = remap[person]  # -1 stays -1 (last entry)
        return SceneFrame(image=image, camera=camera, mount=mount, people=tuple(people),
                          person_index=person_index, depth=depth, index=index,
                          sequence=sequence, stamp_ns=stamp)

    def _self_occluded(self, joints: np.ndarray, verts: np.ndarray, render,
                       k: tuple[float, float, float, float]) -> np.ndarray:
        """(N, J) bool: joints hidden by their own body, from the render's z-buffer.

        At the joint's canvas pixel the z-buffer holds the nearest surface. The joint is
        self-occluded when that surface is its own body's, lies more than
        ``VISIBILITY_TOL_M`` in front of it, and either the joint is a surface point (the
        nose of a person facing away) or the surface belongs to a body part not around the
        joint (an arm in front of the pelvis, the near leg in front of the far knee). The
        part is that of the own mesh vertex nearest to the surface point.
        """
        fx, fy, cx, cy = k
        height, width = render.depth.shape
        num, num_joints = joints.shape[:2]
        x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            u, v = fx * x / z + cx, fy * y / z + cy
        ok = np.isfinite(u) & np.isfinite(v) & (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (
            v < height)
        col = np.where(ok, u, 0).astype(np.int64)
        row = np.where(ok, v, 0).astype(np.int64)
        surface = render.depth[row, col].astype(np.float64)  # (N, J)
        own = render.person_index[row, col] == np.arange(num)[:, None]
        in_front = ok & own & (surface < z - VISIBILITY_TOL_M)
        hidden = np.zeros((num, num_joints), bool)
        for n in np.flatnonzero(in_front.any(axis=1)):
            idx = np.flatnonzero(in_front[n])
            points = joints[n, idx] * (surface[n, idx] / z[n, idx])[:, None]  # on the surface
            # squared distances |p|^2 - 2 p.v + |v|^2, one matrix product
            dist2 = (points ** 2).sum(1)[:, None] - 2.0 * points @ verts[n].T + (
                verts[n] ** 2).sum(1)[None]  # (K, V)
            nearest = dist2.argmin(axis=1)
            part = self._vertex_part[nearest]
            foreign = ~self._allowed_parts[idx, part]
            hidden[n, idx] = self._on_surface[idx] | foreign
        return hidden

    @staticmethod
    def _bbox(verts: np.ndarray, lens: LensWarp) -> np.ndarray:
        """Box of the imageable projected vertices, clipped to the image."""
        cam = lens.camera
        ok = lens.imageable(verts)
        uv = cam.project(verts[ok])
        uv = uv[np.isfinite(uv).all(axis=1)]
        if not len(uv):
            return np.zeros(4)
        lo = np.clip(uv.min(axis=0), 0.0, [cam.width, cam.height])
        hi = np.clip(uv.max(axis=0), 0.0, [cam.width, cam.height])
        return np.concatenate([lo, hi])

    def _photometric(self, rng: np.random.Generator, image: np.ndarray, look_seed: int,
                     blur_sigma: float) -> np.ndarray:
        """Exposure and colour (fixed per sequence), focus and motion blur, sensor noise."""
        spec = self.spec
        if spec.lighting_strength > 0:
            image = backgrounds.lighting_variation(np.random.default_rng(look_seed), image,
                                                   spec.lighting_strength)
        if blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
        if rng.random() < spec.motion_blur_prob:
            length = int(rng.integers(3, 10))
            angle = rng.uniform(0.0, math.pi)
            kernel = np.zeros((length, length), np.float32)
            c = (length - 1) / 2.0
            for s in np.linspace(-c, c, 4 * length):
                row, col = round(c + s * math.sin(angle)), round(c + s * math.cos(angle))
                kernel[int(row), int(col)] = 1.0
            image = cv2.filter2D(image, -1, kernel / kernel.sum())
        sigma = rng.uniform(0.0, spec.noise_sigma)
        if sigma > 0:
            noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)
            image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
        return image


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device (SceneSpecError when unknown or unavailable)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SceneSpecError(f'device {device!r} is not a torch device (e.g. cpu, cuda, '
                             'cuda:1)') from err
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SceneSpecError(f'device {device!r}: CUDA is not available here; use cpu')
    return dev


def _half_fov(lens: LensWarp) -> float:
    """Half the horizontal field of view of a camera (the wider side), radians."""
    cam = lens.camera
    rays = cam.pixel_rays(np.array([[0.0, cam.k[3]], [float(cam.width), cam.k[3]]]))
    return float(np.abs(np.arctan2(rays[:, 0], rays[:, 2])).max())


def _in_view(lens: LensWarp, mount: CameraMount, x: float, z: float, margin: float) -> bool:
    """Whether a body standing at level-frame (x, z) is in view.

    Its middle (0.9 m above the ground) must image inside the image grown by ``margin`` of
    its size on every side.
    """
    point = mount.cam_from_level() @ np.array([x, mount.height_m - 0.9, z])
    if point[2] <= 0.1 or not lens.imageable(point):
        return False
    u, v = lens.camera.project(point)
    w, h = lens.camera.width, lens.camera.height
    return bool(-margin * w <= u <= (1 + margin) * w and -margin * h <= v <= (1 + margin) * h)


def _keep_apart(walkers: list[_Walker]) -> None:
    """Push pairs closer than the minimum separation apart along their connecting line."""
    for i in range(len(walkers)):
        for j in range(i + 1, len(walkers)):
            a, b = walkers[i], walkers[j]
            dx, dz = b.x - a.x, b.z - a.z
            dist = math.hypot(dx, dz)
            if dist >= _MIN_SEPARATION_M:
                continue
            if dist < 1e-6:
                dx, dz, dist = 1.0, 0.0, 1.0
            push = (_MIN_SEPARATION_M - dist) / 2.0
            a.x -= dx / dist * push
            a.z -= dz / dist * push
            b.x += dx / dist * push
            b.z += dz / dist * push


def body_model_for_scenes(models_dir) -> BodyModel:
    """SMPL-A of a models directory when it has one (children: age offset), else SMPL."""
    from romp_ros.core.body.model_files import available_kinds
    kinds = available_kinds(models_dir)
    return BodyModel.from_models_dir(models_dir, 'smpla' if 'smpla' in kinds else 'smpl')
