"""Constant-velocity Kalman filter on each person's 3D root, vectorised over tracks.

State per track: ``[x, y, z, vx, vy, vz]`` in metres and m/s, camera optical frame (x right,
y down, z forward). Arrays are batched: means (T, 6), covariances (T, 6, 6), per-track time
steps (T,) seconds.

Process noise is the continuous white-noise-acceleration model integrated over the real time
step, so a frame drop (a longer ``dt``) widens the prediction exactly as much as the missing
time warrants instead of as much as one nominal frame.

Measurement noise follows the geometry of monocular estimation: the root is recovered along the
viewing ray from the body's apparent size, so its error is mostly *along the ray* and grows with
distance (a few percent of the range), while the perpendicular error comes from pixel errors
and also scales with range (pixels x range / focal). The covariance is therefore an ellipsoid
elongated along the unit ray ``r``: ``sigma_perp^2 I + (sigma_ray^2 - sigma_perp^2) r r^T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RootNoiseModel:
    """Noise parameters of :class:`RootKalman` (see docs/tracking.md for the chosen values).

    Attributes:
        accel_psd_horizontal: m^2/s^3, spectral density of the white acceleration on x and z.
        accel_psd_vertical: m^2/s^3, the same on y; people do not move up and down much in the
            frame of a roughly level camera. Set it equal to the horizontal one for a camera
            pitched far from level.
        ray_sigma_frac: std of the measurement along the viewing ray, as a fraction of the range.
        perp_sigma_frac: std perpendicular to the ray, as a fraction of the range.
        min_sigma_m: floor of both stds, metres.
        init_speed_sigma: m/s, prior std of a new track's horizontal velocity.
        init_vertical_speed_sigma: m/s, the same for the vertical velocity.
    """

    accel_psd_horizontal: float = 1.0
    accel_psd_vertical: float = 0.1
    ray_sigma_frac: float = 0.08
    perp_sigma_frac: float = 0.012
    min_sigma_m: float = 0.03
    init_speed_sigma: float = 1.5
    init_vertical_speed_sigma: float = 0.3

    def __post_init__(self) -> None:
        for name in ('accel_psd_horizontal', 'accel_psd_vertical', 'ray_sigma_frac',
                     'perp_sigma_frac', 'min_sigma_m', 'init_speed_sigma',
                     'init_vertical_speed_sigma'):
            if not getattr(self, name) > 0:
                raise ValueError(f'RootNoiseModel.{name} must be positive')


class RootKalman:
    """Stateless batched operations; the tracker owns the (T, 6) means and (T, 6, 6) covs."""

    def __init__(self, noise: RootNoiseModel | None = None) -> None:
        self.noise = noise or RootNoiseModel()
        self._psd = np.array([self.noise.accel_psd_horizontal, self.noise.accel_psd_vertical,
                              self.noise.accel_psd_horizontal])

    def measurement_cov(self, positions: np.ndarray) -> np.ndarray:
        """(T, 3) positions -> (T, 3, 3) measurement covariances at those positions."""
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        rng = np.linalg.norm(positions, axis=1)
        # At the camera centre there is no ray; the sigma floor below keeps R positive definite.
        ray = positions / np.maximum(rng, 1e-6)[:, None]
        s_ray = np.maximum(self.noise.ray_sigma_frac * rng, self.noise.min_sigma_m)
        s_perp = np.maximum(self.noise.perp_sigma_frac * rng, self.noise.min_sigma_m)
        outer = ray[:, :, None] * ray[:, None, :]
        perp_var = (s_perp ** 2)[:, None, None]
        extra_ray_var = (s_ray ** 2 - s_perp ** 2)[:, None, None]
        return perp_var * np.eye(3)[None] + extra_ray_var * outer

    def initiate(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks at measured positions (T, 3): zero velocity, covariance from R."""
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        t = positions.shape[0]
        mean = np.concatenate([positions, np.zeros((t, 3))], axis=1)
        cov = np.zeros((t, 6, 6))
        cov[:, :3, :3] = self.measurement_cov(positions)
        v = np.array([self.noise.init_speed_sigma, self.noise.init_vertical_speed_sigma,
                      self.noise.init_speed_sigma]) ** 2
        cov[:, 3:, 3:] = np.diag(v)
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray,
                dt: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Propagate (T, 6) means and (T, 6, 6) covs by dt s (scalar or (T,); dt < 0 acts as 0)."""
        t = mean.shape[0]
        dt = np.maximum(np.broadcast_to(np.asarray(dt, dtype=np.float64), (t,)), 0.0)
        f = np.tile(np.eye(6), (t, 1, 1))
        f[:, 0, 3] = f[:, 1, 4] = f[:, 2, 5] = dt
        q = np.zeros((t, 6, 6))
        for axis in range(3):
            p = self._psd[axis]
            q[:, axis, axis] = p * dt ** 3 / 3.0
            q[:, axis, axis + 3] = q[:, axis + 3, axis] = p * dt ** 2 / 2.0
            q[:, axis + 3, axis + 3] = p * dt
        new_mean = np.einsum('tij,tj->ti', f, mean)
        new_cov = f @ cov @ np.transpose(f, (0, 2, 1)) + q
        return new_mean, new_cov

    def innovation_cov(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """(T, 3, 3) covariance of a measurement predicted from each track, S = HPH^T + R."""
        return cov[:, :3, :3] + self.measurement_cov(mean[:, :3])

    def mahalanobis_sq(self, mean: np.ndarray, cov: np.ndarray,
                       measurements: np.ndarray) -> np.ndarray:
        """(T, D) squared Mahalanobis distances of D measured positions (D, 3) to T tracks.

        Distributed as chi-square with 3 degrees of freedom for the track's own measurement.
        """
        measurements = np.asarray(measurements, dtype=np.float64).reshape(-1, 3)
        if mean.shape[0] == 0 or measurements.shape[0] == 0:
            return np.zeros((mean.shape[0], measurements.shape[0]))
        s_inv = np.linalg.inv(self.innovation_cov(mean, cov))  # (T, 3, 3)
        diff = measurements[None, :, :] - mean[:, None, :3]  # (T, D, 3)
        return np.einsum('tdi,tij,tdj->td', diff, s_inv, diff)

    def update(self, mean: np.ndarray, cov: np.ndarray,
               measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct T tracks with one measured position each (T, 3)."""
        measurements = np.asarray(measurements, dtype=np.float64).reshape(-1, 3)
        r = self.measurement_cov(mean[:, :3])
        s = cov[:, :3, :3] + r
        pht = cov[:, :, :3]  # P H^T, (T, 6, 3)
        gain = np.transpose(np.linalg.solve(s, np.transpose(pht, (0, 2, 1))), (0, 2, 1))
        new_mean = mean + np.einsum('tij,tj->ti', gain, measurements - mean[:, :3])
        # Joseph form keeps the covariance symmetric positive definite in float arithmetic.
        i_kh = np.tile(np.eye(6), (mean.shape[0], 1, 1))
        i_kh[:, :, :3] -= gain
        new_cov = (i_kh @ cov @ np.transpose(i_kh, (0, 2, 1))
                   + gain @ r @ np.transpose(gain, (0, 2, 1)))
        new_cov = 0.5 * (new_cov + np.transpose(new_cov, (0, 2, 1)))
        return new_mean, new_cov
