"""Wide images in overlapping square windows (the reference's BEV "crowd mode", for any model).

The network sees a square: a 3:1 panorama or a stitched multi-camera frame is letterboxed into
512 x 512 and its people shrink to a third of their size, below what the network finds. With
tiling on, an image whose long side is at least ``min_aspect`` times its short side is cut into
square windows (side = the short side) that overlap by ``overlap``; the windows go through the
network in the same batch as the other images, and their people are put back into the full
image:

* 2D keypoints are shifted by the window's offset;
* each window is solved with the full image's camera, its principal point moved by the window
  offset, so translations are in the one camera frame (with no intrinsics, the field-of-view
  camera of the full image);
* the weak-perspective camera is mapped to the full image's normalised frame (an affine map);
* a person seen by two windows is kept only by the window whose centre is nearest to the
  person's pelvis (the reference drops people in the overlap band of one side, likewise).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numpy as np

from romp_ros.core.results import CameraIntrinsics, FrameResult


@dataclass(frozen=True)
class Window:
    """A square crop ``image[top:top + side, left:left + side]``, pixels."""

    top: int
    left: int
    side: int


def plan_windows(height: int, width: int, min_aspect: float, overlap: float) -> list[Window]:
    """Square windows covering a wide (or tall) image; [] when it is not wide enough.

    Args:
        height, width: image size, pixels.
        min_aspect: tile when long side / short side >= this.
        overlap: least shared fraction of two neighbouring windows, in [0, 1).

    Returns:
        Windows along the long side, first at 0, last flush with the far edge, evenly spaced.
    """
    long_side, short_side = max(height, width), min(height, width)
    if short_side <= 0 or long_side < min_aspect * short_side:
        return []
    step = short_side * (1.0 - overlap)
    count = math.ceil((long_side - short_side) / step - 1e-9) + 1
    starts = np.rint(np.linspace(0, long_side - short_side, count)).astype(int).tolist()
    if width >= height:
        return [Window(top=0, left=s, side=short_side) for s in starts]
    return [Window(top=s, left=0, side=short_side) for s in starts]


def window_intrinsics(k: CameraIntrinsics, window: Window) -> CameraIntrinsics:
    """The same camera seen through ``window``.

    The principal point moves by the window's offset; the lens, defined around the principal
    point, stays.
    """
    return replace(k, cx=k.cx - window.left, cy=k.cy - window.top)


def merge_windows(parts: list[FrameResult], windows: list[Window],
                  image_size: tuple[int, int], intrinsics: CameraIntrinsics) -> FrameResult:
    """One image's result from its windows' results (each solved with window intrinsics).

    Args:
        parts: one result per window, in window order.
        windows: the windows of :func:`plan_windows`.
        image_size: (height, width) of the full image.
        intrinsics: the full image's camera (reported in the result).

    Returns:
        The people of all windows, each once, by descending confidence.
    """
    height, width = image_size
    side = max(height, width)
    pad_left, pad_top = (side - width) // 2, (side - height) // 2
    horizontal = width >= height
    centres = np.array([(w.left if horizontal else w.top) + w.side / 2.0 for w in windows])
    kept = []
    for index, (part, window) in enumerate(zip(parts, windows, strict=True)):
        offset = np.array([window.left, window.top], dtype=np.float32)
        pj2d = part.pj2d_org + offset  # (N, J, 2) full-image pixels
        along = pj2d[:, 0, 0] if horizontal else pj2d[:, 0, 1]  # pelvis, (N,)
        owner = np.abs(along[:, None] - centres[None]).argmin(axis=1)  # (N,) window index
        rows = np.flatnonzero(owner == index)
        # window-normalised x_w -> full-image normalised x_f = a * x_w + b (per axis)
        a = window.side / side
        b = np.array([(window.side + 2.0 * (window.left + pad_left)) / side - 1.0,
                      (window.side + 2.0 * (window.top + pad_top)) / side - 1.0])
        cam = part.cam.astype(np.float64).copy()
        cam[:, 0] *= a
        cam[:, 1:] = a * cam[:, 1:] + b
        kept.append(replace(part.select(rows), cam=cam[rows].astype(np.float32),
                            pj2d_org=pj2d[rows].astype(np.float32)))
    return _concatenate(kept, image_size, intrinsics)


def _concatenate(parts: list[FrameResult], image_size: tuple[int, int],
                 intrinsics: CameraIntrinsics) -> FrameResult:
    """People of several results as one, by descending confidence."""
    first = parts[0]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    verts = None if first.verts is None else cat('verts')
    merged = replace(
        first, cam=cat('cam'), smpl_thetas=cat('smpl_thetas'), smpl_betas=cat('smpl_betas'),
        cam_trans=cat('cam_trans'), joints=cat('joints'), verts=verts,
        pj2d_org=cat('pj2d_org'), center_confs=cat('center_confs'),
        model_type=tuple(t for p in parts for t in p.model_type),
        translation_solved=(None if any(p.translation_solved is None for p in parts)
                            else cat('translation_solved')),
        image_size=image_size, intrinsics=intrinsics)
    order = np.argsort(-merged.center_confs, kind='stable')
    return merged.select(order)
