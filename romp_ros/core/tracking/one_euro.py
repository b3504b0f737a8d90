"""One-Euro filters (Casiez, Roussel and Vogel, CHI 2012) driven by real timestamps.

The One-Euro filter is a first-order low-pass filter whose cutoff frequency rises with the
(low-passed) speed of the signal: at rest it smooths hard (``min_cutoff``), when the signal
moves fast the cutoff grows by ``beta`` Hz per unit/s of speed, which keeps the lag small.

Two filters live here:

* :class:`OneEuroFilter`, element-wise over an array of any shape (a root, a camera, betas).
* :class:`RotationOneEuroFilter`, over unit quaternions (..., 4) in (x, y, z, w) order. Speed is
  the geodesic angular speed of each rotation and the low-pass step is a normalised linear
  interpolation between sign-aligned quaternions, so the output stays a rotation on the short
  arc between the previous output and the new sample: it cannot flip through 180 degrees the
  way filtering raw axis-angle components does.

Both use the time between samples (``stamp_s``) rather than an assumed frame rate, so frame drops
and irregular rates change the smoothing factor as they should. A sample that is not later than
the previous one (``dt <= 0``) leaves the state unchanged and returns the last output; a gap
longer than ``reset_gap_s`` restarts the filter on the new sample (after such a gap the old state
says nothing useful about the new one and would only drag the output back).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """Parameters of one One-Euro filter.

    Attributes:
        min_cutoff: Hz, cutoff at zero speed; lower = smoother at rest, more lag.
        beta: Hz per (unit/s), how fast the cutoff rises with speed; higher = less lag when
            moving, more jitter. Units follow the filtered quantity (m/s, rad/s, ...).
        d_cutoff: Hz, cutoff of the low-pass on the speed estimate itself.
    """

    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0.0 and math.isfinite(self.min_cutoff)):
            raise ValueError(f'min_cutoff must be a positive finite frequency, '
                             f'got {self.min_cutoff}')
        if not (self.beta >= 0.0 and math.isfinite(self.beta)):
            raise ValueError(f'beta must be >= 0, got {self.beta}')
        if not (self.d_cutoff > 0.0 and math.isfinite(self.d_cutoff)):
            raise ValueError(f'd_cutoff must be a positive finite frequency, got {self.d_cutoff}')


def smoothing_factor(dt: float, cutoff: np.ndarray | float) -> np.ndarray:
    """Exponential-smoothing weight of a first-order low-pass with ``cutoff`` Hz over ``dt`` s.

    ``alpha = dt / (dt + tau)`` with ``tau = 1 / (2 pi cutoff)``; in (0, 1) for dt > 0.
    """
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return dt / (dt + tau)


def _checked_params(min_cutoff, beta, d_cutoff, reset_gap_s
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A filter's parameters as float64 arrays (and the gap as a float), validated."""
    min_cutoff = np.asarray(min_cutoff, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    d_cutoff = np.asarray(d_cutoff, dtype=np.float64)
    if np.any(min_cutoff <= 0) or np.any(d_cutoff <= 0):
        raise ValueError('cutoff frequencies must be positive')
    if np.any(beta < 0):
        raise ValueError('beta must be >= 0')
    if not reset_gap_s > 0:
        raise ValueError(f'reset_gap_s must be positive, got {reset_gap_s}')
    return min_cutoff, beta, d_cutoff, float(reset_gap_s)


class OneEuroFilter:
    """Element-wise One-Euro filter over arrays of a fixed shape.

    ``min_cutoff``, ``beta`` and ``d_cutoff`` may be scalars or arrays broadcastable to the
    signal's shape (e.g. one value for lateral and another for depth coordinates).
    """

    def __init__(self, min_cutoff: float | np.ndarray, beta: float | np.ndarray,
                 d_cutoff: float | np.ndarray = 1.0, reset_gap_s: float = 0.5) -> None:
        self._min_cutoff, self._beta, self._d_cutoff, self._reset_gap_s = _checked_params(
            min_cutoff, beta, d_cutoff, reset_gap_s)
        self._x_hat: np.ndarray | None = None
        self._dx_hat: np.ndarray | None = None
        self._stamp: float | None = None

    @classmethod
    def from_params(cls, params: OneEuroParams, reset_gap_s: float = 0.5) -> OneEuroFilter:
        """A filter with the cutoffs and beta of ``params``."""
        return cls(params.min_cutoff, params.beta, params.d_cutoff, reset_gap_s)

    @property
    def initialized(self) -> bool:
        """Whether the filter holds a state (it has seen a sample since the last reset)."""
        return self._x_hat is not None

    @property
    def last_stamp(self) -> float | None:
        """Stamp of the last accepted sample, seconds (None before the first)."""
        return self._stamp

    def reset(self) -> None:
        """Forget the state; the next sample passes through unchanged."""
        self._x_hat = None
        self._dx_hat = None
        self._stamp = None

    def __call__(self, x: np.ndarray, stamp_s: float) -> np.ndarray:
        """Filter one sample taken at ``stamp_s`` seconds; returns a new float64 array."""
        x = np.asarray(x, dtype=np.float64)
        stamp_s = float(stamp_s)
        if (self._x_hat is None or self._x_hat.shape != x.shape
                or stamp_s - self._stamp > self._reset_gap_s):
            return self._start(x, stamp_s)
        dt = stamp_s - self._stamp
        if not dt > 0.0:
            # Same or older stamp: a repeated message carries no time to filter over.
            return self._x_hat.copy()
        # Speed from the previous *filtered* value, as in the paper's algorithm: it is less
        # noisy than a raw difference and it grows while the output lags, which speeds recovery.
        dx = (x - self._x_hat) / dt
        self._dx_hat = self._dx_hat + smoothing_factor(dt, self._d_cutoff) * (dx - self._dx_hat)
        cutoff = self._min_cutoff + self._beta * np.abs(self._dx_hat)
        self._x_hat = self._x_hat + smoothing_factor(dt, cutoff) * (x - self._x_hat)
        self._stamp = stamp_s
        return self._x_hat.copy()

    def _start(self, x: np.ndarray, stamp_s: float) -> np.ndarray:
        self._x_hat = x.copy()
        self._dx_hat = np.zeros_like(x)
        self._stamp = stamp_s
        return x.copy()


def _normalise_quaternions(q: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.maximum(norm, 1e-12)


class RotationOneEuroFilter:
    """One-Euro filter over unit quaternions (..., 4), (x, y, z, w), one filter per rotation.

    Per rotation: the new sample is first flipped to the hemisphere of the previous output
    (q and -q are the same rotation, and interpolating across hemispheres would pass near the
    zero quaternion); the speed is the geodesic angle to the previous output over dt (rad/s);
    the output moves towards the sample by the One-Euro factor and is re-normalised.
    """

    def __init__(self, min_cutoff: float | np.ndarray, beta: float | np.ndarray,
                 d_cutoff: float | np.ndarray = 1.0, reset_gap_s: float = 0.5) -> None:
        self._min_cutoff, self._beta, self._d_cutoff, self._reset_gap_s = _checked_params(
            min_cutoff, beta, d_cutoff, reset_gap_s)
        self._q_hat: np.ndarray | None = None
        self._speed_hat: np.ndarray | None = None
        self._stamp: float | None = None

    @classmethod
    def from_params(cls, params: OneEuroParams,
                    reset_gap_s: float = 0.5) -> RotationOneEuroFilter:
        """A filter with the cutoffs and beta (per rad/s) of ``params``."""
        return cls(params.min_cutoff, params.beta, params.d_cutoff, reset_gap_s)

    @property
    def initialized(self) -> bool:
        """Whether the filter holds a state."""
        return self._q_hat is not None

    def reset(self) -> None:
        """Forget the state; the next sample passes through (normalised)."""
        self._q_hat = None
        self._speed_hat = None
        self._stamp = None

    def __call__(self, quaternions: np.ndarray, stamp_s: float) -> np.ndarray:
        """Filter (..., 4) quaternions taken at ``stamp_s``; returns unit quaternions (..., 4).

        The returned quaternions are sign-continuous over time (each in the hemisphere of the
        previous output), not standardised to w >= 0.
        """
        q = _normalise_quaternions(np.asarray(quaternions, dtype=np.float64))
        if q.shape[-1:] != (4,):
            raise ValueError(f'expected (..., 4) quaternions, got shape {q.shape}')
        stamp_s = float(stamp_s)
        if (self._q_hat is None or self._q_hat.shape != q.shape
                or stamp_s - self._stamp > self._reset_gap_s):
            self._q_hat = q.copy()
            self._speed_hat = np.zeros(q.shape[:-1])
            self._stamp = stamp_s
            return q.copy()
        dt = stamp_s - self._stamp
        if not dt > 0.0:
            return self._q_hat.copy()
        dot = np.sum(q * self._q_hat, axis=-1)
        q = np.where((dot < 0.0)[..., None], -q, q)
        angle = 2.0 * np.arccos(np.clip(np.abs(dot), 0.0, 1.0))  # geodesic, [0, pi]
        speed = angle / dt
        self._speed_hat = self._speed_hat + smoothing_factor(dt, self._d_cutoff) * (
            speed - self._speed_hat)
        cutoff = self._min_cutoff + self._beta * self._speed_hat
        alpha = smoothing_factor(dt, cutoff)[..., None]
        self._q_hat = _normalise_quaternions(self._q_hat + alpha * (q - self._q_hat))
        self._stamp = stamp_s
        return self._q_hat.copy()
