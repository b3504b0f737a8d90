"""A calibrated camera as ``sensor_msgs/CameraInfo`` describes it: K plus lens distortion.

Models (the CameraInfo ``distortion_model`` strings, coefficient order of ``D``):

=====================  ==========================================  ==========================
model                  D                                           OpenCV equivalent
=====================  ==========================================  ==========================
``none``               ()                                          ideal pinhole
``plumb_bob``          (k1, k2, p1, p2, k3)                        ``cv2.projectPoints``, 5
``rational_polynomial``  (k1, k2, p1, p2, k3, k4, k5, k6)          ``cv2.projectPoints``, 8
``equidistant``        (k1, k2, k3, k4) (fisheye)                  ``cv2.fisheye``
=====================  ==========================================  ==========================

Coordinates:

* **camera**: metres in the optical frame (x right, y down, z forward).
* **normalised**: ``(x / z, y / z)`` of the ideal pinhole ("ideal") or after the lens
  ("distorted"): the distortion acts on these.
* **pixels**: ``u = fx * x_distorted + cx``, ``v = fy * y_distorted + cy``, u right, v down.
  The package treats the image as spanning [0, W] x [0, H] (pixel centres at i + 0.5) and
  uses a CameraInfo K as is, like ``romp_ros.core.geometry.intrinsics`` (the half-pixel
  difference to ROS's centre-at-integer convention is ignored everywhere, consistently).

Everything is numpy float64 and vectorised over any leading shape.
:meth:`CameraModel.undistort_points` inverts the lens by damped Newton iterations with the
analytic Jacobian, which converges at the corners of 90-120 degree lenses where OpenCV's default
five fixed-point iterations do not.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Sequence

import numpy as np

DISTORTION_MODELS = ('none', 'plumb_bob', 'rational_polynomial', 'equidistant')
NUM_COEFFICIENTS = {'none': 0, 'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
# Other spellings met in CameraInfo messages and calibration files.
_ALIASES = {'': 'none', 'fisheye': 'equidistant', 'pinhole': 'none'}
_NEWTON_ITERATIONS = 30
_NEWTON_TOL = 1e-22  # squared residual, normalised units: 1e-11, i.e. ~1e-8 px


class CameraModelError(ValueError):
    """An unusable camera description; the message names the value and the fix."""


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera with optional lens distortion (the contents of a CameraInfo).

    Attributes:
        width, height: image size, pixels.
        k: (fx, fy, cx, cy), pixels.
        distortion_model: one of :data:`DISTORTION_MODELS` ('fisheye' and '' are accepted
            as 'equidistant' and 'none').
        d: the distortion coefficients in CameraInfo order; shorter tuples of plumb_bob (4:
            no k3) are padded with zeros, trailing zeros beyond the model's count dropped.
    """

    width: int
    height: int
    k: tuple[float, float, float, float]
    distortion_model: str = 'none'
    d: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraModelError(f'camera size {self.width}x{self.height} must be positive')
        k = tuple(float(v) for v in self.k)
        if len(k) != 4 or not all(math.isfinite(v) for v in k):
            raise CameraModelError(f'camera k={self.k!r} must be 4 finite numbers '
                                   '(fx, fy, cx, cy)')
        if k[0] <= 0 or k[1] <= 0:
            raise CameraModelError(f'camera focal lengths fx={k[0]:g}, fy={k[1]:g} must be '
                                   'positive (an all-zero K means "not calibrated")')
        model = _ALIASES.get(self.distortion_model, self.distortion_model)
        if model not in DISTORTION_MODELS:
            raise CameraModelError(f'distortion_model={self.distortion_model!r} is not '
                                   f'supported; choose one of {list(DISTORTION_MODELS)}')
        d = _normalised_coefficients(model, tuple(float(v) for v in self.d))
        object.__setattr__(self, 'width', int(self.width))
        object.__setattr__(self, 'height', int(self.height))
        object.__setattr__(self, 'k', k)
        object.__setattr__(self, 'distortion_model', model)
        object.__setattr__(self, 'd', d)

    # ----------------------------------------------------------------------------- building

    @classmethod
    def pinhole_from_fov(cls, width: int, height: int, hfov_deg: float) -> 'CameraModel':
        """An ideal pinhole with square pixels, centred, of horizontal field of view hfov."""
        if not 0.0 < hfov_deg < 180.0:
            raise CameraModelError(f'horizontal field of view {hfov_deg} must be in (0, 180) '
                                   'degrees for a pinhole')
        f = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, (f, f, width / 2.0, height / 2.0))

    @classmethod
    def from_camera_info_fields(cls, width: int, height: int, k: Sequence[float],
                                distortion_model: str, d: Sequence[float]) -> 'CameraModel':
        """Build from the fields of a ``sensor_msgs/CameraInfo``.

        Args:
            width, height: ``CameraInfo.width`` / ``height``.
            k: the 9 row-major entries of ``CameraInfo.k``.
            distortion_model: ``CameraInfo.distortion_model`` ('' = none when D is all zero).
            d: ``CameraInfo.d``.

        Raises:
            CameraModelError: K of the wrong length, non-finite or uncalibrated (zero focal
                lengths), skewed, an unknown model, D of the wrong length, or D non-zero
                with an empty distortion_model.
        """
        values = [float(v) for v in k]
        if len(values) != 9:
            raise CameraModelError(f'CameraInfo K has {len(values)} values, expected 9')
        if not all(math.isfinite(v) for v in values):
            raise CameraModelError('CameraInfo K contains NaN or infinite values')
        if abs(values[1]) > 1e-9 * max(abs(values[0]), 1.0):
            raise CameraModelError(f'CameraInfo K has skew {values[1]:g}; skewed pixels are not '
                                   'supported')
        coefficients = tuple(float(v) for v in d)
        if not distortion_model and any(coefficients):
            raise CameraModelError('CameraInfo distortion_model is empty but D has non-zero '
                                   "coefficients; set it (e.g. 'plumb_bob')")
        return cls(int(width), int(height), (values[0], values[4], values[2], values[5]),
                   distortion_model or 'none', coefficients)

    def camera_info_fields(self) -> dict[str, Any]:
        """The CameraInfo fields of this camera: width, height, distortion_model, d, k, r, p.

        R is the identity (a monocular camera) and P = [K | 0]; images carry the lens
        distortion, so consumers undistort with K and D.
        """
        fx, fy, cx, cy = self.k
        return {'width': self.width, 'height': self.height,
                'distortion_model': 'plumb_bob' if self.distortion_model == 'none'
                else self.distortion_model,
                'd': list(self.d) if self.distortion_model != 'none' else [0.0] * 5,
                'k': [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                'r': [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                'p': [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]}

    # ------------------------------------------------------------------------------ queries

    @property
    def is_distorted(self) -> bool:
        """Whether the lens differs from the ideal pinhole.

        True for a polynomial model with a non-zero D, and always for 'equidistant': a fisheye
        with D = 0 maps angles linearly (r = f * theta), not like a pinhole (r = f * tan theta).
        """
        if self.distortion_model == 'equidistant':
            return True
        return self.distortion_model != 'none' and any(self.d)

    def matrix(self) -> np.ndarray:
        """The 3x3 K matrix (float64)."""
        fx, fy, cx, cy = self.k
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) normalised (distorted) coordinates -> (..., 2) pixels."""
        fx, fy, cx, cy = self.k
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([fx * xy[..., 0] + cx, fy * xy[..., 1] + cy], axis=-1)

    def to_normalised(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) normalised (distorted) coordinates."""
        fx, fy, cx, cy = self.k
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy], axis=-1)

    # --------------------------------------------------------------------------- the lens

    def distort_points(self, xy: np.ndarray) -> np.ndarray:
        """Ideal normalised coordinates (..., 2) -> distorted normalised coordinates (..., 2).

        For 'equidistant' the ideal point (x, y) is the ray (x, y, 1): only rays in front of
        the camera (under 90 degrees off-axis) can be given this way; :meth:`project` takes
        3D points and handles wider rays.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if not self.is_distorted:
            return xy.copy()
        if self.distortion_model == 'equidistant':
            rho = np.hypot(xy[..., 0], xy[..., 1])
            return _fisheye_from_angle(self.d, np.arctan(rho), rho, xy)
        return _polynomial_distort(self.d, xy)[0]

    def undistort_points(self, xy_distorted: np.ndarray) -> np.ndarray:
        """Distorted normalised coordinates (..., 2) -> ideal normalised coordinates (..., 2).

        Damped Newton iterations with the analytic Jacobian, starting at the distorted point
        (``_NEWTON_ITERATIONS`` at most, until the residual is below 1e-11 normalised units,
        about 1e-8 px). Points the lens cannot produce (beyond the
        radius where the distortion folds back) keep the best estimate; fisheye rays at 90
        degrees or more off-axis have no ideal pinhole coordinates and give NaN.
        """
        xy_d = np.asarray(xy_distorted, dtype=np.float64)
        if not self.is_distorted:
            return xy_d.copy()
        if self.distortion_model == 'equidistant':
            return _fisheye_undistort(self.d, xy_d)
        return _polynomial_undistort(self.d, xy_d)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points, metres -> (..., 2) pixels through the lens.

        Pinhole / plumb_bob / rational_polynomial: points with z <= 0 (at or behind the
        camera) give NaN. Equidistant: the off-axis angle is atan2(|xy|, z), so rays up to
        180 degrees project (only the optical axis behind the camera, z < 0 and xy = 0, is NaN).
        """
        points = np.asarray(points_cam, dtype=np.float64)
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        if self.distortion_model == 'equidistant' and self.is_distorted:
            rho = np.hypot(x, y)
            theta = np.arctan2(rho, z)
            behind_axis = (rho == 0.0) & (z < 0.0)
            xy_d = _fisheye_from_angle(self.d, theta, rho, np.stack([x, y], axis=-1))
            xy_d[behind_axis] = np.nan
            return self.to_pixels(xy_d)
        with np.errstate(divide='ignore', invalid='ignore'):
            safe_z = np.where(z > 0.0, z, np.nan)
            ideal = np.stack([x / safe_z, y / safe_z], axis=-1)
        return self.to_pixels(self.distort_points(ideal))

    def undistort_pixels(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixels of this camera -> (..., 2) pixels of its ideal pinhole (same K)."""
        return self.to_pixels(self.undistort_points(self.to_normalised(uv)))

    def pixel_rays(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 3) unit rays in the camera frame (wide fisheye rays too)."""
        xy_d = self.to_normalised(uv)
        if self.distortion_model == 'equidistant' and self.is_distorted:
            theta_d = np.hypot(xy_d[..., 0], xy_d[..., 1])
            theta = _fisheye_angle(self.d, theta_d)
            with np.errstate(divide='ignore', invalid='ignore'):
                scale = np.where(theta_d > 0.0, np.sin(theta) / np.where(theta_d > 0, theta_d,
                                                                          1.0), 0.0)
            rays = np.stack([xy_d[..., 0] * scale, xy_d[..., 1] * scale, np.cos(theta)], -1)
            return rays
        ideal = self.undistort_points(xy_d)
        rays = np.concatenate([ideal, np.ones(ideal.shape[:-1] + (1,))], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def radial_monotonic_up_to(self, max_radius: float, samples: int = 2000) -> bool:
        """Whether the lens maps ideal normalised radii [0, max_radius] one-to-one.

        Polynomial models fold back beyond some radius (the image of far-off points lands
        inside again); a calibration is only valid where the map keeps increasing. For the
        fisheye, ``max_radius`` is the off-axis angle in radians.
        """
        if not self.is_distorted:
            return True
        r = np.linspace(0.0, float(max_radius), samples)
        if self.distortion_model == 'equidistant':
            mapped = _fisheye_poly(self.d, r)
        else:
            along_x = np.stack([r, np.zeros_like(r)], axis=-1)
            along_diag = np.stack([r, r], axis=-1) / math.sqrt(2.0)
            mapped = np.minimum(
                np.linalg.norm(_polynomial_distort(self.d, along_x)[0], axis=-1),
                np.linalg.norm(_polynomial_distort(self.d, along_diag)[0], axis=-1))
        return bool(np.all(np.diff(mapped) > 0.0))


# ----------------------------------------------------------------------------------- helpers

def _normalised_coefficients(model: str, d: tuple[float, ...]) -> tuple[float, ...]:
    """D padded / trimmed to the model's count (CameraModelError when it does not fit)."""
    if not all(math.isfinite(v) for v in d):
        raise CameraModelError(f'distortion coefficients {d} must be finite')
    count = NUM_COEFFICIENTS[model]
    if model == 'none':
        if any(d):
            raise CameraModelError(f"distortion_model 'none' but D={d} is not zero; name the "
                                   'model (plumb_bob, rational_polynomial or equidistant)')
        return ()
    if any(d[count:]):
        raise CameraModelError(f'{model} takes {count} distortion coefficients, got {len(d)} '
                               f'with non-zero extras {d[count:]}')
    d = d[:count]
    shortest = 4 if model == 'plumb_bob' else count
    if len(d) < shortest and any(d):
        raise CameraModelError(f'{model} takes {count} distortion coefficients '
                               f'({_COEFFICIENT_NAMES[model]}), got {len(d)}')
    return d + (0.0,) * (count - len(d))


_COEFFICIENT_NAMES = {'plumb_bob': 'k1 k2 p1 p2 k3',
                      'rational_polynomial': 'k1 k2 p1 p2 k3 k4 k5 k6',
                      'equidistant': 'k1 k2 k3 k4'}


def _rational_terms(d: tuple[float, ...]) -> tuple[float, ...]:
    """(k1, k2, k3, k4, k5, k6, p1, p2) of a plumb_bob or rational_polynomial D."""
    k1, k2, p1, p2, k3 = d[:5]
    k4, k5, k6 = d[5:8] if len(d) == 8 else (0.0, 0.0, 0.0)
    return k1, k2, k3, k4, k5, k6, p1, p2


def _polynomial_distort(d: tuple[float, ...],
                        xy: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Brown-Conrady (plumb_bob / rational) lens: distorted points (..., 2) and the Jacobian.

    Returns the distorted points and the four Jacobian entries (dxd/dx, dxd/dy, dyd/dx,
    dyd/dy), each of the leading shape.
    """
    k1, k2, k3, k4, k5, k6, p1, p2 = _rational_terms(d)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
    gain = num / den
    # d(gain)/d(r2), for the Jacobian
    d_num = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)
    d_den = k4 + r2 * (2.0 * k5 + 3.0 * k6 * r2)
    d_gain = (d_num * den - num * d_den) / (den * den)
    xd = x * gain + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * gain + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    cross = 2.0 * x * y * d_gain + 2.0 * p1 * x + 2.0 * p2 * y
    jac = (gain + 2.0 * x * x * d_gain + 2.0 * p1 * y + 6.0 * p2 * x,
           cross,
           cross,
           gain + 2.0 * y * y * d_gain + 6.0 * p1 * y + 2.0 * p2 * x)
    return np.stack([xd, yd], axis=-1), jac


def _polynomial_undistort(d: tuple[float, ...], xy_d: np.ndarray) -> np.ndarray:
    xy = xy_d.copy()
    residual = _polynomial_distort(d, xy)[0] - xy_d
    err = np.sum(residual ** 2, axis=-1)
    for _ in range(_NEWTON_ITERATIONS):
        active = err > _NEWTON_TOL
        if not active.any():
            break
        _, (a, b, c, e) = _polynomial_distort(d, xy)
        det = a * e - b * c
        det = np.where(np.abs(det) > 1e-12, det, 1e-12)
        step = np.stack([(e * residual[..., 0] - b * residual[..., 1]) / det,
                         (a * residual[..., 1] - c * residual[..., 0]) / det], axis=-1)
        step[~active] = 0.0
        # Backtrack where the full step does not reduce the residual (far outside the lens's
        # valid radius the map is not invertible; keep the best point found).
        scale = np.ones(err.shape)
        for _ in range(8):
            candidate = xy - step * scale[..., None]
            cand_res = _polynomial_distort(d, candidate)[0] - xy_d
            cand_err = np.sum(cand_res ** 2, axis=-1)
            worse = active & ~(cand_err < err)
            if not worse.any():
                break
            scale = np.where(worse, scale * 0.5, scale)
        better = active & (cand_err < err)
        xy = np.where(better[..., None], candidate, xy)
        residual = np.where(better[..., None], cand_res, residual)
        err = np.where(better, cand_err, err)
    return xy


def _fisheye_poly(d: tuple[float, ...], theta: np.ndarray) -> np.ndarray:
    k1, k2, k3, k4 = d
    t2 = theta * theta
    return theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))


def _fisheye_from_angle(d: tuple[float, ...], theta: np.ndarray, rho: np.ndarray,
                        xy: np.ndarray) -> np.ndarray:
    """Distorted normalised points of rays at off-axis angle theta along direction xy/rho."""
    theta_d = _fisheye_poly(d, theta)
    with np.errstate(divide='ignore', invalid='ignore'):
        scale = np.where(rho > 0.0, theta_d / np.where(rho > 0.0, rho, 1.0), 1.0)
    return xy * scale[..., None]


def _fisheye_angle(d: tuple[float, ...], theta_d: np.ndarray) -> np.ndarray:
    """Invert theta_d = theta (1 + k1 theta^2 + ...) by Newton (theta >= 0)."""
    k1, k2, k3, k4 = d
    theta = theta_d.copy()
    for _ in range(_NEWTON_ITERATIONS):
        t2 = theta * theta
        f = _fisheye_poly(d, theta) - theta_d
        df = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
        step = f / np.where(np.abs(df) > 1e-12, df, 1e-12)
        theta = np.clip(theta - step, 0.0, None)
        if np.all(np.abs(step) < 1e-15):
            break
    return theta


def _fisheye_undistort(d: tuple[float, ...], xy_d: np.ndarray) -> np.ndarray:
    theta_d = np.hypot(xy_d[..., 0], xy_d[..., 1])
    theta = _fisheye_angle(d, theta_d)
    with np.errstate(divide='ignore', invalid='ignore'):
        scale = np.where(theta_d > 0.0, np.tan(theta) / np.where(theta_d > 0.0, theta_d, 1.0),
                         1.0)
        scale = np.where(theta < math.pi / 2.0, scale, np.nan)
    return xy_d * scale[..., None]
