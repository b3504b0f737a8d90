"""The people of one frame, ground truth or prediction, as one typed record, and converters.

Every source of people (a ``romp_ros/PersonMeshArray`` message read from a bag or received by a
node, an estimator :class:`~romp_ros.core.results.FrameResult`, a ``romp-ros infer`` .npz, a
dataset :class:`~romp_ros.data.dataset_format.FrameLabel`) becomes a :class:`FramePeople`, so
matching and scoring see one format. Frames and units follow ``PersonMesh.msg``: 3D in metres
in the camera's optical frame (x right, y down, z forward), 2D in pixels of the original image.
Unknown values are NaN (a joint the dataset did not label, a keypoint marked not visible).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from romp_ros.core.results import FrameResult
from romp_ros.data.dataset_format import FrameLabel
from romp_ros.evaluation.errors import EvaluationInputError


class PeopleFormatError(ValueError):
    """A message or record whose people cannot be read (inconsistent joint counts, ...)."""


@dataclass(frozen=True)
class FramePeople:
    """N people in one frame.

    Attributes:
        stamp_ns: the frame's stamp (image header stamp), nanoseconds.
        joint_names: the J names of the rows of ``joints_3d`` / ``keypoints_2d``.
        joints_3d: (N, J, 3) float64 metres, camera optical frame; NaN where unknown.
        keypoints_2d: (N, J, 2) float64 pixels (u right, v down); NaN where unknown.
        bbox: (N, 4) float64 pixels (u_min, v_min, u_max, v_max); NaN rows where unknown.
        ids: (N,) int64 identities (track ids); -1 where unknown.
        confidences: (N,) float64 detection scores (1 for ground truth).
        verts: (N, V, 3) float64 metres, camera optical frame, or None.
        translation: (N, 3) float64 metres, body-model frame -> camera frame, or None.
        frame_id: the camera frame the 3D values are in ('' when unknown).
    """

    stamp_ns: int
    joint_names: tuple[str, ...]
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    bbox: np.ndarray
    ids: np.ndarray
    confidences: np.ndarray
    verts: np.ndarray | None = None
    translation: np.ndarray | None = None
    frame_id: str = ''

    def __post_init__(self) -> None:
        n, j = np.asarray(self.ids).size, len(self.joint_names)
        fixed = {
            'joints_3d': _shaped(self.joints_3d, (n, j, 3), 'joints_3d'),
            'keypoints_2d': _shaped(self.keypoints_2d, (n, j, 2), 'keypoints_2d'),
            'bbox': _shaped(self.bbox, (n, 4), 'bbox'),
            'ids': np.asarray(self.ids, dtype=np.int64).reshape(n),
            'confidences': _shaped(self.confidences, (n,), 'confidences'),
            'joint_names': tuple(str(x) for x in self.joint_names),
            'stamp_ns': int(self.stamp_ns),
        }
        if self.verts is not None:
            verts = _float(self.verts)
            if verts.ndim != 3 or verts.shape[0] != n or verts.shape[2] != 3:
                raise PeopleFormatError(f'verts has shape {verts.shape}; expected ({n}, V, 3)')
            fixed['verts'] = verts
        if self.translation is not None:
            fixed['translation'] = _shaped(self.translation, (n, 3), 'translation')
        for key, value in fixed.items():
            object.__setattr__(self, key, value)

    @property
    def num_people(self) -> int:
        """N."""
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls, stamp_ns: int, joint_names: Sequence[str] = ()) -> 'FramePeople':
        """A frame with nobody in it."""
        j = len(joint_names)
        return cls(stamp_ns, tuple(joint_names), np.zeros((0, j, 3)), np.zeros((0, j, 2)),
                   np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))


# ------------------------------------------------------------------------------- converters


def stamp_to_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time (``sec``, ``nanosec``) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def people_from_message(msg: Any) -> FramePeople:
    """A ``romp_ros/PersonMeshArray`` (rosbags-deserialised or rclpy) as :class:`FramePeople`.

    ``vertices`` are kept when every person has the same non-zero count. A box of all zeros
    is taken as "not filled in" and replaced by the keypoints' extent.

    Raises:
        PeopleFormatError: a person whose joint or keypoint count disagrees with
            ``joint_names``.
    """
    names = tuple(msg.joint_names)
    j = len(names)
    joints, keypoints, boxes, ids, confs, trans, verts = [], [], [], [], [], [], []
    for i, person in enumerate(msg.people):
        xyz = np.array([(p.x, p.y, p.z) for p in person.joints_3d], dtype=np.float64)
        if xyz.shape[0] != j:
            raise PeopleFormatError(f'person {i} has {xyz.shape[0]} joints_3d but joint_names '
                                    f'lists {j}')
        uv = np.asarray(person.keypoints_2d, dtype=np.float64)
        if uv.size == 0:
            uv = np.full((j, 2), np.nan)
        elif uv.size != 2 * j:
            raise PeopleFormatError(f'person {i} has {uv.size} keypoints_2d values; expected '
                                    f'2 x {j} joints')
        joints.append(xyz.reshape(j, 3))
        keypoints.append(uv.reshape(j, 2))
        boxes.append(np.asarray(person.bbox, dtype=np.float64).reshape(4))
        ids.append(int(person.id))
        confs.append(float(person.confidence))
        trans.append((person.translation.x, person.translation.y, person.translation.z))
        verts.append(np.asarray(person.vertices, dtype=np.float64))
    n = len(ids)
    kp = np.stack(keypoints) if n else np.zeros((0, j, 2))
    box = fill_missing_boxes(np.stack(boxes) if n else np.zeros((0, 4)), kp)
    sizes = {v.size for v in verts}
    keep_verts = n > 0 and len(sizes) == 1 and sizes.pop() > 0 and verts[0].size % 3 == 0
    return FramePeople(
        stamp_ns=stamp_to_ns(msg.header.stamp), joint_names=names,
        joints_3d=np.stack(joints) if n else np.zeros((0, j, 3)), keypoints_2d=kp, bbox=box,
        ids=np.asarray(ids, dtype=np.int64), confidences=np.asarray(confs),
        verts=np.stack([v.reshape(-1, 3) for v in verts]) if keep_verts else None,
        translation=np.asarray(trans, dtype=np.float64).reshape(n, 3),
        frame_id=str(msg.header.frame_id))


def people_from_result(result: FrameResult, stamp_ns: int, ids: np.ndarray | None = None,
                       frame_id: str = '') -> FramePeople:
    """An estimator output as :class:`FramePeople` (ids -1 unless given, e.g. track ids).

    The box is the extent of the projected joints, as the node publishes it.
    """
    n = result.num_people
    pj2d = np.asarray(result.pj2d_org, dtype=np.float64)
    return FramePeople(
        stamp_ns=stamp_ns, joint_names=tuple(result.joint_names),
        joints_3d=result.joints_camera(), keypoints_2d=pj2d, bbox=keypoint_boxes(pj2d),
        ids=np.full(n, -1, np.int64) if ids is None else ids,
        confidences=np.asarray(result.center_confs, dtype=np.float64),
        verts=result.verts_camera(), translation=np.asarray(result.cam_trans),
        frame_id=frame_id)


@dataclass(frozen=True)
class InferFrame:
    """One frame of a ``romp-ros infer`` .npz.

    Attributes:
        source: the input it came from (path, 'video#k', 'bag:/topic#k').
        stamp_ns: its capture stamp, or None when the file has none (-1).
        people: its people.
    """

    source: str
    stamp_ns: int | None
    people: FramePeople


def people_from_infer_npz(path: str | os.PathLike) -> list[InferFrame]:
    """Every frame of a ``romp-ros infer`` output (layout: ``romp_ros/cli/infer_output.py``).

    Joints and vertices are stored in the body frame there; ``cam_trans`` moves them into
    the camera frame. With ``--track`` the track ids become the people's ids.

    Raises:
        EvaluationInputError: not a readable .npz, or one without the infer keys.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise EvaluationInputError(f'{path}: not a readable .npz ({err})') from err
    required = ('frame_index', 'joints', 'cam_trans', 'pj2d_org', 'center_confs', 'joint_names',
                'inputs', 'stamps_ns')
    missing = [k for k in required if k not in data.files]
    if missing:
        raise EvaluationInputError(f'{path}: not a `romp-ros infer` output (missing {missing})')
    names = tuple(str(x) for x in data['joint_names'])
    frame_index = data['frame_index'].astype(np.int64)
    joints = data['joints'].astype(np.float64) + data['cam_trans'].astype(np.float64)[:, None]
    verts = None
    if 'verts' in data.files and len(data['verts']) == len(frame_index):
        verts = data['verts'].astype(np.float64) + data['cam_trans'].astype(np.float64)[:, None]
    pj2d = data['pj2d_org'].astype(np.float64)
    ids = (data['track_ids'].astype(np.int64) if 'track_ids' in data.files
           else np.full(len(frame_index), -1, np.int64))
    frames = []
    for f, (source, stamp) in enumerate(zip(data['inputs'], data['stamps_ns'], strict=True)):
        rows = np.flatnonzero(frame_index == f)
        stamp_ns = None if int(stamp) < 0 else int(stamp)
        frames.append(InferFrame(str(source), stamp_ns, FramePeople(
            stamp_ns=stamp_ns if stamp_ns is not None else f, joint_names=names,
            joints_3d=joints[rows], keypoints_2d=pj2d[rows], bbox=keypoint_boxes(pj2d[rows]),
            ids=ids[rows], confidences=data['center_confs'][rows],
            verts=None if verts is None else verts[rows],
            translation=data['cam_trans'][rows])))
    return frames


def people_from_label(frame: FrameLabel, joint_names: Sequence[str],
                      stamp_ns: int | None = None) -> FramePeople:
    """A dataset frame's labels as :class:`FramePeople` (the ground truth of dataset mode).

    Keypoints with visibility 0 (not labelled, outside the image) become NaN; occluded ones
    (1) are kept. A missing box is the extent of the labelled keypoints. The stamp is
    ``stamp_ns``, else the frame's own, else its index.
    """
    j = len(joint_names)
    people = frame.people
    n = len(people)
    joints = np.full((n, j, 3), np.nan)
    keypoints = np.full((n, j, 2), np.nan)
    boxes = np.full((n, 4), np.nan)
    trans = np.full((n, 3), np.nan)
    for i, person in enumerate(people):
        if person.joints_3d is not None:
            joints[i] = person.joints_3d
        if person.keypoints_2d is not None:
            kp = np.asarray(person.keypoints_2d, dtype=np.float64)
            keypoints[i] = np.where(kp[:, 2:3] > 0, kp[:, :2], np.nan)
        if person.bbox is not None:
            boxes[i] = person.bbox
        if person.translation is not None:
            trans[i] = person.translation
    if stamp_ns is None:
        stamp_ns = frame.stamp_ns if frame.stamp_ns is not None else frame.index
    return FramePeople(
        stamp_ns=stamp_ns, joint_names=tuple(joint_names), joints_3d=joints,
        keypoints_2d=keypoints, bbox=fill_missing_boxes(boxes, keypoints),
        ids=np.array([p.track_id for p in people], dtype=np.int64),
        confidences=np.ones(n), translation=trans)


# ----------------------------------------------------------------------------------- boxes


def keypoint_boxes(keypoints: np.ndarray) -> np.ndarray:
    """(N, 4) extent [u_min, v_min, u_max, v_max] of each person's known keypoints (N, J, 2).

    NaN rows for people without any known keypoint.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape[0] == 0:
        return np.zeros((0, 4))
    known = np.isfinite(kp).all(-1)  # (N, J)
    lo = np.where(known[..., None], kp, np.inf).min(axis=1)  # (N, 2)
    hi = np.where(known[..., None], kp, -np.inf).max(axis=1)
    boxes = np.concatenate([lo, hi], axis=1)
    boxes[~known.any(axis=1)] = np.nan
    return boxes


def fill_missing_boxes(boxes: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Boxes with unknown rows (NaN or all zeros) replaced by the keypoints' extent."""
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    unknown = ~np.isfinite(boxes).all(-1) | (boxes == 0).all(-1)
    if unknown.any():
        boxes[unknown] = keypoint_boxes(np.asarray(keypoints)[unknown])
    return boxes


def _float(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _shaped(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = _float(value)
    if array.size == 0 and 0 in shape:
        return array.reshape(shape)
    if array.shape != shape:
        raise PeopleFormatError(f'{name} has shape {array.shape}; expected {shape}')
    return array
