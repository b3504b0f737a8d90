"""Association costs between tracks and detections, and the gated optimal assignment.

The combined cost of pairing track t with detection d is a weighted sum of three terms, each
scaled to [0, 1] inside the gate (the choice is argued in docs/tracking.md):

* motion: the squared Mahalanobis distance of the detected root from the Kalman prediction,
  divided by the chi-square gate; pairs beyond the gate are forbidden;
* overlap: ``1 - IoU`` of the detected box with the track's box moved to the current time;
* shape: the mean squared difference of the betas from the track's running mean, in units
  of the expected estimator noise, capped at ``shape_cap``.

The assignment is scipy's ``linear_sum_assignment`` on the gated cost matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Cost given to forbidden pairs; large enough that the solver never trades one for a valid pair.
FORBIDDEN_COST = 1.0e6


@dataclass(frozen=True)
class Assignment:
    """Result of one assignment round.

    Attributes:
        matches: (K, 2) int64 rows of (track index, detection index), sorted by track index.
        unmatched_tracks: (T - K,) int64 track indices, ascending.
        unmatched_detections: (D - K,) int64 detection indices, ascending.
    """

    matches: np.ndarray
    unmatched_tracks: np.ndarray
    unmatched_detections: np.ndarray


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, B) intersection-over-union of [u_min, v_min, u_max, v_max] boxes (A, 4) x (B, 4)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0.0, inter / np.maximum(union, 1e-12), 0.0)


def shape_distance(track_betas: np.ndarray, det_betas: np.ndarray,
                   noise_sigma: float) -> np.ndarray:
    """(T, D) mean squared betas difference over ``noise_sigma**2``; about 1 for the same person.

    Only the common leading coefficients are compared (BEV's 11th, the age offset, is kept
    when both sides have it).
    """
    t = np.asarray(track_betas, dtype=np.float64)
    d = np.asarray(det_betas, dtype=np.float64)
    k = min(t.shape[1], d.shape[1])
    if k == 0:
        return np.zeros((t.shape[0], d.shape[0]))
    diff = t[:, None, :k] - d[None, :, :k]
    return np.mean(diff ** 2, axis=-1) / noise_sigma ** 2


@dataclass(frozen=True)
class CostWeights:
    """Weights and scales of the combined association cost.

    Attributes:
        motion: weight of the gated Mahalanobis term.
        overlap: weight of the ``1 - IoU`` term.
        shape: weight of the betas term.
        gate_chi2: Mahalanobis gate (squared), chi-square with 3 dof; 16.27 keeps 99.9% of the
            true pairs.
        shape_noise: expected std of one estimated beta coefficient around the person's mean.
        shape_cap: shape distances above this (in noise units) all count as "different".
        shape_gate: pairs whose shape distance exceeds this (in noise units: a mean squared
            betas difference of ``shape_gate * shape_noise**2``, 0.36 by default) are
            forbidden, like pairs outside the motion gate; ``inf`` turns the gate off. It
            stops an unseen track from taking the detection of someone else nearby.
    """

    motion: float = 1.0
    overlap: float = 1.0
    shape: float = 0.3
    gate_chi2: float = 16.27
    shape_noise: float = 0.3
    shape_cap: float = 9.0
    shape_gate: float = 4.0

    def __post_init__(self) -> None:
        for name in ('motion', 'overlap', 'shape'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'CostWeights.{name} must be >= 0')
        for name in ('gate_chi2', 'shape_noise', 'shape_cap', 'shape_gate'):
            if not getattr(self, name) > 0:
                raise ValueError(f'CostWeights.{name} must be positive')


def combined_cost(mahalanobis_sq: np.ndarray, iou: np.ndarray, shape_dist: np.ndarray,
                  weights: CostWeights) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) cost and validity from the three (T, D) terms.

    A pair is invalid outside the motion gate or the shape gate.
    """
    valid = (mahalanobis_sq <= weights.gate_chi2) & (shape_dist <= weights.shape_gate)
    cost = (weights.motion * np.minimum(mahalanobis_sq / weights.gate_chi2, 1.0)
            + weights.overlap * (1.0 - iou)
            + weights.shape * np.minimum(shape_dist / weights.shape_cap, 1.0))
    return cost, valid


def assign(cost: np.ndarray, valid: np.ndarray) -> Assignment:
    """Minimum-cost one-to-one assignment using only ``valid`` pairs.

    Forbidden pairs get :data:`FORBIDDEN_COST`, so the solver first maximises the number of valid
    matches and then minimises their total cost; pairs it still returns as forbidden are
    discarded. The solver is deterministic for a given matrix, which makes ties deterministic.
    """
    cost = np.asarray(cost, dtype=np.float64)
    num_tracks, num_dets = cost.shape
    if num_tracks == 0 or num_dets == 0:
        return Assignment(np.zeros((0, 2), np.int64), np.arange(num_tracks, dtype=np.int64),
                          np.arange(num_dets, dtype=np.int64))
    gated = np.where(valid, cost, FORBIDDEN_COST)
    rows, cols = linear_sum_assignment(gated)
    keep = valid[rows, cols]
    rows, cols = rows[keep], cols[keep]
    # rows come back ascending from linear_sum_assignment
    matches = np.stack([rows, cols], axis=1).astype(np.int64)
    track_free = np.ones(num_tracks, dtype=bool)
    track_free[rows] = False
    det_free = np.ones(num_dets, dtype=bool)
    det_free[cols] = False
    return Assignment(matches, np.flatnonzero(track_free), np.flatnonzero(det_free))


def suppress_duplicates(boxes: np.ndarray, roots: np.ndarray, confs: np.ndarray,
                        root_cov: np.ndarray, iou_threshold: float,
                        chi2_threshold: float) -> np.ndarray:
    """(N,) bool keep-mask: greedy non-maximum suppression of detections of the same person.

    Two detections are duplicates when their boxes overlap by at least ``iou_threshold`` *and*
    their roots are within ``chi2_threshold`` (squared Mahalanobis with the sum of their
    measurement covariances ``root_cov`` (N, 3, 3)). The depth test keeps a person standing
    behind another, whose box may overlap a lot but whose root is metres further away. The
    higher confidence wins; equal confidences go to the lower index.
    """
    n = len(confs)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    iou = iou_matrix(boxes, boxes)
    diff = roots[:, None, :] - roots[None, :, :]
    pair_cov = root_cov[:, None] + root_cov[None, :]
    d2 = np.einsum('abi,abi->ab', diff, np.linalg.solve(pair_cov, diff[..., None])[..., 0])
    dup = (iou >= iou_threshold) & (d2 <= chi2_threshold)
    order = np.lexsort((np.arange(n), -np.asarray(confs)))
    for pos, i in enumerate(order):
        if not keep[i]:
            continue
        for j in order[pos + 1:]:
            if keep[j] and dup[i, j]:
                keep[j] = False
    return keep
