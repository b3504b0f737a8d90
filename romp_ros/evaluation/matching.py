"""Which prediction is which ground-truth person: Hungarian matching gated by box IoU.

The rule (AGORA's, with an optimal instead of a greedy assignment):

1. cost of a (ground truth g, prediction p) pair = the mean 2D distance, in pixels, between
   their keypoints, over the joints known on both sides;
2. a pair is allowed only when the boxes overlap with IoU >= ``iou_threshold`` (0.1) and the
   cost is defined;
3. the Hungarian algorithm picks the pairs with the most allowed matches and, among those,
   the smallest total cost.

A ground-truth person left without a pair is *missed* (a false negative); a prediction left
without one is a *false positive*. When one side has no 2D keypoints at all in a frame, the
cost falls back to 1 - IoU (:attr:`Matching.used_box_fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from romp_ros.core.tracking.association import iou_matrix

DEFAULT_IOU_THRESHOLD = 0.1
MATCHING_RULE = ('hungarian on the mean 2D keypoint distance (px) over the joint set, '
                 'pairs gated by box IoU >= {iou}; unmatched ground truth = missed, '
                 'unmatched prediction = false positive')


@dataclass(frozen=True)
class Matching:
    """The matching of one frame's G ground-truth people with its P predictions.

    Attributes:
        gt_index: (M,) int64 matched ground-truth rows, ascending.
        pred_index: (M,) int64 the prediction matched to each.
        cost: (M,) the pair's mean keypoint distance, px (1 - IoU with the box fallback).
        iou: (M,) the pair's box IoU.
        gt_to_pred: (G,) int64 prediction row of each ground-truth person, -1 if missed.
        missed: (G - M,) int64 unmatched ground-truth rows.
        false_positives: (P - M,) int64 unmatched prediction rows.
        used_box_fallback: True when the cost was 1 - IoU (no keypoints on one side).
    """

    gt_index: np.ndarray
    pred_index: np.ndarray
    cost: np.ndarray
    iou: np.ndarray
    gt_to_pred: np.ndarray
    missed: np.ndarray
    false_positives: np.ndarray
    used_box_fallback: bool = False


def mean_keypoint_distance(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(G, P) mean pixel distance over the joints known in both; NaN where none is shared.

    Args:
        gt: (G, K, 2) ground-truth keypoints, px (NaN unknown).
        pred: (P, K, 2) predicted keypoints, px, same joint order.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    dist = np.linalg.norm(gt[:, None] - pred[None], axis=-1)  # (G, P, K)
    known = np.isfinite(dist)
    count = known.sum(axis=-1)
    total = np.where(known, dist, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def match_people(gt_keypoints: np.ndarray, pred_keypoints: np.ndarray, gt_boxes: np.ndarray,
                 pred_boxes: np.ndarray,
                 iou_threshold: float = DEFAULT_IOU_THRESHOLD) -> Matching:
    """Match the ground truth and predictions of one frame (module docstring).

    Args:
        gt_keypoints: (G, K, 2) px.
        pred_keypoints: (P, K, 2) px, the same K joints.
        gt_boxes: (G, 4) px [u_min, v_min, u_max, v_max] (NaN: unknown, never matched).
        pred_boxes: (P, 4) px.
        iou_threshold: least box IoU of an allowed pair.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    g, p = gt_boxes.shape[0], pred_boxes.shape[0]
    iou = box_iou(gt_boxes, pred_boxes)  # (G, P)
    gt_kp = np.asarray(gt_keypoints, dtype=np.float64)
    pred_kp = np.asarray(pred_keypoints, dtype=np.float64)
    if gt_kp.ndim != 3 or pred_kp.ndim != 3 or len(gt_kp) != g or len(pred_kp) != p:
        raise ValueError(f'keypoints {gt_kp.shape} / {pred_kp.shape} do not fit {g} / {p} boxes')
    fallback = bool(g and p and (not np.isfinite(gt_kp).any() or not np.isfinite(pred_kp).any()))
    cost = 1.0 - iou if fallback else mean_keypoint_distance(gt_kp, pred_kp)
    allowed = (iou >= iou_threshold) & np.isfinite(cost)
    rows, cols = _assign(cost, allowed)
    gt_to_pred = np.full(g, -1, np.int64)
    gt_to_pred[rows] = cols
    matched_pred = np.zeros(p, bool)
    matched_pred[cols] = True
    return Matching(gt_index=rows, pred_index=cols, cost=cost[rows, cols], iou=iou[rows, cols],
                    gt_to_pred=gt_to_pred, missed=np.flatnonzero(gt_to_pred < 0),
                    false_positives=np.flatnonzero(~matched_pred), used_box_fallback=fallback)


def _assign(cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most allowed pairs first, then least cost: forbidden pairs cost more than any sum."""
    if not allowed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # costs are >= 0, so any assignment with one forbidden pair more costs more
    big = float(np.where(allowed, cost, 0.0).sum()) + 1.0
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    keep = allowed[rows, cols]
    order = np.argsort(rows[keep], kind='stable')
    return rows[keep][order].astype(np.int64), cols[keep][order].astype(np.int64)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of [u_min, v_min, u_max, v_max] boxes (NaN boxes overlap nothing)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iou = iou_matrix(np.nan_to_num(a, nan=-1.0), np.nan_to_num(b, nan=-2.0))
    iou[~np.isfinite(a).all(-1)] = 0.0
    iou[:, ~np.isfinite(b).all(-1)] = 0.0
    return iou
