"""Score one frame: match its people, then measure every matched ground-truth person.

Pure functions of (ground truth, predictions, protocol): no accounting here (that is
:mod:`romp_ros.evaluation.session`), so the training loop can call :func:`score_frame`
directly on its validation renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from romp_ros.evaluation.matching import Matching, match_people
from romp_ros.evaluation.metrics import (
    joint_errors,
    keypoint_errors_2d,
    pa_joint_errors,
    person_mean,
    position_errors,
    pve,
    root_points,
)
from romp_ros.evaluation.people import FramePeople
from romp_ros.evaluation.protocols import EvalJointSet


@dataclass(frozen=True)
class FrameScore:
    """One frame's G ground-truth people against its P predictions (K = joints of the set).

    Per ground-truth person (NaN where the person was missed or the value is unknown):

    Attributes:
        matching: the matching (:mod:`romp_ros.evaluation.matching`).
        joint_errors: (G, K) root-relative joint errors, mm.
        mpjpe: (G,) mean of ``joint_errors`` over the known joints, mm.
        pa_mpjpe: (G,) after per-person Procrustes alignment, mm.
        pve: (G,) root-relative mean vertex error, mm (NaN without vertices on both sides).
        root_error: (G,) distance between the predicted and true root, mm.
        depth_error: (G,) predicted minus true root z (along the optical axis), mm.
        keypoint_error: (G,) mean 2D keypoint distance over the known joints, px.
        pck2d_hits: (G,) int: known 2D joints within ``alpha`` x the box's longer side.
        pck2d_known: (G,) int: the ground truth's known 2D joints (0 for a missed person).
        known_joints: (G,) int: the ground truth's known 3D joints.
        gt_root: (G, 3) true root, m, camera frame.
        pred_root: (G, 3) matched prediction's root, m.
        fp_root: (F, 3) roots of the false positives, m.
    """

    matching: Matching
    joint_errors: np.ndarray
    mpjpe: np.ndarray
    pa_mpjpe: np.ndarray
    pve: np.ndarray
    root_error: np.ndarray
    depth_error: np.ndarray
    keypoint_error: np.ndarray
    pck2d_hits: np.ndarray
    pck2d_known: np.ndarray
    known_joints: np.ndarray
    gt_root: np.ndarray
    pred_root: np.ndarray
    fp_root: np.ndarray


@dataclass(frozen=True)
class SelectedPeople:
    """A frame's people restricted to the joint set's joints.

    Attributes:
        joints: (N, K, 3) m.
        keypoints: (N, K, 2) px.
        root: (N, 3) m, the set's root (mean of its root joints).
    """

    joints: np.ndarray
    keypoints: np.ndarray
    root: np.ndarray


def select_joints(people: FramePeople, joint_set: EvalJointSet, what: str) -> SelectedPeople:
    """The joint set's joints of ``people`` (EvaluationInputError if some are missing)."""
    index = joint_set.indices(people.joint_names, what)
    joints = people.joints_3d[:, index]
    return SelectedPeople(joints, people.keypoints_2d[:, index],
                          root_points(joints, joint_set.root_index) if len(joints)
                          else np.zeros((0, 3)))


def score_frame(gt: FramePeople, pred: FramePeople, joint_set: EvalJointSet,
                iou_threshold: float = 0.1, pck2d_alpha: float = 0.1) -> FrameScore:
    """Match and measure one frame (see :class:`FrameScore`)."""
    g_sel = select_joints(gt, joint_set, 'the ground truth')
    p_sel = select_joints(pred, joint_set, 'the predictions') if pred.num_people else \
        SelectedPeople(np.zeros((0, len(joint_set.joints), 3)),
                       np.zeros((0, len(joint_set.joints), 2)), np.zeros((0, 3)))
    matching = match_people(g_sel.keypoints, p_sel.keypoints, gt.bbox, pred.bbox, iou_threshold)
    g, k = gt.num_people, len(joint_set.joints)
    gi, pi = matching.gt_index, matching.pred_index
    root = joint_set.root_index

    def per_person(values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        out = np.full((g,) + values.shape[1:], fill)
        out[gi] = values
        return out

    errors = joint_errors(p_sel.joints[pi], g_sel.joints[gi], root) if len(gi) \
        else np.zeros((0, k))
    pa_errors = pa_joint_errors(p_sel.joints[pi], g_sel.joints[gi]) if len(gi) \
        else np.zeros((0, k))
    kp_err = keypoint_errors_2d(p_sel.keypoints[pi], g_sel.keypoints[gi]) if len(gi) \
        else np.zeros((0, k))
    gt_kp_known = np.isfinite(g_sel.keypoints).all(-1)  # (G, K)
    side = np.maximum(gt.bbox[:, 2] - gt.bbox[:, 0], gt.bbox[:, 3] - gt.bbox[:, 1])  # (G,)
    hits = np.zeros(g, np.int64)
    if len(gi):
        hits[gi] = (np.nan_to_num(kp_err, nan=np.inf)
                    <= pck2d_alpha * side[gi, None]).sum(axis=1)
    known_2d = np.zeros(g, np.int64)
    known_2d[gi] = gt_kp_known[gi].sum(axis=1)
    vert_err = np.full(len(gi), np.nan)
    if (len(gi) and gt.verts is not None and pred.verts is not None
            and gt.verts.shape[1] == pred.verts.shape[1]):
        vert_err = pve(pred.verts[pi], gt.verts[gi], p_sel.root[pi], g_sel.root[gi])
    pred_root = per_person(p_sel.root[pi])
    return FrameScore(
        matching=matching,
        joint_errors=per_person(errors),
        mpjpe=per_person(person_mean(errors)),
        pa_mpjpe=per_person(person_mean(pa_errors)),
        pve=per_person(vert_err),
        root_error=per_person(position_errors(p_sel.root[pi], g_sel.root[gi])),
        depth_error=(pred_root[:, 2] - g_sel.root[:, 2]) * 1000.0,
        keypoint_error=per_person(person_mean(kp_err)),
        pck2d_hits=hits, pck2d_known=known_2d,
        known_joints=np.isfinite(g_sel.joints).all(-1).sum(axis=1).astype(np.int64),
        gt_root=g_sel.root, pred_root=pred_root,
        fp_root=p_sel.root[matching.false_positives])
