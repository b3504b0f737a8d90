"""Batched projections: weak perspective, network frame -> original image, pinhole.

Frames:
    * normalised: the padded square network input mapped to [-1, 1] x [-1, 1] (x right,
      y down); the square's left/top edge is -1.
    * original pixels: u right, v down, the original image spanning [0, w] x [0, h].
    * camera: the optical frame, metres, x right, y down, z forward.
"""

from __future__ import annotations

import torch

# pad_info columns, as produced by romp_ros.core.preprocess: [top, bottom, left, right, h, w],
# where bottom = top + h and right = left + w are the image's end rows/columns in the square.
PAD_TOP, PAD_BOTTOM, PAD_LEFT, PAD_RIGHT, PAD_H, PAD_W = range(6)


def project_weak(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Weak-perspective (scaled orthographic) projection of ROMP's camera.

    Args:
        points: (N, J, 3) body-frame points, metres.
        cam: (N, 3) [s, tx, ty].

    Returns:
        (N, J, 2) normalised coordinates: X[:2] * s + (tx, ty).
    """
    scale = cam[:, None, :1]  # (N, 1, 1)
    offset = cam[:, None, 1:3]  # (N, 1, 2)
    return points[..., :2] * scale + offset


def normalised_to_original(points: torch.Tensor, pad_info: torch.Tensor) -> torch.Tensor:
    """Map normalised network-frame coordinates to pixels of each person's original image.

    The square of side L = max(h, w) maps to [0, L]; removing the padding offsets gives
    original-image pixels: u = (x + 1) * L / 2 - left, v = (y + 1) * L / 2 - top.

    Args:
        points: (N, J, 2) normalised coordinates.
        pad_info: (N, 6) per person, or (6,) shared: [top, bottom, left, right, h, w].

    Returns:
        (N, J, 2) pixels, a new tensor.
    """
    info = pad_info.to(device=points.device, dtype=points.dtype)
    if info.dim() == 1:
        info = info.unsqueeze(0)  # (1, 6)
    side = torch.maximum(info[:, PAD_H], info[:, PAD_W])  # (N,)
    offset = torch.stack((info[:, PAD_LEFT], info[:, PAD_TOP]), dim=-1)  # (N, 2)
    return (points + 1.0) * (side / 2.0)[:, None, None] - offset[:, None, :]


def original_to_normalised(pixels: torch.Tensor, pad_info: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalised_to_original` (same argument shapes)."""
    info = pad_info.to(device=pixels.device, dtype=pixels.dtype)
    if info.dim() == 1:
        info = info.unsqueeze(0)
    side = torch.maximum(info[:, PAD_H], info[:, PAD_W])
    offset = torch.stack((info[:, PAD_LEFT], info[:, PAD_TOP]), dim=-1)
    return (pixels + offset[:, None, :]) / (side / 2.0)[:, None, None] - 1.0


def project_perspective(points_cam: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of camera-frame points.

    Points at or behind the camera plane (z <= 0) have no meaningful image; their output is
    inf/NaN or mirrored and must be masked by the caller.

    Args:
        points_cam: (N, J, 3) camera-frame points, metres.
        intrinsics: (N, 3, 3) per person or (3, 3) shared K (upper triangular; skew honoured).

    Returns:
        (N, J, 2) pixels.
    """
    k_mat = intrinsics.to(device=points_cam.device, dtype=points_cam.dtype)
    if k_mat.dim() == 2:
        k_mat = k_mat.unsqueeze(0)  # (1, 3, 3)
    homog = points_cam @ k_mat.transpose(-1, -2)  # (N, J, 3): rows are K @ X
    return homog[..., :2] / homog[..., 2:3]


def intrinsics_matrix(fx, fy, cx, cy, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Batched K from focal lengths and principal points (floats or (N,) tensors).

    Returns:
        (3, 3) when every argument is a scalar, else (N, 3, 3).
    """
    parts = [torch.as_tensor(v, dtype=dtype, device=device) for v in (fx, fy, cx, cy)]
    fx_t, fy_t, cx_t, cy_t = torch.broadcast_tensors(*parts)
    zero, one = torch.zeros_like(fx_t), torch.ones_like(fx_t)
    rows = (torch.stack((fx_t, zero, cx_t), dim=-1),
            torch.stack((zero, fy_t, cy_t), dim=-1),
            torch.stack((zero, zero, one), dim=-1))
    return torch.stack(rows, dim=-2)
