"""Names, kinematic tree and drawing skeleton of the body-model joints.

The body model returns either the 24 SMPL joints or 71 joints: the 24 SMPL joints, 21 joints
picked from mesh vertices (face, feet, finger tips), 9 joints regressed for 2D datasets
(LSP / MPII / H36M conventions) and the 17 Human3.6M joints. The order is the one of the
reference implementation (simple-romp), so index ``k`` means the same joint in both.

Names are snake_case and unique so that they can be used as TF frame prefixes; left/right are
the person's own left and right (SMPL: the person's left is +x in the body frame).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

# The 24 SMPL joints in SMPL's own order (kinematic-tree order: a parent precedes its children).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    'pelvis', 'l_hip', 'r_hip', 'spine1', 'l_knee', 'r_knee', 'spine2', 'l_ankle', 'r_ankle',
    'spine3', 'l_foot', 'r_foot', 'neck', 'l_collar', 'r_collar', 'head', 'l_shoulder',
    'r_shoulder', 'l_elbow', 'r_elbow', 'l_wrist', 'r_wrist', 'l_hand', 'r_hand',
)

# Parent of each SMPL joint (-1 for the root), the kinematic tree of every SMPL-family model.
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# 21 joints that are single mesh vertices (SMPL vertex ids in VERTEX_PICK_IDS below).
VERTEX_PICK_NAMES: tuple[str, ...] = (
    'nose', 'r_eye', 'l_eye', 'r_ear', 'l_ear',
    'l_big_toe', 'l_small_toe', 'l_heel', 'r_big_toe', 'r_small_toe', 'r_heel',
    'l_thumb', 'l_index', 'l_middle', 'l_ring', 'l_pinky',
    'r_thumb', 'r_index', 'r_middle', 'r_ring', 'r_pinky',
)

# The keys of smplx.vertex_ids.vertex_ids['smplh'] for the picks above, same order.
VERTEX_PICK_SMPLX_KEYS: tuple[str, ...] = (
    'nose', 'reye', 'leye', 'rear', 'lear',
    'LBigToe', 'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel',
    'lthumb', 'lindex', 'lmiddle', 'lring', 'lpinky',
    'rthumb', 'rindex', 'rmiddle', 'rring', 'rpinky',
)

# 9 joints of J_regressor_extra.npy (regressed from vertices), in the file's row order. They
# follow the annotation conventions of 2D datasets (LSP, MPII) and H36M; the last three are
# named '<joint>_h36m' to keep them apart from the 17 'h36m_<joint>' ones below.
EXTRA_REGRESSOR_NAMES: tuple[str, ...] = (
    'lsp_r_hip', 'lsp_l_hip', 'lsp_neck', 'lsp_head_top', 'mpii_pelvis', 'mpii_thorax',
    'spine_h36m', 'jaw_h36m', 'head_h36m',
)

# The 17 H36M joints after the reference's reordering of J_regressor_h36m.npy (the LSP order
# of the first 14, then pelvis, spine and head).
H36M_JOINT_NAMES: tuple[str, ...] = (
    'h36m_r_ankle', 'h36m_r_knee', 'h36m_r_hip', 'h36m_l_hip', 'h36m_l_knee', 'h36m_l_ankle',
    'h36m_r_wrist', 'h36m_r_elbow', 'h36m_r_shoulder', 'h36m_l_shoulder', 'h36m_l_elbow',
    'h36m_l_wrist', 'h36m_neck', 'h36m_head_top', 'h36m_pelvis', 'h36m_spine', 'h36m_head',
)

# Rows of J_regressor_h36m.npy (H36M's native joint order) giving H36M_JOINT_NAMES.
H36M_TO_J17: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9)

ALL_JOINT_NAMES: tuple[str, ...] = (
    SMPL_JOINT_NAMES + VERTEX_PICK_NAMES + EXTRA_REGRESSOR_NAMES + H36M_JOINT_NAMES)

NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)  # 24
NUM_ALL_JOINTS = len(ALL_JOINT_NAMES)  # 71

# Bones of the 24-joint skeleton as (parent, child) index pairs, for drawing.
SMPL_SKELETON_EDGES: tuple[tuple[int, int], ...] = tuple(
    (SMPL_PARENTS[child], child) for child in range(1, NUM_SMPL_JOINTS))

# ROS4HRI (REP-155) body-part frame name -> SMPL joint name. The ROS node publishes the frame
# '<ros4hri name>_<body id>' at the position of the SMPL joint.
ROS4HRI_JOINTS: Mapping[str, str] = MappingProxyType({
    'waist': 'pelvis',
    'torso': 'spine3',
    'head': 'head',
    'l_shoulder': 'l_shoulder', 'l_elbow': 'l_elbow', 'l_wrist': 'l_wrist',
    'l_hip': 'l_hip', 'l_knee': 'l_knee', 'l_ankle': 'l_ankle',
    'r_shoulder': 'r_shoulder', 'r_elbow': 'r_elbow', 'r_wrist': 'r_wrist',
    'r_hip': 'r_hip', 'r_knee': 'r_knee', 'r_ankle': 'r_ankle',
})


def joint_names(num_joints: int) -> tuple[str, ...]:
    """The names of the body model's joints, in output order.

    Args:
        num_joints: 24 (SMPL joints only: the extra regressor files were not prepared) or 71.

    Raises:
        ValueError: any other joint count.
    """
    if num_joints == NUM_SMPL_JOINTS:
        return SMPL_JOINT_NAMES
    if num_joints == NUM_ALL_JOINTS:
        return ALL_JOINT_NAMES
    raise ValueError(
        f'a body model has {NUM_SMPL_JOINTS} or {NUM_ALL_JOINTS} joints, not {num_joints}')


def joint_index(name: str, num_joints: int = NUM_ALL_JOINTS) -> int:
    """Index of a joint by name in a model with ``num_joints`` joints (ValueError if absent)."""
    names = joint_names(num_joints)
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(
            f'no joint named {name!r} among the {num_joints} body-model joints') from None
