"""The keypoint sets of each source format and how they map into the 71 training joints.

Every dataset annotates its own keypoints, with its own conventions: COCO's hips sit lower and
wider than SMPL's hip joints, MPII's "upper neck" is SMPL's neck, H36M's joints are the mocap
markers' skeleton. The body model has a joint for each convention (the 9 joints of
``J_regressor_extra`` and the 17 of ``J_regressor_h36m`` exist for exactly this), so each
source keypoint is mapped **by name** to the training joint made for its convention. The
choices follow the reference implementation's dataset mapping (ROMP ``constants.py``): its
``L_Hip``/``R_Hip`` (the regressed LSP-style hips) for COCO / CrowdPose / MPII / LSP /
MPI-INF-3DHP / MuCo hips, ``Head_top`` and ``Neck_LSP`` for head tops and LSP necks, MPII's
pelvis and thorax joints, the SMPL neck for MPII's upper neck and MPI-INF-3DHP's neck. One
deliberate difference: Human3.6M keypoints go to the 17 ``h36m_*`` joints, whose regressor was
fitted to Human3.6M's own skeleton (the reference maps them to its SMPL/LSP-style joints).

Source keypoints without a matching convention (MPI-INF-3DHP's spine and clavicles, MuCo's
thorax, ...) are left unmapped: a wrong label is worse than none.

Left and right are always the person's own.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES, SMPL_JOINT_NAMES, VERTEX_PICK_NAMES

LOG = logging.getLogger(__name__)

TRAIN_JOINT_NAMES: tuple[str, ...] = ALL_JOINT_NAMES
NUM_TRAIN_JOINTS = len(TRAIN_JOINT_NAMES)  # 71
_TRAIN_INDEX: Mapping[str, int] = MappingProxyType(
    {name: i for i, name in enumerate(TRAIN_JOINT_NAMES)})


@dataclass(frozen=True)
class JointSet:
    """The keypoints one annotation format labels, and their training joints.

    Attributes:
        name: short identifier ('coco17', 'mpii16', ...), used in configs and errors.
        names: the format's keypoint names, in the file's order.
        targets: for each keypoint, the training joint name it labels, or None (unmapped).
    """

    name: str
    names: tuple[str, ...]
    targets: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.targets):
            raise ValueError(f'{self.name}: {len(self.names)} names but '
                             f'{len(self.targets)} targets')
        if len(set(self.names)) != len(self.names):
            raise ValueError(f'{self.name}: duplicate keypoint names')
        mapped = [t for t in self.targets if t is not None]
        unknown = [t for t in mapped if t not in _TRAIN_INDEX]
        if unknown:
            raise ValueError(f'{self.name}: unknown training joints {unknown}')
        if len(set(mapped)) != len(mapped):
            raise ValueError(f'{self.name}: two keypoints map to the same training joint')

    def mapping(self) -> 'JointMapping':
        """The index mapping of this set into the training joints."""
        return JointMapping(self.names, _indices(self.targets), self.name)


@dataclass(frozen=True)
class JointMapping:
    """Rows of a source's keypoint arrays -> rows of the 71 training joints.

    Attributes:
        source_names: the source's joint names (row order of its arrays).
        target_index: (J,) int64, the training-joint row of each source row, -1 if unmapped.
        joint_set: name of the known set this came from ('' for per-name mappings).
    """

    source_names: tuple[str, ...]
    target_index: np.ndarray
    joint_set: str = ''

    def __post_init__(self) -> None:
        index = np.asarray(self.target_index, dtype=np.int64)
        if index.shape != (len(self.source_names),):
            raise ValueError(f'target_index has shape {index.shape}; expected '
                             f'({len(self.source_names)},)')
        mapped = index[index >= 0]
        if (index >= NUM_TRAIN_JOINTS).any() or len(np.unique(mapped)) != len(mapped):
            raise ValueError('target_index must hold distinct training-joint rows or -1')
        index.setflags(write=False)
        object.__setattr__(self, 'target_index', index)

    @property
    def num_source_joints(self) -> int:
        """J, the number of rows the source's arrays have."""
        return len(self.source_names)

    @property
    def mapped_names(self) -> tuple[str, ...]:
        """The training joints this source labels."""
        return tuple(TRAIN_JOINT_NAMES[i] for i in self.target_index if i >= 0)

    def to_training(self, values: np.ndarray, fill: float) -> np.ndarray:
        """Scatter source rows into the training joints.

        Args:
            values: (..., J, C) source values.
            fill: value of the training joints the source does not label.

        Returns:
            (..., 71, C) float64.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.shape[-2] != self.num_source_joints:
            raise ValueError(f'{values.shape[-2]} rows for a source of '
                             f'{self.num_source_joints} joints')
        out = np.full(values.shape[:-2] + (NUM_TRAIN_JOINTS, values.shape[-1]), fill)
        keep = self.target_index >= 0
        out[..., self.target_index[keep], :] = values[..., keep, :]
        return out


def _indices(targets: Sequence[str | None]) -> np.ndarray:
    return np.array([-1 if t is None else _TRAIN_INDEX[t] for t in targets], dtype=np.int64)


def _side_pairs(pairs: Sequence[tuple[str, str | None]]) -> tuple[tuple[str, ...],
                                                                  tuple[str | None, ...]]:
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def _joint_set(name: str, pairs: Sequence[tuple[str, str | None]]) -> JointSet:
    names, targets = _side_pairs(pairs)
    return JointSet(name, names, targets)


# -- the formats ------------------------------------------------------------------------------

SMPL_24 = JointSet('smpl24', SMPL_JOINT_NAMES, SMPL_JOINT_NAMES)
# SMPL's joints plus the 21 vertex joints of smplx's SMPL layer, the 45 joints AGORA ships.
SMPL_45 = JointSet('smpl45', SMPL_JOINT_NAMES + VERTEX_PICK_NAMES,
                   SMPL_JOINT_NAMES + VERTEX_PICK_NAMES)
TRAINING_71 = JointSet('smpl71', TRAIN_JOINT_NAMES, TRAIN_JOINT_NAMES)

# COCO person keypoints (the category's 'keypoints' list of the official files).
COCO_17 = _joint_set('coco17', (
    ('nose', 'nose'), ('left_eye', 'l_eye'), ('right_eye', 'r_eye'),
    ('left_ear', 'l_ear'), ('right_ear', 'r_ear'),
    ('left_shoulder', 'l_shoulder'), ('right_shoulder', 'r_shoulder'),
    ('left_elbow', 'l_elbow'), ('right_elbow', 'r_elbow'),
    ('left_wrist', 'l_wrist'), ('right_wrist', 'r_wrist'),
    ('left_hip', 'lsp_l_hip'), ('right_hip', 'lsp_r_hip'),
    ('left_knee', 'l_knee'), ('right_knee', 'r_knee'),
    ('left_ankle', 'l_ankle'), ('right_ankle', 'r_ankle'),
))

# CrowdPose's 14 keypoints ('head' is the top of the head, 'neck' LSP's neck).
CROWDPOSE_14 = _joint_set('crowdpose14', (
    ('left_shoulder', 'l_shoulder'), ('right_shoulder', 'r_shoulder'),
    ('left_elbow', 'l_elbow'), ('right_elbow', 'r_elbow'),
    ('left_wrist', 'l_wrist'), ('right_wrist', 'r_wrist'),
    ('left_hip', 'lsp_l_hip'), ('right_hip', 'lsp_r_hip'),
    ('left_knee', 'l_knee'), ('right_knee', 'r_knee'),
    ('left_ankle', 'l_ankle'), ('right_ankle', 'r_ankle'),
    ('head', 'lsp_head_top'), ('neck', 'lsp_neck'),
))

# MPII's 16 joints in MPII's id order.
MPII_16 = _joint_set('mpii16', (
    ('right_ankle', 'r_ankle'), ('right_knee', 'r_knee'), ('right_hip', 'lsp_r_hip'),
    ('left_hip', 'lsp_l_hip'), ('left_knee', 'l_knee'), ('left_ankle', 'l_ankle'),
    ('pelvis', 'mpii_pelvis'), ('thorax', 'mpii_thorax'), ('upper_neck', 'neck'),
    ('head_top', 'lsp_head_top'),
    ('right_wrist', 'r_wrist'), ('right_elbow', 'r_elbow'), ('right_shoulder', 'r_shoulder'),
    ('left_shoulder', 'l_shoulder'), ('left_elbow', 'l_elbow'), ('left_wrist', 'l_wrist'),
))

# Leeds Sports Pose (and LSP-extended), 14 joints.
LSP_14 = _joint_set('lsp14', (
    ('right_ankle', 'r_ankle'), ('right_knee', 'r_knee'), ('right_hip', 'lsp_r_hip'),
    ('left_hip', 'lsp_l_hip'), ('left_knee', 'l_knee'), ('left_ankle', 'l_ankle'),
    ('right_wrist', 'r_wrist'), ('right_elbow', 'r_elbow'), ('right_shoulder', 'r_shoulder'),
    ('left_shoulder', 'l_shoulder'), ('left_elbow', 'l_elbow'), ('left_wrist', 'l_wrist'),
    ('neck', 'lsp_neck'), ('head_top', 'lsp_head_top'),
))

# Human3.6M's 17-joint skeleton in the common order of released 17-joint files (raw mocap
# rows 0-3, 6-8, 12-15, 17-19, 25-27). Its joints go to the h36m_* training joints, whose
# regressor (J_regressor_h36m) was fitted to these very joints; the h36m_* names follow the
# regressor's row order of the reference (SPIN's: raw rows 11, 6, 7, 8, 1, 2, 3, 12, 24, 14,
# 15, 17, ... i.e. row 1 is the LEFT hip), so the mapping is by meaning, not by row.
H36M_17 = _joint_set('h36m17', (
    ('pelvis', 'h36m_pelvis'), ('right_hip', 'h36m_r_hip'), ('right_knee', 'h36m_r_knee'),
    ('right_ankle', 'h36m_r_ankle'), ('left_hip', 'h36m_l_hip'), ('left_knee', 'h36m_l_knee'),
    ('left_ankle', 'h36m_l_ankle'), ('spine', 'h36m_spine'), ('thorax', 'h36m_neck'),
    ('neck_nose', 'h36m_head'), ('head', 'h36m_head_top'),
    ('left_shoulder', 'h36m_l_shoulder'), ('left_elbow', 'h36m_l_elbow'),
    ('left_wrist', 'h36m_l_wrist'), ('right_shoulder', 'h36m_r_shoulder'),
    ('right_elbow', 'h36m_r_elbow'), ('right_wrist', 'h36m_r_wrist'),
))

# The raw 32-joint mocap skeleton of Human3.6M (D3_Positions order; the reference's
# annots.npz). Left/right as in Human3.6M's metadata (rows 1-5 the right leg, 25-27 the
# right arm). Rows 0/11 (hips/pelvis) and 13/24 (thorax) are duplicated points: the rows the
# regressor was fitted to (11, 24) are mapped. Toes go to the vertex toes as the reference
# does; the hand markers and end sites stay unmapped.
_H36M_32_ROWS = {
    1: ('right_hip', 'h36m_r_hip'), 2: ('right_knee', 'h36m_r_knee'),
    3: ('right_ankle', 'h36m_r_ankle'), 4: ('right_big_toe', 'r_big_toe'),
    5: ('right_small_toe', 'r_small_toe'), 6: ('left_hip', 'h36m_l_hip'),
    7: ('left_knee', 'h36m_l_knee'), 8: ('left_ankle', 'h36m_l_ankle'),
    9: ('left_big_toe', 'l_big_toe'), 10: ('left_small_toe', 'l_small_toe'),
    11: ('pelvis', 'h36m_pelvis'), 12: ('spine', 'h36m_spine'), 14: ('neck_nose', 'h36m_head'),
    15: ('head', 'h36m_head_top'), 17: ('left_shoulder', 'h36m_l_shoulder'),
    18: ('left_elbow', 'h36m_l_elbow'), 19: ('left_wrist', 'h36m_l_wrist'),
    24: ('thorax', 'h36m_neck'), 25: ('right_shoulder', 'h36m_r_shoulder'),
    26: ('right_elbow', 'h36m_r_elbow'), 27: ('right_wrist', 'h36m_r_wrist'),
}
H36M_32 = _joint_set('h36m32', tuple(_H36M_32_ROWS.get(row, (f'unused_{row}', None))
                                     for row in range(32)))

# MPI-INF-3DHP's 28 joints (annot2 / annot3 order of the training set).
MPI_INF_3DHP_28 = _joint_set('mpi_inf_3dhp28', (
    ('spine3', None), ('spine4', None), ('spine2', None), ('spine', None),
    ('pelvis', 'mpii_pelvis'), ('neck', 'neck'), ('head', 'head_h36m'),
    ('head_top', 'lsp_head_top'), ('left_clavicle', None),
    ('left_shoulder', 'l_shoulder'), ('left_elbow', 'l_elbow'), ('left_wrist', 'l_wrist'),
    ('left_hand', 'l_hand'), ('right_clavicle', None),
    ('right_shoulder', 'r_shoulder'), ('right_elbow', 'r_elbow'), ('right_wrist', 'r_wrist'),
    ('right_hand', 'r_hand'),
    ('left_hip', 'lsp_l_hip'), ('left_knee', 'l_knee'), ('left_ankle', 'l_ankle'),
    ('left_foot', 'l_small_toe'), ('left_toe', 'l_big_toe'),
    ('right_hip', 'lsp_r_hip'), ('right_knee', 'r_knee'), ('right_ankle', 'r_ankle'),
    ('right_foot', 'r_small_toe'), ('right_toe', 'r_big_toe'),
))

# MPI-INF-3DHP's 17-joint test-set order (also MuPoTS-3D's). The reference leaves its head
# top (misaligned with the other datasets'), thorax and head unmapped; so does this.
MPI_INF_3DHP_17 = _joint_set('mpi_inf_3dhp17', (
    ('head_top', None), ('neck', 'lsp_neck'),
    ('right_shoulder', 'r_shoulder'), ('right_elbow', 'r_elbow'), ('right_wrist', 'r_wrist'),
    ('left_shoulder', 'l_shoulder'), ('left_elbow', 'l_elbow'), ('left_wrist', 'l_wrist'),
    ('right_hip', 'lsp_r_hip'), ('right_knee', 'r_knee'), ('right_ankle', 'r_ankle'),
    ('left_hip', 'lsp_l_hip'), ('left_knee', 'l_knee'), ('left_ankle', 'l_ankle'),
    ('pelvis', 'mpii_pelvis'), ('thorax', None), ('head', None),
))

# MuCo-3DHP's 21 joints (keypoints_img / keypoints_cam of MuCo-3DHP.json).
MUCO_21 = _joint_set('muco21', (
    ('head_top', 'lsp_head_top'), ('thorax', None),
    ('right_shoulder', 'r_shoulder'), ('right_elbow', 'r_elbow'), ('right_wrist', 'r_wrist'),
    ('left_shoulder', 'l_shoulder'), ('left_elbow', 'l_elbow'), ('left_wrist', 'l_wrist'),
    ('right_hip', 'lsp_r_hip'), ('right_knee', 'r_knee'), ('right_ankle', 'r_ankle'),
    ('left_hip', 'lsp_l_hip'), ('left_knee', 'l_knee'), ('left_ankle', 'l_ankle'),
    ('pelvis', 'mpii_pelvis'), ('spine', None), ('head', 'head_h36m'),
    ('right_hand', 'r_hand'), ('left_hand', 'l_hand'),
    ('right_toe', 'r_big_toe'), ('left_toe', 'l_big_toe'),
))

JOINT_SETS: Mapping[str, JointSet] = MappingProxyType({s.name: s for s in (
    TRAINING_71, SMPL_24, SMPL_45, COCO_17, CROWDPOSE_14, MPII_16, LSP_14, H36M_17, H36M_32,
    MPI_INF_3DHP_28, MPI_INF_3DHP_17, MUCO_21)})


def normalise_name(name: str) -> str:
    """Lower-case snake_case of a keypoint name ('Left Hip', 'l-hip' -> 'left_hip').

    A leading single-letter side ('l_', 'r_') is spelled out, as the format tables do.
    """
    text = name.strip().lower().replace(' ', '_').replace('-', '_')
    for short, full in (('l_', 'left_'), ('r_', 'right_')):
        if text.startswith(short):
            text = full + text[len(short):]
    return text


def joint_set_by_name(name: str) -> JointSet:
    """A known joint set by its identifier (ValueError listing the known ones)."""
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise ValueError(f'unknown joint set {name!r}; known: {sorted(JOINT_SETS)}') from None


def identify_joint_set(names: Sequence[str]) -> JointSet | None:
    """The known set whose names are ``names`` in this order (after normalisation), if any."""
    normal = tuple(normalise_name(n) for n in names)
    for joint_set in JOINT_SETS.values():
        if tuple(normalise_name(n) for n in joint_set.names) == normal:
            return joint_set
    return None


def mapping_for_names(names: Sequence[str], joint_set: str = '') -> JointMapping:
    """How a source with keypoint ``names`` maps into the training joints.

    In order: an explicit ``joint_set`` (its names must have the source's count); a known set
    with exactly these names; otherwise name by name, where only training-joint names map and
    every other name is left unmapped with a warning naming it (so a typo is never silent).

    Raises:
        ValueError: an unknown ``joint_set``, a count mismatch, or no name maps at all.
    """
    names = tuple(names)
    if joint_set:
        known = joint_set_by_name(joint_set)
        if len(known.names) != len(names):
            raise ValueError(f'joint set {joint_set!r} has {len(known.names)} keypoints but the '
                             f'source names {len(names)}')
        return JointMapping(names, known.mapping().target_index, known.name)
    known = identify_joint_set(names)
    if known is not None:
        return JointMapping(names, known.mapping().target_index, known.name)
    index = np.array([_TRAIN_INDEX.get(n, -1) for n in names], dtype=np.int64)
    unmapped = [n for n, i in zip(names, index, strict=True) if i < 0]
    if len(unmapped) == len(names):
        raise ValueError(
            f'none of the keypoint names {list(names)[:8]}... is a training joint or belongs '
            f'to a known joint set ({sorted(JOINT_SETS)}); rename them or name the set')
    if unmapped:
        LOG.warning('keypoints %s are not training joints and are ignored (known sets: %s)',
                    unmapped, sorted(JOINT_SETS))
    return JointMapping(names, index, '')


# -- left/right ------------------------------------------------------------------------------

def _mirror_name(name: str) -> str:
    # 'l_knee' <-> 'r_knee'; 'lsp_l_hip' <-> 'lsp_r_hip'; unsided names stay
    if name.startswith('l_'):
        return 'r_' + name[2:]
    if name.startswith('r_'):
        return 'l_' + name[2:]
    for side, other in (('_l_', '_r_'), ('_r_', '_l_')):
        if side in name:
            return name.replace(side, other, 1)
    return name


def flip_permutation(names: Sequence[str]) -> np.ndarray:
    """(J,) int64: the row each joint takes its value from after a left/right mirror.

    Raises:
        ValueError: a sided joint whose mirror twin is missing from ``names``.
    """
    index = {n: i for i, n in enumerate(names)}
    perm = np.arange(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        twin = _mirror_name(name)
        if twin != name:
            if twin not in index:
                raise ValueError(f'joint {name!r} has no mirror twin {twin!r}')
            perm[i] = index[twin]
    return perm


FLIP_PERMUTATION: np.ndarray = flip_permutation(TRAIN_JOINT_NAMES)
FLIP_PERMUTATION.setflags(write=False)
FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, int(j)) for i, j in enumerate(FLIP_PERMUTATION) if i < j)
SMPL_FLIP_PERMUTATION: np.ndarray = flip_permutation(SMPL_JOINT_NAMES)
SMPL_FLIP_PERMUTATION.setflags(write=False)


def flip_smpl_pose(pose: np.ndarray) -> np.ndarray:
    """Axis-angle SMPL poses of the mirrored people (mirror plane x = 0).

    Mirroring x maps a rotation R to M R M (M = diag(-1, 1, 1)), which for an axis-angle
    vector keeps x and negates y and z; the left and right joints trade places. This holds
    for the global orientation in a camera frame (an image flip mirrors the camera's x) and
    for every joint's rotation relative to its parent.

    Args:
        pose: (..., 72) axis-angle of the 24 SMPL joints.

    Returns:
        (..., 72) float64.
    """
    pose = np.asarray(pose, dtype=np.float64)
    joints = pose.reshape(pose.shape[:-1] + (24, 3))[..., SMPL_FLIP_PERMUTATION, :]
    return (joints * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)
