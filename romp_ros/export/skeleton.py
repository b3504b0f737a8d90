"""The SMPL skeleton for export: hierarchy, axes, forward kinematics, bone offsets.

Frames:

* **camera optical** (the results file, REP-103): x right, y down, z forward, metres;
* **y-up** (glTF, BVH, exported meshes): x right, y up, z backward, metres; a point (x, y, z)
  of the camera frame is (x, -y, -z) here, a 180 degree turn about x. The camera sits at the
  origin looking along -z, which is also glTF's camera convention.

SMPL's pose is 24 axis-angle rotations: the first is the body's orientation in the camera
frame, each other one turns a joint relative to its parent. A joint's position is its
parent's plus the parent's global rotation applied to the bone offset (the rest-pose vector
from parent to child, in SMPL's canonical frame, y up, the person facing +z).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

JOINT_NAMES = SMPL_JOINT_NAMES
PARENTS = np.asarray(SMPL_PARENTS, dtype=np.int64)
# camera optical -> y-up: (x, y, z) -> (x, -y, -z)
CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])
AXES = ('yup', 'camera')


def to_yup(points: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> y-up points (x, -y, -z)."""
    return points * np.array([1.0, -1.0, -1.0], dtype=points.dtype)


def children(joint: int) -> list[int]:
    """Children of ``joint`` in ascending order."""
    return [int(c) for c in np.flatnonzero(PARENTS == joint)]


def depth_first_order() -> list[int]:
    """Joints in the order a BVH hierarchy lists them (depth first from the pelvis)."""
    order: list[int] = []
    stack = [0]
    while stack:
        joint = stack.pop()
        order.append(joint)
        stack.extend(reversed(children(joint)))
    return order


def local_rotations(thetas: np.ndarray) -> np.ndarray:
    """(T, 72) axis-angle (radians) -> (T, 24, 3, 3) rotation matrices."""
    count = thetas.shape[0]
    rotvecs = np.asarray(thetas, dtype=np.float64).reshape(count * NUM_SMPL_JOINTS, 3)
    return Rotation.from_rotvec(rotvecs).as_matrix().reshape(count, NUM_SMPL_JOINTS, 3, 3)


def global_rotations(local: np.ndarray) -> np.ndarray:
    """(T, 24, 3, 3) local rotations -> (T, 24, 3, 3) rotations in the root's frame."""
    out = np.empty_like(local)
    out[:, 0] = local[:, 0]
    for joint in range(1, NUM_SMPL_JOINTS):  # parents precede children in SMPL's order
        out[:, joint] = out[:, PARENTS[joint]] @ local[:, joint]
    return out


def forward_kinematics(local: np.ndarray, offsets: np.ndarray,
                       root: np.ndarray) -> np.ndarray:
    """Joint positions from rotations, bone offsets and the root position.

    Args:
        local: (T, 24, 3, 3) local rotations (the first one global).
        offsets: (24, 3) or (T, 24, 3) bone offsets from the parent, parent's frame (row 0
            unused).
        root: (T, 3) pelvis positions.

    Returns:
        (T, 24, 3) positions in the frame of ``root`` and of the first rotation.
    """
    rotations = global_rotations(local)
    offsets = np.broadcast_to(offsets, (local.shape[0], NUM_SMPL_JOINTS, 3))
    out = np.empty((local.shape[0], NUM_SMPL_JOINTS, 3))
    out[:, 0] = root
    for joint in range(1, NUM_SMPL_JOINTS):
        parent = PARENTS[joint]
        out[:, joint] = out[:, parent] + np.einsum('tij,tj->ti', rotations[:, parent],
                                                   offsets[:, joint])
    return out


def recover_offsets(joints: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Bone offsets that explain posed joints: the inverse of :func:`forward_kinematics`.

    Args:
        joints: (T, 24, 3) posed joints (any frame in which ``local[:, 0]`` is expressed).
        local: (T, 24, 3, 3) the pose's local rotations.

    Returns:
        (T, 24, 3) offsets, row 0 zero.
    """
    rotations = global_rotations(local)
    out = np.zeros((joints.shape[0], NUM_SMPL_JOINTS, 3))
    for joint in range(1, NUM_SMPL_JOINTS):
        parent = PARENTS[joint]
        bone = joints[:, joint] - joints[:, parent]  # (T, 3)
        out[:, joint] = np.einsum('tji,tj->ti', rotations[:, parent], bone)  # R^T bone
    return out


def rest_offsets(rest_joints: np.ndarray) -> np.ndarray:
    """(24, 3) rest-pose joint positions -> (24, 3) bone offsets (row 0: the pelvis itself)."""
    offsets = rest_joints - rest_joints[PARENTS.clip(min=0)]
    offsets[0] = rest_joints[0]
    return offsets


def root_rotation_yup(local: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the body's orientation in the y-up frame (camera frame turned by 180 deg)."""
    return CAMERA_TO_YUP @ local[:, 0]


def continuous_quaternions(quats: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Flip quaternion signs along axis 0 so that neighbours have a positive dot product.

    Args:
        quats: (T, ..., 4) quaternions of consecutive keys.
        previous: (..., 4) the key before ``quats[0]`` (already continuous), or None.

    Returns:
        (T, ..., 4) the same rotations, without sign jumps (interpolation takes the short way).
    """
    if quats.shape[0] == 0:
        return quats
    # each key is compared with its raw predecessor, the first with the (flipped) previous
    # key; the flips then chain along the keys
    before = np.concatenate([quats[:1] if previous is None else previous[None], quats[:-1]])
    flips = np.sum(quats * before, axis=-1) < 0  # (T, ...)
    signs = np.cumprod(np.where(flips, -1.0, 1.0), axis=0)
    return quats * signs[..., None]
