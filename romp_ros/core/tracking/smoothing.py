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

from romp_ros.core.geometry.rotation_numpy import (
    axis_angle_to_quaternion,
    quaternion_to_axis_angle,
)
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


class PersonSmoother:
    """The filters of one track; feed it that person's raw values at each matched frame.

    Quantities with their own parameters share one filter where they can: the K joint
    rotations are one rotation filter (the global orientation's parameters on row 0, the
    body's on the rest), and the camera and betas one element-wise filter. Every element keeps
    its own parameters and state, so the output is what separate filters would give, with
    a third of the NumPy calls per frame.
    """

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        gap = config.reset_gap_s
        tr, dp = config.translation, config.depth
        self._root = OneEuroFilter(
            np.array([tr.min_cutoff, tr.min_cutoff, dp.min_cutoff]),
            np.array([tr.beta, tr.beta, dp.beta]),
            np.array([tr.d_cutoff, tr.d_cutoff, dp.d_cutoff]), gap)
        # sized on the first sample: K joints, B betas
        self._rotations: RotationOneEuroFilter | None = None
        self._cam_betas: OneEuroFilter | None = None
        self._sizes = (0, 0)
        self._last: SmoothedPerson | None = None

    @property
    def last(self) -> SmoothedPerson | None:
        """The last output (held while the track coasts), or None before the first sample."""
        return self._last

    def reset(self) -> None:
        """Forget all filter states."""
        for filt in (self._root, self._rotations, self._cam_betas):
            if filt is not None:
                filt.reset()
        self._last = None

    def _filters_for(self, num_joints: int,
                     num_betas: int) -> tuple[RotationOneEuroFilter, OneEuroFilter]:
        """The rotation and camera + betas filters for K joints and B betas (new on a change)."""
        if self._rotations is None or self._sizes != (num_joints, num_betas):
            cfg, gap = self.config, self.config.reset_gap_s
            rows = [cfg.global_orient] + [cfg.pose] * (num_joints - 1)  # per rotation
            self._rotations = RotationOneEuroFilter(
                *(np.array([getattr(p, name) for p in rows]) for name in _PARAM_NAMES), gap)
            elements = [cfg.cam] * 3 + [cfg.betas] * num_betas  # per element of [cam, betas]
            self._cam_betas = OneEuroFilter(
                *(np.array([getattr(p, name) for p in elements]) for name in _PARAM_NAMES), gap)
            self._sizes = (num_joints, num_betas)
        return self._rotations, self._cam_betas

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
        betas = np.asarray(betas, dtype=np.float64).reshape(-1)
        rotations, cam_betas = self._filters_for(thetas.size // 3, betas.size)
        quats = rotations(axis_angle_to_quaternion(thetas.reshape(-1, 3)), stamp_s)  # (K, 4)
        if self.config.root_filter == 'kalman' and filtered_root is not None:
            smoothed_root = np.array(filtered_root, dtype=np.float64)
        else:
            smoothed_root = self._root(root, stamp_s)
        cam_and_betas = cam_betas(np.concatenate([np.asarray(cam, np.float64).reshape(3), betas]),
                                  stamp_s)  # (3 + B,)
        out = SmoothedPerson(root=smoothed_root,
                             thetas=quaternion_to_axis_angle(quats).reshape(thetas.shape),
                             betas=cam_and_betas[3:], cam=cam_and_betas[:3])
        self._last = out
        return out


# the constructor arguments of both One-Euro filters, in order
_PARAM_NAMES = ('min_cutoff', 'beta', 'd_cutoff')
