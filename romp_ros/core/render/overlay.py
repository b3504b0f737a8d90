"""The mesh overlay: estimated people drawn over the camera image, shaded and z-buffered.

Meshes go through :func:`render_meshes` with the image as background, so the nearer person
hides the farther one pixel by pixel (not person by person). The 2D skeleton is the 3D SMPL
joints projected with the same intrinsics; a bone is drawn only where both of its joints are
visible in the render (``points_visible``), so a hidden person's skeleton never shows through
the person in front. Labels (the person ids) sit above each head.

Distorted cameras (``CameraIntrinsics`` with a lens model, e.g. a raw fisheye image): every
vertex and joint is moved along its depth so that the pinhole projection lands where the lens
images it (:func:`through_lens`); triangles stay straight between their corners, which is
exact at the vertices and a sub-pixel approximation along SMPL's small triangles.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math

import numpy as np

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS, SMPL_SKELETON_EDGES
from romp_ros.core.render.drawing import cv2_module, put_label
from romp_ros.core.render.id_colors import id_colors, to_bytes
from romp_ros.core.render.mesh_renderer import render_meshes
from romp_ros.core.render.shading import LightSpec
from romp_ros.core.render.visibility import points_visible
from romp_ros.core.results import FrameResult

LOG = logging.getLogger(__name__)
HEAD_JOINT = 15
NEAR_M = 0.05


@dataclass(frozen=True)
class OverlayStyle:
    """How the overlay looks.

    Attributes:
        alpha: mesh opacity over the image, 0..1.
        skeleton: draw the 24-joint skeleton.
        labels: draw each person's id above the head.
        supersample: anti-aliasing sub-samples per pixel side (cost ~ s^2; 1 is camera-rate).
        line_px: skeleton line width in pixels; None scales with the image (1 per 300 px).
        light: the mesh lighting; None is :class:`LightSpec`'s default.
        keypoints: where the skeleton is drawn: 'projected' (the 3D joints through the
            intrinsics, consistent with the mesh) or 'estimated' (the estimator's 2D
            keypoints ``pj2d_org``). Either way a bone shows only where the render says
            both of its joints are visible.
    """

    alpha: float = 0.7
    skeleton: bool = True
    labels: bool = True
    supersample: int = 1
    line_px: int | None = None
    light: LightSpec | None = None
    keypoints: str = 'projected'

    def __post_init__(self) -> None:
        if self.keypoints not in ('projected', 'estimated'):
            raise ValueError(f"keypoints must be 'projected' or 'estimated', got "
                             f'{self.keypoints!r}')
        if not (math.isfinite(self.alpha) and 0.0 <= self.alpha <= 1.0):
            raise ValueError(f'alpha={self.alpha} must be within [0, 1]')
        if not (isinstance(self.supersample, int) and self.supersample >= 1):
            raise ValueError(f'supersample must be an integer >= 1, got {self.supersample!r}')
        if self.line_px is not None and self.line_px < 1:
            raise ValueError(f'line_px must be >= 1, got {self.line_px}')


def draw_people_overlay(image: np.ndarray, result: FrameResult, faces: np.ndarray | None,
                        ids=None, *, colors: np.ndarray | None = None,
                        style: OverlayStyle = OverlayStyle(),
                        color_order: str = 'rgb') -> np.ndarray:
    """A copy of ``image`` with every person's shaded mesh, skeleton and id drawn.

    Args:
        image: (H, W, 3) uint8, the frame the result belongs to.
        result: the estimator's result (meshes need ``result.verts``).
        faces: (F, 3) mesh triangles (``Estimator.faces``), or None for skeletons only.
        ids: N person ids (colours, labels); None numbers people 0..N-1 in result order.
        colors: (N, 3) RGB 0..1 overriding the id colours.
        style: :class:`OverlayStyle`.
        color_order: channel order of ``image`` and of the returned copy ('rgb' or 'bgr').

    Returns:
        (H, W, 3) uint8 in ``color_order``.
    """
    if color_order not in ('rgb', 'bgr'):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f'image must be (H, W, 3) uint8, got {pixels.shape} {pixels.dtype}')
    rgb = np.ascontiguousarray(pixels[..., ::-1] if color_order == 'bgr' else pixels)
    count = result.num_people
    ids = np.arange(count) if ids is None else np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.shape[0] != count:
        raise ValueError(f'{ids.shape[0]} ids for {count} people')
    palette = id_colors(ids) if colors is None else np.asarray(colors, np.float32)
    k = result.intrinsics
    intrinsics = (k.fx, k.fy, k.cx, k.cy)
    joints = through_lens(result.joints_camera()[:, :NUM_SMPL_JOINTS], k)  # (N, 24, 3)
    canvas = rgb.copy()
    visible = joints[..., 2] > NEAR_M  # (N, 24)
    verts = result.verts_camera() if faces is not None else None
    if verts is not None:
        verts = through_lens(verts, k).astype(np.float32)
    if count and verts is not None:
        finite = np.isfinite(verts).all(axis=(1, 2))
        if not finite.all():
            LOG.debug('overlay: %d mesh(es) with NaN/inf vertices not drawn',
                      int((~finite).sum()))
        drawn = np.flatnonzero(finite)
        render = render_meshes(verts[drawn], faces, intrinsics, rgb.shape[:2],
                               colors=palette[drawn], background=rgb, light=style.light,
                               alpha=style.alpha, supersample=style.supersample)
        canvas = render.image
        owner = np.full(count, -1, np.int64)
        owner[drawn] = np.arange(drawn.size)
        visible &= points_visible(joints, owner, render, intrinsics)
    if count and (style.skeleton or style.labels):
        pixels = (project(joints, intrinsics) if style.keypoints == 'projected'
                  else np.asarray(result.pj2d_org[:, :NUM_SMPL_JOINTS], np.float64))
        _draw_skeletons_and_labels(canvas, joints, pixels, visible, intrinsics, ids, palette,
                                   style)
    return np.ascontiguousarray(canvas[..., ::-1]) if color_order == 'bgr' else canvas


def through_lens(points: np.ndarray, camera) -> np.ndarray:
    """(..., 3) camera-frame points moved so that a pinhole K images them through the lens.

    ``camera`` is a ``CameraIntrinsics``; without lens distortion the points come back
    unchanged (as float64). Otherwise each point keeps its depth z and gets the x, y whose
    pinhole projection is the lens's pixel; points the lens cannot image stay where they are.
    """
    points = np.asarray(points, dtype=np.float64)
    if not getattr(camera, 'is_distorted', False):
        return points
    pixels = camera.project(points)  # (..., 2) through the lens
    z = points[..., 2:3]
    moved = np.concatenate([(pixels - (camera.cx, camera.cy)) / (camera.fx, camera.fy) * z, z],
                           axis=-1)
    return np.where(np.isfinite(moved).all(axis=-1, keepdims=True), moved, points)


def project(points: np.ndarray, intrinsics: tuple[float, float, float, float]) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixel coordinates (u, v); z clamped to 5 cm."""
    fx, fy, cx, cy = intrinsics
    z = np.maximum(points[..., 2], NEAR_M)
    return np.stack([fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy], axis=-1)


def _draw_skeletons_and_labels(canvas: np.ndarray, joints: np.ndarray, pixels: np.ndarray,
                               visible: np.ndarray, intrinsics, ids: np.ndarray,
                               palette: np.ndarray, style: OverlayStyle) -> None:
    """Bones between visible joints at ``pixels`` (N, 24, 2); ids above the heads."""
    cv2 = cv2_module()
    height, width = canvas.shape[:2]
    thickness = style.line_px or max(1, round(min(height, width) / 300))
    # cv2 wants integer pixel coordinates; 4 fractional bits keep sub-pixel positions
    fixed = np.round(np.clip(pixels, -1e5, 1e5) * 16).astype(np.int64)
    for n in range(joints.shape[0]):
        color = to_bytes(palette[n], 1.25)
        if style.skeleton:
            for a, b in SMPL_SKELETON_EDGES:
                if visible[n, a] and visible[n, b]:
                    cv2.line(canvas, tuple(int(v) for v in fixed[n, a]),
                             tuple(int(v) for v in fixed[n, b]), color, thickness,
                             cv2.LINE_AA, 4)
        if style.labels and joints[n, HEAD_JOINT, 2] > NEAR_M:
            u, v = project(joints[n, HEAD_JOINT], intrinsics)
            lift = 0.25 * intrinsics[1] / joints[n, HEAD_JOINT, 2]  # 25 cm above the head
            if 0 <= u < width and 0 <= v - lift < height:
                put_label(canvas, str(int(ids[n])), (u, v - lift), to_bytes(palette[n]),
                          scale=max(0.4, min(height, width) / 900))
