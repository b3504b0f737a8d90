"""3D pose and mesh accuracy metrics (MPJPE, PA-MPJPE, PVE), batched over people.

Procrustes alignment is solved per person. The PA-MPJPE code that many repositories copied
from VIBE tests ``S1.shape[0]`` to decide whether its input is transposed, which silently
aligns the wrong axes when a frame holds exactly three people (or as many people as
coordinates); here the people axis is explicit and never inspected.
"""

from __future__ import annotations

import numpy as np


def mpjpe(pred: np.ndarray, gt: np.ndarray, root_index: int | None = 0) -> np.ndarray:
    """Mean per-joint position error per person.

    Args:
        pred: (N, J, 3) predicted joints, metres.
        gt: (N, J, 3) ground-truth joints, metres, same joint order.
        root_index: joint subtracted from both before comparing (root-relative error, as
            published); None compares absolute positions.

    Returns:
        (N,) errors in millimetres.
    """
    pred, gt = _check_pair(pred, gt)
    if root_index is not None:
        pred = pred - pred[:, root_index:root_index + 1]
        gt = gt - gt[:, root_index:root_index + 1]
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) * 1000.0


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each person's prediction to its ground truth with a similarity transform.

    Solves ``min_{s,R,t} ||s R pred_i + t - gt_i||`` for every person i independently
    (Umeyama), with a proper rotation (det R = +1).

    Args:
        pred: (N, J, 3).
        gt: (N, J, 3).

    Returns:
        (N, J, 3) aligned predictions.
    """
    pred, gt = _check_pair(pred, gt)
    mu_p = pred.mean(axis=1, keepdims=True)  # (N, 1, 3)
    mu_g = gt.mean(axis=1, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g  # (N, J, 3)
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
    aligned = scale[:, None, None] * np.einsum('nik,njk->nji', rot, p0) + mu_g
    return aligned


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Procrustes-aligned MPJPE per person, millimetres: (N, J, 3) x2 -> (N,)."""
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - np.asarray(gt, dtype=np.float64), axis=-1).mean(-1) * 1e3


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
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) * 1000.0


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape != gt.shape:
        raise ValueError(
            f'expected two (N, J, 3) arrays of equal shape, got {pred.shape} and {gt.shape}')
    return pred, gt
