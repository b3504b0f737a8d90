"""The bird's-eye view: the people around the camera seen from above, on a metric grid.

The view is the camera's x-z plane looked at from above (along -y of the optical frame):
x (right) to the right of the picture, z (forward) up the picture, the camera at the bottom
centre. With a pitched camera this plane tilts with it; positions are the people's pelvis
positions, so the tilt only compresses distances by cos(pitch) (under 1 % below 8 degrees).

Drawn: a grid every ``grid_step_m`` with distance labels, the camera's horizontal field of
view (from the intrinsics: the image's left and right edges), each person as a disc of its id
colour with a heading tick and its id, and a fading trail of where each id has been
(:class:`TrailKeeper`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS
from romp_ros.core.render.drawing import cv2_module, put_label
from romp_ros.core.render.id_colors import id_colors, to_bytes
from romp_ros.core.results import CameraIntrinsics, FrameResult

BACKGROUND = (28, 30, 34)
GRID = (62, 66, 72)
GRID_LABEL = (150, 156, 165)
FOV_FILL = (44, 52, 66)
FOV_EDGE = (95, 120, 160)
CAMERA = (235, 235, 235)


@dataclass(frozen=True)
class BirdsEyeConfig:
    """Size and scale of the view.

    Attributes:
        size: (height, width) of the picture, pixels.
        depth_range_m: distance in front of the camera that fits the picture's height.
        camera_margin_px: the camera's distance from the bottom edge, pixels.
        grid_step_m: spacing of the grid lines.
        label_step_m: spacing of the distance labels (a multiple of ``grid_step_m``).
        person_radius_m: radius of a person's disc.
    """

    size: tuple[int, int] = (480, 480)
    depth_range_m: float = 12.0
    camera_margin_px: int = 24
    grid_step_m: float = 1.0
    label_step_m: float = 2.0
    person_radius_m: float = 0.25

    def __post_init__(self) -> None:
        height, width = self.size
        if height < 64 or width < 64:
            raise ValueError(f'size {self.size} is too small (at least 64 x 64 pixels)')
        if not 0 <= self.camera_margin_px < height // 2:
            raise ValueError(f'camera_margin_px={self.camera_margin_px} must be within '
                             f'[0, {height // 2})')
        for name in ('depth_range_m', 'grid_step_m', 'label_step_m', 'person_radius_m'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name}={value} must be a positive number of metres')

    @property
    def pixels_per_metre(self) -> float:
        """Scale of the view."""
        return (self.size[0] - self.camera_margin_px) / self.depth_range_m

    @property
    def camera_pixel(self) -> tuple[float, float]:
        """(u, v) of the camera in the picture."""
        return self.size[1] / 2.0, float(self.size[0] - self.camera_margin_px)


def birds_eye_pixel(x: np.ndarray, z: np.ndarray, config: BirdsEyeConfig) -> np.ndarray:
    """(..., 2) picture coordinates (u, v) of camera-frame ground positions x, z (metres).

    Pixel (i, j) covers [j, j + 1) x [i, i + 1), the package's convention.
    """
    scale = config.pixels_per_metre
    u0, v0 = config.camera_pixel
    return np.stack([u0 + np.asarray(x) * scale, v0 - np.asarray(z) * scale], axis=-1)


@dataclass(frozen=True)
class BirdsEyePeople:
    """What the view shows of N people.

    Attributes:
        ids: (N,) int person ids (colours, labels).
        positions: (N, 3) pelvis positions, metres, camera optical frame.
        headings: (N, 2) unit (x, z) directions the people face, or None.
    """

    ids: np.ndarray
    positions: np.ndarray
    headings: np.ndarray | None = None

    @classmethod
    def from_result(cls, result: FrameResult, ids=None) -> 'BirdsEyePeople':
        """The people of an estimator result; ``ids`` default to 0..N-1."""
        count = result.num_people
        ids = np.arange(count) if ids is None else np.asarray(ids, np.int64).reshape(-1)
        positions = result.joints_camera()[:, 0].astype(np.float64)
        return cls(ids=ids, positions=positions, headings=facing_directions(result.smpl_thetas))


def facing_directions(thetas: np.ndarray) -> np.ndarray:
    """(N, 2) unit (x, z) facing directions from SMPL poses (the body's +z axis).

    A person seen exactly from above or below (lying flat) gets (0, 0).
    """
    from scipy.spatial.transform import Rotation

    thetas = np.asarray(thetas, np.float64).reshape(-1, NUM_SMPL_JOINTS * 3)
    if thetas.shape[0] == 0:
        return np.zeros((0, 2))
    forward = Rotation.from_rotvec(thetas[:, :3]).apply([0.0, 0.0, 1.0])[:, [0, 2]]
    length = np.linalg.norm(forward, axis=1, keepdims=True)
    return np.where(length > 0.2, forward / np.maximum(length, 1e-9), 0.0)


@dataclass(frozen=True)
class TrailConfig:
    """How long trails are.

    Attributes:
        max_age_s: points older than this (behind the newest stamp) are dropped.
        max_points: at most this many points per id.
        forget_after_s: an id not seen for this long loses its trail.
    """

    max_age_s: float = 3.0
    max_points: int = 120
    forget_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.max_age_s > 0 and self.forget_after_s > 0 and self.max_points >= 2):
            raise ValueError('trail max_age_s and forget_after_s must be > 0 and max_points '
                             f'>= 2, got {self}')


@dataclass
class TrailKeeper:
    """Recent ground positions per id, fed frame by frame (one instance per camera stream).

    A stamp older than the last one (a new stream, a looping bag) starts over.
    """

    config: TrailConfig = field(default_factory=TrailConfig)
    _points: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)
    _last_stamp: float | None = None

    def update(self, ids, positions: np.ndarray, stamp_s: float) -> None:
        """Add the people of one frame: ids (N,), positions (N, 3) camera frame, its time."""
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            self._points.clear()
        self._last_stamp = stamp_s
        positions = np.asarray(positions, np.float64).reshape(-1, 3)
        for pid, (x, _, z) in zip(np.asarray(ids).reshape(-1), positions, strict=True):
            if np.isfinite(x) and np.isfinite(z):
                self._points.setdefault(int(pid), []).append((stamp_s, float(x), float(z)))
        oldest = stamp_s - self.config.max_age_s
        for pid in list(self._points):
            kept = [p for p in self._points[pid] if p[0] >= oldest][-self.config.max_points:]
            if not kept or stamp_s - kept[-1][0] > self.config.forget_after_s:
                del self._points[pid]
            else:
                self._points[pid] = kept

    def trails(self) -> dict[int, np.ndarray]:
        """{id: (T, 3) rows of (stamp_s, x, z)}, oldest first."""
        return {pid: np.asarray(points) for pid, points in self._points.items()}


def draw_birds_eye(people: BirdsEyePeople, config: BirdsEyeConfig = BirdsEyeConfig(), *,
                   intrinsics: CameraIntrinsics | None = None,
                   image_width: int | None = None,
                   trails: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The bird's-eye picture, (H, W, 3) uint8 RGB.

    Args:
        people: who to draw.
        config: size and scale.
        intrinsics, image_width: the camera (for its field of view); None skips the wedge.
        trails: :meth:`TrailKeeper.trails` (ids coloured like ``people``).
    """
    cv2 = cv2_module()
    height, width = config.size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    if intrinsics is not None and image_width:
        _draw_fov(cv2, canvas, config, intrinsics, image_width)
    _draw_grid(cv2, canvas, config)
    for pid, trail in (trails or {}).items():
        _draw_trail(cv2, canvas, config, trail, id_colors([pid])[0])
    _draw_camera(cv2, canvas, config)
    order = np.argsort(-people.positions[:, 2]) if len(people.ids) else []
    for n in order:  # far first, so nearer labels stay on top
        _draw_person(cv2, canvas, config, people, int(n))
    return canvas


def _px(uv: np.ndarray) -> tuple[int, int]:
    return int(round(float(uv[0]))), int(round(float(uv[1])))


def edge_slopes(k: CameraIntrinsics, image_width: int) -> tuple[float, float]:
    """Slopes x / z of the rays through the left and right image edges (principal row).

    Through the lens when ``k`` has one (``CameraIntrinsics.lens``); rays at or beyond 90
    degrees (wide fisheyes) are clamped to a slope of +-20.
    """
    if getattr(k, 'is_distorted', False):
        rays = k.lens((int(2 * k.cy) or 1, image_width)).pixel_rays(
            np.array([[0.0, k.cy], [float(image_width), k.cy]]))
        slopes = [x / z if z > 0.05 else np.sign(x) * 20.0 for x, _, z in rays]
        return float(max(slopes[0], -20.0)), float(min(slopes[1], 20.0))
    return (0.0 - k.cx) / k.fx, (image_width - k.cx) / k.fx


def _draw_fov(cv2, canvas, config, k: CameraIntrinsics, image_width: int) -> None:
    """The wedge between the rays of the image's left and right edges."""
    reach = 4.0 * config.depth_range_m
    left, right = edge_slopes(k, image_width)
    corners = birds_eye_pixel(np.array([0.0, left * reach, right * reach]),
                              np.array([0.0, reach, reach]), config)
    polygon = np.round(corners).astype(np.int32)
    cv2.fillConvexPoly(canvas, polygon, FOV_FILL, cv2.LINE_AA)
    for corner in polygon[1:]:
        cv2.line(canvas, tuple(polygon[0]), tuple(corner), FOV_EDGE, 1, cv2.LINE_AA)


def _draw_grid(cv2, canvas, config) -> None:
    height, width = config.size
    scale = config.pixels_per_metre
    u0, v0 = config.camera_pixel
    step = config.grid_step_m
    half_width_m = width / 2 / scale
    for i in range(-int(half_width_m / step), int(half_width_m / step) + 1):
        u = int(round(u0 + i * step * scale))
        cv2.line(canvas, (u, 0), (u, height - 1), GRID, 1)
    for i in range(int(config.depth_range_m / step) + 1):
        v = int(round(v0 - i * step * scale))
        cv2.line(canvas, (0, v), (width - 1, v), GRID, 1)
        metres = i * step
        if i and abs(metres / config.label_step_m - round(metres / config.label_step_m)) < 1e-6:
            cv2.putText(canvas, f'{metres:g} m', (4, v - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        GRID_LABEL, 1, cv2.LINE_AA)


def _draw_camera(cv2, canvas, config) -> None:
    u, v = (int(round(c)) for c in config.camera_pixel)
    triangle = np.array([[u, v - 7], [u - 6, v + 5], [u + 6, v + 5]], np.int32)
    cv2.fillConvexPoly(canvas, triangle, CAMERA, cv2.LINE_AA)


def _draw_trail(cv2, canvas, config, trail: np.ndarray, color: np.ndarray) -> None:
    if len(trail) < 2:
        return
    points = birds_eye_pixel(trail[:, 1], trail[:, 2], config)
    background = np.asarray(BACKGROUND, np.float64)
    full = np.asarray(to_bytes(color), np.float64)
    for i in range(1, len(points)):
        fade = 0.25 + 0.75 * i / (len(points) - 1)  # older segments closer to background
        shade = tuple(int(c) for c in background + fade * (full - background))
        cv2.line(canvas, _px(points[i - 1]), _px(points[i]), shade, 2, cv2.LINE_AA)


def _draw_person(cv2, canvas, config, people: BirdsEyePeople, n: int) -> None:
    x, _, z = people.positions[n]
    if not (np.isfinite(x) and np.isfinite(z)):
        return
    centre = birds_eye_pixel(x, z, config)
    radius = max(3, int(round(config.person_radius_m * config.pixels_per_metre)))
    color = to_bytes(id_colors([people.ids[n]])[0])
    cv2.circle(canvas, _px(centre), radius, color, -1, cv2.LINE_AA)
    cv2.circle(canvas, _px(centre), radius, (240, 240, 240), 1, cv2.LINE_AA)
    if people.headings is not None and np.any(people.headings[n]):
        hx, hz = people.headings[n]
        tip = centre + 1.8 * radius * np.array([hx, -hz])
        cv2.line(canvas, _px(centre), _px(tip), (240, 240, 240), 2, cv2.LINE_AA)
    put_label(canvas, str(int(people.ids[n])), (centre[0], centre[1] - radius - 2), color,
              scale=0.45)
