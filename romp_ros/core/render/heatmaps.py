"""The networks' maps as coloured pictures: ROMP's center map and BEV's bird's-eye depth map.

* The **center map** (ROMP: ``ROMPMaps.center_maps``, (M, M); BEV: ``center_maps_fv``) scores
  each cell of the padded square network input as a body centre; it is shown over the image
  it was computed from (:func:`center_map_overlay`).
* BEV's **bird's-eye depth map** is its 3D center volume (``center_maps_3d``, (D, H, W)) seen
  from above: the best score over the image rows, giving (depth bin, image column)
  (:func:`birds_eye_depth_map`). Depth bins are not evenly spaced in metres (BEV's anchors are
  camera scales); :func:`birds_eye_depth_image` labels rows with their distance.
"""

from __future__ import annotations

import numpy as np

from romp_ros.core.render.drawing import cv2_module

COLORMAPS = ('inferno', 'turbo', 'viridis', 'jet')
LABEL_DEPTHS_M = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0)


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, 'detach'):  # a torch tensor on any device
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def colorize(values, *, vmin: float = 0.0, vmax: float | None = 1.0,
             colormap: str = 'inferno') -> np.ndarray:
    """(H, W) scores -> (H, W, 3) uint8 RGB through a colour map.

    Args:
        values: (H, W) array or tensor; NaN is drawn as ``vmin``.
        vmin, vmax: the range mapped onto the colour map; ``vmax=None`` uses the maximum.
        colormap: one of COLORMAPS (OpenCV's colour maps).
    """
    if colormap not in COLORMAPS:
        raise ValueError(f'colormap must be one of {COLORMAPS}, got {colormap!r}')
    cv2 = cv2_module()
    data = _as_numpy(values)
    if data.ndim != 2:
        raise ValueError(f'values must be (H, W), got shape {data.shape}')
    top = float(np.nanmax(data)) if vmax is None and data.size else (vmax or 1.0)
    span = max(top - vmin, 1e-12)
    scaled = np.nan_to_num((data - vmin) / span, nan=0.0).clip(0.0, 1.0)
    index = np.round(scaled * 255).astype(np.uint8)
    code = getattr(cv2, f'COLORMAP_{colormap.upper()}')
    return np.ascontiguousarray(cv2.applyColorMap(index, code)[..., ::-1])


def center_map_overlay(center_map, image: np.ndarray, pad_info, *, alpha: float = 0.6,
                       colormap: str = 'inferno') -> np.ndarray:
    """The center map blended over the image it came from, (H, W, 3) uint8 RGB.

    Args:
        center_map: (M, M) scores over the padded square network input.
        image: (H, W, 3) uint8 RGB, the original image.
        pad_info: (6,) [top, bottom, left, right, h, w] of ``PreparedBatch.pad_info``: where
            the image sits in the padded square of side max(h, w).
        alpha: weight of the colours where the score is high (low scores show the image).
    """
    cv2 = cv2_module()
    top, bottom, left, right, height, width = (int(round(float(v))) for v in _as_numpy(
        pad_info).reshape(6))
    if image.shape[:2] != (height, width):
        raise ValueError(f'image is {image.shape[:2]}, pad_info says ({height}, {width})')
    scores = _as_numpy(center_map)
    side = max(height, width)
    square = cv2.resize(scores, (side, side), interpolation=cv2.INTER_LINEAR)
    crop = square[top:bottom, left:right]
    colors = colorize(crop, colormap=colormap).astype(np.float32)
    weight = alpha * np.clip(crop, 0.0, 1.0)[..., None] ** 0.5  # show weak peaks too
    mixed = image.astype(np.float32) * (1.0 - weight) + colors * weight
    return np.round(mixed).astype(np.uint8)


def birds_eye_depth_map(center_maps_3d) -> np.ndarray:
    """(D, H, W) BEV 3D center scores -> (D, W) the best score per depth bin and column."""
    volume = _as_numpy(center_maps_3d)
    if volume.ndim != 3:
        raise ValueError(f'center_maps_3d must be (D, H, W) for one image, got {volume.shape}')
    return volume.max(axis=1)


def birds_eye_depth_image(depth_map, bin_depths_m=None, *, size: tuple[int, int] = (384, 384),
                          colormap: str = 'inferno') -> np.ndarray:
    """BEV's bird's-eye depth map as a (H, W, 3) uint8 RGB picture.

    The nearest bins are at the bottom, image columns left to right; with ``bin_depths_m``
    (D,) the rows nearest to round distances are labelled in metres.
    """
    cv2 = cv2_module()
    scores = _as_numpy(depth_map)
    if scores.ndim != 2:
        raise ValueError(f'depth_map must be (D, W), got shape {scores.shape}')
    bins = scores.shape[0]
    height, width = size
    picture = colorize(scores[::-1], colormap=colormap)  # bin 0 (nearest) at the bottom
    picture = np.ascontiguousarray(cv2.resize(picture, (width, height),
                                              interpolation=cv2.INTER_NEAREST))
    if bin_depths_m is not None:
        depths = _as_numpy(bin_depths_m).reshape(-1)
        if depths.shape[0] != bins:
            raise ValueError(f'{depths.shape[0]} bin depths for {bins} bins')
        last_v = None
        for metres in LABEL_DEPTHS_M:
            if not depths.min() <= metres <= depths.max():
                continue
            row = int(np.argmin(np.abs(depths - metres)))
            v = int(round((bins - row - 0.5) * height / bins))
            if last_v is not None and abs(last_v - v) < 14:
                continue  # far bins are dense: keep labels apart
            last_v = v
            cv2.line(picture, (0, v), (8, v), (255, 255, 255), 1)
            cv2.putText(picture, f'{metres:g} m', (11, v + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)
    return picture
