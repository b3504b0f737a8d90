"""Draw the estimated people on the camera image (numpy + OpenCV, after inference).

Meshes are projected with the intrinsics the translations were solved with, shaded by the
facing of each triangle and painted far-to-near (painter's algorithm) per triangle with
``cv2.fillConvexPoly``; back faces are culled. 2D skeletons are drawn on top from the
estimator's own 2D keypoints. Colours match the RViz markers (:func:`person_color`).
"""

from __future__ import annotations

import numpy as np

from romp_ros.core.body.joint_names import SMPL_SKELETON_EDGES
from romp_ros.core.results import FrameResult
from romp_ros.ros.conversions import person_color

MESH_ALPHA = 0.6
MIN_DEPTH_M = 0.05
# Faces are counter-clockwise seen from outside (BodyModel.msg): back faces can be skipped.
CULL_BACK_FACES = True


def _cv2():
    import cv2  # OpenCV is an optional runtime dependency of the overlay only
    return cv2


def project(points: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels (pinhole, z clamped to MIN_DEPTH_M)."""
    z = np.maximum(points[..., 2], MIN_DEPTH_M)
    return np.stack([fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy], axis=-1)


def draw_overlay(pixels: np.ndarray, result: FrameResult, ids, faces: np.ndarray | None,
                 color_order: str = 'rgb') -> np.ndarray:
    """A copy of ``pixels`` (H, W, 3 uint8) with every person's mesh and skeleton drawn.

    Args:
        pixels: the decoded input image.
        result: the estimator's result for it (vertices needed for meshes).
        ids: person ids in result order (colours).
        faces: (F, 3) mesh triangles, or None for skeletons only.
        color_order: channel order of ``pixels`` ('rgb' or 'bgr').
    """
    cv2 = _cv2()
    canvas = np.ascontiguousarray(pixels).copy()
    count = result.num_people
    if count == 0:
        return canvas
    colors = [_ordered(person_color(pid), color_order) for pid in ids]
    verts = result.verts_camera() if faces is not None else None
    if verts is not None:
        _draw_meshes(cv2, canvas, verts, faces, colors, result.intrinsics)
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    for k in range(count):
        points = np.round(result.pj2d_org[k]).astype(np.int64)
        bright = tuple(min(255, c + 60) for c in colors[k])
        for a, b in SMPL_SKELETON_EDGES:
            cv2.line(canvas, tuple(int(v) for v in points[a]), tuple(int(v) for v in points[b]),
                     bright, thickness, cv2.LINE_AA)
    return canvas


def _ordered(rgb: tuple[float, float, float], color_order: str) -> tuple[int, int, int]:
    r, g, b = (int(round(255 * c)) for c in rgb)
    return (r, g, b) if color_order == 'rgb' else (b, g, r)


def _draw_meshes(cv2, canvas: np.ndarray, verts: np.ndarray, faces: np.ndarray, colors,
                 intrinsics) -> None:
    """Paint all people's front-facing triangles far to near, blended into ``canvas``."""
    tri = verts[:, faces]  # (N, F, 3, 3) camera frame
    normals = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])  # (N, F, 3)
    centres = tri.mean(axis=2)  # (N, F, 3)
    # a triangle faces the camera when its normal points back along the viewing ray
    facing = (normals * centres).sum(-1) < 0
    norm = np.linalg.norm(normals, axis=-1) * np.linalg.norm(centres, axis=-1)
    shade = np.clip(-(normals * centres).sum(-1) / np.maximum(norm, 1e-12), 0.0, 1.0)
    visible = (facing if CULL_BACK_FACES else True) & (centres[..., 2] > MIN_DEPTH_M)
    person, face = np.nonzero(visible)
    if person.size == 0:
        return
    order = np.argsort(-centres[person, face, 2], kind='stable')  # far first
    person, face = person[order], face[order]
    pix = project(tri[person, face], intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy)
    pix = np.round(pix * 16).astype(np.int32)  # 4 fractional bits for fillConvexPoly
    light = 0.35 + 0.65 * shade[person, face]
    base = np.asarray(colors, dtype=np.float64)[person]  # (M, 3)
    fill = np.clip(base * light[:, None], 0, 255).astype(np.int64).tolist()
    # one pass: colour in channels 0-2, coverage in channel 3
    layer = np.zeros((*canvas.shape[:2], 4), np.uint8)
    for polygon, color in zip(pix, fill, strict=True):
        cv2.fillConvexPoly(layer, polygon, (*color, 255), cv2.LINE_8, 4)
    covered = layer[:, :, 3] > 0
    blended = MESH_ALPHA * layer[:, :, :3][covered] + (1 - MESH_ALPHA) * canvas[covered]
    canvas[covered] = np.round(blended).astype(np.uint8)
