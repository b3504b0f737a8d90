"""An evaluation session: ground truth and predictions in, every frame accounted for, a report out.

The bag and dataset runner and the ROS offline node feed the same object::

    session = EvaluationSession(EvaluationConfig(), name='front_camera')
    session.add_ground_truth(stamp_ns, gt_people)      # FramePeople
    session.add_prediction(stamp_ns, predicted_people)  # FramePeople
    ...
    report = session.finish()                           # a Report

Frames are paired by stamp (:mod:`romp_ros.evaluation.pairing`) and scored as soon as their
pairing is settled, so memory stays bounded in a long live run. The accounting:

* a ground-truth frame paired with a prediction is **scored**;
* a ground-truth frame without one is skipped as ``no_prediction`` and its people count as
  ground truth and as missed (a frame the perception node dropped is a miss);
* a prediction that failed (``decode_error``, ``inference_error``: pass ``reason``) skips its
  ground-truth frame with that reason, people again counted as missed;
* an unusable ground-truth message is ``bad_ground_truth`` (its people are unknown, so they
  do not count); a repeated stamp on one stream is ``duplicate_stamp``;
* a prediction no ground-truth frame took is ``no_ground_truth``.
"""

from __future__ import annotations

from collections import Counter
import logging
from typing import Any

import numpy as np

from romp_ros.evaluation.config import EvaluationConfig
from romp_ros.evaluation.errors import EvaluationInputError
from romp_ros.evaluation.matching import box_iou
from romp_ros.evaluation.pairing import StampPairer
from romp_ros.evaluation.people import FramePeople
from romp_ros.evaluation.records import (
    BAD_GROUND_TRUTH,
    DUPLICATE_STAMP,
    FALSE_POSITIVE_COLUMNS,
    NO_GROUND_TRUTH,
    NO_PREDICTION,
    PERSON_COLUMNS,
    UNREADABLE,
    Columns,
    SessionResult,
    TrackingFrame,
)
from romp_ros.evaluation.scoring import FrameScore, score_frame
from romp_ros.evaluation.summary import Report, build_report

LOG = logging.getLogger(__name__)


class _Entry:
    """A frame waiting for its pairing: its people, or why there are none."""

    __slots__ = ('people', 'reason', 'detail')

    def __init__(self, people: FramePeople | None, reason: str | None, detail: str) -> None:
        self.people = people
        self.reason = reason
        self.detail = detail


class EvaluationSession:
    """Incremental evaluation of one stream (module docstring)."""

    def __init__(self, config: EvaluationConfig | None = None, name: str = '') -> None:
        """Args: the settings; the sequence's name (reports, per-sequence tables)."""
        self.config = config or EvaluationConfig()
        self.name = name
        self.joint_set = self.config.protocol_spec.joint_set
        self._pairer = StampPairer(self.config.tolerance_ns, self.config.max_wait_ns)
        self._gt: dict[int, _Entry] = {}
        self._pred: dict[int, _Entry] = {}
        self._seen_gt: set[int] = set()
        self._seen_pred: set[int] = set()
        self._last = {'ground truth': None, 'prediction': None}
        self._rows: list[dict[str, Any]] = []
        k = len(self.joint_set.joints)
        self._people = Columns(PERSON_COLUMNS, {'joint_errors': ((k,), np.float64)})
        self._fps = Columns(FALSE_POSITIVE_COLUMNS)
        self._tracking: list[TrackingFrame] = []
        self._skipped: Counter = Counter()
        self._scored = 0
        self._paired = 0
        self._fallback = 0
        self._notes: list[str] = []
        self._gt_range: tuple[int, int] | None = None
        self._pred_range: tuple[int, int] | None = None
        self._closed: SessionResult | None = None

    # -- feeding ----------------------------------------------------------------------------
    def add_ground_truth(self, stamp_ns: int, people: FramePeople | None,
                         reason: str | None = None, detail: str = '') -> None:
        """A ground-truth frame arrived.

        Args:
            stamp_ns: its stamp.
            people: its people, or None when the message was unusable.
            reason: why ``people`` is None (default ``bad_ground_truth``).
            detail: a sentence for frames.jsonl.
        """
        self._check_open()
        stamp_ns = int(stamp_ns)
        if people is None and reason is None:
            reason = BAD_GROUND_TRUTH
        self._gt_range = _extend(self._gt_range, stamp_ns)
        if stamp_ns in self._seen_gt:
            self._skip_row(stamp_ns, DUPLICATE_STAMP, 'a second ground-truth frame with this '
                           'stamp', ground_truth=True)
            return
        self._note_order('ground truth', stamp_ns)
        self._seen_gt.add(stamp_ns)
        self._gt[stamp_ns] = _Entry(people, reason, detail)
        self._pairer.add_ground_truth(stamp_ns)
        self._drain(final=False)

    def add_prediction(self, stamp_ns: int, people: FramePeople | None,
                       reason: str | None = None, detail: str = '') -> None:
        """A prediction frame arrived.

        Args:
            stamp_ns: its stamp (the image's).
            people: its people (possibly nobody), or None when the prediction failed.
            reason: why ``people`` is None (``decode_error``, ``inference_error``).
            detail: a sentence for frames.jsonl.
        """
        self._check_open()
        stamp_ns = int(stamp_ns)
        if people is None and reason is None:
            raise ValueError('a prediction without people needs a reason')
        self._pred_range = _extend(self._pred_range, stamp_ns)
        if stamp_ns in self._seen_pred:
            self._skip_row(stamp_ns, DUPLICATE_STAMP, 'a second prediction with this stamp',
                           ground_truth=False)
            return
        self._note_order('prediction', stamp_ns)
        self._seen_pred.add(stamp_ns)
        self._pred[stamp_ns] = _Entry(people, reason, detail)
        self._pairer.add_prediction(stamp_ns)
        self._drain(final=False)

    def add_unplaced(self, reason: str, detail: str, count: int = 1,
                     ground_truth: bool | None = None) -> None:
        """``count`` frames skipped before their stamp was known (no pairing possible).

        E.g. ``unreadable`` messages of a damaged bag, or a ground-truth message whose header
        cannot be parsed (``bad_ground_truth``, ``ground_truth=True``).
        """
        self._check_open()
        for _ in range(int(count)):
            self._skip_row(None, reason, detail, ground_truth=ground_truth)
        if count and reason == UNREADABLE:
            self._notes.append(f'{count} message(s) unreadable: {detail}')

    def add_note(self, text: str) -> None:
        """A remark the report must carry (e.g. a read error)."""
        self._notes.append(text)

    # -- results ----------------------------------------------------------------------------
    def close(self) -> SessionResult:
        """Settle every pending frame and return the raw results (idempotent)."""
        if self._closed is None:
            self._drain(final=True)
            rows = sorted(self._rows, key=lambda r: (r['stamp_ns'] is None,
                                                     r['stamp_ns'] or 0))
            self._closed = SessionResult(
                name=self.name, pairing=self._pairer.description,
                joint_set=self.joint_set.name, joint_names=self.joint_set.joints, rows=rows,
                people=self._people.arrays(), false_positives=self._fps.arrays(),
                tracking=self._tracking, skipped=self._skipped, scored=self._scored,
                paired=self._paired, box_fallback_frames=self._fallback, notes=self._notes,
                gt_stamps_ns=self._gt_range, pred_stamps_ns=self._pred_range)
        return self._closed

    def finish(self) -> Report:
        """Close the session and summarise it (report.json's numbers, see summary.py)."""
        return build_report([self.close()], self.config)

    # -- internals --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed is not None:
            raise RuntimeError('the session is closed')

    def _note_order(self, stream: str, stamp_ns: int) -> None:
        last = self._last[stream]
        if last is not None and stamp_ns < last:
            text = (f'{stream} stamps go backwards ({last} -> {stamp_ns} ns); frames are paired '
                    'in arrival order around the jump')
            if not any(n.startswith(f'{stream} stamps go backwards') for n in self._notes):
                LOG.warning('%s: %s', self.name or 'session', text)
                self._notes.append(text)
        self._last[stream] = stamp_ns if last is None else max(last, stamp_ns)

    def _drain(self, final: bool) -> None:
        decisions = self._pairer.decide(final)
        for gt_stamp, pred_stamp in decisions.pairs:
            gt = self._gt.pop(gt_stamp)
            pred = self._pred.pop(pred_stamp) if pred_stamp is not None else None
            self._settle(gt_stamp, gt, pred_stamp, pred)
        for stamp in decisions.unpaired_predictions:
            entry = self._pred.pop(stamp)
            detail = 'no ground-truth frame with this stamp' + (
                f' (the prediction had failed: {entry.reason})' if entry.reason else '')
            self._skip_row(stamp, NO_GROUND_TRUTH, detail, ground_truth=False,
                           predictions=None if entry.people is None else entry.people.num_people)

    def _settle(self, stamp: int, gt: _Entry, pred_stamp: int | None,
                pred: _Entry | None) -> None:
        if pred_stamp is not None:
            self._paired += 1
        if gt.people is None:
            self._skip_row(stamp, gt.reason or BAD_GROUND_TRUTH, gt.detail, ground_truth=True,
                           prediction_stamp=pred_stamp)
            return
        unboxed = ~np.isfinite(gt.people.bbox).all(-1)
        if unboxed.any():
            self._skip_row(stamp, BAD_GROUND_TRUTH,
                           f'{int(unboxed.sum())} ground-truth person(s) without a box or 2D '
                           'keypoints cannot be matched', ground_truth=True,
                           prediction_stamp=pred_stamp)
            return
        if pred is None or pred.people is None:
            reason = NO_PREDICTION if pred is None else pred.reason
            detail = ('no prediction paired with this stamp' if pred is None
                      else pred.detail)
            self._missed_frame(stamp, gt.people, reason, detail, pred_stamp)
            return
        score = score_frame(gt.people, pred.people, self.joint_set, self.config.iou_threshold,
                            self.config.pck2d_alpha)
        self._scored_frame(stamp, gt.people, pred.people, pred_stamp, score)

    def _missed_frame(self, stamp: int, gt: FramePeople, reason: str, detail: str,
                      pred_stamp: int | None) -> None:
        g = gt.num_people
        roots = self._gt_roots(gt)
        nan = np.full(g, np.nan)
        k = len(self.joint_set.joints)
        idx = self.joint_set.indices(gt.joint_names, 'the ground truth')
        self._people.append(
            stamp_ns=np.full(g, stamp), sequence=np.zeros(g), gt_id=gt.ids,
            pred_id=np.full(g, -1), matched=np.zeros(g, bool), scored=np.zeros(g, bool),
            distance_m=np.linalg.norm(roots, axis=-1), gt_root=roots,
            pred_root=np.full((g, 3), np.nan), mpjpe=nan, pa_mpjpe=nan, pve=nan,
            root_error=nan, depth_error=nan, keypoint_error=nan,
            known_joints=np.isfinite(gt.joints_3d[:, idx]).all(-1).sum(axis=1),
            pck2d_hits=np.zeros(g), pck2d_known=np.zeros(g),
            joint_errors=np.full((g, k), np.nan))
        self._tracking.append(TrackingFrame(stamp, gt.ids.copy(), np.zeros(0, np.int64),
                                            np.zeros((g, 0))))
        self._skip_row(stamp, reason, detail, ground_truth=True, prediction_stamp=pred_stamp,
                       counts={'ground_truth': g, 'matched': 0, 'missed': g,
                               'false_positives': 0},
                       people=[{'gt_index': i, 'id': int(gt.ids[i]), 'pred_index': None,
                                'distance_m': _num(np.linalg.norm(roots[i]))}
                               for i in range(g)])

    def _scored_frame(self, stamp: int, gt: FramePeople, pred: FramePeople,
                      pred_stamp: int, score: FrameScore) -> None:
        m = score.matching
        g = gt.num_people
        pred_ids = np.full(g, -1, np.int64)
        pred_ids[m.gt_index] = pred.ids[m.pred_index]
        distance = np.linalg.norm(score.gt_root, axis=-1)
        self._people.append(
            stamp_ns=np.full(g, stamp), sequence=np.zeros(g), gt_id=gt.ids, pred_id=pred_ids,
            matched=m.gt_to_pred >= 0, scored=np.ones(g, bool), distance_m=distance,
            gt_root=score.gt_root, pred_root=score.pred_root, mpjpe=score.mpjpe,
            pa_mpjpe=score.pa_mpjpe, pve=score.pve, root_error=score.root_error,
            depth_error=score.depth_error, keypoint_error=score.keypoint_error,
            known_joints=score.known_joints, pck2d_hits=score.pck2d_hits,
            pck2d_known=score.pck2d_known, joint_errors=score.joint_errors)
        fp = m.false_positives
        fp_dist = np.linalg.norm(score.fp_root, axis=-1)
        self._fps.append(stamp_ns=np.full(len(fp), stamp), sequence=np.zeros(len(fp)),
                         pred_id=pred.ids[fp], root=score.fp_root, distance_m=fp_dist)
        self._tracking.append(TrackingFrame(stamp, gt.ids.copy(), pred.ids.copy(),
                                            box_iou(gt.bbox, pred.bbox)))
        self._scored += 1
        self._fallback += int(m.used_box_fallback)
        people = []
        for i in range(g):
            j = int(m.gt_to_pred[i])
            people.append({
                'gt_index': i, 'id': int(gt.ids[i]), 'pred_index': j if j >= 0 else None,
                'pred_id': int(pred.ids[j]) if j >= 0 else None,
                'distance_m': _num(distance[i]), 'mpjpe_mm': _num(score.mpjpe[i]),
                'pa_mpjpe_mm': _num(score.pa_mpjpe[i]), 'pve_mm': _num(score.pve[i]),
                'root_error_mm': _num(score.root_error[i]),
                'depth_error_mm': _num(score.depth_error[i]),
                'keypoint_error_px': _num(score.keypoint_error[i])})
        self._rows.append({
            'sequence': self.name, 'stamp_ns': stamp, 'status': 'scored', 'reason': None,
            'has_ground_truth': True, 'prediction_stamp_ns': pred_stamp, 'ground_truth': g,
            'predictions': pred.num_people, 'matched': len(m.gt_index), 'missed': len(m.missed),
            'false_positives': len(fp), 'matching': 'box_iou' if m.used_box_fallback
            else 'keypoints', 'people': people,
            'false_positive_people': [{'pred_index': int(p), 'pred_id': int(pred.ids[p]),
                                       'distance_m': _num(d)} for p, d in zip(fp, fp_dist,
                                                                                strict=True)]})

    def _gt_roots(self, gt: FramePeople) -> np.ndarray:
        idx = self.joint_set.indices(gt.joint_names, 'the ground truth')
        joints = gt.joints_3d[:, idx]
        return joints[:, list(self.joint_set.root_index)].mean(axis=1) if len(joints) \
            else np.zeros((0, 3))

    def _skip_row(self, stamp: int | None, reason: str, detail: str, *,
                  ground_truth: bool | None, prediction_stamp: int | None = None,
                  predictions: int | None = None, counts: dict[str, int] | None = None,
                  people: list | None = None) -> None:
        self._skipped[reason] += 1
        row = {'sequence': self.name, 'stamp_ns': stamp, 'status': 'skipped', 'reason': reason,
               'detail': detail, 'has_ground_truth': ground_truth,
               'prediction_stamp_ns': prediction_stamp, 'ground_truth': None,
               'predictions': predictions}
        if counts:
            row.update(counts)
        if people is not None:
            row['people'] = people
        self._rows.append(row)


def check_pairing(result: SessionResult) -> None:
    """Raise when ground truth and predictions both exist but no stamp ever paired.

    Raises:
        EvaluationInputError: naming both stamp ranges and the tolerance to try.
    """
    if result.paired or result.gt_stamps_ns is None or result.pred_stamps_ns is None:
        return
    g0, g1 = result.gt_stamps_ns
    p0, p1 = result.pred_stamps_ns
    gap = max(p0 - g1, g0 - p1, 0) / 1e9
    raise EvaluationInputError(
        f'{result.name or "session"}: no prediction stamp pairs with a ground-truth stamp '
        f'({result.pairing}): ground truth {g0 / 1e9:.6f}..{g1 / 1e9:.6f} s, predictions '
        f'{p0 / 1e9:.6f}..{p1 / 1e9:.6f} s (ranges {gap:.3f} s apart); check that both come '
        'from the same images, or pass --stamp-tolerance SEC')


def _extend(span: tuple[int, int] | None, stamp: int) -> tuple[int, int]:
    return (stamp, stamp) if span is None else (min(span[0], stamp), max(span[1], stamp))


def _num(value: float) -> float | None:
    """A JSON number, None for NaN (rounded to 0.001)."""
    value = float(value)
    return round(value, 3) if np.isfinite(value) else None
