"""BEV's removal of duplicate and isolated far-away detections, as (N,) keep masks.

Both filters evaluate all people at once (pairwise N x N matrices) and decide every removal
from the same unfiltered set, like the reference: a person removed because of one pair can
still cause the removal of another. :func:`bev_keep_mask` runs both, in the reference's
order, for a whole batch of images at once: pairs are only formed within an image.
"""

from __future__ import annotations

from typing import Sequence

import torch

# The reference's thresholds are tuned for 640-pixel images and scaled to the longer side.
REFERENCE_IMAGE_SIDE = 640.0
DEFAULT_NMS_THRESH = 20.0
DEFAULT_RELATIVE_SCALE_THRESH = 1.6
DEFAULT_OUTLIER_SCALE_THRESH = 0.25
MIN_PEOPLE_FOR_OUTLIERS = 3


def duplicate_suppression_mask(pj2d_org: torch.Tensor, cam_scale: torch.Tensor,
                               image_size: tuple[int, int],
                               thresh: float = DEFAULT_NMS_THRESH,
                               center_confs: torch.Tensor | None = None,
                               conf_based: bool = False) -> torch.Tensor:
    """Flag people of one image whose projected 2D pose nearly coincides with another's.

    For every pair (i, j) the distance is the mean over joints of the pixel distance between
    their projected joints, divided by the larger of their person scales (2 * s). A pair is a
    duplicate when that is below ``thresh * max(h, w) / 640``; of each duplicate pair, the
    person with the smaller scale (the one behind) is removed, or with ``conf_based`` the one
    with the lower center confidence. On equal values the later person (higher index) goes.

    The reference computes this on ``pj2d`` after it was mapped, in place, to original-image
    pixels; pass original-image pixels here too.

    Args:
        pj2d_org: (N, J, 2) projected joints, original-image pixels.
        cam_scale: (N,) camera scale s (cam[:, 0]).
        image_size: (height, width) of the original image.
        thresh: the reference's ``nms_thresh`` (20 for both BEV checkpoints).
        center_confs: (N,) center scores, required when ``conf_based``.
        conf_based: break pairs on confidence instead of scale.

    Returns:
        (N,) bool, True for the people to keep.
    """
    num = pj2d_org.shape[0]
    limit = torch.full((num,), thresh * max(image_size) / REFERENCE_IMAGE_SIDE,
                       dtype=pj2d_org.dtype, device=pj2d_org.device)
    group = torch.zeros(num, dtype=torch.long, device=pj2d_org.device)
    return _duplicate_keep(pj2d_org, cam_scale, limit, group, _rank(cam_scale, center_confs,
                                                                    conf_based))


def outlier_mask(cam_trans: torch.Tensor, cam_scale: torch.Tensor,
                 relative_scale_thresh: float = DEFAULT_RELATIVE_SCALE_THRESH,
                 scale_thresh: float = DEFAULT_OUTLIER_SCALE_THRESH) -> torch.Tensor:
    """Flag small people of one image isolated far from everyone else in 3D.

    With at least 3 people: each person's spread is the mean of their distances to the
    others, leaving out the largest one. A person is an outlier when that spread exceeds
    ``relative_scale_thresh`` times the average spread of the others AND their camera scale
    is below ``scale_thresh`` (far away, small on screen: mostly false positives).

    Args:
        cam_trans: (N, 3) translations, metres.
        cam_scale: (N,) camera scale s (cam[:, 0]).
        relative_scale_thresh: the reference's ``relative_scale_thresh`` (1.6 for BEV.pth).
        scale_thresh: the reference's scale limit (0.25 for single images).

    Returns:
        (N,) bool, True for the people to keep.
    """
    group = torch.zeros(cam_trans.shape[0], dtype=torch.long, device=cam_trans.device)
    return _outlier_keep(cam_trans, cam_scale, group, relative_scale_thresh, scale_thresh)


def bev_keep_mask(pj2d_org: torch.Tensor, cam: torch.Tensor, cam_trans: torch.Tensor,
                  center_confs: torch.Tensor, batch_ids: torch.Tensor,
                  image_sizes: Sequence[tuple[int, int]],
                  nms_thresh: float = DEFAULT_NMS_THRESH,
                  relative_scale_thresh: float = DEFAULT_RELATIVE_SCALE_THRESH,
                  scale_thresh: float = DEFAULT_OUTLIER_SCALE_THRESH,
                  conf_based: bool = False) -> torch.Tensor:
    """BEV's post-filters for a batch: duplicate suppression, then outlier removal.

    Equivalent to running the reference's ``suppressing_redundant_prediction_via_projection``
    and then ``remove_outlier`` on each image separately (the outlier statistics use only the
    people that survived the first filter), with no per-image or per-person loop.

    Args:
        pj2d_org: (N, J, 2) projected joints, original-image pixels.
        cam: (N, 3) BEV camera (scale first).
        cam_trans: (N, 3) translations, metres.
        center_confs: (N,) center scores.
        batch_ids: (N,) image index of each person.
        image_sizes: (height, width) of every image of the batch.
        nms_thresh, relative_scale_thresh, scale_thresh, conf_based: see
            :func:`duplicate_suppression_mask` and :func:`outlier_mask`.

    Returns:
        (N,) bool, True for the people to keep.
    """
    sides = torch.tensor([max(size) for size in image_sizes], dtype=pj2d_org.dtype,
                         device=pj2d_org.device)  # (B,)
    limit = nms_thresh * sides[batch_ids] / REFERENCE_IMAGE_SIDE  # (N,)
    scale = cam[:, 0]
    keep = _duplicate_keep(pj2d_org, scale, limit, batch_ids,
                           _rank(scale, center_confs, conf_based))
    # Removed people no longer count for the outlier statistics: give them their own group.
    survivors_group = torch.where(keep, batch_ids, -1 - torch.arange(
        batch_ids.shape[0], device=batch_ids.device))
    return keep & _outlier_keep(cam_trans, scale, survivors_group, relative_scale_thresh,
                                scale_thresh)


def _rank(scale: torch.Tensor, confs: torch.Tensor | None, conf_based: bool) -> torch.Tensor:
    if not conf_based:
        return scale
    if confs is None:
        raise ValueError('conf_based suppression needs center_confs')
    return confs


def _duplicate_keep(pj2d: torch.Tensor, scale: torch.Tensor, limit: torch.Tensor,
                    group: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """Duplicate suppression within groups; ``limit`` is each person's distance threshold."""
    num = pj2d.shape[0]
    if num < 2:
        return torch.ones(num, dtype=torch.bool, device=pj2d.device)
    # (J, N, N) joint-wise distances -> (N, N) mean distance; exact (no matmul expansion),
    # so identical poses are at distance 0.
    per_joint = pj2d.transpose(0, 1).contiguous()  # (J, N, 2)
    dist = torch.cdist(per_joint, per_joint,
                       compute_mode='donot_use_mm_for_euclid_dist').mean(dim=0)
    person_scale = scale * 2.0  # (N,)
    pair_scale = torch.maximum(person_scale[:, None], person_scale[None, :])  # (N, N)
    upper = torch.ones(num, num, dtype=torch.bool, device=pj2d.device).triu(diagonal=1)
    same = group[:, None] == group[None, :]
    close = upper & same & (dist / pair_scale < limit[:, None])  # (N, N), only i < j
    first_loses = rank[:, None] < rank[None, :]  # i is the weaker of (i, j)
    removed = (close & first_loses).any(dim=1) | (close & ~first_loses).any(dim=0)
    return ~removed


def _outlier_keep(trans: torch.Tensor, scale: torch.Tensor, group: torch.Tensor,
                  relative_thresh: float, scale_thresh: float) -> torch.Tensor:
    """Isolated-outlier removal within groups of at least 3 people."""
    num = trans.shape[0]
    if num < MIN_PEOPLE_FOR_OUTLIERS:
        return torch.ones(num, dtype=torch.bool, device=trans.device)
    same = group[:, None] == group[None, :]  # (N, N)
    count = same.sum(dim=1)  # (N,) people in my group, me included
    dist = (trans[:, None] - trans[None]).norm(dim=-1)  # (N, N)
    dist = torch.where(same, dist, torch.zeros_like(dist))
    # Mean of the distances to the others without the largest one: the reference sorts each
    # row and drops the first (zero, to oneself) and the last entries.
    trimmed_sum = dist.sum(dim=1) - dist.amax(dim=1)
    spread = trimmed_sum / (count - 2).clamp_min(1)  # (N,)
    group_total = (same * spread[None, :]).sum(dim=1)  # (N,) sum of spreads in my group
    others_mean = (group_total - spread) / (count - 1).clamp_min(1)
    relative = spread / others_mean
    outlier = ((count >= MIN_PEOPLE_FOR_OUTLIERS) & (relative > relative_thresh)
               & (scale < scale_thresh))
    return ~outlier
