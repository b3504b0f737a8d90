"""Finding people in ROMP's 2D and BEV's 3D body-center heatmaps, batched on device.

A center is a local maximum of the heatmap within a 5-pixel (ROMP) or 5-voxel (BEV) cube,
found with max pooling: positions whose value equals the pooled maximum survive. Exact ties
inside one window (a plateau) therefore all survive, as in the reference. The survivors with
the highest scores (at most ``max_people`` per image) above ``thresh`` are returned.

Ordering: people are grouped by image (``batch_ids`` ascending) and, within an image, sorted
by descending confidence. This is the reference's order (simple-romp ``parse_centermap`` /
``parse_3dcentermap``); only the relative order of exactly equal scores is left to
``torch.topk`` and may differ from the reference.

Layouts: by default only the people found are returned (N rows, a data-dependent count, so a
GPU caller waits for the device there). With ``padded=True`` every image gets exactly
``max_people`` slots, best first, and ``valid`` marks the slots holding a person: N = B x K
rows whose shapes never depend on the data, for post-processing that does not wait for the
device until its results are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

NMS_KERNEL = 5
DEFAULT_MAX_PEOPLE = 64


@dataclass(frozen=True)
class Centers:
    """Body centers found in a batch of 2D center maps (int64 indices, map dtype scores).

    Attributes:
        batch_ids: (N,) index of the image each person belongs to.
        flat_inds: (N,) y * W + x, the flattened position in the H x W map.
        yx: (N, 2) (row, column) in map cells.
        confs: (N,) center scores (the heatmap value at the center).
        valid: padded layout only: (N,) bool, the slots holding a person; None when every
            row is one.
    """

    batch_ids: torch.Tensor
    flat_inds: torch.Tensor
    yx: torch.Tensor
    confs: torch.Tensor
    valid: torch.Tensor | None = None

    @property
    def num_people(self) -> int:
        """People found (waits for the device in the padded layout)."""
        return _count(self.batch_ids, self.valid)


@dataclass(frozen=True)
class Centers3D:
    """Body centers found in a batch of BEV's 3D center maps (int64 indices).

    Attributes:
        batch_ids: (N,) index of the image each person belongs to.
        czyx: (N, 3) (depth bin, row, column) in map cells.
        confs: (N,) center scores.
        valid: padded layout only: (N,) bool, the slots holding a person; None when every
            row is one.
    """

    batch_ids: torch.Tensor
    czyx: torch.Tensor
    confs: torch.Tensor
    valid: torch.Tensor | None = None

    @property
    def num_people(self) -> int:
        """People found (waits for the device in the padded layout)."""
        return _count(self.batch_ids, self.valid)


def parse_center_map_2d(center_maps: torch.Tensor, thresh: float,
                        max_people: int = DEFAULT_MAX_PEOPLE, padded: bool = False) -> Centers:
    """Local maxima of ROMP center maps above ``thresh``, best ``max_people`` per image.

    Args:
        center_maps: (B, 1, H, W) scores (after the sigmoid).
        thresh: detections need a score strictly greater than this.
        max_people: at most this many people per image (the reference uses 64).
        padded: ``max_people`` slots per image with a ``valid`` mask (module docstring).

    Returns:
        :class:`Centers`, ordered by image then by descending score.
    """
    if center_maps.dim() != 4 or center_maps.shape[1] != 1:
        raise ValueError(f'expected (B, 1, H, W) center maps, got {tuple(center_maps.shape)}')
    _check_max_people(max_people)
    _, _, _, width = center_maps.shape
    peaks = _keep_local_maxima(center_maps, F.max_pool2d)  # (B, 1, H, W)
    batch_ids, flat_inds, confs, valid = _top_scores(peaks.flatten(1), thresh, max_people,
                                                     padded)
    yx = torch.stack((flat_inds // width, flat_inds % width), dim=1)  # (N, 2)
    return Centers(batch_ids=batch_ids, flat_inds=flat_inds, yx=yx, confs=confs, valid=valid)


def parse_center_map_3d(center_maps_3d: torch.Tensor, thresh: float,
                        max_people: int = DEFAULT_MAX_PEOPLE, padded: bool = False
                        ) -> Centers3D:
    """Local maxima (in 3D) of BEV center volumes above ``thresh``, best ``max_people`` each.

    Args:
        center_maps_3d: (B, D, H, W) scores; D indexes depth bins.
        thresh: detections need a score strictly greater than this.
        max_people: at most this many people per image (the reference uses 64).
        padded: ``max_people`` slots per image with a ``valid`` mask (module docstring).

    Returns:
        :class:`Centers3D`, ordered by image then by descending score.
    """
    if center_maps_3d.dim() != 4:
        raise ValueError(
            f'expected (B, D, H, W) center volumes, got {tuple(center_maps_3d.shape)}')
    _check_max_people(max_people)
    _, _, height, width = center_maps_3d.shape
    # max_pool3d wants a channel axis: (B, 1, D, H, W).
    peaks = _keep_local_maxima(center_maps_3d.unsqueeze(1), F.max_pool3d)
    # One top-k over the whole volume selects the same people as the reference's top-k per
    # depth bin followed by a top-k over those candidates: the global best K are necessarily
    # among the best K of their own bin.
    batch_ids, flat_inds, confs, valid = _top_scores(peaks.flatten(1), thresh, max_people,
                                                     padded)
    plane = height * width
    czyx = torch.stack((flat_inds // plane, (flat_inds % plane) // width, flat_inds % width),
                       dim=1)  # (N, 3)
    return Centers3D(batch_ids=batch_ids, czyx=czyx, confs=confs, valid=valid)


def sample_params(params_maps: torch.Tensor, batch_ids: torch.Tensor,
                  flat_inds: torch.Tensor) -> torch.Tensor:
    """Read each person's parameter vector at its center cell.

    Args:
        params_maps: (B, C, H, W).
        batch_ids: (N,) image of each person.
        flat_inds: (N,) y * W + x of each person's center.

    Returns:
        (N, C) contiguous.
    """
    flat = params_maps.flatten(2)  # (B, C, H*W)
    # Two index tensors around a slice put the indexed axis first: (N, C).
    return flat[batch_ids, :, flat_inds].contiguous()


def _keep_local_maxima(maps: torch.Tensor, pool) -> torch.Tensor:
    """Zero every value that is not the maximum of its 5-wide window (same shape)."""
    pooled = pool(maps, kernel_size=NMS_KERNEL, stride=1, padding=NMS_KERNEL // 2)
    return torch.where(pooled == maps, maps, torch.zeros_like(maps))


def _top_scores(scores: torch.Tensor, thresh: float, max_people: int, padded: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Best ``max_people`` of each row of (B, M) scores that exceed ``thresh``.

    Returns (N,) batch ids, (N,) column indices, (N,) scores and the (N,) valid mask (None
    unless ``padded``), row-major: rows ascending, scores descending within a row. A
    fixed-size top-k and a mask: the only data-dependent shape is the compact selection.
    """
    k = min(max_people, scores.shape[1])
    top_vals, top_inds = torch.topk(scores, k, dim=1, largest=True, sorted=True)  # (B, k)
    keep = top_vals > thresh  # (B, k)
    if padded:
        batch_ids = torch.arange(scores.shape[0], device=scores.device).repeat_interleave(k)
        return batch_ids, top_inds.flatten(), top_vals.flatten(), keep.flatten()  # (B * k,)
    batch_ids, slots = keep.nonzero(as_tuple=True)  # row-major order
    return batch_ids, top_inds[batch_ids, slots], top_vals[batch_ids, slots], None


def _count(batch_ids: torch.Tensor, valid: torch.Tensor | None) -> int:
    return int(batch_ids.shape[0]) if valid is None else int(valid.sum())


def _check_max_people(max_people: int) -> None:
    if max_people < 1:
        raise ValueError(f'max_people must be at least 1, got {max_people}')
