"""The camera of a synthetic scene: lens, mounting over the ground, and the lens warp.

Lenses are sampled per :class:`~romp_ros.synthetic.scene_spec.SceneSpec` and kept only when
they are one-to-one well beyond the image corners; people are rendered on a pinhole canvas that
covers everything the lens sees, which :class:`LensWarp` then warps through the lens.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math

import cv2
import numpy as np

from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.synthetic import poses
from romp_ros.synthetic.scene_spec import SceneSpec

LOG = logging.getLogger(__name__)

_CANVAS_FACTOR = 2.5  # the lens canvas is at most this many times the image size per side
_CANVAS_MARGIN_PX = 2
_CORNER_RADIUS_MARGIN = 1.3  # the lens must be one-to-one this far beyond the image corners


@dataclass(frozen=True)
class CameraMount:
    """Where the camera sits over the ground.

    ``height_m`` above the ground, pitched down by ``pitch`` and rolled by ``roll`` (radians);
    see :func:`romp_ros.synthetic.poses.camera_from_level`.
    """

    height_m: float
    pitch: float
    roll: float

    def cam_from_level(self) -> np.ndarray:
        """(3, 3) rotation: level frame (y down, z forward horizontal) -> camera frame."""
        return poses.camera_from_level(self.pitch, self.roll)


def sample_camera(rng: np.random.Generator, spec: SceneSpec) -> CameraModel:
    """A random camera of the spec: field of view, principal point, maybe a lens.

    A sampled lens is kept only if it is one-to-one to 1.3x beyond the image corners (so
    every image point has one ray) and, for fisheyes, the corners are under 80 degrees off
    axis (so a pinhole canvas can cover them); otherwise it is drawn again.
    """
    w, h = spec.width, spec.height
    hfov = math.radians(rng.uniform(*spec.hfov_deg))
    cx = w / 2.0 + rng.normal(0.0, 0.01 * w)
    cy = h / 2.0 + rng.normal(0.0, 0.01 * h)
    aspect = 1.0 + rng.normal(0.0, 0.004)
    distorted = rng.random() < spec.distortion_prob
    fisheye = distorted and (rng.random() < spec.fisheye_share or hfov > math.radians(120))
    rational = rng.random() < 0.3
    for _ in range(30):
        if fisheye:
            d = (rng.uniform(-0.05, 0.08), rng.uniform(-0.03, 0.02), rng.uniform(-0.01, 0.01),
                 rng.uniform(-0.004, 0.004))
            theta = hfov / 2.0
            theta_d = theta * (1 + sum(c * theta ** (2 * i + 2) for i, c in enumerate(d)))
            f = (w / 2.0) / theta_d
            cam = CameraModel(w, h, (f, f * aspect, cx, cy), 'equidistant', d)
        else:
            f = (w / 2.0) / math.tan(hfov / 2.0)
            k = (f, f * aspect, cx, cy)
            if not distorted:
                return CameraModel(w, h, k)
            k1 = rng.uniform(-0.35, 0.05)
            k2 = rng.uniform(0.0, 0.12) if k1 < 0 else rng.uniform(-0.02, 0.02)
            p1, p2 = rng.normal(0.0, 0.0015, 2)
            if rational:
                k4, k5, k6 = rng.uniform(0.0, 1.2), rng.uniform(0.0, 0.3), rng.uniform(0, 0.05)
                d = (k1 + k4, k2 + k5, p1, p2, k6 + rng.uniform(-0.01, 0.01), k4, k5, k6)
                cam = CameraModel(w, h, k, 'rational_polynomial', d)
            else:
                cam = CameraModel(w, h, k, 'plumb_bob', (k1, k2, p1, p2, 0.0))
        if _lens_is_usable(cam):
            return cam
    LOG.debug('no usable lens drawn in 30 tries; using an ideal pinhole')
    f = (w / 2.0) / math.tan(min(hfov, math.radians(120)) / 2.0)
    return CameraModel(w, h, (f, f * aspect, cx, cy))


def _border_pixels(width: int, height: int, per_side: int = 64) -> np.ndarray:
    """(4 * per_side, 2) pixels along the image border, corners included."""
    t = np.linspace(0.0, 1.0, per_side)
    top = np.stack([t * width, np.zeros_like(t)], 1)
    bottom = np.stack([t * width, np.full_like(t, height)], 1)
    left = np.stack([np.zeros_like(t), t * height], 1)
    right = np.stack([np.full_like(t, width), t * height], 1)
    return np.concatenate([top, bottom, left, right])


def _corner_extent(cam: CameraModel) -> float:
    """Largest off-axis extent of the image border: ideal radius, or angle for fisheyes."""
    rays = cam.pixel_rays(_border_pixels(cam.width, cam.height))
    if cam.distortion_model == 'equidistant':
        return float(np.arccos(np.clip(rays[:, 2], -1.0, 1.0)).max())
    return float(np.hypot(rays[:, 0] / rays[:, 2], rays[:, 1] / rays[:, 2]).max())


def _lens_is_usable(cam: CameraModel) -> bool:
    extent = _corner_extent(cam)
    if not math.isfinite(extent):
        return False
    if cam.distortion_model == 'equidistant' and extent > math.radians(80):
        return False
    if not cam.radial_monotonic_up_to(extent * _CORNER_RADIUS_MARGIN):
        return False
    # the inverse must reproduce the border (no point beyond the fold-back radius)
    border = _border_pixels(cam.width, cam.height)
    back = cam.project(cam.pixel_rays(border))
    return bool(np.all(np.abs(back - border) < 1e-3))


def sample_mount(rng: np.random.Generator, spec: SceneSpec) -> CameraMount:
    """A random camera height, pitch and roll within the spec."""
    roll = math.radians(spec.camera_roll_deg)
    return CameraMount(height_m=float(rng.uniform(*spec.camera_height_m)),
                       pitch=math.radians(rng.uniform(*spec.camera_pitch_deg)),
                       roll=float(np.clip(rng.normal(0.0, roll / 2.0), -roll, roll)))


@dataclass(frozen=True)
class LensWarp:
    """The pinhole canvas a camera's image is rendered on, and the warp through the lens.

    Attributes:
        camera: the real camera.
        canvas_k: (fx, fy, cx, cy) of the canvas.
        canvas_size: (H, W) of the canvas.
        map_x, map_y: (H, W) float32 ``cv2.remap`` maps, image pixel -> canvas array
            coordinates; None when the camera is an ideal pinhole (canvas = image).
        valid_extent: points farther off-axis than this (ideal radius, or angle for fisheyes)
            cannot be imaged reliably (the lens model folds back there); inf for a pinhole.
    """

    camera: CameraModel
    canvas_k: tuple[float, float, float, float]
    canvas_size: tuple[int, int]
    map_x: np.ndarray | None
    map_y: np.ndarray | None
    valid_extent: float

    @classmethod
    def for_camera(cls, cam: CameraModel) -> 'LensWarp':
        """Build the canvas covering everything the lens sees, and the remap tables."""
        if not cam.is_distorted:
            return cls(cam, cam.k, (cam.height, cam.width), None, None, math.inf)
        fx, fy = cam.k[:2]
        rays = cam.pixel_rays(_border_pixels(cam.width, cam.height, 256))
        ideal = rays[:, :2] / rays[:, 2:3]
        (xmin, ymin), (xmax, ymax) = ideal.min(0), ideal.max(0)
        scale = min(1.0, _CANVAS_FACTOR * cam.width / ((xmax - xmin) * fx),
                    _CANVAS_FACTOR * cam.height / ((ymax - ymin) * fy))
        cfx, cfy = fx * scale, fy * scale
        width = int(math.ceil((xmax - xmin) * cfx)) + 2 * _CANVAS_MARGIN_PX
        height = int(math.ceil((ymax - ymin) * cfy)) + 2 * _CANVAS_MARGIN_PX
        k = (cfx, cfy, _CANVAS_MARGIN_PX - xmin * cfx, _CANVAS_MARGIN_PX - ymin * cfy)
        # every image pixel centre, undistorted, located on the canvas
        vv, uu = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64) + 0.5
        xy = cam.undistort_points(cam.to_normalised(np.stack([uu, vv], axis=-1)))
        map_x = (k[0] * xy[..., 0] + k[2] - 0.5).astype(np.float32)
        map_y = (k[1] * xy[..., 1] + k[3] - 0.5).astype(np.float32)
        extent = _corner_extent(cam) * _CORNER_RADIUS_MARGIN
        return cls(cam, k, (height, width), map_x, map_y, extent)

    def imageable(self, points_cam: np.ndarray) -> np.ndarray:
        """(...) bool: in front of the lens and within its valid field."""
        x, y, z = points_cam[..., 0], points_cam[..., 1], points_cam[..., 2]
        if self.camera.distortion_model == 'equidistant':
            return np.arctan2(np.hypot(x, y), z) < self.valid_extent
        with np.errstate(divide='ignore', invalid='ignore'):
            radius = np.hypot(x, y) / z
        return (z > 1e-6) & (radius < self.valid_extent)

    def canvas_rays(self) -> np.ndarray:
        """(H, W, 3) unit rays of the canvas pixel centres, camera frame."""
        fx, fy, cx, cy = self.canvas_k
        height, width = self.canvas_size
        vv, uu = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
        rays = np.stack([(uu - cx) / fx, (vv - cy) / fy, np.ones_like(uu)], axis=-1)
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def warp(self, image: np.ndarray, interpolation: int) -> np.ndarray:
        """A canvas-sized array seen through the lens (image-sized)."""
        if self.map_x is None:
            return image
        border = cv2.BORDER_REFLECT if interpolation != cv2.INTER_NEAREST else \
            cv2.BORDER_CONSTANT
        return cv2.remap(image, self.map_x, self.map_y, interpolation, borderMode=border,
                         borderValue=-1)


# ------------------------------------------------------------------------------ appearance

# Body parts by the joint that dominates each vertex's skinning weights.


def half_fov(lens: LensWarp) -> float:
    """Half the horizontal field of view of a camera (the wider side), radians."""
    cam = lens.camera
    rays = cam.pixel_rays(np.array([[0.0, cam.k[3]], [float(cam.width), cam.k[3]]]))
    return float(np.abs(np.arctan2(rays[:, 0], rays[:, 2])).max())


def in_view(lens: LensWarp, mount: CameraMount, x: float, z: float, margin: float) -> bool:
    """Whether a body standing at level-frame (x, z) is in view.

    Its middle (0.9 m above the ground) must image inside the image grown by ``margin`` of
    its size on every side.
    """
    point = mount.cam_from_level() @ np.array([x, mount.height_m - 0.9, z])
    if point[2] <= 0.1 or not lens.imageable(point):
        return False
    u, v = lens.camera.project(point)
    w, h = lens.camera.width, lens.camera.height
    return bool(-margin * w <= u <= (1 + margin) * w and -margin * h <= v <= (1 + margin) * h)
