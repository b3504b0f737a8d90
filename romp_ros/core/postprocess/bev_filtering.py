"""BEV's removal of duplicate and isolated far-away detections, as keep masks.

Both filters evaluate all people of an image at once (pairwise K x K matrices) and decide
every removal from the same unfiltered set, like the reference: a person removed because of
one pair can still cause the removal of another. Pairs are only formed within an image.

The filters work on people laid out in K slots per image, (B, K, ...), with a mask of the
occupied slots: :func:`bev_keep_slots` is what the padded post-processing calls, with no
data-dependent shape anywhere. :func:`bev_keep_mask` takes the compact (N, ...) layout of a
batch and :func:`duplicate_suppression_mask` / :func:`outlier_mask` one image's people.
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
    rank = _rank(cam_scale, center_confs, conf_based)
    valid = torch.ones_like(cam_scale, dtype=torch.bool)
    limit = torch.full((1,), thresh * max(image_size) / REFERENCE_IMAGE_SIDE,
                       dtype=pj2d_org.dtype, device=pj2d_org.device)
    return _duplicate_keep(pj2d_org[None], cam_scale[None], limit, valid[None], rank[None])[0]


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
    valid = torch.ones_like(cam_scale, dtype=torch.bool)
    return _outlier_keep(cam_trans[None], cam_scale[None], valid[None], relative_scale_thresh,
                         scale_thresh)[0]


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
    people that survived the first filter), with no per-image or per-person loop. The people
    are laid out in per-image slots and filtered by :func:`bev_keep_slots`; that needs the
    largest people count of an image, so this waits for the device once (the padded
    post-processing calls :func:`bev_keep_slots` directly and does not).

    Args:
        pj2d_org: (N, J, 2) projected joints, original-image pixels.
        cam: (N, 3) BEV camera (scale first).
        cam_trans: (N, 3) translations, metres.
        center_confs: (N,) center scores.
        batch_ids: (N,) image index of each person (any order).
        image_sizes: (height, width) of every image of the batch.
        nms_thresh, relative_scale_thresh, scale_thresh, conf_based: see
            :func:`duplicate_suppression_mask` and :func:`outlier_mask`.

    Returns:
        (N,) bool, True for the people to keep.
    """
    num, device = batch_ids.shape[0], batch_ids.device
    if num == 0:
        return torch.ones(0, dtype=torch.bool, device=device)
    num_images = len(image_sizes)
    members = batch_ids[:, None] == torch.arange(num_images, device=device)  # (N, B)
    slot = members.long().cumsum(0)[torch.arange(num, device=device), batch_ids] - 1  # (N,)
    capacity = int(members.sum(0).max())

    def to_slots(values: torch.Tensor, fill=0) -> torch.Tensor:
        out = values.new_full((num_images, capacity) + values.shape[1:], fill)
        out[batch_ids, slot] = values
        return out  # (B, K, ...)

    sides = torch.tensor([max(size) for size in image_sizes], dtype=pj2d_org.dtype,
                         device=device)  # (B,)
    keep = bev_keep_slots(to_slots(pj2d_org), to_slots(cam), to_slots(cam_trans),
                          to_slots(center_confs), to_slots(torch.ones_like(batch_ids,
                                                                           dtype=torch.bool),
                                                            False),
                          sides, nms_thresh=nms_thresh,
                          relative_scale_thresh=relative_scale_thresh,
                          scale_thresh=scale_thresh, conf_based=conf_based)
    return keep[batch_ids, slot]


def bev_keep_slots(pj2d_org: torch.Tensor, cam: torch.Tensor, cam_trans: torch.Tensor,
                   center_confs: torch.Tensor, valid: torch.Tensor, image_sides: torch.Tensor,
                   nms_thresh: float = DEFAULT_NMS_THRESH,
                   relative_scale_thresh: float = DEFAULT_RELATIVE_SCALE_THRESH,
                   scale_thresh: float = DEFAULT_OUTLIER_SCALE_THRESH,
                   conf_based: bool = False) -> torch.Tensor:
    """:func:`bev_keep_mask` for people in K fixed slots per image, never reading a value.

    Slots whose ``valid`` is False are empty: they neither remove nor count for anyone, and
    they are not kept. Nothing here depends on the data for its shapes, so on a GPU no step
    waits for the device.

    Args:
        pj2d_org: (B, K, J, 2) projected joints, original-image pixels.
        cam: (B, K, 3) BEV camera (scale first).
        cam_trans: (B, K, 3) translations, metres.
        center_confs: (B, K) center scores.
        valid: (B, K) bool, the occupied slots.
        image_sides: (B,) the longer side of each original image, pixels.
        nms_thresh, relative_scale_thresh, scale_thresh, conf_based: see
            :func:`duplicate_suppression_mask` and :func:`outlier_mask`.

    Returns:
        (B, K) bool, True for the people to keep (always False for empty slots).
    """
    scale = cam[..., 0]  # (B, K)
    limit = nms_thresh * image_sides.to(pj2d_org.dtype) / REFERENCE_IMAGE_SIDE  # (B,)
    keep = valid & _duplicate_keep(pj2d_org, scale, limit, valid,
                                   _rank(scale, center_confs, conf_based))
    # people removed as duplicates no longer count for the outlier statistics
    return keep & _outlier_keep(cam_trans, scale, keep, relative_scale_thresh, scale_thresh)


def _rank(scale: torch.Tensor, confs: torch.Tensor | None, conf_based: bool) -> torch.Tensor:
    if not conf_based:
        return scale
    if confs is None:
        raise ValueError('conf_based suppression needs center_confs')
    return confs


def _duplicate_keep(pj2d: torch.Tensor, scale: torch.Tensor, limit: torch.Tensor,
                    valid: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """Duplicate suppression within each image's slots; ``limit``: (B,) distance thresholds.

    Shapes: pj2d (B, K, J, 2), scale, valid and rank (B, K); returns (B, K).
    """
    images, slots, num_joints, _ = pj2d.shape
    if slots < 2:
        return torch.ones_like(valid)
    # (B * J, K, K) joint-wise distances -> (B, K, K) mean distance; exact (no matmul
    # expansion), so identical poses are at distance 0.
    per_joint = pj2d.transpose(1, 2).reshape(images * num_joints, slots, 2)
    dist = torch.cdist(per_joint, per_joint, compute_mode='donot_use_mm_for_euclid_dist')
    dist = dist.view(images, num_joints, slots, slots).mean(dim=1)  # (B, K, K)
    person_scale = scale * 2.0  # (B, K)
    pair_scale = torch.maximum(person_scale[:, :, None], person_scale[:, None, :])
    upper = torch.ones(slots, slots, dtype=torch.bool, device=pj2d.device).triu(diagonal=1)
    both = valid[:, :, None] & valid[:, None, :]
    close = upper & both & (dist / pair_scale < limit[:, None, None])  # only i < j
    first_loses = rank[:, :, None] < rank[:, None, :]  # i is the weaker of (i, j)
    removed = (close & first_loses).any(dim=2) | (close & ~first_loses).any(dim=1)
    return ~removed


def _outlier_keep(trans: torch.Tensor, scale: torch.Tensor, valid: torch.Tensor,
                  relative_thresh: float, scale_thresh: float) -> torch.Tensor:
    """Isolated-outlier removal within images of at least 3 (valid) people.

    Shapes: trans (B, K, 3), scale and valid (B, K); returns (B, K).
    """
    if trans.shape[1] == 0:
        return torch.ones_like(valid)
    same = valid[:, :, None] & valid[:, None, :]  # (B, K, K)
    count = valid.sum(dim=1, keepdim=True)  # (B, 1) people in the image
    dist = (trans[:, :, None] - trans[:, None]).norm(dim=-1)  # (B, K, K)
    dist = torch.where(same, dist, torch.zeros_like(dist))
    # Mean of the distances to the others without the largest one: the reference sorts each
    # row and drops the first (zero, to oneself) and the last entries.
    trimmed_sum = dist.sum(dim=2) - dist.amax(dim=2)
    spread = trimmed_sum / (count - 2).clamp_min(1)  # (B, K)
    spread = torch.where(valid, spread, torch.zeros_like(spread))
    others_mean = (spread.sum(dim=1, keepdim=True) - spread) / (count - 1).clamp_min(1)
    relative = spread / others_mean
    outlier = (valid & (count >= MIN_PEOPLE_FOR_OUTLIERS) & (relative > relative_thresh)
               & (scale < scale_thresh))
    return ~outlier
