"""Fixed coordinate tensors of the ROMP / BEV heads (no learnt parameters).

* :func:`coord_maps_2d`: the CoordConv channels that ROMP appends to the backbone features.
* :func:`cam3d_anchors`: BEV's depth bins, expressed as weak-perspective camera scales.
* :func:`coord_maps_3d`: BEV's (depth, y, x) anchor grid that camera offsets are added to.

Values reproduce simple-romp's to the last bit where it matters (the anchors are compared
with predicted scales through an argmin).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# BEV splits the depth axis of its 3D center map into bins in front of four reference
# depths (metres): the bins between consecutive reference depths are linear in camera scale.
_BEV_REFERENCE_DEPTHS = (1.0, 10.0, 20.0, 100.0)
# Share of the depth bins given to each segment, in 64ths of the map size; the 1-10 m
# segment, where most people stand, gets most of them.
_BEV_BINS_PER_64 = (2, 25, 3, 2)
# Camera scale of the nearest bin edge (a person ~0.2 m from the camera).
_BEV_MAX_SCALE = 8.0


def coord_maps_2d(size: int = 128, width: int | None = None) -> Tensor:
    """Return the (1, 2, size, width) CoordConv maps: channel 0 = x, channel 1 = y, in [-1, 1].

    ``width`` defaults to ``size`` (a square map). Pixel i maps to ``i / (n - 1) * 2 - 1`` so
    both borders hit exactly -1 and 1, whatever the map size.
    """
    width = size if width is None else width
    ramp_x = torch.arange(width, dtype=torch.float32) / max(width - 1, 1) * 2 - 1  # (W,)
    ramp_y = torch.arange(size, dtype=torch.float32) / max(size - 1, 1) * 2 - 1  # (H,)
    xx = ramp_x.view(1, 1, 1, width).expand(1, 1, size, width)  # varies along the width
    yy = ramp_y.view(1, 1, size, 1).expand(1, 1, size, width)  # varies along the height
    return torch.cat([xx, yy], dim=1).contiguous()  # (1, 2, H, W)


def cam3d_anchors(fov_deg: float = 60.0, map_size: int = 128) -> Tensor:
    """Return BEV's (map_size // 2,) camera-scale anchors of the depth bins, descending.

    A person at depth d seen with field of view ``fov_deg`` has weak-perspective scale
    ``1 / (tan(fov / 2) * d)``. Each segment of bins descends linearly in scale from the
    previous segment's end (8.0 for the first) to the scale of its reference depth.
    """
    # Computed in float64 and cast once, like the reference, so that argmin ties resolve
    # identically against official checkpoints.
    focal = 1.0 / math.tan(math.radians(fov_deg / 2.0))
    segments = []
    start = _BEV_MAX_SCALE
    counts = [int(b / 64.0 * map_size) for b in _BEV_BINS_PER_64]
    # map sizes that are not multiples of 64 round some segments down; the remainder goes to
    # the 1-10 m segment so there are always map_size // 2 bins (none at the official 128)
    counts[1] += map_size // 2 - sum(counts)
    for depth, n_bins in zip(_BEV_REFERENCE_DEPTHS, counts, strict=True):
        end = focal / depth
        fractions = np.arange(1, n_bins + 1, dtype=np.float64) / n_bins  # (n_bins,)
        segments.append(start - fractions * (start - end))
        start = end
    return torch.from_numpy(np.concatenate(segments)).float()  # (map_size // 2,)


def coord_maps_3d(anchors: Tensor, size: int = 128) -> Tensor:
    """Return BEV's (1, D, size, size, 3) grid of [anchor scale, y, x] per (depth, row, col).

    ``D = len(anchors)``. Unlike :func:`coord_maps_2d`, y and x are ``i / size * 2 - 1``
    (the right/bottom border stays below 1); official BEV weights were trained with this.
    """
    depth_bins = anchors.numel()
    ramp = torch.arange(size, dtype=torch.float32) / size * 2 - 1  # (size,)
    zz = anchors.float().view(1, depth_bins, 1, 1, 1).expand(1, depth_bins, size, size, 1)
    yy = ramp.view(1, 1, size, 1, 1).expand(1, depth_bins, size, size, 1)
    xx = ramp.view(1, 1, 1, size, 1).expand(1, depth_bins, size, size, 1)
    return torch.cat([zz, yy, xx], dim=-1).contiguous()  # (1, D, size, size, 3)
