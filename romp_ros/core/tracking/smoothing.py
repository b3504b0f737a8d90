"""Per-person temporal smoothing of ROMP/BEV outputs with One-Euro filters.

One :class:`PersonSmoother` belongs to one track. It smooths, each with its own
:class:`~romp_ros.core.tracking.one_euro.OneEuroParams`:

* the root translation (metres, camera frame): by default the tracker's constant-velocity
  Kalman estimate (``root_filter='kalman'``), which has no lag on steady walking; or a One-Euro
  filter (``'one_euro'``), lateral (x, y) and depth (z) separately, since monocular depth is
  several times noisier than the lateral position;
* the global orientation and the 23 body-joint rotations *as rotations*: axis-angle ->
  quaternion -> sign alignment with the previous output -> One-Euro step -> renormalise ->
  axis-angle. Filtering the raw axis-angle numbers (as the reference does for the body pose)
  averages ``(pi - e) n`` with its twin ``-(pi - e) n`` into a near-identity rotation; an
  upright person in the camera frame has a global orientation of exactly 180 degrees, so
  this is not a corner case;
* the weak-perspective camera and the shape betas (element-wise).

The default parameters and the reasoning behind them are in docs/tracking.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from romp_ros.core.tracking.one_euro import OneEuroFilter, OneEuroParams, RotationOneEuroFilter


@dataclass(frozen=True)
class SmoothingConfig:
    """Per-quantity One-Euro parameters; ``enabled=False`` passes every value through unchanged.

    Attributes:
        enabled: False returns the raw inputs bit-for-bit (``SmoothingConfig.off()``).
        root_filter: 'kalman' reports the tracker's Kalman position as the root (a standalone
            :class:`PersonSmoother` given no Kalman position falls back to One-Euro);
            'one_euro' filters the measured root with ``translation`` and ``depth``.
        translation: lateral root coordinates x, y (m; beta per m/s), 'one_euro' only.
        depth: root depth z (m; beta per m/s), 'one_euro' only.
        global_orient: the root rotation (beta per rad/s of geodesic speed).
        pose: the 23 body-joint rotations (beta per rad/s).
        cam: weak-perspective camera [s, tx, ty] (normalised units).
        betas: body shape; a person's shape does not change, so this is nearly a running mean.
        reset_gap_s: a track unseen for longer restarts its filters on the next sample.
    """

    enabled: bool = True
    root_filter: str = 'kalman'
    translation: OneEuroParams = field(default=OneEuroParams(0.5, 1.0, 1.0))
    depth: OneEuroParams = field(default=OneEuroParams(0.25, 0.1, 1.0))
    global_orient: OneEuroParams = field(default=OneEuroParams(1.0, 0.3, 1.0))
    pose: OneEuroParams = field(default=OneEuroParams(1.0, 0.3, 1.0))
    cam: OneEuroParams = field(default=OneEuroParams(1.0, 0.5, 1.0))
    betas: OneEuroParams = field(default=OneEuroParams(0.1, 0.0, 1.0))
    reset_gap_s: float = 0.5

    def __post_init__(self) -> None:
        if self.root_filter not in ('kalman', 'one_euro'):
            raise ValueError(f"root_filter must be 'kalman' or 'one_euro', "
                             f'got {self.root_filter!r}')
        if not self.reset_gap_s > 0:
            raise ValueError(f'reset_gap_s must be positive, got {self.reset_gap_s}')

    @classmethod
    def off(cls) -> SmoothingConfig:
        """Smoothing disabled: raw values out."""
        return cls(enabled=False)

    @classmethod
    def from_mode(cls, mode: str) -> SmoothingConfig:
        """'off' or 'default' (the tuned defaults), for a string parameter."""
        if mode == 'off':
            return cls.off()
        if mode == 'default':
            return cls()
        raise ValueError(f"unknown smoothing mode {mode!r}: expected 'off' or 'default'")


@dataclass(frozen=True)
class SmoothedPerson:
    """One person's smoothed quantities at one stamp.

    Attributes:
        root: (3,) m, camera optical frame.
        thetas: (3K,) axis-angle per joint, radians, angle in [0, pi] (K = 24 for SMPL).
        betas: (B,) shape coefficients.
        cam: (3,) weak-perspective camera [s, tx, ty].
    """

    root: np.ndarray
    thetas: np.ndarray
    betas: np.ndarray
    cam: np.ndarray


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 4) unit quaternions (x, y, z, w)."""
    v = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a, with its Taylor series where a is too small to divide by.
    small = angle < 1e-6
    scale = np.where(small, 0.5 - angle ** 2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def quaternion_to_axis_angle(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) -> (..., 3) rotation vectors, angle in [0, pi]."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:] < 0.0, -q, q)  # the w >= 0 representative: angle <= pi
    xyz, w = q[..., :3], q[..., 3:]
    n = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(n, w)
    # angle / sin(angle / 2) -> 2 / w as the rotation vanishes (w -> 1).
    small = n < 1e-8
    scale = np.where(small, 2.0 / np.maximum(w, 1e-12), angle / np.where(small, 1.0, n))
    return xyz * scale


def geodesic_angle(axis_angle_a: np.ndarray, axis_angle_b: np.ndarray) -> np.ndarray:
    """Angle (radians, [0, pi]) of the relative rotation between two (..., 3) rotation vectors."""
    qa = axis_angle_to_quaternion(axis_angle_a)
    qb = axis_angle_to_quaternion(axis_angle_b)
    dot = np.abs(np.sum(qa * qb, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


class PersonSmoother:
    """The filters of one track; feed it that person's raw values at each matched frame."""

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        gap = config.reset_gap_s
        tr, dp = config.translation, config.depth
        self._root = OneEuroFilter(
            np.array([tr.min_cutoff, tr.min_cutoff, dp.min_cutoff]),
            np.array([tr.beta, tr.beta, dp.beta]),
            np.array([tr.d_cutoff, tr.d_cutoff, dp.d_cutoff]), gap)
        self._global = RotationOneEuroFilter.from_params(config.global_orient, gap)
        self._pose = RotationOneEuroFilter.from_params(config.pose, gap)
        self._cam = OneEuroFilter.from_params(config.cam, gap)
        self._betas = OneEuroFilter.from_params(config.betas, gap)
        self._last: SmoothedPerson | None = None

    @property
    def last(self) -> SmoothedPerson | None:
        """The last output (held while the track coasts), or None before the first sample."""
        return self._last

    def reset(self) -> None:
        """Forget all filter states."""
        for filt in (self._root, self._global, self._pose, self._cam, self._betas):
            filt.reset()
        self._last = None

    def update(self, root: np.ndarray, thetas: np.ndarray, betas: np.ndarray, cam: np.ndarray,
               stamp_s: float, filtered_root: np.ndarray | None = None) -> SmoothedPerson:
        """Smooth one sample: root (3,) m, thetas (3K,) axis-angle, betas (B,), cam (3,).

        ``filtered_root`` (3,) is the tracker's Kalman position at ``stamp_s``, reported as the
        root when ``root_filter == 'kalman'``.
        """
        if not self.config.enabled:
            out = SmoothedPerson(np.array(root), np.array(thetas), np.array(betas), np.array(cam))
            self._last = out
            return out
        thetas = np.asarray(thetas, dtype=np.float64)
        joints = thetas.reshape(-1, 3)
        quats = axis_angle_to_quaternion(joints)
        q_global = self._global(quats[:1], stamp_s)
        q_body = self._pose(quats[1:], stamp_s) if len(joints) > 1 else np.zeros((0, 4))
        rotvecs = quaternion_to_axis_angle(np.concatenate([q_global, q_body], axis=0))
        if self.config.root_filter == 'kalman' and filtered_root is not None:
            smoothed_root = np.array(filtered_root, dtype=np.float64)
        else:
            smoothed_root = self._root(root, stamp_s)
        out = SmoothedPerson(
            root=smoothed_root,
            thetas=rotvecs.reshape(thetas.shape),
            betas=self._betas(betas, stamp_s),
            cam=self._cam(cam, stamp_s),
        )
        self._last = out
        return out
