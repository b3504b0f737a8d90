"""3DPW: the sequence pickles of the 3D Poses in the Wild dataset.

Layout (as downloaded)::

    3DPW/
      sequenceFiles/{train,validation,test}/<sequence>.pkl
      imageFiles/<sequence>/image_00000.jpg, ...

Each pickle (Python 2, read without executing anything: the restricted unpickler allows only
numpy arrays) is a dict; per sequence of F frames and N people the fields used are:

==================  =================================  ==========================================
field               shape                              meaning
==================  =================================  ==========================================
``sequence``        str                                the image folder's name
``genders``         N x 'm' / 'f'                      the SMPL model of each person
``betas``           N x (10,) (or more)                SMPL shape (gender-specific model)
``poses``           N x (F, 72)                        SMPL pose, global orientation in the world
``trans``           N x (F, 3)                         SMPL translation, world
``jointPositions``  N x (F, 72)                        the 24 SMPL joints, world, metres
``poses2d``         N x (F, 3, 18)                     OpenPose-18 detections (u, v, confidence)
``cam_poses``       (F, 4, 4)                          world -> camera: ``x_cam = T @ x_world``
``cam_intrinsics``  (3, 3)                             K of the images
``campose_valid``   N x (F,)                           whether the person's pose is valid
==================  =================================  ==========================================

Frame ``j`` is the image ``image_{j:05d}.jpg``. A person is labelled in a frame when
``campose_valid`` is set and their 2D detection is not all zero (the reference's rule).

Labels per person, in the camera frame: the 24 SMPL joints (``jointPositions`` moved by
``cam_poses``); the 2D keypoints are those joints projected with ``cam_intrinsics``
(visibility 2 inside the image, 0 outside or behind); the box is the envelope of the
OpenPose detections (head and feet included); the pose with the global orientation turned
into the camera frame; betas as given. The SMPL translation needs the rest root joint of the
body model used for training: with ``models_dir`` it is
``root_cam - root_rest(betas)`` of the neutral model, so that the neutral body posed with
these parameters puts its root at 3DPW's root; without it the translation is not labelled.

Caveat: 3DPW's parameters are for the male/female SMPL models; posed with the neutral model
they give a slightly different body (about 1-2 cm at the joints). The 3D joints are exact.
"""

from __future__ import annotations

import logging
from pathlib import Path
import pickle
from typing import Any, Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.core.body.restricted_pickle import RestrictedUnpickler, UnsafePickleError
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
from romp_ros.data.rest_skeleton import RestSkeleton
from romp_ros.data.sources import FrameSource

LOG = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ('train', 'validation', 'test')
FPS = 30.0  # 3DPW's image rate


class AnnotationUnpickler(RestrictedUnpickler):
    """The restricted unpickler, plus what Python 3 writes for bytes at protocol 2.

    Python 3 pickles ``bytes`` at protocol <= 2 as ``_codecs.encode(text, 'latin1')``; that
    call is allowed for the latin-1 codec only (it turns text into the same bytes).
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('_codecs', 'encode'):
            return _latin1_encode
        return super().find_class(module, name)


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    if encoding.lower().replace('-', '') not in ('latin1', 'iso88591'):
        raise UnsafePickleError(f'refusing _codecs.encode with codec {encoding!r}')
    return text.encode('latin1')


def load_annotation_pickle(path: Path) -> Any:
    """Unpickle an annotation file without running code (DatasetError when unsafe/corrupt)."""
    try:
        with path.open('rb') as fh:
            return AnnotationUnpickler(fh, str(path)).load()
    except UnsafePickleError as err:
        raise DatasetError(f'{path}: refused: the pickle asks for a Python object an '
                           f'annotation file has no reason to contain ({err}); nothing was '
                           'executed') from err
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise DatasetError(f'{path}: unreadable or corrupt pickle ({err})') from err


def open_3dpw(root: str | Path, split: str = 'train', *, models_dir: str | Path | None = None,
              name: str = '') -> FrameSource:
    """Read 3DPW's sequence files of one split ('train', 'validation', 'test' or 'all').

    Raises:
        DatasetError: no sequenceFiles/<split>, an unreadable or malformed pickle, or no
            labelled frame.
    """
    root = Path(root).expanduser()
    splits = SPLITS if split == 'all' else (split,)
    if split != 'all' and split not in SPLITS:
        raise DatasetError(f'3DPW split {split!r}; choose one of {list(SPLITS)} or all')
    files = []
    for part in splits:
        folder = root / 'sequenceFiles' / part
        if not folder.is_dir():
            raise DatasetError(f'{folder}: missing; 3DPW needs sequenceFiles/{part}/*.pkl '
                               '(from https://virtualhumans.mpi-inf.mpg.de/3DPW/)')
        files.extend(sorted(folder.glob('*.pkl')))
    if not files:
        raise DatasetError(f'{root}: no sequence pickles under sequenceFiles/{split}')
    skeleton = RestSkeleton.from_models_dir(models_dir) if models_dir is not None else None
    skipped = SkipCounter()
    frames: list[FrameLabel] = []
    for path in files:
        data = load_annotation_pickle(path)
        for frame in _sequence_frames(data, path, root, skeleton, skipped):
            frames.append(FrameLabel(index=len(frames), image=frame.image,
                                     people=frame.people, camera=frame.camera,
                                     stamp_ns=frame.stamp_ns, sequence=frame.sequence))
    info = DatasetInfo(name=name or f'3dpw_{split}', joint_names=SMPL_JOINT_NAMES,
                       num_frames=len(frames), fps=FPS,
                       description=f'3DPW {split} from {root}')
    LOG.info('%s: %d frames from %d sequences (%d skipped: %s)', info.name, len(frames),
             len(files), skipped.total, dict(skipped.counts))
    return FrameSource(info, frames, root / 'imageFiles', skipped, where=str(root))


def _field(data: Mapping[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise DatasetError(f'{path}: not a 3DPW sequence file: no {key!r} '
                           f'(keys: {sorted(data)[:12]})')
    return data[key]


def _sequence_frames(data: Any, path: Path, root: Path, skeleton: RestSkeleton | None,
                     skipped: SkipCounter) -> list[FrameLabel]:
    if not isinstance(data, Mapping):
        raise DatasetError(f'{path}: a 3DPW sequence file holds a dict')
    try:
        sequence = str(_field(data, 'sequence', path))
        cam_poses = np.asarray(_field(data, 'cam_poses', path), dtype=np.float64)  # (F, 4, 4)
        k_mat = np.asarray(_field(data, 'cam_intrinsics', path), dtype=np.float64)  # (3, 3)
        poses = [np.asarray(p, dtype=np.float64) for p in _field(data, 'poses', path)]
        betas = [np.asarray(b, dtype=np.float64).reshape(-1) for b in _field(data, 'betas', path)]
        joints = [np.asarray(j, dtype=np.float64) for j in _field(data, 'jointPositions', path)]
        # (F, 3, 18) in the release; (F, 18, 3) as some converters write it
        poses2d = [_channels_first(np.asarray(p, dtype=np.float64))
                   for p in _field(data, 'poses2d', path)]
        valid = [np.asarray(v).astype(bool).reshape(-1) for v in _field(data, 'campose_valid',
                                                                        path)]
    except (TypeError, ValueError) as err:
        raise DatasetError(f'{path}: malformed 3DPW fields ({err})') from err
    num_frames, num_people = cam_poses.shape[0] if cam_poses.ndim == 3 else -1, len(poses)
    expected = {'cam_poses': (cam_poses.shape, (num_frames, 4, 4)),
                'cam_intrinsics': (k_mat.shape, (3, 3))}
    for i in range(num_people):
        expected[f'poses[{i}]'] = (poses[i].shape, (num_frames, 72))
        expected[f'jointPositions[{i}]'] = (joints[i].shape, (num_frames, 72))
        expected[f'poses2d[{i}]'] = (poses2d[i].shape, (num_frames, 3, 18))
        expected[f'campose_valid[{i}]'] = (valid[i].shape, (num_frames,))
    wrong = {k: v for k, v in expected.items() if v[0] != v[1]}
    if num_frames < 0 or wrong or not (len(betas) == len(joints) == len(poses2d) == len(valid)
                                       == num_people):
        raise DatasetError(f'{path}: 3DPW fields with unexpected shapes: '
                           f'{ {k: v[0] for k, v in wrong.items()} } (expected '
                           f'{ {k: v[1] for k, v in wrong.items()} })')
    k4 = (k_mat[0, 0], k_mat[1, 1], k_mat[0, 2], k_mat[1, 2])
    width, height = _image_size(root / 'imageFiles' / sequence, k4)
    camera = CameraLabel(width=width, height=height, k=k4)
    roots_rest = skeleton.root_joint(np.stack(betas)) if skeleton and num_people else None
    out = []
    for j in range(num_frames):
        rot, shift = cam_poses[j, :3, :3], cam_poses[j, :3, 3]
        people = []
        for i in range(num_people):
            labelled = valid[i][j] and np.abs(poses2d[i][j]).mean() > 0
            if not labelled:
                continue
            world = joints[i][j].reshape(24, 3)
            cam_joints = world @ rot.T + shift  # (24, 3)
            if not (np.isfinite(cam_joints).all() and np.isfinite(poses[i][j]).all()):
                skipped.add('non-finite 3DPW label (person dropped)', f'{path} frame {j}')
                continue
            people.append(_person(i, cam_joints, poses[i][j], betas[i], poses2d[i][j], rot,
                                  camera, None if roots_rest is None else roots_rest[i]))
        if not people:
            skipped.add('frame without a valid person (campose_valid / 2D)', f'{path} frame {j}')
            continue
        out.append(FrameLabel(index=j, image=f'{sequence}/image_{j:05d}.jpg',
                              people=tuple(people), camera=camera,
                              stamp_ns=int(round(j / FPS * 1e9)), sequence=sequence))
    return out


def _channels_first(detections: np.ndarray) -> np.ndarray:
    if detections.ndim == 3 and detections.shape[1:] == (18, 3):
        return detections.transpose(0, 2, 1)
    return detections


def _person(track_id: int, cam_joints: np.ndarray, pose_world: np.ndarray, betas: np.ndarray,
            detection: np.ndarray, rot: np.ndarray, camera: CameraLabel,
            root_rest: np.ndarray | None) -> PersonLabel:
    fx, fy, cx, cy = camera.k
    depth = cam_joints[:, 2]
    in_front = depth > 1e-6
    safe = np.where(in_front, depth, 1.0)
    u = fx * cam_joints[:, 0] / safe + cx
    v = fy * cam_joints[:, 1] / safe + cy
    inside = in_front & (u >= 0) & (u <= camera.width) & (v >= 0) & (v <= camera.height)
    keypoints = np.stack([u, v, np.where(inside, VIS_VISIBLE, VIS_ABSENT)], axis=1)
    keypoints[~in_front, :2] = 0.0
    pose = pose_world.copy()
    # the global orientation is in the world; the camera sees it rotated by cam_poses
    pose[:3] = Rotation.from_matrix(rot @ Rotation.from_rotvec(pose[:3]).as_matrix()).as_rotvec()
    seen = detection[2] > 0  # (18,) confidences
    bbox = None
    if seen.any():
        points = detection[:2, seen]
        bbox = np.array([points[0].min(), points[1].min(), points[0].max(), points[1].max()])
    translation = None if root_rest is None else cam_joints[0] - root_rest
    return PersonLabel(track_id=track_id, bbox=bbox, keypoints_2d=keypoints,
                       joints_3d=cam_joints, smpl_pose=pose, smpl_shape=betas[:10].copy(),
                       translation=translation)


def _image_size(folder: Path, k4: tuple[float, float, float, float]) -> tuple[int, int]:
    """Size of a sequence's images: read from its first image, else twice the principal point."""
    import cv2
    first = next(iter(sorted(folder.glob('image_*.jpg'))), None)
    if first is not None:
        pixels = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
        if pixels is not None:
            return int(pixels.shape[1]), int(pixels.shape[0])
    return max(1, int(round(2 * k4[2]))), max(1, int(round(2 * k4[3])))
