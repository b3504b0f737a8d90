"""The reference's own preprocessed annotation files: Human3.6M, MPI-INF-3DHP, MuCo, AGORA.

ROMP's authors distribute parsed annotations (ROMP ``docs/dataset.md``) as ``.npz`` files
that hold one pickled dict (``np.load(..., allow_pickle=True)['annots'][()]``). They are read
here WITHOUT unpickling arbitrary objects: the ``.npy`` member is parsed by hand and its
pickle goes through the restricted unpickler (numpy arrays, dicts, lists, strings, numbers
only), so a tampered file cannot run code. What each file holds, per image name, as the
reference's dataset classes read it:

* **Human3.6M** (``h36m/annots.npz``, ``h36m_{train,test}.txt``, ``images/``): ``kp2d``
  (32 x 2 pixels), ``kp3d_mono`` (32 x 3, camera frame), ``poses`` (a list of 72-D SMPL
  poses, MoSh fits), ``cam`` (the matching camera-frame global orientations), ``betas``.
  Image names are ``<subject>_<action>_<camera 0-3>_<n>.jpg``; the four cameras' intrinsics
  and distortion are Human3.6M's published calibration. The reference uses fit 1 of
  ``poses`` with ``cam[1]`` as its global orientation; so does this loader.
* **MPI-INF-3DHP** (``mpi_inf_3dhp/annots.npz``, ``images/``): ``kp2d`` (28 x 2),
  ``kp3d`` (28 x 3 metres, camera frame: annot3 / 1000), ``intrinsics`` (fx, fy, cx, cy),
  ``extrinsics``. Subject S8 is the reference's validation subject.
* **MuCo-3DHP** (``MuCo/annots_augmented.npz``, images under ``MuCo/`` or
  ``MuCo/augmented_set/``): a list ``[kp2d (P, 21, 2), kp3d (P, 21, 3) millimetres camera
  frame, [f, c]]`` with f = (fx, fy) and c = (cx, cy).
* **AGORA** (``AGORA/annots_<split>.npz``, images under ``AGORA/<split>/``): a list of
  people, each a dict with ``kp2d`` / ``kp3d`` (AGORA's ``gt_joints_2d`` / ``gt_joints_3d``:
  the 45 joints of smplx's SMPL layer, i.e. SMPL's 24 + the 21 vertex joints, camera frame
  metres), ``body_pose`` (69 or 63), ``betas`` ((1, 10), or (1, 11) for kids: the 11th is
  the SMPL-A age offset), ``camMats`` (K), ``ID``, ``isValid``. AGORA's global orientation is
  in Unreal's world frame; with ``models_dir`` the camera-frame orientation and the
  translation are fitted to the camera-frame joints (Kabsch on the 24 SMPL joints), without
  it neither is labelled (nor the pose).

Where the reference's files do not say (units of ``kp3d_mono``), the loader checks: a
skeleton more than 10 units tall is taken as millimetres and converted, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
import pickle
from typing import Any, Mapping, Sequence
import zipfile

import numpy as np

from romp_ros.core.body.restricted_pickle import UnsafePickleError
from romp_ros.data.dataset_format import (
    VIS_ABSENT,
    VIS_VISIBLE,
    CameraLabel,
    DatasetError,
    DatasetInfo,
    FrameLabel,
    PersonLabel,
    SkipCounter,
)
from romp_ros.data.joint_sets import H36M_32, MPI_INF_3DHP_28, MUCO_21, SMPL_45
from romp_ros.data.rest_skeleton import RestSkeleton, fit_rotation
from romp_ros.data.sources import FrameSource
from romp_ros.data.threedpw import AnnotationUnpickler

LOG = logging.getLogger(__name__)

# Human3.6M's four cameras (ids 54138969, 55011271, 58860488, 60457274): focal lengths,
# principal points, radial (k1, k2, k3) and tangential (p1, p2) distortion, image size.
H36M_CAMERAS: tuple[dict[str, Any], ...] = (
    {'f': (1145.0494384765625, 1143.7811279296875), 'c': (512.54150390625, 515.4514770507812),
     'k': (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
     'p': (-0.0009756988729350269, -0.00142447161488235), 'size': (1000, 1002)},
    {'f': (1149.6756591796875, 1147.5916748046875), 'c': (508.8486328125, 508.0649108886719),
     'k': (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
     'p': (-0.0016190266469493508, -0.0027408944442868233), 'size': (1000, 1000)},
    {'f': (1149.1407470703125, 1148.7989501953125), 'c': (519.8158569335938, 501.40264892578125),
     'k': (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
     'p': (0.0014843869721516967, -0.0007599993259645998), 'size': (1000, 1000)},
    {'f': (1145.5113525390625, 1144.77392578125), 'c': (514.9682006835938, 501.88201904296875),
     'k': (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
     'p': (-0.0005872055771760643, -0.0018133620033040643), 'size': (1000, 1002)},
)
_MM_THRESHOLD = 10.0  # a skeleton spanning more than this many units is in millimetres


# -- reading the reference's npz files -------------------------------------------------------

def read_object_npz(path: Path, key: str = 'annots') -> Any:
    """The object stored under ``key`` of an ``np.savez`` file, unpickled safely.

    Plain arrays are read with ``allow_pickle=False``; an object array's pickle goes through
    the restricted unpickler and a 0-d object array is unwrapped (the reference's
    ``[()]``).

    Raises:
        DatasetError: missing file or key, a corrupt file, or a pickle naming anything
            but numpy arrays and plain Python containers (nothing is executed).
    """
    if not path.is_file():
        raise DatasetError(f'{path}: missing')
    try:
        with zipfile.ZipFile(path) as archive:
            member = f'{key}.npy'
            if member not in archive.namelist():
                names = [n.removesuffix('.npy') for n in archive.namelist()]
                raise DatasetError(f'{path}: no {key!r} array (it has {names})')
            with archive.open(member) as fh:
                return _read_npy(fh, path)
    except zipfile.BadZipFile as err:
        raise DatasetError(f'{path}: not an npz archive ({err})') from err
    except UnsafePickleError as err:
        raise DatasetError(f'{path}: refused: its pickle asks for a Python object an '
                           f'annotation file has no reason to contain ({err}); nothing was '
                           'executed') from err
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise DatasetError(f'{path}: unreadable or corrupt ({err})') from err


def _read_npy(fh, path: Path) -> Any:
    major, _ = np.lib.format.read_magic(fh)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    if not dtype.hasobject:
        data = fh.read()
        array = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)))
        return array.reshape(shape, order='F' if fortran else 'C').copy()
    value = AnnotationUnpickler(fh, str(path)).load()
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    return array[()] if array.shape == () else array


def _annotations(path: Path) -> Mapping[str, Any]:
    annots = read_object_npz(path, 'annots')
    if not isinstance(annots, Mapping):
        raise DatasetError(f'{path}: "annots" should map image names to labels, got '
                           f'{type(annots).__name__}')
    return annots


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DatasetError(f'{what} is not numeric') from err
    if array.size != int(np.prod(shape)):
        raise DatasetError(f'wrong keypoint count: {what} has {array.size} numbers, '
                           f'expected {shape}')
    array = array.reshape(shape)
    if not np.isfinite(array).all():
        raise DatasetError(f'non-finite {what}: NaN or infinite values')
    return array


def _visibility(kp2d: np.ndarray, width: float | None, height: float | None) -> np.ndarray:
    """Keypoints (J, 3): visibility 2 inside the image (when its size is known), else 0."""
    inside = np.ones(len(kp2d), bool)
    if width is not None and height is not None:
        inside = (kp2d[:, 0] >= 0) & (kp2d[:, 0] <= width) & (kp2d[:, 1] >= 0) & (
            kp2d[:, 1] <= height)
    return np.concatenate([kp2d, np.where(inside, VIS_VISIBLE, VIS_ABSENT)[:, None]], axis=1)


def _envelope(keypoints: np.ndarray) -> np.ndarray | None:
    seen = keypoints[:, 2] > 0
    if not seen.any():
        return None
    points = keypoints[seen, :2]
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _metres(joints: np.ndarray, where: str, warned: list[bool]) -> np.ndarray:
    span = np.ptp(joints, axis=0).max()
    if span > _MM_THRESHOLD:
        if not warned[0]:
            LOG.warning('%s: 3D joints span %.0f units: read as millimetres', where, span)
            warned[0] = True
        return joints / 1000.0
    return joints


def _finish(name: str, joint_names: Sequence[str], frames: list[FrameLabel], root: Path,
            skipped: SkipCounter, description: str, where: Path) -> FrameSource:
    info = DatasetInfo(name=name, joint_names=tuple(joint_names), num_frames=len(frames),
                       description=description)
    LOG.info('%s: %d frames (%d skipped: %s)', name, len(frames), skipped.total,
             dict(skipped.counts))
    return FrameSource(info, frames, root, skipped, where=str(where))


def _collect(annots: Mapping[str, Any], names: Sequence[str], parse, skipped: SkipCounter,
             where: Path) -> list[FrameLabel]:
    """Frames from ``parse(name, label) -> (image, people, camera)``, bad rows counted."""
    frames: list[FrameLabel] = []
    for image_name in names:
        label = annots.get(image_name)
        if label is None:
            skipped.add('listed image without annotation', f'{where}: {image_name}')
            continue
        try:
            image, people, camera = parse(image_name, label)
        except DatasetError as err:
            skipped.add(str(err).split(':')[0], f'{where}: {image_name}: {err}')
            continue
        if not people:
            skipped.add('image without a usable person', f'{where}: {image_name}')
            continue
        frames.append(FrameLabel(index=len(frames), image=image, people=tuple(people),
                                 camera=camera, sequence=_sequence_of(image_name)))
    return frames


def _sequence_of(image_name: str) -> str:
    stem = Path(image_name).stem
    return stem.rsplit('_', 1)[0] if '_' in stem else ''


# -- Human3.6M -------------------------------------------------------------------------------

def h36m_camera(camera_index: int) -> CameraLabel:
    """Human3.6M's published calibration of camera 0-3 (OpenCV order k1 k2 p1 p2 k3)."""
    cam = H36M_CAMERAS[camera_index]
    return CameraLabel(width=cam['size'][0], height=cam['size'][1],
                       k=(cam['f'][0], cam['f'][1], cam['c'][0], cam['c'][1]),
                       distortion_model='plumb_bob',
                       d=(cam['k'][0], cam['k'][1], cam['p'][0], cam['p'][1], cam['k'][2]))


def open_h36m(root: str | Path, split: str = 'train', *, name: str = '') -> FrameSource:
    """Read the reference's Human3.6M annotations ('train' = S1, S5-S8; 'test' = S9, S11).

    The images listed in ``h36m_<split>.txt`` are used (every annotated image when the list
    is absent).
    """
    root = Path(root).expanduser()
    annots = _annotations(root / 'annots.npz')
    listing = root / f'h36m_{split}.txt'
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    else:
        LOG.warning('%s missing: using every annotated image', listing)
        names = sorted(annots)
    skipped = SkipCounter()
    warned = [False]

    def parse(image_name: str, label: Mapping[str, Any]):
        parts = Path(image_name).stem.split('_')
        try:
            camera_index = int(parts[2])
            camera = h36m_camera(camera_index)
        except (IndexError, ValueError):
            raise DatasetError(f'image name without a camera index 0-3: {image_name}') from None
        kp2d = _visibility(_array(label['kp2d'], (32, 2), 'kp2d'), camera.width, camera.height)
        kp3d = _metres(_array(label['kp3d_mono'], (32, 3), 'kp3d_mono'), str(root), warned)
        pose = shape = None
        if all(k in label for k in ('poses', 'cam', 'betas')):
            poses = np.asarray(label['poses'], dtype=np.float64).reshape(-1, 72)
            orients = np.asarray(label['cam'], dtype=np.float64).reshape(-1, 3)
            fit = 1 if len(poses) > 1 and len(orients) > 1 else 0  # the reference's choice
            pose = poses[fit].copy()
            pose[:3] = orients[fit]
            shape = np.asarray(label['betas'], dtype=np.float64).reshape(-1)[:10]
            if not (np.isfinite(pose).all() and np.isfinite(shape).all()):
                pose = shape = None
        person = PersonLabel(track_id=_subject_id(parts[0]), bbox=_envelope(kp2d),
                             keypoints_2d=kp2d, joints_3d=kp3d, smpl_pose=pose,
                             smpl_shape=shape)
        return image_name, [person], camera

    frames = _collect(annots, names, parse, skipped, root / 'annots.npz')
    return _finish(name or f'h36m_{split}', H36M_32.names, frames, root / 'images', skipped,
                   f'Human3.6M {split} (reference annots.npz) from {root}', root)


def _subject_id(subject: str) -> int:
    digits = ''.join(ch for ch in subject if ch.isdigit())
    return int(digits) if digits else -1


# -- MPI-INF-3DHP ----------------------------------------------------------------------------

MPI_INF_3DHP_SPLITS = {'train': ('S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7'),
                       'validation': ('S8',),
                       'all': ('S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S8')}


def open_mpi_inf_3dhp(root: str | Path, split: str = 'train', *,
                      name: str = '') -> FrameSource:
    """Read the reference's MPI-INF-3DHP annotations ('train': S1-S7, 'validation': S8)."""
    root = Path(root).expanduser()
    if split not in MPI_INF_3DHP_SPLITS:
        raise DatasetError(f'MPI-INF-3DHP split {split!r}; choose one of '
                           f'{sorted(MPI_INF_3DHP_SPLITS)}')
    annots = _annotations(root / 'annots.npz')
    subjects = MPI_INF_3DHP_SPLITS[split]
    names = sorted(n for n in annots if Path(n).name.split('_')[0] in subjects)
    skipped = SkipCounter()
    warned = [False]

    def parse(image_name: str, label: Mapping[str, Any]):
        fx, fy, cx, cy = _array(label['intrinsics'], (4,), 'intrinsics')
        # the 2048 x 2048 videos of MPI-INF-3DHP's training set
        camera = CameraLabel(width=2048, height=2048, k=(fx, fy, cx, cy))
        kp2d = _visibility(_array(label['kp2d'], (28, 2), 'kp2d'), 2048, 2048)
        kp3d = _metres(_array(label['kp3d'], (28, 3), 'kp3d'), str(root), warned)
        person = PersonLabel(track_id=_subject_id(Path(image_name).name.split('_')[0]),
                             bbox=_envelope(kp2d), keypoints_2d=kp2d, joints_3d=kp3d)
        return image_name, [person], camera

    frames = _collect(annots, names, parse, skipped, root / 'annots.npz')
    return _finish(name or f'mpi_inf_3dhp_{split}', MPI_INF_3DHP_28.names, frames,
                   root / 'images', skipped, f'MPI-INF-3DHP {split} (reference annots.npz) '
                   f'from {root}', root)


# -- MuCo-3DHP -------------------------------------------------------------------------------

def open_muco(root: str | Path, *, name: str = '') -> FrameSource:
    """Read the reference's MuCo-3DHP annotations (the augmented composites)."""
    root = Path(root).expanduser()
    annots = _annotations(root / 'annots_augmented.npz')
    image_root = root
    probe = next(iter(annots), None)
    if probe is not None and not (root / probe).is_file() and (
            root / 'augmented_set' / probe).is_file():
        image_root = root / 'augmented_set'
    skipped = SkipCounter()

    def parse(image_name: str, label: Sequence[Any]):
        if not isinstance(label, (list, tuple)) or len(label) < 3:
            raise DatasetError('malformed MuCo label: expected [kp2d, kp3d, [f, c]]')
        kp2ds = np.asarray(label[0], dtype=np.float64)
        kp3ds = np.asarray(label[1], dtype=np.float64)
        focal, centre = (_array(v, (2,), 'intrinsics') for v in label[2])
        camera = CameraLabel(width=max(1, int(round(2 * centre[0]))),
                             height=max(1, int(round(2 * centre[1]))),
                             k=(focal[0], focal[1], centre[0], centre[1]))
        if kp2ds.ndim != 3 or kp2ds.shape[0] != kp3ds.shape[0]:
            raise DatasetError(f'wrong keypoint count: kp2d {kp2ds.shape}, kp3d {kp3ds.shape}')
        people = []
        for kp2d, kp3d in zip(kp2ds, kp3ds, strict=True):
            keypoints = _visibility(_array(kp2d, (21, 2), 'kp2d'), None, None)
            joints = _array(kp3d, (21, 3), 'kp3d') / 1000.0  # MuCo's files are millimetres
            people.append(PersonLabel(bbox=_envelope(keypoints), keypoints_2d=keypoints,
                                      joints_3d=joints))
        return image_name, people, camera

    frames = _collect(annots, list(annots), parse, skipped, root / 'annots_augmented.npz')
    return _finish(name or 'muco', MUCO_21.names, frames, image_root, skipped,
                   f'MuCo-3DHP augmented (reference annots_augmented.npz) from {root}', root)


# -- AGORA -----------------------------------------------------------------------------------

def open_agora(root: str | Path, split: str = 'train', *, models_dir: str | Path | None = None,
               name: str = '') -> FrameSource:
    """Read the reference's AGORA annotations (``annots_<split>.npz``, images in ``<split>/``).

    People flagged ``isValid`` False are dropped (counted), as the reference does.
    """
    root = Path(root).expanduser()
    annots = _annotations(root / f'annots_{split}.npz')
    skeleton = RestSkeleton.from_models_dir(models_dir) if models_dir is not None else None
    skipped = SkipCounter()

    def parse(image_name: str, label: Sequence[Mapping[str, Any]]):
        if not isinstance(label, (list, tuple)):
            raise DatasetError('malformed AGORA label: expected a list of people')
        people, camera = [], None
        for person in label:
            if not person.get('isValid', True):
                skipped.add('AGORA person flagged not valid (dropped)', image_name)
                continue
            kp2d = np.asarray(person['kp2d'], dtype=np.float64)
            count = kp2d.size // 2
            if count not in (24, 45):
                raise DatasetError(f'wrong keypoint count: {count} AGORA joints; the SMPL '
                                   'annotations have 45 (SMPL-X files are not supported)')
            keypoints = _visibility(_array(kp2d, (count, 2), 'kp2d'), None, None)
            joints = _array(person['kp3d'], (count, 3), 'kp3d')
            if count == 24:  # pad to the 45-joint layout
                keypoints = np.concatenate([keypoints, np.zeros((21, 3))])
                joints = np.concatenate([joints, np.full((21, 3), np.nan)])
            betas = np.asarray(person['betas'], dtype=np.float64).reshape(-1)
            body_pose = np.asarray(person['body_pose'], dtype=np.float64).reshape(-1)
            if not (np.isfinite(betas).all() and np.isfinite(body_pose).all()) or \
                    betas.size < 10 or body_pose.size < 63:
                raise DatasetError('non-finite or short AGORA SMPL parameters')
            shape = betas[:11] if betas.size >= 11 else betas[:10]
            k_mat = np.asarray(person['camMats'], dtype=np.float64).reshape(3, 3)
            camera = CameraLabel(width=max(1, int(round(2 * k_mat[0, 2]))),
                                 height=max(1, int(round(2 * k_mat[1, 2]))),
                                 k=(k_mat[0, 0], k_mat[1, 1], k_mat[0, 2], k_mat[1, 2]))
            pose = translation = None
            if skeleton is not None:
                pose, translation = _agora_orientation(skeleton, shape, body_pose,
                                                       joints[:24])
            people.append(PersonLabel(track_id=int(person.get('ID', -1)),
                                      bbox=_envelope(keypoints), keypoints_2d=keypoints,
                                      joints_3d=joints, smpl_pose=pose, smpl_shape=shape,
                                      translation=translation))
        return f'{split}/{image_name}', people, camera

    frames = _collect(annots, list(annots), parse, skipped, root / f'annots_{split}.npz')
    return _finish(name or f'agora_{split}', SMPL_45.names, frames, root, skipped,
                   f'AGORA {split} (reference annots_{split}.npz) from {root}', root)


def _agora_orientation(skeleton: RestSkeleton, shape: np.ndarray, body_pose: np.ndarray,
                       cam_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame global orientation and translation fitted to AGORA's camera joints."""
    from scipy.spatial.transform import Rotation
    pose = np.zeros(72)
    pose[3:3 + min(69, body_pose.size)] = body_pose[:69]
    betas = shape[None, :10]
    posed = skeleton.posed_joints(betas, pose[None])[0]  # (24, 3), root orientation identity
    rot = fit_rotation(posed[None], cam_joints[None])[0]  # (3, 3)
    pose[:3] = Rotation.from_matrix(rot).as_rotvec()
    root = skeleton.root_joint(betas)[0]
    # camera joints = rot (posed - root) + root + translation, least squares over the joints
    translation = (cam_joints - (posed - root) @ rot.T).mean(axis=0) - root
    return pose, translation
