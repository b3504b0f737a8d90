"""Synthetic multi-person sequences with ground-truth identities and simulated estimator errors.

A sequence is a pinhole camera (default 1280x720, fx = fy = 900, 1.3 m above a flat ground,
looking horizontally) and 1-32 people walking on the ground 2-15 m in front of it. Each person
is a 24-joint SMPL-like skeleton (SMPL's kinematic tree, rest offsets of a ~1.7 m adult scaled
per identity) driven by a walking gait, with a global orientation facing the walking direction.

Per delivered frame there is ground truth (ids, roots, joints, boxes, visibility) and a set of
:class:`~romp_ros.core.tracking.detections.Detections` that imitates a one-stage monocular
estimator:

* the root is wrong mostly *along the viewing ray*: a per-identity range bias (body-scale
  ambiguity) plus per-frame range noise, both proportional to the range, and a small error
  perpendicular to the ray;
* box edges jitter, betas and joint rotations are noisy, confidences drop with occlusion;
* people are missed at random, not detected at all while their body is mostly hidden behind
  nearer bodies (occlusion gaps), and not detected once less than half of their box is in the
  image;
* a few false positives appear, mostly with low confidence;
* frames can be dropped (independently and in bursts) and stamps jitter.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``, in a fixed order,
so a (spec, seed) pair always gives the same sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.tracking.detections import Detections

#: SMPL's 24-joint kinematic tree (parent of each joint, -1 for the pelvis).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20,
                21)

# Offsets of each joint from its parent in the rest (T-) pose, metres, SMPL body frame
# (x to the body's left, y up, z forward), for a 1.7 m adult. Hand-made, not SMPL's values.
_REST_OFFSETS = np.array([
    [0.0, 0.0, 0.0],  # 0 pelvis
    [0.07, -0.09, 0.0],  # 1 left hip
    [-0.07, -0.09, 0.0],  # 2 right hip
    [0.0, 0.11, -0.02],  # 3 spine1
    [0.03, -0.39, 0.0],  # 4 left knee
    [-0.03, -0.39, 0.0],  # 5 right knee
    [0.0, 0.13, 0.01],  # 6 spine2
    [-0.01, -0.41, -0.04],  # 7 left ankle
    [0.01, -0.41, -0.04],  # 8 right ankle
    [0.0, 0.06, 0.02],  # 9 spine3
    [0.03, -0.06, 0.12],  # 10 left foot
    [-0.03, -0.06, 0.12],  # 11 right foot
    [0.0, 0.21, -0.03],  # 12 neck
    [0.08, 0.12, -0.01],  # 13 left collar
    [-0.08, 0.12, -0.01],  # 14 right collar
    [0.0, 0.09, 0.05],  # 15 head
    [0.11, 0.04, -0.01],  # 16 left shoulder
    [-0.11, 0.04, -0.01],  # 17 right shoulder
    [0.26, 0.0, -0.02],  # 18 left elbow
    [-0.26, 0.0, -0.02],  # 19 right elbow
    [0.25, 0.01, 0.0],  # 20 left wrist
    [-0.25, 0.01, 0.0],  # 21 right wrist
    [0.08, -0.01, -0.01],  # 22 left hand
    [-0.08, -0.01, -0.01],  # 23 right hand
])
_PELVIS_HEIGHT_M = 0.93  # above the soles, for the 1.7 m template
_HEAD_TOP_ABOVE_HEAD_M = 0.13

SCENARIOS = ('crossing', 'occlusion', 'enter_leave', 'crowd', 'dropped_frames', 'static',
             'dense_crossing', 'dense_pacing')
MAX_PEOPLE = 32


@dataclass(frozen=True)
class CameraSpec:
    """Pinhole camera; ``cx``/``cy`` default to the image centre."""

    width: int = 1280
    height: int = 720
    fx: float = 900.0
    fy: float = 900.0
    cx: float | None = None
    cy: float | None = None
    height_above_ground_m: float = 1.3

    def matrix(self) -> np.ndarray:
        """(3, 3) K."""
        cx = self.width / 2.0 if self.cx is None else self.cx
        cy = self.height / 2.0 if self.cy is None else self.cy
        return np.array([[self.fx, 0.0, cx], [0.0, self.fy, cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class NoiseSpec:
    """How the simulated estimator errs.

    Attributes:
        range_frac: per-frame std of the range (distance along the ray), fraction of range.
        range_bias_frac: std of a per-identity constant range error, fraction of range.
        perp_frac: per-frame std perpendicular to the ray (each of 2 axes), fraction of range.
        bbox_jitter_frac: std of each box edge, fraction of the box height.
        betas_sigma: std of each estimated beta around the identity's betas.
        pose_sigma_rad: std (per axis) of the rotation error of each joint, radians.
        miss_rate: probability that a visible person is not detected in a frame.
        fp_per_frame: expected false positives per frame (Poisson).
        fp_high_conf_share: share of false positives with confidence in [0.5, 0.7].
        min_visibility: people with less of their body visible are not detected (occluded).
    """

    range_frac: float = 0.05
    range_bias_frac: float = 0.03
    perp_frac: float = 0.006
    bbox_jitter_frac: float = 0.025
    betas_sigma: float = 0.15
    pose_sigma_rad: float = 0.05
    miss_rate: float = 0.05
    fp_per_frame: float = 0.1
    fp_high_conf_share: float = 0.1
    min_visibility: float = 0.4

    @classmethod
    def noiseless(cls) -> NoiseSpec:
        """Perfect detections (no noise, misses or false positives)."""
        return cls(range_frac=0.0, range_bias_frac=0.0, perp_frac=0.0, bbox_jitter_frac=0.0,
                   betas_sigma=0.0, pose_sigma_rad=0.0, miss_rate=0.0, fp_per_frame=0.0,
                   fp_high_conf_share=0.0)


@dataclass(frozen=True)
class SequenceSpec:
    """What to generate.

    Attributes:
        scenario: one of :data:`SCENARIOS`, the motion pattern.
        num_people: identities, 1 to :data:`MAX_PEOPLE`.
        duration_s: length before frame drops.
        fps: nominal frame rate.
        camera: intrinsics and mounting height.
        noise: estimator errors.
        depth_range: (near, far) m, range of the people's depth.
        speed_range: (min, max) m/s walking speeds ('static' uses it too: (0, 0) = standing).
        drop_rate: probability of dropping each frame independently.
        drop_bursts_per_s: rate of bursts of 3-12 consecutive dropped frames.
        stamp_jitter_s: std of the stamp noise (stamps stay increasing).
        walk_direction_deg: 'static' only: walking direction on the ground, degrees from the
            camera's x axis towards its z axis (0 = to the right, -90 = towards the camera);
            None = random, mostly sideways.
    """

    scenario: str
    num_people: int = 4
    duration_s: float = 12.0
    fps: float = 30.0
    camera: CameraSpec = field(default=CameraSpec())
    noise: NoiseSpec = field(default=NoiseSpec())
    depth_range: tuple[float, float] = (2.0, 15.0)
    speed_range: tuple[float, float] = (0.5, 2.0)
    drop_rate: float = 0.0
    drop_bursts_per_s: float = 0.0
    stamp_jitter_s: float = 0.0
    walk_direction_deg: float | None = None

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f'unknown scenario {self.scenario!r}; expected one of {SCENARIOS}')
        if not 1 <= self.num_people <= MAX_PEOPLE:
            raise ValueError(f'num_people must be in 1..{MAX_PEOPLE}, got {self.num_people}')
        if not (self.duration_s > 0 and self.fps > 0):
            raise ValueError('duration_s and fps must be positive')
        if not 0 < self.depth_range[0] < self.depth_range[1]:
            raise ValueError(f'bad depth_range {self.depth_range}')
        if not 0 <= self.speed_range[0] <= self.speed_range[1]:
            raise ValueError(f'bad speed_range {self.speed_range}')
        if not 0 <= self.drop_rate < 1:
            raise ValueError('drop_rate must be in [0, 1)')


def preset(name: str, **overrides) -> SequenceSpec:
    """The named scenario with its default settings; keyword arguments override fields."""
    base = {
        'crossing': SequenceSpec('crossing', num_people=6, duration_s=12.0,
                                 depth_range=(3.0, 10.0), speed_range=(0.8, 1.6)),
        'occlusion': SequenceSpec('occlusion', num_people=5, duration_s=14.0,
                                  depth_range=(3.0, 10.0), speed_range=(0.8, 1.6)),
        'enter_leave': SequenceSpec('enter_leave', num_people=6, duration_s=14.0,
                                    depth_range=(3.0, 12.0), speed_range=(0.8, 1.8)),
        'crowd': SequenceSpec('crowd', num_people=10, duration_s=12.0,
                              depth_range=(3.0, 12.0), speed_range=(0.5, 1.5)),
        'dropped_frames': SequenceSpec('dropped_frames', num_people=5, duration_s=12.0,
                                       depth_range=(3.0, 12.0), speed_range=(0.5, 2.0),
                                       drop_rate=0.2, drop_bursts_per_s=0.25,
                                       stamp_jitter_s=0.003),
        'static': SequenceSpec('static', num_people=2, duration_s=8.0, depth_range=(3.0, 6.0),
                               speed_range=(0.0, 0.0)),
        # The hard cases: a busy crossing seen by a slow camera that drops frames; walkers
        # crossing the view (about half of them in view at once), or all 16 in view, pacing.
        'dense_crossing': SequenceSpec('dense_crossing', num_people=16, duration_s=16.0,
                                       fps=15.0, depth_range=(3.0, 12.0),
                                       speed_range=(0.8, 1.7), drop_rate=0.05,
                                       noise=NoiseSpec(fp_per_frame=0.3)),
        'dense_pacing': SequenceSpec('dense_pacing', num_people=16, duration_s=16.0,
                                     fps=15.0, depth_range=(3.0, 12.0),
                                     speed_range=(0.8, 1.7), drop_rate=0.05,
                                     noise=NoiseSpec(fp_per_frame=0.3)),
    }
    if name not in base:
        raise ValueError(f'unknown preset {name!r}; expected one of {SCENARIOS}')
    return replace(base[name], **overrides)


@dataclass(frozen=True)
class SyntheticFrame:
    """One delivered frame (G ground-truth people, N detections).

    Attributes:
        stamp_s: stamp, seconds.
        index: index of the frame before drops (stamp ~ index / fps).
        gt_ids: (G,) int64 identities (0-based) of the people counted as present: in front of
            the camera with at least half of their box inside the image (occluded or not).
        gt_root: (G, 3) m, true pelvis positions, camera optical frame.
        gt_joints: (G, 24, 3) m, true joints, camera optical frame.
        gt_bbox: (G, 4) px, true boxes [u_min, v_min, u_max, v_max].
        gt_visibility: (G,) share of each body (capsule silhouette) not hidden by nearer
            people.
        gt_thetas: (G, 72) true pose, axis-angle.
        gt_betas: (G, 10) true shape.
        detections: the simulated estimator output (rows sorted by descending confidence).
        det_gt_ids: (N,) int64 identity behind each detection, -1 for a false positive.
    """

    stamp_s: float
    index: int
    gt_ids: np.ndarray
    gt_root: np.ndarray
    gt_joints: np.ndarray
    gt_bbox: np.ndarray
    gt_visibility: np.ndarray
    gt_thetas: np.ndarray
    gt_betas: np.ndarray
    detections: Detections
    det_gt_ids: np.ndarray


@dataclass(frozen=True)
class SyntheticSequence:
    """A generated sequence.

    Attributes:
        spec: what was asked for.
        seed: the seed it was generated with.
        intrinsics: (3, 3) K.
        image_size: (height, width) px.
        frames: the delivered frames, increasing stamps.
        height_scale: (P,) body-size factor of each identity (1 = the 1.7 m template).
    """

    spec: SequenceSpec
    seed: int
    intrinsics: np.ndarray
    image_size: tuple[int, int]
    frames: tuple[SyntheticFrame, ...]
    height_scale: np.ndarray

    @property
    def num_identities(self) -> int:
        """P, the number of identities."""
        return int(self.height_scale.shape[0])


# -- kinematics --------------------------------------------------------------------------------

def forward_kinematics(thetas: np.ndarray, height_scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Joints of the template skeleton posed by ``thetas``.

    Args:
        thetas: (..., 72) axis-angle, SMPL joint order; the first 3 are the global orientation.
        height_scale: (...) or scalar body-size factor.

    Returns:
        (..., 24, 3) joint positions relative to the pelvis, metres, in the frame the global
        orientation maps into (the camera optical frame for ROMP outputs).
    """
    thetas = np.asarray(thetas, dtype=np.float64)
    lead = thetas.shape[:-1]
    rot = Rotation.from_rotvec(thetas.reshape(-1, 3)).as_matrix().reshape(-1, 24, 3, 3)
    scale = np.broadcast_to(np.asarray(height_scale, dtype=np.float64), lead).reshape(-1)
    offsets = _REST_OFFSETS[None] * scale[:, None, None]
    world_rot = np.empty_like(rot)
    joints = np.zeros((rot.shape[0], 24, 3))
    world_rot[:, 0] = rot[:, 0]
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        world_rot[:, j] = world_rot[:, p] @ rot[:, j]
        joints[:, j] = joints[:, p] + np.einsum('kab,kb->ka', world_rot[:, p], offsets[:, j])
    return joints.reshape(lead + (24, 3))


def project_points(intrinsics: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels (points must be in front of the camera)."""
    k = np.asarray(intrinsics, dtype=np.float64)
    z = points[..., 2:3]
    return np.concatenate([k[0, 0] * points[..., :1] / z + k[0, 2],
                           k[1, 1] * points[..., 1:2] / z + k[1, 2]], axis=-1)


def _global_orient(heading: np.ndarray, lean: np.ndarray) -> np.ndarray:
    """Rotation vectors of upright people facing ``heading`` (rad, 0 = facing the camera).

    SMPL's body frame is y up / z forward and the optical frame y down / z forward, so an
    upright person facing the camera is a half turn about x; walking direction is a turn about
    the camera's vertical axis on top, and ``lean`` a small forward tilt. Every such rotation is
    (close to) 180 degrees, where raw axis-angle is discontinuous.
    """
    upright = Rotation.from_rotvec(np.array([math.pi, 0.0, 0.0]))
    yaw = Rotation.from_rotvec(heading[:, None] * np.array([0.0, 1.0, 0.0]))
    tilt = Rotation.from_rotvec(lean[:, None] * np.array([1.0, 0.0, 0.0]))
    return (yaw * upright * tilt).as_rotvec()


def _body_pose(phase: np.ndarray, amplitude: np.ndarray, sway: np.ndarray) -> np.ndarray:
    """(K, 23, 3) local joint rotations of a walking gait (amplitude 0 = standing)."""
    k = phase.shape[0]
    pose = np.zeros((k, 23, 3))

    def set_x(joint: int, angle: np.ndarray) -> None:
        pose[:, joint - 1, 0] = angle

    swing = amplitude * np.sin(phase)
    set_x(1, -swing)
    set_x(2, swing)
    set_x(4, 0.6 * amplitude * (1.0 - np.cos(phase)) + 0.05)
    set_x(5, 0.6 * amplitude * (1.0 + np.cos(phase)) + 0.05)
    set_x(3, 0.03 * np.sin(2 * phase) + sway)
    set_x(12, -sway)
    # Arms hang down (a roll about z from the T-pose) and swing against the legs.
    pose[:, 15, 2] = -1.2
    pose[:, 16, 2] = 1.2
    pose[:, 15, 0] = 0.8 * swing
    pose[:, 16, 0] = -0.8 * swing
    pose[:, 17, 1] = -0.25
    pose[:, 18, 1] = 0.25
    return pose


# -- scenario trajectories -----------------------------------------------------------------------

@dataclass
class _Plan:
    """Ground-plane trajectories of all identities over all frames (before drops)."""

    x: np.ndarray  # (F, P) lateral position, m
    z: np.ndarray  # (F, P) depth, m
    heading: np.ndarray  # (F, P) facing direction, rad (0 = facing the camera)
    speed: np.ndarray  # (F, P) m/s


def _half_fov_tan(camera: CameraSpec) -> float:
    return camera.width / 2.0 / camera.fx


def _integrate(vx: np.ndarray, vz: np.ndarray, x0: np.ndarray, z0: np.ndarray,
               dt: float) -> tuple[np.ndarray, np.ndarray]:
    x = x0[None] + np.concatenate([np.zeros((1, x0.size)), np.cumsum(vx[:-1] * dt, axis=0)])
    z = z0[None] + np.concatenate([np.zeros((1, z0.size)), np.cumsum(vz[:-1] * dt, axis=0)])
    return x, z


def _heading_from_velocity(vx: np.ndarray, vz: np.ndarray,
                           fallback: np.ndarray) -> np.ndarray:
    moving = np.hypot(vx, vz) > 1e-3
    # Facing direction d = (vx, vz) in the camera frame; see _global_orient for the sign.
    return np.where(moving, np.arctan2(-vx, -vz), fallback)


def _plan_random_walk(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                      p: int) -> _Plan:
    """People wander inside the field of view, turning smoothly, bouncing off its borders."""
    near, far = spec.depth_range
    near = max(near, 2.5)
    tan = _half_fov_tan(spec.camera)
    dt = 1.0 / spec.fps
    z = rng.uniform(near, far, p)
    x = rng.uniform(-0.7, 0.7, p) * z * tan
    speed = rng.uniform(*spec.speed_range, p)
    heading = rng.uniform(-math.pi, math.pi, p)
    turn = np.zeros(p)
    xs, zs, hs = np.empty((t.size, p)), np.empty((t.size, p)), np.empty((t.size, p))
    for f in range(t.size):
        xs[f], zs[f], hs[f] = x, z, heading
        # Ornstein-Uhlenbeck turn rate: smooth, bounded curvature.
        turn += -turn * dt / 1.5 + rng.normal(0.0, 0.6, p) * math.sqrt(dt)
        heading = heading + turn * dt
        vx, vz = speed * np.sin(heading), speed * np.cos(heading)
        x, z = x + vx * dt, z + vz * dt
        bounce_z = (z < near) | (z > far)
        heading = np.where(bounce_z, math.pi - heading, heading)
        bounce_x = np.abs(x) > 0.8 * z * tan
        heading = np.where(bounce_x & (np.sign(x) == np.sign(np.sin(heading))), -heading,
                           heading)
        z = np.clip(z, near, far)
    speeds = np.broadcast_to(speed, (t.size, p)).copy()
    walking_dir = hs
    # ``heading`` here is the walking direction angle (x = sin, z = cos); convert to facing.
    facing = _heading_from_velocity(np.sin(walking_dir), np.cos(walking_dir), np.zeros_like(hs))
    return _Plan(xs, zs, facing, speeds)


def _plan_crossing(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                   p: int) -> _Plan:
    """Pairs walking in opposite directions whose paths cross near the image centre.

    Partners are at depths 0.3-2.5 m apart, so in the image one passes in front of the other.
    """
    near, far = spec.depth_range
    x0, z0, vx, vz = (np.empty(p) for _ in range(4))
    for i in range(p):
        pair, second = divmod(i, 2)
        if second == 0:
            z_i = rng.uniform(near + 0.5, far - 2.5)
            meet_t = rng.uniform(0.3, 0.7) * spec.duration_s
            meet_x = rng.uniform(-0.8, 0.8)
            pair_state = (z_i, meet_t, meet_x)
        else:
            z_i = pair_state[0] + rng.uniform(0.3, 2.5) * rng.choice([-1.0, 1.0])
            z_i = float(np.clip(z_i, near, far))
        direction = 1.0 if second == 0 else -1.0
        if pair % 2:
            direction = -direction
        s = rng.uniform(*spec.speed_range)
        vx[i] = direction * s
        vz[i] = rng.normal(0.0, 0.08)
        z0[i] = z_i - vz[i] * pair_state[1]
        x0[i] = pair_state[2] - vx[i] * pair_state[1]
    vxs = np.broadcast_to(vx, (t.size, p))
    vzs = np.broadcast_to(vz, (t.size, p))
    xs, zs = _integrate(vxs, vzs, x0, z0, 1.0 / spec.fps)
    heading = _heading_from_velocity(vxs, vzs, np.zeros((t.size, p)))
    return _Plan(xs, np.clip(zs, near, far), heading, np.hypot(vxs, vzs))


def _plan_occlusion(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                    p: int) -> _Plan:
    """Near people standing still, far people pacing back and forth behind them."""
    near, far = spec.depth_range
    tan = _half_fov_tan(spec.camera)
    dt = 1.0 / spec.fps
    n_near = 1 if p <= 3 else 2
    xs, zs = np.empty((t.size, p)), np.empty((t.size, p))
    heading = np.zeros((t.size, p))
    speed = np.zeros((t.size, p))
    near_x = []
    for i in range(n_near):
        z_i = rng.uniform(near, near + 1.5)
        x_i = (-1.6 + 3.2 * (i + 0.5) / n_near) + rng.normal(0.0, 0.1)
        near_x.append((x_i, z_i))
        xs[:, i] = x_i + 0.02 * np.sin(0.7 * t + i)
        zs[:, i] = z_i
        heading[:, i] = rng.normal(0.0, 0.3)
    for i in range(n_near, p):
        z_i = rng.uniform(near + 3.0, far)
        limit = 0.75 * z_i * tan
        s = rng.uniform(*spec.speed_range)
        x = rng.uniform(-limit, limit)
        direction = rng.choice([-1.0, 1.0])
        for f in range(t.size):
            xs[f, i], zs[f, i] = x, z_i
            heading[f, i] = math.atan2(-direction, 0.0)
            speed[f, i] = s
            x += direction * s * dt
            if abs(x) > limit:
                direction = -math.copysign(1.0, x)
                x = math.copysign(limit, x)
    return _Plan(xs, zs, heading, speed)


def _plan_enter_leave(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                      p: int) -> _Plan:
    """People walk in from outside the image at staggered times and out the other side."""
    near, far = spec.depth_range
    tan = _half_fov_tan(spec.camera)
    xs, zs = np.empty((t.size, p)), np.empty((t.size, p))
    heading = np.zeros((t.size, p))
    speed = np.zeros((t.size, p))
    for i in range(p):
        z_i = rng.uniform(near, far - 1.0)
        side = rng.choice([-1.0, 1.0])
        s = rng.uniform(*spec.speed_range)
        vz = rng.uniform(-0.25, 0.25)
        start_x = side * (z_i * tan + 0.8)
        start_t = rng.uniform(0.0, max(spec.duration_s - 6.0, 0.5))
        moving = t >= start_t
        elapsed = np.clip(t - start_t, 0.0, None)
        xs[:, i] = start_x - side * s * elapsed
        zs[:, i] = np.clip(z_i + vz * elapsed, near, far)
        heading[:, i] = np.where(moving, math.atan2(side * s, -vz), 0.0)
        speed[:, i] = np.where(moving, s, 0.0)
    return _Plan(xs, zs, heading, speed)


def _fold(values: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflect ``values`` into [lo, hi] (a walker turning at the ends); also the motion sign."""
    span = hi - lo
    phase = np.mod(values - lo, 2.0 * span)
    back = phase > span
    return lo + np.where(back, 2.0 * span - phase, phase), np.where(back, -1.0, 1.0)


def _plan_static(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                 p: int) -> _Plan:
    """People standing apart or, with a speed range above 0, pacing along a straight line.

    The direction is random (mostly sideways) unless ``spec.walk_direction_deg`` fixes it.
    Pacers turn around at the depth range limits and before leaving the image.
    """
    near, far = spec.depth_range
    tan = _half_fov_tan(spec.camera)
    xs, zs = np.empty((t.size, p)), np.empty((t.size, p))
    heading = np.zeros((t.size, p))
    speed = np.zeros((t.size, p))
    for i in range(p):
        z_i = rng.uniform(near, far)
        s = rng.uniform(*spec.speed_range)
        direction = rng.uniform(-math.pi, math.pi)
        facing = rng.normal(0.0, 0.2)
        vx, vz = s * math.sin(direction), s * math.cos(direction) * 0.3
        if spec.walk_direction_deg is not None:
            angle = math.radians(spec.walk_direction_deg)
            vx, vz = s * math.cos(angle), s * math.sin(angle)
            # Start where there is room to walk in that direction.
            z_i = far - 0.01 if vz < 0 else (near + 0.01 if vz > 0 else z_i)
        # Pacers keep inside the image at every depth they reach; standers spread at their own.
        lim = 0.6 * (near if s > 0 else z_i) * tan
        x_i = (-0.6 + 1.2 * (i + 0.5) / p) * lim
        xs[:, i], sx = _fold(x_i + vx * t, -lim, lim)
        zs[:, i], sz = _fold(z_i + vz * t, near, far)
        heading[:, i] = np.arctan2(-vx * sx, -vz * sz) if s > 0 else facing
        speed[:, i] = s
    return _Plan(xs, zs, heading, speed)


def _smooth_heading(heading: np.ndarray, fps: float, window_s: float = 0.8) -> np.ndarray:
    """Spread sudden turns (a pacer turning back, a bounce off the border) over ``window_s``.

    The planners change direction instantly; people take most of a second to turn round.
    """
    width = max(int(round(window_s * fps)) | 1, 1)  # odd, so the average is centred
    if width == 1 or heading.shape[0] < 2:
        return heading
    unwrapped = np.unwrap(heading, axis=0)
    pad = width // 2
    padded = np.pad(unwrapped, ((pad, pad), (0, 0)), mode='edge')
    kernel = np.ones(width) / width
    return np.stack([np.convolve(padded[:, i], kernel, mode='valid')
                     for i in range(heading.shape[1])], axis=1)


def _plan_dense(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray, p: int,
                pacing: bool) -> _Plan:
    """Walkers crossing the whole view sideways, both ways, at every depth.

    Each keeps its depth (up to a slow drift) and speed. Crossing (``pacing=False``, a busy
    crosswalk): it enters at one border at its own time and leaves at the other; start times
    are spread so that about half of the walkers are in view at any moment. Pacing: everyone
    is in view all the time and turns round where its box would start to leave the image.
    Either way people going opposite ways pass one another at all depths, near ones hiding
    far ones.
    """
    near, far = spec.depth_range
    tan = _half_fov_tan(spec.camera)
    xs, zs = np.empty((t.size, p)), np.empty((t.size, p))
    heading = np.zeros((t.size, p))
    speed = np.zeros((t.size, p))
    for i in range(p):
        z0 = rng.uniform(near, far)
        s = rng.uniform(*spec.speed_range)
        vz = rng.normal(0.0, 0.1)
        side = rng.choice([-1.0, 1.0])  # the border it enters from / its first direction
        zs[:, i] = np.clip(z0 + vz * t, near, far)
        if pacing:
            # position in units of the half view at the walker's current depth (0.8 of it)
            lim = 0.8 * zs[:, i] * tan
            travelled = np.concatenate([[0.0], np.cumsum(s / spec.fps / lim[:-1])])
            u, turn = _fold(rng.uniform(-1.0, 1.0) + travelled, -1.0, 1.0)
            xs[:, i] = -side * u * lim
            heading[:, i] = np.arctan2(side * s * turn, -vz)
        else:
            half_width = z0 * tan + 0.6  # a little outside the view, so it walks in
            crossing_s = 2.0 * half_width / s
            start = rng.uniform(-0.5 * crossing_s, spec.duration_s - 0.5 * crossing_s)
            xs[:, i] = side * (half_width - s * (t - start))
            heading[:, i] = math.atan2(side * s, -vz)
        speed[:, i] = s
    return _Plan(xs, zs, heading, speed)


def _plan_dense_crossing(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                         p: int) -> _Plan:
    """A busy crosswalk (:func:`_plan_dense`)."""
    return _plan_dense(spec, rng, t, p, pacing=False)


def _plan_dense_pacing(spec: SequenceSpec, rng: np.random.Generator, t: np.ndarray,
                       p: int) -> _Plan:
    """Everyone in view, pacing from border to border (:func:`_plan_dense`)."""
    return _plan_dense(spec, rng, t, p, pacing=True)


_PLANNERS = {
    'crossing': _plan_crossing,
    'occlusion': _plan_occlusion,
    'enter_leave': _plan_enter_leave,
    'crowd': _plan_random_walk,
    'dropped_frames': _plan_random_walk,
    'static': _plan_static,
    'dense_crossing': _plan_dense_crossing,
    'dense_pacing': _plan_dense_pacing,
}


# -- rendering ground truth and detections ----------------------------------------------------

def _boxes(intrinsics: np.ndarray, joints_cam: np.ndarray, head_top: np.ndarray) -> np.ndarray:
    """(P, 4) boxes around the projected joints and head top, padded like a body outline."""
    pts = np.concatenate([joints_cam, head_top[:, None]], axis=1)
    px = project_points(intrinsics, pts)
    lo, hi = px.min(axis=1), px.max(axis=1)
    h = hi[:, 1] - lo[:, 1]
    pad = np.stack([0.08 * h, 0.02 * h, 0.08 * h, 0.03 * h], axis=1)
    return np.concatenate([lo, hi], axis=1) + pad * np.array([-1.0, -1.0, 1.0, 1.0])


def _inside_fraction(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=1)
    iw = np.clip(np.minimum(boxes[:, 2], width) - np.maximum(boxes[:, 0], 0.0), 0.0, None)
    ih = np.clip(np.minimum(boxes[:, 3], height) - np.maximum(boxes[:, 1], 0.0), 0.0, None)
    return np.where(area > 0, iw * ih / np.maximum(area, 1e-9), 0.0)


# Body silhouette: a capsule around each bone (child joint index -> radius in metres, for the
# 1.7 m template), and the head as a capsule from the head joint to the head top.
_BONE_RADIUS_M = np.array([0.0, 0.08, 0.08, 0.14, 0.06, 0.06, 0.14, 0.05, 0.05, 0.14, 0.04,
                           0.04, 0.06, 0.07, 0.07, 0.06, 0.05, 0.05, 0.045, 0.045, 0.04, 0.04,
                           0.04, 0.04])
_HEAD_RADIUS_M = 0.1
_SAMPLES_PER_BONE = 3


def _body_segments(joints: np.ndarray, head_top: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """(P, L, 3) segment starts, (P, L, 3) ends, (L,) radii: the bones and the head."""
    children = np.arange(1, 24)
    parents = np.array(SMPL_PARENTS)[children]
    starts = np.concatenate([joints[:, parents], joints[:, 15:16]], axis=1)
    ends = np.concatenate([joints[:, children], head_top[:, None]], axis=1)
    radii = np.concatenate([_BONE_RADIUS_M[children], [_HEAD_RADIUS_M]])
    return starts, ends, radii


def _visibility(intrinsics: np.ndarray, joints: np.ndarray, head_top: np.ndarray,
                scale: np.ndarray) -> np.ndarray:
    """(P,) share of each body not hidden behind the bodies of people nearer to the camera.

    Bodies are capsules around the bones (a skeleton silhouette, not a box): a person behind
    another stays visible between the legs and beside the torso, as a detector sees them.
    Points along each bone of person i are hidden when they fall, in the image, inside a
    capsule of a person j whose pelvis is at least 0.3 m nearer.

    Args:
        intrinsics: (3, 3) K.
        joints: (P, 24, 3) camera-frame joints of the people in front of the camera.
        head_top: (P, 3) camera-frame head tops.
        scale: (P,) body-size factors (capsule radii scale with them).
    """
    p = joints.shape[0]
    if p < 2:
        return np.ones(p)
    starts, ends, radii = _body_segments(joints, head_top)  # (P, L, 3), (L,)
    t = (np.arange(_SAMPLES_PER_BONE) + 0.5) / _SAMPLES_PER_BONE
    samples = starts[:, :, None] + t[None, None, :, None] * (ends - starts)[:, :, None]
    samples = samples.reshape(p, -1, 3)  # (P, S, 3)
    pts = project_points(intrinsics, samples)  # (P, S, 2)
    a = project_points(intrinsics, starts)  # (P, L, 2)
    b = project_points(intrinsics, ends)
    depth = 0.5 * (starts[..., 2] + ends[..., 2])  # (P, L)
    radius_px = intrinsics[0, 0] * radii[None] * scale[:, None] / np.maximum(depth, 0.1)
    pelvis_z = joints[:, 0, 2]
    hidden = np.zeros(pts.shape[:2], dtype=bool)  # (P, S)
    for j in range(p):
        behind = np.flatnonzero(pelvis_z > pelvis_z[j] + 0.3)
        if behind.size == 0:
            continue
        q = pts[behind][:, :, None, :]  # (B, S, 1, 2) points of the people behind j
        ab = (b[j] - a[j])[None, None]  # (1, 1, L, 2)
        rel = q - a[j][None, None]
        along = np.clip(np.sum(rel * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-9), 0, 1)
        dist = np.linalg.norm(rel - along[..., None] * ab, axis=-1)  # (B, S, L)
        hidden[behind] |= (dist <= radius_px[j][None, None]).any(axis=-1)
    return 1.0 - hidden.mean(axis=1)


def _weak_perspective(intrinsics: np.ndarray, roots: np.ndarray,
                      image_size: tuple[int, int]) -> np.ndarray:
    """ROMP-style [s, tx, ty] in the normalised centred padded square of side max(h, w)."""
    h, w = image_size
    side = float(max(h, w))
    px = project_points(intrinsics, roots)
    s = 2.0 * intrinsics[0, 0] / (side * roots[:, 2])
    tx = (px[:, 0] - w / 2.0) / (side / 2.0)
    ty = (px[:, 1] - h / 2.0) / (side / 2.0)
    return np.stack([s, tx, ty], axis=1)


def _noisy_rotations(rotvecs: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Compose each (..., 3) rotation with a random small rotation; canonical rotation vectors."""
    flat = rotvecs.reshape(-1, 3)
    noise = rng.normal(0.0, sigma, flat.shape) if sigma > 0 else np.zeros_like(flat)
    out = (Rotation.from_rotvec(flat) * Rotation.from_rotvec(noise)).as_rotvec()
    return out.reshape(rotvecs.shape)


def _false_positives(spec: SequenceSpec, rng: np.random.Generator, k: np.ndarray,
                     count: int) -> dict[str, np.ndarray]:
    if count == 0:
        return {'root': np.zeros((0, 3)), 'bbox': np.zeros((0, 4)), 'confs': np.zeros(0),
                'betas': np.zeros((0, 10)), 'thetas': np.zeros((0, 72)),
                'center_px': np.zeros((0, 2))}
    cam = spec.camera
    z = rng.uniform(3.0, 14.0, count)
    u = rng.uniform(0.05, 0.95, count) * cam.width
    y_root = cam.height_above_ground_m - _PELVIS_HEIGHT_M
    v = k[1, 1] * y_root / z + k[1, 2] + rng.normal(0.0, 20.0, count)
    root = np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=1)
    bh = 1.75 * k[1, 1] / z * rng.uniform(0.7, 1.2, count)
    bw = 0.35 * bh
    bbox = np.stack([u - bw / 2, v - 0.45 * bh, u + bw / 2, v + 0.55 * bh], axis=1)
    high = rng.random(count) < spec.noise.fp_high_conf_share
    conf = np.where(high, rng.uniform(0.5, 0.7, count), rng.uniform(0.05, 0.45, count))
    thetas = np.zeros((count, 72))
    thetas[:, :3] = _global_orient(rng.uniform(-math.pi, math.pi, count), np.zeros(count))
    thetas[:, 3:] = _body_pose(np.zeros(count), np.zeros(count), np.zeros(count)).reshape(
        count, 69)
    thetas = _noisy_rotations(thetas.reshape(count, 24, 3), 0.2, rng).reshape(count, 72)
    return {'root': root, 'bbox': bbox, 'confs': conf, 'betas': rng.normal(0.0, 1.0, (count, 10)),
            'thetas': thetas, 'center_px': np.stack([u, v], axis=1)}


def _kept_frames(spec: SequenceSpec, rng: np.random.Generator, num: int) -> np.ndarray:
    keep = rng.random(num) >= spec.drop_rate
    bursts = rng.poisson(spec.drop_bursts_per_s * spec.duration_s)
    for _ in range(bursts):
        start = int(rng.integers(1, max(num - 1, 2)))
        keep[start:start + int(rng.integers(3, 13))] = False
    keep[0] = True
    return np.flatnonzero(keep)


def generate_sequence(spec: SequenceSpec, seed: int) -> SyntheticSequence:
    """Generate the sequence described by ``spec``; identical output for identical (spec, seed)."""
    rng = np.random.default_rng(seed)
    cam = spec.camera
    k = cam.matrix()
    image_size = (cam.height, cam.width)
    num = max(int(round(spec.duration_s * spec.fps)), 1)
    t = np.arange(num) / spec.fps
    p = spec.num_people

    betas = rng.normal(0.0, 1.0, (p, 10))
    height_scale = np.clip(1.0 + 0.05 * betas[:, 0], 0.88, 1.12)
    range_bias = rng.normal(0.0, spec.noise.range_bias_frac, p)
    gait_phase0 = rng.uniform(0.0, 2 * math.pi, p)
    lean = rng.normal(0.05, 0.03, p)
    plan = _PLANNERS[spec.scenario](spec, rng, t, p)
    plan.heading = _smooth_heading(plan.heading, spec.fps)

    # Ground truth for every frame before drops: (F, P, ...) arrays.
    cadence = 0.6 + 0.4 * plan.speed  # strides per second
    phase = gait_phase0[None] + 2 * math.pi * np.cumsum(cadence / spec.fps, axis=0)
    amplitude = 0.45 * np.clip(plan.speed / 1.4, 0.0, 1.2)
    sway = 0.03 * np.sin(2 * math.pi * 0.2 * t[:, None] + gait_phase0[None])
    thetas = np.zeros((num, p, 72))
    thetas[..., :3] = _global_orient(plan.heading.reshape(-1),
                                     np.broadcast_to(lean, (num, p)).reshape(-1)).reshape(
                                         num, p, 3)
    thetas[..., 3:] = _body_pose(phase.reshape(-1), amplitude.reshape(-1),
                                 sway.reshape(-1)).reshape(num, p, 69)
    scale = np.broadcast_to(height_scale, (num, p))
    rel_joints = forward_kinematics(thetas, scale)  # (F, P, 24, 3)
    bounce = 0.015 * np.abs(np.sin(phase)) * (plan.speed > 0)
    root_y = cam.height_above_ground_m - _PELVIS_HEIGHT_M * scale - bounce
    roots = np.stack([plan.x, root_y, plan.z], axis=-1)  # (F, P, 3)
    joints = rel_joints + roots[:, :, None, :]
    # Head top: above the head joint along the body's up axis (global orientation maps body +y).
    up = Rotation.from_rotvec(thetas[..., :3].reshape(-1, 3)).apply(np.array([0.0, 1.0, 0.0]))
    head_top = joints[:, :, 15] + _HEAD_TOP_ABOVE_HEAD_M * scale[..., None] * up.reshape(
        num, p, 3)

    frames = []
    for f in _kept_frames(spec, rng, num):
        frames.append(_render_frame(spec, rng, k, image_size, f, t[f], roots[f], joints[f],
                                    head_top[f], thetas[f], betas, range_bias, height_scale))
    stamps = np.array([fr.stamp_s for fr in frames])
    if spec.stamp_jitter_s > 0:
        stamps = stamps + rng.normal(0.0, spec.stamp_jitter_s, stamps.size)
        # Keep stamps strictly increasing (jitter smaller than a frame rarely reorders them).
        stamps = np.maximum.accumulate(stamps + 1e-6 * np.arange(stamps.size))
        frames = [replace(fr, stamp_s=float(s), detections=fr.detections)
                  for fr, s in zip(frames, stamps, strict=True)]
    return SyntheticSequence(spec=spec, seed=seed, intrinsics=k, image_size=image_size,
                             frames=tuple(frames), height_scale=height_scale)


def _render_frame(spec: SequenceSpec, rng: np.random.Generator, k: np.ndarray,
                  image_size: tuple[int, int], index: int, stamp: float, roots: np.ndarray,
                  joints: np.ndarray, head_top: np.ndarray, thetas: np.ndarray,
                  betas: np.ndarray, range_bias: np.ndarray,
                  scale: np.ndarray) -> SyntheticFrame:
    noise = spec.noise
    h, w = image_size
    p = roots.shape[0]
    in_front = roots[:, 2] > 0.5
    boxes = np.zeros((p, 4))
    boxes[in_front] = _boxes(k, joints[in_front], head_top[in_front])
    inside = np.where(in_front, _inside_fraction(boxes, w, h), 0.0)
    present = inside >= 0.5
    vis = np.zeros(p)
    vis[present] = _visibility(k, joints[present], head_top[present], scale[present])

    # Random draws happen for every identity in every frame, in a fixed order, so a change
    # in who is visible does not shift the random stream of the others.
    miss = rng.random(p) < noise.miss_rate
    base_conf = np.clip(rng.normal(0.85, 0.06, p), 0.5, 0.99)
    range_noise = rng.normal(0.0, noise.range_frac, p)
    perp_noise = rng.normal(0.0, noise.perp_frac, (p, 2))
    box_noise = rng.normal(0.0, noise.bbox_jitter_frac, (p, 4))
    betas_noise = rng.normal(0.0, noise.betas_sigma, (p, 10))
    pose_noise = rng.normal(0.0, noise.pose_sigma_rad, (p, 24, 3))
    center_noise = rng.normal(0.0, 1.0, (p, 2))

    detected = present & (vis >= noise.min_visibility) & ~miss
    idx = np.flatnonzero(detected)
    rng_dist = np.linalg.norm(roots[idx], axis=1)
    ray = roots[idx] / rng_dist[:, None]
    # Two unit vectors perpendicular to each ray.
    e1 = np.cross(ray, np.array([0.0, 1.0, 0.0]))
    e1 /= np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-9)
    e2 = np.cross(ray, e1)
    meas_range = rng_dist * (1.0 + range_bias[idx] + range_noise[idx])
    det_root = (ray * meas_range[:, None]
                + (perp_noise[idx, :1] * e1 + perp_noise[idx, 1:] * e2) * rng_dist[:, None])
    box_h = boxes[idx, 3] - boxes[idx, 1]
    det_box = boxes[idx] + box_noise[idx] * box_h[:, None]
    det_box = np.concatenate([np.minimum(det_box[:, :2], det_box[:, 2:]),
                              np.maximum(det_box[:, :2], det_box[:, 2:])], axis=1)
    size_factor = np.clip(box_h / 120.0, 0.0, 1.0) ** 0.3
    conf = np.clip(base_conf[idx] * size_factor * vis[idx] ** 1.5, 0.0, 1.0)
    det_thetas = (Rotation.from_rotvec(thetas[idx].reshape(-1, 3))
                  * Rotation.from_rotvec(pose_noise[idx].reshape(-1, 3))).as_rotvec()
    det_thetas = det_thetas.reshape(idx.size, 72)
    center = project_points(k, roots[idx]) + center_noise[idx] * noise.perp_frac * k[0, 0]

    num_fp = int(rng.poisson(noise.fp_per_frame))
    fp = _false_positives(spec, rng, k, num_fp)
    all_root = np.concatenate([det_root, fp['root']])
    all_box = np.concatenate([det_box, fp['bbox']])
    all_conf = np.concatenate([conf, fp['confs']])
    all_betas = np.concatenate([betas[idx] + betas_noise[idx], fp['betas']])
    all_thetas = np.concatenate([det_thetas, fp['thetas']])
    all_center = np.concatenate([center, fp['center_px']])
    gt_of_det = np.concatenate([idx, -np.ones(num_fp, dtype=np.int64)]).astype(np.int64)
    order = np.argsort(-all_conf, kind='stable')
    dets = Detections.create(
        root=all_root[order], bbox=all_box[order], betas=all_betas[order],
        confs=all_conf[order], thetas=all_thetas[order],
        cam=_weak_perspective(k, all_root[order], image_size).reshape(-1, 3),
        center_px=all_center[order], image_size=image_size, intrinsics=k)

    shown = np.flatnonzero(present)
    return SyntheticFrame(
        stamp_s=float(stamp), index=int(index), gt_ids=shown.astype(np.int64),
        gt_root=roots[shown].copy(), gt_joints=joints[shown].copy(), gt_bbox=boxes[shown],
        gt_visibility=vis[shown], gt_thetas=thetas[shown].copy(), gt_betas=betas[shown].copy(),
        detections=dets, det_gt_ids=gt_of_det[order])
