"""What synthetic scenes to make: :class:`SceneSpec` (frozen, validated)."""

from __future__ import annotations

from dataclasses import dataclass
import math


class SceneSpecError(ValueError):
    """An unusable scene specification; the message names the field and the fix."""


@dataclass(frozen=True)
class SceneSpec:
    """What synthetic scenes to make.

    All ranges are (min, max), sampled uniformly unless stated.

    Attributes:
        width, height: image size, pixels.
        people: (min, max) people per frame (per sequence with ``sequence``); min may be 0.
        distance_m: horizontal distance of people from the camera, metres (log-uniform).
        hfov_deg: horizontal field of view, degrees (of the pinhole, or the fisheye's angle).
        camera_height_m: camera height above the ground, metres.
        camera_pitch_deg: downward tilt of the camera, degrees (negative looks up).
        camera_roll_deg: largest roll about the optical axis, degrees.
        distortion_prob: share of cameras with lens distortion.
        fisheye_share: share of the distorted cameras that are equidistant fisheyes (the rest:
            70 % plumb_bob, 30 % rational_polynomial).
        child_prob: share of children (SMPL-A age offset 0.3-0.8; needs the 'smpla' model).
        walking_prob: share of people walking (the others stand).
        speed_m_s: walking speeds, m/s.
        pose_noise: strength of random joint rotations (0 = pure gait, 1 = a sixth of each
            joint's range as standard deviation).
        photo_prob: share of photographic backgrounds (else procedural textures).
        ground_prob: share of backgrounds with a textured ground plane below the horizon.
        pattern_prob: share of people whose shirts are striped (else plain colours).
        blur_prob: share of images with focus blur (Gaussian, sigma up to ``max_blur_px``).
        max_blur_px: largest focus blur sigma, pixels.
        motion_blur_prob: share of images with linear motion blur (3-9 px).
        noise_sigma: largest sensor noise standard deviation, grey levels (0..255).
        lighting_strength: scale of the exposure / contrast / colour variation (0 = none).
        supersample: render sub-samples per pixel side (anti-aliased edges; cost ~ s^2).
        sequence: consecutive frames form sequences (see the module docstring).
        sequence_length: frames per sequence (0: all frames form one sequence).
        fps: frame rate of sequences (stamps, motion).
        min_visible_pixels: people with fewer rendered pixels are not labelled.
    """

    width: int = 512
    height: int = 512
    people: tuple[int, int] = (1, 6)
    distance_m: tuple[float, float] = (1.5, 20.0)
    hfov_deg: tuple[float, float] = (40.0, 100.0)
    camera_height_m: tuple[float, float] = (0.5, 2.5)
    camera_pitch_deg: tuple[float, float] = (-5.0, 20.0)
    camera_roll_deg: float = 3.0
    distortion_prob: float = 0.3
    fisheye_share: float = 0.25
    child_prob: float = 0.15
    walking_prob: float = 0.7
    speed_m_s: tuple[float, float] = (0.4, 1.8)
    pose_noise: tuple[float, float] = (0.1, 0.7)
    photo_prob: float = 0.5
    ground_prob: float = 0.6
    pattern_prob: float = 0.4
    blur_prob: float = 0.3
    max_blur_px: float = 1.5
    motion_blur_prob: float = 0.1
    noise_sigma: float = 4.0
    lighting_strength: float = 1.0
    supersample: int = 2
    sequence: bool = False
    sequence_length: int = 0
    fps: float = 15.0
    min_visible_pixels: int = 8

    def __post_init__(self) -> None:
        def fail(text: str) -> None:
            raise SceneSpecError(text)

        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            fail(f'image size {self.width}x{self.height} must be 16..8192 pixels per side')
        lo, hi = self.people
        if not 0 <= lo <= hi <= 64:
            fail(f'people={self.people} must be (min, max) with 0 <= min <= max <= 64')
        self._check_range('distance_m', 0.5, 200.0)
        self._check_range('hfov_deg', 10.0, 150.0)
        self._check_range('camera_height_m', 0.05, 20.0)
        self._check_range('camera_pitch_deg', -45.0, 60.0)
        self._check_range('speed_m_s', 0.0, 5.0)
        self._check_range('pose_noise', 0.0, 1.0)
        if self.hfov_deg[1] > 120.0 and self.distortion_prob * self.fisheye_share < 1.0:
            fail(f'hfov_deg up to {self.hfov_deg[1]} needs fisheye lenses only: set '
                 'distortion_prob and fisheye_share to 1, or keep hfov_deg <= 120')
        for name in ('distortion_prob', 'fisheye_share', 'child_prob', 'walking_prob',
                     'photo_prob', 'ground_prob', 'pattern_prob', 'blur_prob',
                     'motion_blur_prob'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                fail(f'{name}={value} must be a probability in [0, 1]')
        for name in ('camera_roll_deg', 'max_blur_px', 'noise_sigma', 'lighting_strength'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                fail(f'{name}={value} must be a non-negative number')
        if not (isinstance(self.supersample, int) and 1 <= self.supersample <= 4):
            fail(f'supersample={self.supersample} must be an integer 1..4')
        if not (math.isfinite(self.fps) and self.fps > 0):
            fail(f'fps={self.fps} must be positive')
        if self.sequence_length < 0:
            fail(f'sequence_length={self.sequence_length} must be >= 0 (0: one sequence)')
        if self.min_visible_pixels < 1:
            fail(f'min_visible_pixels={self.min_visible_pixels} must be >= 1')

    def _check_range(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        if (len(value) != 2 or not all(math.isfinite(v) for v in value)
                or not low <= value[0] <= value[1] <= high):
            raise SceneSpecError(f'{name}={value} must be (min, max) with {low} <= min <= max '
                                 f'<= {high}')
