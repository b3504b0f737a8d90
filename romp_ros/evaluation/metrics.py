"""3D and 2D pose accuracy metrics, batched over people, one value per person (or per joint).

Every function takes an explicit people axis first: ``(N, J, 3)`` for N people with J joints.
Procrustes alignment is solved per person. The PA-MPJPE code that many repositories copied
from VIBE tests ``S1.shape[0]`` to decide whether its input is transposed, which silently
aligns the wrong axes when a frame holds exactly three people (or as many people as
coordinates); here the people axis is explicit and never inspected.

Unknown values are NaN: a joint that is NaN in the prediction or the ground truth is left out
of that person's means (and out of Procrustes), and a person with no usable joint gets NaN.
Lengths go in as metres and come out as millimetres; 2D values are pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RootSpec = int | Sequence[int] | None


def joint_errors(pred: np.ndarray, gt: np.ndarray, root: RootSpec = 0) -> np.ndarray:
    """Per-joint position error, millimetres.

    Args:
        pred: (N, J, 3) predicted joints, metres.
        gt: (N, J, 3) ground-truth joints, metres, same joint order.
        root: joint index (or indices, averaged) subtracted from both before comparing
            (root-relative error, as published); None compares absolute positions.

    Returns:
        (N, J) errors in millimetres; NaN where either side is unknown, and for every joint of
        a person whose root is unknown.
    """
    pred, gt = _check_pair(pred, gt)
    if root is not None:
        pred = pred - root_points(pred, root)[:, None]
        gt = gt - root_points(gt, root)[:, None]
    return np.linalg.norm(pred - gt, axis=-1) * 1000.0


def root_points(joints: np.ndarray, root: int | Sequence[int]) -> np.ndarray:
    """(N, 3) the root of each person: one joint, or the mean of several (e.g. the hips)."""
    index = [root] if isinstance(root, (int, np.integer)) else list(root)
    return np.asarray(joints, dtype=np.float64)[:, index].mean(axis=1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root_index: RootSpec = 0) -> np.ndarray:
    """Mean per-joint position error per person, millimetres: (N, J, 3) x2 -> (N,).

    ``root_index`` as ``root`` of :func:`joint_errors` (0: the pelvis of SMPL's order).
    """
    return person_mean(joint_errors(pred, gt, root_index))


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each person's prediction to its ground truth with a similarity transform.

    Solves ``min_{s,R,t} ||s R pred_i + t - gt_i||`` for every person i independently
    (Umeyama), with a proper rotation (det R = +1), over the joints known on both sides.

    Args:
        pred: (N, J, 3).
        gt: (N, J, 3).

    Returns:
        (N, J, 3) aligned predictions (NaN where the prediction or ground truth is unknown;
        all NaN for a person with fewer than 3 usable joints).
    """
    pred, gt = _check_pair(pred, gt)
    valid = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)  # (N, J)
    weight = valid.astype(np.float64)[..., None]  # (N, J, 1)
    count = np.maximum(weight.sum(axis=1, keepdims=True), 1.0)  # (N, 1, 1)
    p = np.where(valid[..., None], pred, 0.0)
    g = np.where(valid[..., None], gt, 0.0)
    mu_p = (p * weight).sum(axis=1, keepdims=True) / count  # (N, 1, 3)
    mu_g = (g * weight).sum(axis=1, keepdims=True) / count
    p0, g0 = (p - mu_p) * weight, (g - mu_g) * weight  # (N, J, 3), zero on unknown joints
    var_p = (p0 ** 2).sum(axis=(1, 2))  # (N,)
    cov = np.einsum('nji,njk->nik', g0, p0)  # (N, 3, 3) = sum_j g_j p_j^T
    u, sig, vt = np.linalg.svd(cov)
    # reflection guard: flip the smallest singular direction where det(U V^T) < 0
    d = np.sign(np.linalg.det(u @ vt))  # (N,)
    d[d == 0] = 1.0
    fix = np.ones_like(sig)
    fix[:, -1] = d
    rot = u @ (fix[:, :, None] * vt)  # (N, 3, 3)
    scale = (sig * fix).sum(axis=1) / np.maximum(var_p, 1e-12)  # (N,)
    aligned = scale[:, None, None] * np.einsum('nik,njk->nji', rot, pred - mu_p) + mu_g
    too_few = valid.sum(axis=1) < 3
    aligned[too_few] = np.nan
    return np.where(valid[..., None], aligned, np.nan)


def pa_joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-joint error after per-person Procrustes alignment, millimetres: (N, J)."""
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - np.asarray(gt, dtype=np.float64), axis=-1) * 1000.0


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-aligned MPJPE per person, millimetres: (N, J, 3) x2 -> (N,)."""
    return person_mean(pa_joint_errors(pred, gt))


def pve(pred_verts: np.ndarray, gt_verts: np.ndarray, root_pred: np.ndarray | None = None,
        root_gt: np.ndarray | None = None) -> np.ndarray:
    """Per-vertex error per person, millimetres.

    Args:
        pred_verts: (N, V, 3) metres.
        gt_verts: (N, V, 3) metres.
        root_pred: (N, 3) optional root subtracted from the prediction (e.g. its pelvis).
        root_gt: (N, 3) optional root subtracted from the ground truth.

    Returns:
        (N,) errors in millimetres.
    """
    pred, gt = _check_pair(pred_verts, gt_verts)
    if root_pred is not None:
        pred = pred - np.asarray(root_pred, dtype=np.float64)[:, None]
    if root_gt is not None:
        gt = gt - np.asarray(root_gt, dtype=np.float64)[:, None]
    return person_mean(np.linalg.norm(pred - gt, axis=-1) * 1000.0)


def position_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) millimetres between (N, 3) predicted and true points (e.g. pelvis positions)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    if pred.shape != gt.shape:
        raise ValueError(f'expected two (N, 3) arrays, got {pred.shape} and {gt.shape}')
    return np.linalg.norm(pred - gt, axis=-1) * 1000.0


def keypoint_errors_2d(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, J) pixel distances between (N, J, 2) predicted and true keypoints (NaN: unknown)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 2 or pred.shape != gt.shape:
        raise ValueError(
            f'expected two (N, J, 2) arrays of equal shape, got {pred.shape} and {gt.shape}')
    return np.linalg.norm(pred - gt, axis=-1)


def pck_counts(errors: np.ndarray, thresholds: Sequence[float]) -> tuple[np.ndarray, int]:
    """Joints within each threshold, and the joints counted.

    Args:
        errors: (..., J) per-joint errors (NaN joints are not counted).
        thresholds: T thresholds in the units of ``errors``.

    Returns:
        (T,) int64 hits per threshold and the number of known joints. Integer counts, so
        that pooling over frames, bags and processes is exact.
    """
    known = np.asarray(errors, dtype=np.float64)
    known = known[np.isfinite(known)]
    hits = np.array([(known <= t).sum() for t in thresholds], dtype=np.int64)
    return hits, int(known.size)


def auc_thresholds(max_mm: float = 150.0, step_mm: float = 5.0) -> np.ndarray:
    """The PCK thresholds of the AUC: 0, step, ..., max (MPI-INF-3DHP / MuPoTS: 0..150 by 5)."""
    return np.arange(0.0, max_mm + 0.5 * step_mm, step_mm)


def precision_recall_f1(true_positives: int, false_positives: int,
                        false_negatives: int) -> tuple[float | None, float | None, float | None]:
    """Detection precision, recall and F1 (None where a ratio is 0/0).

    F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall.
    """
    tp, fp, fn = int(true_positives), int(false_positives), int(false_negatives)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return precision, recall, f1


def person_mean(errors: np.ndarray) -> np.ndarray:
    """(N, J) -> (N,) mean over the known joints of each person (NaN if none is known)."""
    errors = np.asarray(errors, dtype=np.float64)
    known = np.isfinite(errors)
    count = known.sum(axis=-1)
    total = np.where(known, errors, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape != gt.shape:
        raise ValueError(
            f'expected two (N, J, 3) arrays of equal shape, got {pred.shape} and {gt.shape}')
    return pred, gt
