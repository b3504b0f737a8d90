"""Backgrounds for synthetic scenes: textures, photographs, a ground plane, lighting.

Procedural textures, scikit-image's bundled photographs, a textured ground plane seen in
perspective, and photometric (lighting) variation.

Every function draws from the ``numpy.random.Generator`` it is given, so a scene is a pure
function of its seed. Images are (H, W, 3) uint8 RGB.

The photographs are the ones that ship inside the scikit-image wheel (``skimage.data``: no
download). Without scikit-image, backgrounds are procedural only (logged once per library).
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

LOG = logging.getLogger(__name__)

#: skimage.data photographs used as backgrounds (all bundled with the wheel).
PHOTO_NAMES = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'brick', 'grass', 'gravel',
               'hubble_deep_field', 'immunohistochemistry', 'coins', 'moon', 'clock', 'retina',
               'page')
TEXTURE_KINDS = ('noise', 'stripes', 'checker', 'gradient', 'blobs', 'bricks')
GROUND_KINDS = ('tiles', 'asphalt', 'grass', 'sand')


class PhotoLibrary:
    """Loads the scikit-image photographs on first use and keeps them (one per generator)."""

    def __init__(self, names: tuple[str, ...] = PHOTO_NAMES) -> None:
        """Remember which photographs to offer; nothing is read yet."""
        self.names = names
        self._cache: dict[str, np.ndarray] = {}
        self._available: bool | None = None

    @property
    def available(self) -> bool:
        """Whether scikit-image (and so the photographs) can be used."""
        if self._available is None:
            try:
                import skimage.data  # noqa: F401
                self._available = True
            except ImportError:
                LOG.warning('scikit-image is not installed: synthetic backgrounds are '
                            'procedural only (pip install scikit-image for photographs)')
                self._available = False
        return self._available

    def photo(self, name: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one photograph (grey ones replicated to 3 channels)."""
        if name not in self._cache:
            import skimage.data
            image = np.asarray(getattr(skimage.data, name)())
            if image.dtype != np.uint8:
                image = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
            if image.ndim == 2:
                image = np.repeat(image[..., None], 3, axis=2)
            self._cache[name] = np.ascontiguousarray(image[..., :3])
        return self._cache[name]


def photo_background(rng: np.random.Generator, photos: PhotoLibrary, height: int,
                     width: int) -> np.ndarray:
    """A random crop (30-100 % of the photograph's side), resized, maybe mirrored."""
    photo = photos.photo(photos.names[int(rng.integers(len(photos.names)))])
    ph, pw = photo.shape[:2]
    aspect = width / height
    scale = rng.uniform(0.3, 1.0)
    crop_h = max(int(min(ph, pw / aspect) * scale), 8)
    crop_w = max(min(int(crop_h * aspect), pw), 8)
    top = int(rng.integers(0, ph - crop_h + 1))
    left = int(rng.integers(0, pw - crop_w + 1))
    crop = photo[top:top + crop_h, left:left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_LINEAR)


def random_colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.2, 0.9),
                  value: tuple[float, float] = (0.2, 0.95)) -> np.ndarray:
    """(3,) RGB in [0, 1] from a random hue, saturation and value."""
    hue = rng.uniform(0.0, 1.0)
    sat = rng.uniform(*saturation)
    val = rng.uniform(*value)
    # HSV -> RGB
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    return val - val * sat * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def value_noise(rng: np.random.Generator, height: int, width: int,
                octaves: int = 4, base_cells: float = 4.0) -> np.ndarray:
    """(H, W) float32 fractal noise in [0, 1] (octaves of smoothly upsampled random grids)."""
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = base_cells * 2 ** octave
        gh = max(int(math.ceil(cells * height / max(height, width))) + 1, 2)
        gw = max(int(math.ceil(cells * width / max(height, width))) + 1, 2)
        grid = rng.random((gh, gw)).astype(np.float32)
        weight = 0.5 ** octave
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    total /= weight_sum
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _blend(mask: np.ndarray, colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: colour_a where mask = 0, colour_b where mask = 1."""
    mask = mask[..., None].astype(np.float32)
    return colour_a[None, None] * (1.0 - mask) + colour_b[None, None] * mask


def procedural_texture(rng: np.random.Generator, height: int, width: int,
                       kind: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8 texture of ``kind`` (one of :data:`TEXTURE_KINDS`; random when None)."""
    kind = kind or TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
    if kind not in TEXTURE_KINDS:
        raise ValueError(f'unknown texture {kind!r}; choose one of {TEXTURE_KINDS}')
    a, b = random_colour(rng), random_colour(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 'noise':
        out = _blend(value_noise(rng, height, width, octaves=5, base_cells=rng.uniform(2, 8)),
                     a, b)
    elif kind == 'stripes':
        angle = rng.uniform(0.0, math.pi)
        period = rng.uniform(6.0, 60.0)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period
        sharpness = rng.uniform(1.0, 8.0)
        out = _blend(0.5 + 0.5 * np.tanh(sharpness * np.sin(phase)), a, b)
    elif kind == 'checker':
        angle = rng.uniform(0.0, math.pi / 2)
        size = rng.uniform(8.0, 80.0)
        u = (xx * math.cos(angle) + yy * math.sin(angle)) / size
        v = (-xx * math.sin(angle) + yy * math.cos(angle)) / size
        out = _blend(((np.floor(u) + np.floor(v)) % 2).astype(np.float32), a, b)
    elif kind == 'gradient':
        if rng.random() < 0.5:
            angle = rng.uniform(0.0, 2 * math.pi)
            ramp = xx * math.cos(angle) + yy * math.sin(angle)
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ramp = np.hypot(xx - cx, yy - cy)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
        out = _blend(ramp, a, b)
    elif kind == 'blobs':
        field = value_noise(rng, height, width, octaves=3, base_cells=rng.uniform(3, 10))
        out = _blend((field > rng.uniform(0.35, 0.65)).astype(np.float32), a, b)
        out = cv2.GaussianBlur(out, (0, 0), 1.0)
    else:  # bricks
        brick_h = rng.uniform(8.0, 30.0)
        brick_w = brick_h * rng.uniform(1.8, 3.0)
        row = np.floor(yy / brick_h)
        shifted = xx + (row % 2) * brick_w / 2
        mortar = ((yy % brick_h) < 0.12 * brick_h) | ((shifted % brick_w) < 0.08 * brick_w)
        out = _blend(mortar.astype(np.float32), a, np.full(3, rng.uniform(0.6, 0.9)))
        out *= (0.85 + 0.3 * value_noise(rng, height, width, 2, 16.0))[..., None]
    return _to_uint8(out)


def ground_plane(rng: np.random.Generator, rays_level: np.ndarray, camera_height: float,
                 pixel_angle: float, kind: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A textured ground seen in perspective: colours and a mask of the pixels that see it.

    Args:
        rng: the generator.
        rays_level: (H, W, 3) ray of each pixel in the level frame (y down, see
            ``romp_ros.synthetic.poses``); the ground is the plane y = ``camera_height``.
        camera_height: metres.
        pixel_angle: angular size of one pixel, radians (sets where the texture is averaged
            to avoid aliasing near the horizon).
        kind: one of :data:`GROUND_KINDS` (random when None).

    Returns:
        (H, W, 3) uint8 colours and (H, W) bool mask (the ray hits the ground).
    """
    kind = kind or GROUND_KINDS[int(rng.integers(len(GROUND_KINDS)))]
    down = rays_level[..., 1]
    hit = down > 1e-6
    dist = np.where(hit, camera_height / np.where(hit, down, 1.0), 0.0)  # ray length
    gx = rays_level[..., 0] * dist
    gz = rays_level[..., 2] * dist
    # metres covered by one pixel on the ground (grazing rays stretch it)
    footprint = dist * pixel_angle / np.maximum(down, 1e-3)
    base = {'tiles': (0.55, 0.5, 0.45), 'asphalt': (0.3, 0.3, 0.32), 'grass': (0.25, 0.45, 0.18),
            'sand': (0.7, 0.62, 0.45)}[kind]
    tint = np.clip(np.array(base) + rng.normal(0.0, 0.06, 3), 0.05, 0.95)
    if kind == 'tiles':
        size = rng.uniform(0.3, 1.5)
        pattern = ((np.floor(gx / size) + np.floor(gz / size)) % 2).astype(np.float32)
        detail = size
    else:
        size = {'asphalt': 0.05, 'grass': 0.08, 'sand': 0.2}[kind]
        table = rng.random((64, 64)).astype(np.float32)
        pattern = _lattice_noise(table, gx / size, gz / size)
        pattern += 0.5 * _lattice_noise(table, gx / (4 * size) + 17.0, gz / (4 * size) + 5.0)
        pattern /= 1.5
        detail = size
    # fade the pattern into its mean where one pixel covers more than half a feature
    fade = np.clip(footprint / (0.5 * detail), 0.0, 1.0)
    contrast = rng.uniform(0.15, 0.35)
    shade = 1.0 + contrast * (pattern - 0.5) * 2.0 * (1.0 - fade)
    colour = tint[None, None] * shade[..., None]
    return _to_uint8(colour), hit


def _lattice_noise(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth value noise at real coordinates from a periodic random lattice."""
    size = table.shape[0]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    i0, j0 = x0.astype(np.int64) % size, y0.astype(np.int64) % size
    i1, j1 = (i0 + 1) % size, (j0 + 1) % size
    top = table[j0, i0] * (1 - fx) + table[j0, i1] * fx
    bottom = table[j1, i0] * (1 - fx) + table[j1, i1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def lighting_variation(rng: np.random.Generator, image: np.ndarray,
                       strength: float = 1.0) -> np.ndarray:
    """Random exposure, contrast, gamma, colour temperature and vignetting of a whole image."""
    img = image.astype(np.float32) / 255.0
    gain = math.exp(rng.normal(0.0, 0.25 * strength))
    contrast = math.exp(rng.normal(0.0, 0.15 * strength))
    gamma = math.exp(rng.normal(0.0, 0.15 * strength))
    warm = rng.normal(0.0, 0.06 * strength)
    cast = np.array([1.0 + warm, 1.0, 1.0 - warm], np.float32)
    mean = float(img.mean())
    img = (img - mean) * contrast + mean
    img = np.clip(img * gain * cast, 0.0, 1.0) ** gamma
    if rng.random() < 0.5 * strength:
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        img *= (1.0 - rng.uniform(0.1, 0.4) * np.clip(r2 / 2.0, 0.0, 1.0))[..., None]
    return _to_uint8(img)


def make_background(rng: np.random.Generator, height: int, width: int, photos: PhotoLibrary,
                    *, photo_prob: float = 0.5, ground_prob: float = 0.6,
                    rays_level: np.ndarray | None = None, camera_height: float = 1.5,
                    pixel_angle: float = 0.002) -> np.ndarray:
    """A full background: a photograph or a texture, maybe with a ground plane.

    The perspective ground (below the horizon) is added with ``ground_prob`` when
    ``rays_level`` is given.
    """
    use_photo = rng.random() < photo_prob
    if use_photo and photos.available:
        image = photo_background(rng, photos, height, width)
    else:
        image = procedural_texture(rng, height, width)
    if rays_level is not None and rng.random() < ground_prob:
        ground, mask = ground_plane(rng, rays_level, camera_height, pixel_angle)
        image = np.where(mask[..., None], ground, image)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
