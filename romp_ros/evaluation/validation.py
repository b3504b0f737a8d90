"""Arrays in, numbers out: the evaluation for a training loop's validation step.

The same pairing-free path as a full evaluation (one frame per list entry, matched and
scored exactly like ``romp-ros evaluate``), without files::

    scores = validation_scores(gt_joints, gt_keypoints, pred_joints, pred_keypoints)
    scores.f1, scores.mpjpe_mm, scores.pa_mpjpe_mm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from romp_ros.core.body.joint_names import joint_names as body_joint_names
from romp_ros.evaluation.config import EvaluationConfig
from romp_ros.evaluation.people import FramePeople, keypoint_boxes
from romp_ros.evaluation.session import EvaluationSession


@dataclass(frozen=True)
class ValidationScores:
    """Detection and 3D accuracy over the validation frames.

    Attributes:
        precision, recall, f1: detection scores (None where 0/0).
        mpjpe_mm, pa_mpjpe_mm, pve_mm: means over matched people (None without any; PVE
            needs vertices on both sides).
        ground_truth, matched, missed, false_positives: people counts.
        frames_scored: frames scored.
        frames_skipped: reason -> frames not scored (e.g. ``bad_ground_truth``: a person
            without any labelled 2D keypoint cannot be matched).
    """

    precision: float | None
    recall: float | None
    f1: float | None
    mpjpe_mm: float | None
    pa_mpjpe_mm: float | None
    pve_mm: float | None
    ground_truth: int
    matched: int
    missed: int
    false_positives: int
    frames_scored: int = 0
    frames_skipped: dict[str, int] = field(default_factory=dict)


def validation_scores(gt_joints: Sequence[np.ndarray], gt_keypoints: Sequence[np.ndarray],
                      pred_joints: Sequence[np.ndarray], pred_keypoints: Sequence[np.ndarray],
                      *, gt_verts: Sequence[np.ndarray] | None = None,
                      pred_verts: Sequence[np.ndarray] | None = None,
                      joint_names: Sequence[str] | None = None,
                      config: EvaluationConfig | None = None) -> ValidationScores:
    """Score F frames of predictions against ground truth.

    Args:
        gt_joints: F arrays (G_f, J, 3): true joints, metres, camera frame.
        gt_keypoints: F arrays (G_f, J, 2): true 2D keypoints, px (NaN: unknown).
        pred_joints: F arrays (P_f, J, 3): predicted joints, same joint order.
        pred_keypoints: F arrays (P_f, J, 2): predicted keypoints, px.
        gt_verts, pred_verts: optional F arrays (N, V, 3) for PVE.
        joint_names: the J names (default: the body model's 24 or 71 joints).
        config: protocol and matching settings (default: smpl24, IoU gate 0.1).

    Boxes are the extents of the keypoints (the node's convention).
    """
    frames = len(gt_joints)
    if not (len(gt_keypoints) == len(pred_joints) == len(pred_keypoints) == frames):
        raise ValueError('gt_joints, gt_keypoints, pred_joints and pred_keypoints need one '
                         'entry per frame each')
    session = EvaluationSession(config or EvaluationConfig(), name='validation')
    for f in range(frames):
        for joints, keypoints, verts, add in (
                (gt_joints[f], gt_keypoints[f], gt_verts[f] if gt_verts else None,
                 session.add_ground_truth),
                (pred_joints[f], pred_keypoints[f], pred_verts[f] if pred_verts else None,
                 session.add_prediction)):
            joints = np.asarray(joints, dtype=np.float64)
            names = tuple(joint_names) if joint_names else body_joint_names(joints.shape[1])
            n = joints.shape[0]
            add(f, FramePeople(f, names, joints, keypoints, keypoint_boxes(keypoints),
                               np.arange(n), np.ones(n), verts=verts))
    report = session.finish()
    people, det = report['people'], report['detection']
    return ValidationScores(
        precision=det['precision'], recall=det['recall'], f1=det['f1'],
        mpjpe_mm=report['mpjpe_mm'], pa_mpjpe_mm=report['pa_mpjpe_mm'], pve_mm=report['pve_mm'],
        ground_truth=people['ground_truth'], matched=people['matched'], missed=people['missed'],
        false_positives=people['false_positives'], frames_scored=report['frames']['scored'],
        frames_skipped=dict(report['frames']['skipped']))
