"""Visibility of 3D points (joints, vertices) in a rendered image.

Rule: a point is visible when it lies in front of the camera, projects inside the image, and
the surface the renderer kept at its pixel does not hide it, i.e. that surface

* belongs to the point's own mesh, when self-occlusion is not counted (the default: joints
  lie inside their own body, so their own skin is always in front of them), or
* is not nearer than the point by more than ``tol``, or
* is absent (background).

Why ``tol`` = 3 cm by default: depth is sampled at the pixel centre, not at the point's
exact projection, so on a sloped surface the stored depth differs from the surface depth at
the point by up to slope x half a pixel (a few millimetres for people beyond 1 m at
typical focal lengths, more at grazing angles); float error adds micrometres. 3 cm absorbs
that, while a person in front still hides the point: only a surface less than 3 cm in front
of it (a hand resting on someone's shoulder) does not. With ``self_occlusion=True`` (surface
points such as vertices), a vertex on the visible side matches the stored depth within the
same margin, while one on the far side of a limb or torso typically sits 5 cm or more behind.
"""

from __future__ import annotations

import numpy as np
import torch

from romp_ros.core.render.mesh_renderer import RenderResult, intrinsics_tuple

VISIBILITY_TOL_M = 0.03


def points_visible(points_cam: np.ndarray | torch.Tensor,
                   person_of_point: np.ndarray | None, result: RenderResult,
                   k: tuple[float, float, float, float] | np.ndarray, *,
                   tol: float = VISIBILITY_TOL_M, self_occlusion: bool = False) -> np.ndarray:
    """Which points are visible in a render (see the module docstring for the rule).

    Args:
        points_cam: (N, J, 3) metres, camera optical frame: J points of each of N people.
        person_of_point: (N,) or (N, J) int: the mesh index (in the render) that each row /
            point belongs to, -1 for none; None means row n belongs to mesh n.
        result: the render (its depth and person_index maps).
        k: (fx, fy, cx, cy) or 3x3 K the render was made with.
        tol: metres a surface of another mesh (or of the own mesh, with ``self_occlusion``)
            may lie in front of the point without hiding it (>= 0).
        self_occlusion: count the point's own mesh as an occluder too (for surface points;
            leave False for joints, which lie inside their own body).

    Returns:
        (N, J) bool.

    Raises:
        ValueError: wrong shapes, negative tol, unusable K.
    """
    fx, fy, cx, cy = intrinsics_tuple(k)
    if isinstance(points_cam, torch.Tensor):
        points_cam = points_cam.detach().cpu().numpy()
    pts = np.asarray(points_cam, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise ValueError(f'points_cam must have shape (N, J, 3), got {pts.shape}')
    num, num_points = pts.shape[:2]
    if person_of_point is None:
        owner = np.broadcast_to(np.arange(num)[:, None], (num, num_points))
    else:
        owner = np.asarray(person_of_point)
        if owner.shape == (num,):
            owner = owner[:, None]
        if owner.shape not in ((num, 1), (num, num_points)):
            raise ValueError(f'person_of_point must have shape ({num},) or ({num}, '
                             f'{num_points}), got {np.asarray(person_of_point).shape}')
        owner = np.broadcast_to(owner, (num, num_points))
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f'tol={tol} must be a non-negative distance in metres')
    height, width = result.depth.shape
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        u = fx * x / z + cx
        v = fy * y / z + cy
    inside = (np.isfinite(pts).all(axis=2) & (z > 0) & (u >= 0) & (u < width) & (v >= 0)
              & (v < height))
    col = np.where(inside, np.floor(np.where(inside, u, 0)), 0).astype(np.int64)
    row = np.where(inside, np.floor(np.where(inside, v, 0)), 0).astype(np.int64)
    surface = result.depth[row, col].astype(np.float64)  # (N, J), inf for background
    nearest = result.person_index[row, col].astype(np.int64)
    unhidden = surface >= z - tol
    if not self_occlusion:
        unhidden |= (nearest == owner) & (owner >= 0)
    return inside & unhidden
