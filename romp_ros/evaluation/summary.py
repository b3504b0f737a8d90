"""From session results to the report's numbers (the report.json object).

Every number is computed from the people columns of all sessions concatenated in the given
order, or from integer counts; nothing averages averages. Definitions (docs/evaluation.md):

* MPJPE, PA-MPJPE, PVE: each matched person's mean over the joint set's joints (vertices),
  root-relative; then the mean over all matched people of all scored frames.
* ``root_error_mm``: mean over matched people of the root's position error (not
  root-relative); depth error: predicted minus true root z.
* ``pck3d_150_matched``: fraction of the matched people's known joints within 150 mm
  (root-relative); ``pck3d_150_all`` counts every known joint of a missed person as wrong.
  AUC: the mean PCK over the thresholds 0, 5, ..., 150 mm.
* ``pck3d_150_*_sequence_mean``: the one deliberate average of averages, MuPoTS-3D's table
  convention: the PCK of each sequence (``per_sequence``), then their mean.
* detection: TP = matched, FP = unmatched predictions, FN = missed ground truth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
import logging
from typing import Any, Sequence

import numpy as np

from romp_ros.evaluation.config import EvaluationConfig
from romp_ros.evaluation.matching import MATCHING_RULE
from romp_ros.evaluation.metrics import auc_thresholds, pck_counts, precision_recall_f1
from romp_ros.evaluation.records import SKIP_REASONS, SessionResult, concatenate_columns
from romp_ros.evaluation.tracking_metrics import TrackingUnavailableError, trackeval_scores

LOG = logging.getLogger(__name__)
REPORT_VERSION = 1


@dataclass(frozen=True)
class Report:
    """A finished evaluation.

    Attributes:
        summary: the report.json object (numbers, counts, settings).
        results: the sessions it was computed from, in order (frames.jsonl, plots).
        people: every ground-truth person's columns, sessions concatenated
            (:data:`romp_ros.evaluation.records.PERSON_COLUMNS` + ``joint_errors``).
        false_positives: every false positive's columns.
        config: the settings.
    """

    summary: dict[str, Any]
    results: tuple[SessionResult, ...]
    people: dict[str, np.ndarray]
    false_positives: dict[str, np.ndarray]
    config: EvaluationConfig

    def __getitem__(self, key: str) -> Any:
        """``report['mpjpe_mm']`` reads the summary."""
        return self.summary[key]


def build_report(results: Sequence[SessionResult], config: EvaluationConfig) -> Report:
    """Summarise sessions (in this order) into one :class:`Report`."""
    results = tuple(results)
    order = list(range(len(results)))
    people = concatenate_columns([r.people for r in results], order)
    fps = concatenate_columns([r.false_positives for r in results], order)
    protocol = config.protocol_spec
    summary: dict[str, Any] = {
        'version': REPORT_VERSION,
        'protocol': protocol.name,
        'protocol_description': protocol.description,
        'joint_set': protocol.joint_set.name,
        'joint_set_description': protocol.joint_set.description,
        'joint_names': list(protocol.joint_set.joints),
        'matching': MATCHING_RULE.format(iou=config.iou_threshold),
        'pairing': _pairing(results),
        'sequences': [r.name for r in results],
        'frames': _frames(results),
    }
    summary.update(_people_and_errors(people, fps, config))
    summary['by_distance'] = _by_distance(people, fps, config)
    summary['tracking'] = _tracking(results)
    summary['per_sequence'] = [_sequence_summary(r, i, people, fps, config)
                               for i, r in enumerate(results)]
    label = f'{config.pck_threshold_mm:g}'
    for kind in ('matched', 'all'):
        values = [s[f'pck3d_{label}_{kind}'] for s in summary['per_sequence']]
        values = [v for v in values if v is not None]
        summary[f'pck3d_{label}_{kind}_sequence_mean'] = (float(np.mean(values)) if values
                                                           else None)
    summary['notes'] = [f'{r.name}: {n}' if r.name else n for r in results for n in r.notes]
    return Report(summary, results, people, fps, config)


def _pairing(results: Sequence[SessionResult]) -> str:
    kinds = sorted({r.pairing for r in results})
    return kinds[0] if len(kinds) == 1 else ', '.join(kinds) if kinds else 'exact'


def _frames(results: Sequence[SessionResult]) -> dict[str, Any]:
    skipped: Counter = Counter()
    for r in results:
        skipped.update(r.skipped)
    ordered = {k: skipped[k] for k in SKIP_REASONS if skipped[k]}
    ordered.update({k: v for k, v in sorted(skipped.items()) if k not in ordered and v})
    scored = sum(r.scored for r in results)
    return {'total': scored + sum(ordered.values()), 'scored': scored, 'skipped': ordered,
            'paired': sum(r.paired for r in results),
            'matched_by_box_iou': sum(r.box_fallback_frames for r in results)}


def _mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _people_and_errors(people: dict[str, np.ndarray], fps: dict[str, np.ndarray],
                       config: EvaluationConfig) -> dict[str, Any]:
    n_gt = len(people.get('matched', ()))
    matched = people['matched'] if n_gt else np.zeros(0, bool)
    n_matched = int(matched.sum())
    n_fp = len(fps.get('stamp_ns', ()))
    precision, recall, f1 = precision_recall_f1(n_matched, n_fp, n_gt - n_matched)
    out: dict[str, Any] = {
        'people': {'ground_truth': n_gt, 'matched': n_matched, 'missed': n_gt - n_matched,
                   'false_positives': n_fp},
        'detection': {'precision': precision, 'recall': recall, 'f1': f1},
    }
    if not n_gt:
        errors = np.zeros((0, 0))
        joint_errors = errors
    else:
        joint_errors = people['joint_errors'][matched]  # (M, K)
    mpjpe = _mean(people['mpjpe'][matched]) if n_gt else None
    pve = _mean(people['pve'][matched]) if n_gt else None
    out.update({
        'mpjpe_mm': mpjpe,
        'pa_mpjpe_mm': _mean(people['pa_mpjpe'][matched]) if n_gt else None,
        'pve_mm': pve,
        'root_error_mm': _mean(people['root_error'][matched]) if n_gt else None,
        'depth_abs_error_mm': _mean(np.abs(people['depth_error'][matched])) if n_gt else None,
        'depth_bias_mm': _mean(people['depth_error'][matched]) if n_gt else None,
        'keypoint_error_px': _mean(people['keypoint_error'][matched]) if n_gt else None,
    })
    thresholds = auc_thresholds(config.auc_max_mm, config.auc_step_mm)
    hits, known = pck_counts(joint_errors, [config.pck_threshold_mm, *thresholds])
    missed_joints = int(people['known_joints'][~matched].sum()) if n_gt else 0
    label = f'{config.pck_threshold_mm:g}'
    out[f'pck3d_{label}_matched'] = _ratio(hits[0], known)
    out[f'pck3d_{label}_all'] = _ratio(hits[0], known + missed_joints)
    out['auc_matched'] = _ratio(hits[1:].mean(), known) if known else None
    out['auc_all'] = _ratio(hits[1:].mean(), known + missed_joints) \
        if known + missed_joints else None
    out['auc_thresholds_mm'] = [float(t) for t in thresholds]
    out['pck2d'] = _ratio(people['pck2d_hits'].sum(), people['pck2d_known'].sum()) \
        if n_gt else None
    out['pck2d_alpha'] = config.pck2d_alpha
    out['nmje_mm'] = mpjpe / f1 if mpjpe is not None and f1 else None
    out['nmve_mm'] = pve / f1 if pve is not None and f1 else None
    names = config.protocol_spec.joint_set.joints
    per_joint = {}
    for k, name in enumerate(names):
        per_joint[name] = _mean(joint_errors[:, k]) if joint_errors.size else None
    out['per_joint_mpjpe_mm'] = per_joint
    return out


def _by_distance(people: dict[str, np.ndarray], fps: dict[str, np.ndarray],
                 config: EvaluationConfig) -> list[dict[str, Any]]:
    edges = list(config.distance_bins_m) + [np.inf]
    n_gt = len(people.get('matched', ()))
    dist = people['distance_m'] if n_gt else np.zeros(0)
    fp_dist = fps['distance_m'] if len(fps.get('stamp_ns', ())) else np.zeros(0)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (dist >= lo) & (dist < hi)
        matched = inside & people['matched'] if n_gt else inside
        n, m = int(inside.sum()), int(matched.sum())
        n_fp = int(((fp_dist >= lo) & (fp_dist < hi)).sum())
        rows.append({
            'range_m': [lo, None if np.isinf(hi) else hi], 'ground_truth': n, 'matched': m,
            'missed': n - m, 'false_positives': n_fp, 'recall': _ratio(m, n),
            'mpjpe_mm': _mean(people['mpjpe'][matched]) if m else None,
            'root_error_mm': _mean(people['root_error'][matched]) if m else None,
            'depth_abs_error_mm': _mean(np.abs(people['depth_error'][matched])) if m else None,
            'depth_bias_mm': _mean(people['depth_error'][matched]) if m else None,
        })
    return rows


def _tracking(results: Sequence[SessionResult]) -> dict[str, Any]:
    sequences = {f'{i}:{r.name}': r.tracking for i, r in enumerate(results) if r.tracking}
    try:
        scores = trackeval_scores(sequences)
    except TrackingUnavailableError as err:
        return {'available': False, 'reason': str(err)}
    out: dict[str, Any] = {'available': True, 'library': 'TrackEval',
                           'similarity': 'box IoU'}
    out.update(vars(scores))
    return out


def _sequence_summary(result: SessionResult, index: int, people: dict[str, np.ndarray],
                      fps: dict[str, np.ndarray], config: EvaluationConfig) -> dict[str, Any]:
    n_gt = len(people.get('matched', ()))
    mine = people['sequence'] == index if n_gt else np.zeros(0, bool)
    matched = mine & people['matched'] if n_gt else mine
    n_fp = int((fps['sequence'] == index).sum()) if len(fps.get('stamp_ns', ())) else 0
    n, m = int(mine.sum()), int(matched.sum())
    precision, recall, f1 = precision_recall_f1(m, n_fp, n - m)
    return {
        'name': result.name,
        'frames': {'total': result.total_frames, 'scored': result.scored,
                   'skipped': dict(sorted(result.skipped.items()))},
        'people': {'ground_truth': n, 'matched': m, 'missed': n - m, 'false_positives': n_fp},
        'detection': {'precision': precision, 'recall': recall, 'f1': f1},
        'mpjpe_mm': _mean(people['mpjpe'][matched]) if m else None,
        'pa_mpjpe_mm': _mean(people['pa_mpjpe'][matched]) if m else None,
        'root_error_mm': _mean(people['root_error'][matched]) if m else None,
        **_pck3d(people['joint_errors'][matched] if m else np.zeros((0, 0)),
                 int(people['known_joints'][mine & ~people['matched']].sum()) if n else 0,
                 config),
    }


def _pck3d(joint_errors: np.ndarray, missed_joints: int,
           config: EvaluationConfig) -> dict[str, float | None]:
    """PCK3D at the configured threshold, matched people and all people.

    Args:
        joint_errors: (M, K) matched people's joint errors, mm (NaN = unknown joint).
        missed_joints: known joints of missed people, counted as wrong in ``_all``.
    """
    hits, known = pck_counts(joint_errors, [config.pck_threshold_mm])
    label = f'{config.pck_threshold_mm:g}'
    return {f'pck3d_{label}_matched': _ratio(hits[0], known),
            f'pck3d_{label}_all': _ratio(hits[0], known + missed_joints)}
