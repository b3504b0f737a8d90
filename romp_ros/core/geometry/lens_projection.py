"""Batched projection through the CameraInfo lenses in torch, with its Jacobian.

The numpy :class:`~romp_ros.core.geometry.camera_model.CameraModel` describes one camera and is
the package's reference lens (tested against OpenCV). The translation solve needs the same
projection for many people at once, on the tensors' device, and its derivative with respect
to the 3D point: :func:`project_through_lens` gives both, per person, for the two lens
families of ``sensor_msgs/CameraInfo``:

* polynomial (``plumb_bob``, ``rational_polynomial``; an undistorted pinhole is the case
  D = 0): ideal normalised ``(x, y) = (X / Z, Y / Z)``, then the Brown-Conrady radial
  (rational) and tangential terms;
* ``equidistant`` (fisheye): off-axis angle ``theta = atan2(|XY|, Z)`` mapped to
  ``theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)`` along the point's
  direction, so rays of 90 degrees and more off-axis project too.

Pixels: ``u = fx * x_d + cx``, ``v = fy * y_d + cy`` (the package's convention, see
``camera_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from romp_ros.core.geometry.camera_model import CameraModel

# Below this off-axis distance (relative to the point's range) the fisheye uses its on-axis
# limit; the general formula divides by |XY|.
_AXIS_EPS = 1e-9


@dataclass(frozen=True)
class LensBatch:
    """One camera per person, as tensors.

    Attributes:
        k: (N, 4) fx, fy, cx, cy, pixels.
        fisheye: (N,) bool, True for the equidistant model.
        coeffs: (N, 8) polynomial: (k1, k2, p1, p2, k3, k4, k5, k6); fisheye: (k1, k2, k3,
            k4, 0, 0, 0, 0).
    """

    k: torch.Tensor
    fisheye: torch.Tensor
    coeffs: torch.Tensor

    def matrices(self) -> torch.Tensor:
        """(N, 3, 3) K matrices."""
        fx, fy, cx, cy = self.k.unbind(dim=1)
        zero, one = torch.zeros_like(fx), torch.ones_like(fx)
        return torch.stack((torch.stack((fx, zero, cx), -1), torch.stack((zero, fy, cy), -1),
                            torch.stack((zero, zero, one), -1)), dim=-2)


@dataclass(frozen=True)
class LensProjection:
    """Points projected through their person's lens.

    Attributes:
        pixels: (N, J, 2) pixels (meaningless where ``front`` is not positive).
        jacobian: (N, J, 2, 3) d pixels / d point, pixels per metre.
        front: (N, J) how far in front of the camera the point is, metres: its depth Z for
            polynomial lenses (which see only Z > 0), its distance from the camera centre for
            the fisheye (which also sees sideways and slightly backwards).
    """

    pixels: torch.Tensor
    jacobian: torch.Tensor
    front: torch.Tensor


def lens_batch(cameras: Sequence[CameraModel], index: torch.Tensor, *,
               dtype: torch.dtype = torch.float64,
               device: torch.device | str | None = None) -> LensBatch:
    """Per-person lens tensors from a list of cameras and each person's camera index.

    Args:
        cameras: the C cameras.
        index: (N,) int64, each person's camera in ``cameras``.
        dtype, device: of the returned tensors.
    """
    rows_k, rows_fisheye, rows_coeffs = [], [], []
    for cam in cameras:
        rows_k.append(cam.k)
        fisheye = cam.distortion_model == 'equidistant'
        rows_fisheye.append(fisheye)
        d = tuple(cam.d) if cam.distortion_model != 'none' else ()
        if cam.distortion_model == 'plumb_bob':
            d = d + (0.0, 0.0, 0.0)
        rows_coeffs.append(d + (0.0,) * (8 - len(d)))
    index = index.to(device=device, dtype=torch.long)
    table_k = torch.tensor(rows_k, dtype=dtype, device=device).reshape(-1, 4)
    table_fish = torch.tensor(rows_fisheye, dtype=torch.bool, device=device).reshape(-1)
    table_coeffs = torch.tensor(rows_coeffs, dtype=dtype, device=device).reshape(-1, 8)
    return LensBatch(k=table_k[index], fisheye=table_fish[index], coeffs=table_coeffs[index])


def project_through_lens(points: torch.Tensor, lens: LensBatch) -> LensProjection:
    """Project camera-frame points (N, J, 3), metres, through each person's lens.

    Returns:
        :class:`LensProjection` (pixels, Jacobian, how far in front).
    """
    poly_xy, poly_jac = _polynomial(points, lens.coeffs)  # (N, J, 2), (N, J, 2, 3)
    fish_xy, fish_jac = _fisheye(points, lens.coeffs)
    fisheye = lens.fisheye[:, None, None]  # (N, 1, 1)
    xy = torch.where(fisheye, fish_xy, poly_xy)
    jac = torch.where(fisheye[..., None], fish_jac, poly_jac)
    focal = lens.k[:, None, :2]  # (N, 1, 2)
    pixels = xy * focal + lens.k[:, None, 2:]
    jac = jac * focal[..., None]  # row u scaled by fx, row v by fy
    front = torch.where(lens.fisheye[:, None], points.norm(dim=-1), points[..., 2])
    return LensProjection(pixels=pixels, jacobian=jac, front=front)


def _polynomial(points: torch.Tensor, coeffs: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Brown-Conrady lens: normalised distorted points (N, J, 2) and d/d point (N, J, 2, 3)."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (c[:, None] for c in coeffs.unbind(dim=1))  # (N, 1)
    z = points[..., 2]
    safe_z = torch.where(z.abs() > 1e-12, z, torch.ones_like(z))
    x, y = points[..., 0] / safe_z, points[..., 1] / safe_z  # (N, J)
    r2 = x * x + y * y
    num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
    gain = num / den
    d_gain = ((k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)) * den
              - num * (k4 + r2 * (2.0 * k5 + 3.0 * k6 * r2))) / (den * den)  # d gain / d r2
    xd = x * gain + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * gain + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    # 2x2 Jacobian of the distortion in normalised coordinates
    a = gain + 2.0 * x * x * d_gain + 2.0 * p1 * y + 6.0 * p2 * x
    b = 2.0 * x * y * d_gain + 2.0 * p1 * x + 2.0 * p2 * y
    e = gain + 2.0 * y * y * d_gain + 6.0 * p1 * y + 2.0 * p2 * x
    # chained with d(x, y) / d(X, Y, Z) = [[1, 0, -x], [0, 1, -y]] / Z
    inv_z = 1.0 / safe_z
    row_u = torch.stack((a * inv_z, b * inv_z, -(a * x + b * y) * inv_z), dim=-1)
    row_v = torch.stack((b * inv_z, e * inv_z, -(b * x + e * y) * inv_z), dim=-1)
    return torch.stack((xd, yd), dim=-1), torch.stack((row_u, row_v), dim=-2)


def _fisheye(points: torch.Tensor, coeffs: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Equidistant lens: normalised distorted points (N, J, 2) and d/d point (N, J, 2, 3)."""
    k1, k2, k3, k4 = (c[:, None] for c in coeffs[:, :4].unbind(dim=1))  # (N, 1)
    big_x, big_y, big_z = points.unbind(dim=-1)  # (N, J)
    rho2 = big_x * big_x + big_y * big_y
    range2 = rho2 + big_z * big_z
    on_axis = rho2 <= (_AXIS_EPS ** 2) * range2
    rho = torch.where(on_axis, torch.ones_like(rho2), rho2).sqrt()
    theta = torch.atan2(rho2.sqrt(), big_z)
    t2 = theta * theta
    theta_d = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    d_theta_d = 1.0 + t2 * (3.0 * k1 + t2 * (5.0 * k2 + t2 * (7.0 * k3 + t2 * 9.0 * k4)))
    safe_range2 = torch.where(range2 > 0, range2, torch.ones_like(range2))
    # g = theta_d / rho scales (X, Y) to the distorted point
    g = theta_d / rho
    # dg/dX = X * h with h = (theta_d' Z / R^2 - g) / rho^2 (and the same for Y);
    # dg/dZ = -theta_d' / R^2
    h = (d_theta_d * big_z / safe_range2 - g) / (rho * rho)
    g_z = -d_theta_d / safe_range2
    # on the optical axis (Z > 0): g = 1 / Z, h = 0 (g is even in X, Y), dg/dZ = -1 / Z^2
    safe_z = torch.where(big_z.abs() > 0, big_z, torch.ones_like(big_z))
    g = torch.where(on_axis, 1.0 / safe_z, g)
    h = torch.where(on_axis, torch.zeros_like(h), h)
    g_z = torch.where(on_axis, -1.0 / (safe_z * safe_z), g_z)
    xd, yd = g * big_x, g * big_y
    row_u = torch.stack((g + big_x * big_x * h, big_x * big_y * h, big_x * g_z), dim=-1)
    row_v = torch.stack((big_x * big_y * h, g + big_y * big_y * h, big_y * g_z), dim=-1)
    return torch.stack((xd, yd), dim=-1), torch.stack((row_u, row_v), dim=-2)
