"""Plausible SMPL poses for synthetic people: gait, joint limits, upright orientations.

A walking gait, random joint rotations within joint limits, and upright global orientations
on a ground plane seen by a mounted camera.

Joint rotations are built as intrinsic x-y-z Euler angles in each joint's local SMPL frame
(x: the body's left, y: up, z: forward, in the T-pose), where the anatomical motions are
single axes (hip and knee flexion about x, shoulder abduction about z, elbow flexion about y,
...), clipped to :data:`JOINT_LIMITS`, and converted to SMPL's axis-angle.

Sources of the limits: the normal adult active ranges of motion of the American Academy of
Orthopaedic Surgeons (*Joint Motion: Method of Measuring and Recording*, 1965, as tabulated in
Norkin & White, *Measurement of Joint Motion: A Guide to Goniometry*), rounded and mapped by
hand onto SMPL's local axes. Spine and neck totals are split over SMPL's three spine joints
and its neck / head pair; the small collar, hand and toe ranges are our own conservative
estimates (those joints have no clinical goniometry standard). Right-side limits mirror the
left (mirroring about the sagittal plane keeps x angles and negates y and z angles).

Frames: the **level frame** has its origin at the camera, x right, y down (gravity), z forward
and horizontal; the camera frame is the level frame pitched down by ``pitch`` and rolled by
``roll`` (see :func:`camera_from_level`). People stand on the plane y = camera height.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES

NUM_BODY_JOINTS = 23  # SMPL joints 1..23 (joint 0 is the global orientation)

# (lo, hi) radians of the x, y, z Euler angles of each LEFT-side or central joint.
_LEFT_LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    # hip: flexion (leg forward) is -x; internal/external rotation y; abduction +z
    'l_hip': ((-115, 25), (-40, 40), (-25, 45)),
    'spine1': ((-10, 30), (-15, 15), (-12, 12)),
    'l_knee': ((0, 140), (-8, 8), (-4, 4)),
    'spine2': ((-10, 25), (-15, 15), (-12, 12)),
    # ankle: plantarflexion (toes down) +x; inversion / eversion z
    'l_ankle': ((-20, 50), (-15, 15), (-20, 20)),
    'spine3': ((-10, 25), (-15, 15), (-12, 12)),
    'l_foot': ((-40, 20), (-5, 5), (-5, 5)),
    'neck': ((-30, 35), (-35, 35), (-25, 25)),
    'l_collar': ((-10, 10), (-17, 17), (-8, 25)),
    'head': ((-25, 25), (-35, 35), (-15, 15)),
    # shoulder: z lowers (-) or raises (+) the T-posed arm; x swings it back (+) / forward
    # (-) about the lateral axis; y moves it forward (-) in the horizontal plane
    'l_shoulder': ((-150, 50), (-75, 35), (-85, 80)),
    # elbow: flexion brings the forearm forward, -y; x is forearm twist
    'l_elbow': ((-80, 80), (-145, 0), (-5, 5)),
    # wrist: x twist, y radial / ulnar deviation, z flexion / extension
    'l_wrist': ((-30, 30), (-20, 30), (-70, 70)),
    'l_hand': ((-15, 15), (-15, 15), (-20, 20)),
}


def _joint_limits() -> np.ndarray:
    """(23, 3, 2) Euler angle limits in radians, SMPL body joints 1..23."""
    limits = np.zeros((NUM_BODY_JOINTS, 3, 2))
    for index, name in enumerate(SMPL_JOINT_NAMES[1:]):
        if name in _LEFT_LIMITS_DEG:
            limits[index] = np.radians(np.array(_LEFT_LIMITS_DEG[name], dtype=np.float64))
            continue
        left = np.radians(np.array(_LEFT_LIMITS_DEG['l_' + name[2:]], dtype=np.float64))
        mirrored = left.copy()
        mirrored[1:] = -left[1:, ::-1]  # y and z angles change sign: (lo, hi) -> (-hi, -lo)
        limits[index] = mirrored
    return limits


#: (23, 3, 2) radians: (lo, hi) of the x, y, z Euler angles of SMPL joints 1..23.
JOINT_LIMITS: np.ndarray = _joint_limits()
JOINT_LIMITS.flags.writeable = False

# Arms and legs hanging naturally (Euler x, y, z): the T-posed arms lowered by 72 degrees.
_ARM_DOWN_RAD = math.radians(72.0)


@dataclass(frozen=True)
class PoseNoise:
    """Random joint rotations of N people that drift slowly over time (sequences).

    The perturbation at time t is ``offset + amplitude * sin(2 pi freq t + phase)`` (Euler
    angles, radians, added to the gait and clipped to the joint limits).

    Attributes:
        offset: (N, 23, 3) constant part.
        amplitude: (N, 23, 3) slow oscillation amplitude.
        freq: (N, 1, 1) Hz.
        phase: (N, 23, 3) radians.
    """

    offset: np.ndarray
    amplitude: np.ndarray
    freq: np.ndarray
    phase: np.ndarray

    def at(self, t: float) -> np.ndarray:
        """(N, 23, 3) Euler perturbations at time ``t`` seconds."""
        return self.offset + self.amplitude * np.sin(2 * math.pi * self.freq * t + self.phase)


def sample_pose_noise(rng: np.random.Generator, count: int,
                      strength: np.ndarray | float) -> PoseNoise:
    """Random rotations for ``count`` people.

    Args:
        rng: the generator (draws a fixed number of values per person).
        count: N.
        strength: (N,) or scalar in [0, 1]: 0 = the pure gait, 1 = a standard deviation of
            a sixth of each joint's range (arms and legs often far from the gait).

    Returns:
        :class:`PoseNoise`.
    """
    strength = np.broadcast_to(np.asarray(strength, dtype=np.float64), (count,))
    span = JOINT_LIMITS[..., 1] - JOINT_LIMITS[..., 0]  # (23, 3)
    sigma = strength[:, None, None] * span[None] / 6.0  # (N, 23, 3)
    offset = rng.normal(0.0, 1.0, (count, NUM_BODY_JOINTS, 3)) * sigma
    amplitude = rng.uniform(0.0, 0.5, (count, NUM_BODY_JOINTS, 3)) * sigma
    freq = rng.uniform(0.1, 0.5, (count, 1, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (count, NUM_BODY_JOINTS, 3))
    return PoseNoise(offset, amplitude, freq, phase)


def gait_euler(phase: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Euler angles (N, 23, 3) of a walking gait (speed 0: standing with arms down).

    Args:
        phase: (N,) gait phase, radians (the left leg swings forward around phase 0).
        speed: (N,) walking speed, m/s (sets the stride amplitude).
    """
    phase = np.asarray(phase, dtype=np.float64)
    speed = np.asarray(speed, dtype=np.float64)
    amp = 0.45 * np.clip(speed / 1.4, 0.0, 1.3)  # hip swing, rad (26 degrees at 1.4 m/s)
    pose = np.zeros(phase.shape + (NUM_BODY_JOINTS, 3))

    def put(name: str, axis: int, value: np.ndarray | float) -> None:
        pose[..., SMPL_JOINT_NAMES.index(name) - 1, axis] = value

    for side, shift in (('l', 0.0), ('r', math.pi)):
        p = phase + shift
        put(f'{side}_hip', 0, -amp * np.sin(p))  # forward while sin > 0
        # knee bends most in mid-swing (leg moving forward: cos > 0), a little in stance
        put(f'{side}_knee', 0, 0.08 + 2.2 * amp * np.clip(np.cos(p), 0.0, None) ** 1.5)
        put(f'{side}_ankle', 0, 0.4 * amp * np.sin(p + 0.6))
        sign = 1.0 if side == 'l' else -1.0  # mirrored y / z angles
        # arms hang and swing against the legs
        put(f'{side}_shoulder', 2, -sign * _ARM_DOWN_RAD)
        put(f'{side}_shoulder', 0, 0.8 * amp * np.sin(p))
        put(f'{side}_elbow', 1, -sign * (0.25 + 0.4 * amp * (1.0 + np.sin(p + math.pi))))
    put('spine1', 1, 0.12 * amp * np.sin(phase))  # counter-rotation of the trunk
    put('spine3', 1, -0.12 * amp * np.sin(phase))
    put('spine2', 0, 0.05 * amp)  # slight forward lean when walking fast
    return pose


def clip_to_limits(euler: np.ndarray) -> np.ndarray:
    """(..., 23, 3) Euler angles clipped into :data:`JOINT_LIMITS`."""
    return np.clip(euler, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])


def euler_to_axis_angle(euler: np.ndarray) -> np.ndarray:
    """(..., 23, 3) intrinsic x-y-z Euler angles -> (..., 69) SMPL body pose, axis-angle."""
    lead = euler.shape[:-2]
    flat = euler.reshape(-1, 3)
    rotvec = Rotation.from_euler('XYZ', flat).as_rotvec()
    return rotvec.reshape(lead + (NUM_BODY_JOINTS * 3,))


def body_pose(phase: np.ndarray, speed: np.ndarray,
              noise: np.ndarray | None = None) -> np.ndarray:
    """SMPL body poses (N, 69) axis-angle: the gait plus ``noise`` (N, 23, 3), within limits."""
    euler = gait_euler(phase, speed)
    if noise is not None:
        euler = euler + noise
    return euler_to_axis_angle(clip_to_limits(euler))


# ------------------------------------------------------------------------ global orientation

def camera_from_level(pitch: float, roll: float = 0.0) -> np.ndarray:
    """(3, 3) rotation taking level-frame vectors into the camera frame.

    Args:
        pitch: radians, positive = the camera looks down.
        roll: radians about the optical axis, positive = clockwise in the image.
    """
    level_from_camera = Rotation.from_euler('XZ', [-pitch, roll]).as_matrix()
    return level_from_camera.T


def upright_rotation(heading: np.ndarray, lean: np.ndarray | float = 0.0) -> np.ndarray:
    """(N, 3, 3) rotations of upright people from the SMPL body frame to the level frame.

    SMPL's body frame is y up, z forward; the level frame is y down, so standing upright is
    a half turn about x. ``heading`` (N,) turns the person about the vertical axis (0: facing
    the camera; the facing direction is (-sin h, 0, -cos h) in the level frame) and ``lean``
    tilts the body forward by that many radians.
    """
    heading = np.asarray(heading, dtype=np.float64)
    lean = np.broadcast_to(np.asarray(lean, dtype=np.float64), heading.shape)
    yaw = Rotation.from_rotvec(heading[:, None] * np.array([0.0, 1.0, 0.0]))
    upright = Rotation.from_rotvec(np.array([math.pi, 0.0, 0.0]))
    tilt = Rotation.from_rotvec(lean[:, None] * np.array([1.0, 0.0, 0.0]))
    return (yaw * upright * tilt).as_matrix()


def heading_from_velocity(vx: np.ndarray, vz: np.ndarray) -> np.ndarray:
    """The heading (see :func:`upright_rotation`) of a person walking at level (vx, vz)."""
    return np.arctan2(-np.asarray(vx), -np.asarray(vz))


def global_orientation(heading: np.ndarray, lean: np.ndarray | float,
                       cam_from_level: np.ndarray) -> np.ndarray:
    """(N, 3) SMPL global orientations (axis-angle) of upright people, in the camera frame."""
    rot = cam_from_level[None] @ upright_rotation(heading, lean)  # (N, 3, 3)
    return Rotation.from_matrix(rot).as_rotvec()
