"""Tracking metrics: CLEAR MOT (MOTA), identity (IDF1) and HOTA, from maintained libraries.

Nothing here is written by hand: motmetrics and TrackEval compute the numbers; this module only
hands them the data.

* :func:`trackeval_scores` scores recorded sequences (ground-truth ids and predicted track ids
  per frame, with their box IoU) with TrackEval's ``HOTA``, ``CLEAR`` and ``Identity`` metrics,
  the implementations behind the MOTChallenge leaderboards. Sequences are combined the way
  TrackEval combines them (sums of counts, TP-weighted association scores).
* :func:`motmetrics_scores` and :func:`summarize` score the same with motmetrics (CLEAR MOT and
  identity metrics), used by the tracking study (:mod:`romp_ros.testing.tracking_study`).

Similarity is the 2D box IoU, the MOTChallenge convention: a pair counts for MOTA and IDF1 at
IoU >= 0.5; HOTA averages over IoU thresholds 0.05 ... 0.95.

NumPy 2: motmetrics' own IoU helper calls ``np.asfarray``, which NumPy 2 removed, so distance
matrices are computed here (:func:`iou_distances`). TrackEval 1.3's metric classes run on
NumPy 2 unchanged; its metric objects print their configuration unless told not to, which
:func:`trackeval_scores` does. TrackEval is imported only when scoring (``pip install
trackeval``), motmetrics only by the functions using it; without TrackEval the report says why
its tracking metrics are missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from romp_ros.core.tracking.association import iou_matrix
from romp_ros.evaluation.records import TrackingFrame

#: motmetrics metric names reported by :func:`summarize`.
MOT_METRICS = ('mota', 'idf1', 'num_switches', 'num_false_positives', 'num_misses',
               'mostly_tracked', 'mostly_lost', 'num_unique_objects', 'num_fragmentations',
               'precision', 'recall', 'num_frames')


@dataclass(frozen=True)
class MotScores:
    """CLEAR MOT / identity scores of one sequence or of several pooled ('OVERALL').

    Attributes:
        mota: multiple object tracking accuracy, 1 - (FN + FP + IDsw) / GT.
        idf1: identity F1 (share of detections with the globally right identity).
        id_switches: hypothesis id changes on a ground-truth person.
        false_positives: hypotheses matched to nobody.
        misses: ground-truth boxes matched to no hypothesis.
        mostly_tracked: people covered >= 80% of their life.
        mostly_lost: people covered < 20% of their life.
        num_objects: distinct ground-truth people.
        fragmentations: interruptions of a person's coverage.
        precision: matched hypotheses / hypotheses.
        recall: matched ground truth / ground truth.
        num_frames: frames scored.
    """

    mota: float
    idf1: float
    id_switches: int
    false_positives: int
    misses: int
    mostly_tracked: int
    mostly_lost: int
    num_objects: int
    fragmentations: int
    precision: float
    recall: float
    num_frames: int


def iou_distances(gt: np.ndarray, hyp: np.ndarray, min_iou: float) -> np.ndarray:
    """Motmetrics distances of (G, 4) x (H, 4) xyxy boxes: 1 - IoU, NaN below ``min_iou``."""
    iou = iou_matrix(gt, hyp)
    return np.where(iou >= min_iou, 1.0 - iou, np.nan)


def summarize(accumulators: Sequence, names: Sequence[str]) -> dict[str, MotScores]:
    """Scores per motmetrics accumulator (by name) and pooled over all under 'OVERALL'."""
    import motmetrics as mm
    summary = mm.metrics.create().compute_many(list(accumulators), metrics=list(MOT_METRICS),
                                               names=list(names), generate_overall=True)
    out = {}
    for name, row in summary.iterrows():
        out[str(name)] = MotScores(
            mota=float(row['mota']), idf1=float(row['idf1']),
            id_switches=int(row['num_switches']),
            false_positives=int(row['num_false_positives']), misses=int(row['num_misses']),
            mostly_tracked=int(row['mostly_tracked']), mostly_lost=int(row['mostly_lost']),
            num_objects=int(row['num_unique_objects']),
            fragmentations=int(row['num_fragmentations']),
            precision=float(row['precision']), recall=float(row['recall']),
            num_frames=int(row['num_frames']))
    return out




def motmetrics_scores(sequences: Mapping[str, Sequence[TrackingFrame]],
                      min_iou: float = 0.5) -> dict[str, MotScores]:
    """The motmetrics scores of recorded sequences (per name, and pooled under 'OVERALL')."""
    import motmetrics as mm
    accs = []
    for frames in sequences.values():
        acc = mm.MOTAccumulator(auto_id=True)
        for frame in frames:
            sim = np.asarray(frame.similarity, dtype=np.float64).reshape(len(frame.gt_ids),
                                                                         len(frame.pred_ids))
            acc.update(frame.gt_ids.tolist(), frame.pred_ids.tolist(),
                       np.where(sim >= min_iou, 1.0 - sim, np.nan))
        accs.append(acc)
    return summarize(accs, list(sequences))


# -- TrackEval ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrackingScores:
    """TrackEval's scores, combined over sequences.

    Attributes:
        hota: HOTA, mean over the IoU thresholds 0.05..0.95 (TrackEval's headline value).
        deta, assa, loca: its detection, association and localisation parts (same mean).
        mota: 1 - (FN + FP + IDSW) / GT at IoU >= ``threshold``.
        motp: mean IoU of the matched pairs.
        idf1, idp, idr: identity F1, precision and recall.
        id_switches: IDSW; fragmentations: Frag; mostly_tracked / mostly_lost: MT / ML.
        true_positives, false_positives, misses: CLEAR's counts.
        num_sequences, num_frames: what was scored.
        threshold: the IoU of a match for CLEAR and Identity.
    """

    hota: float
    deta: float
    assa: float
    loca: float
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    id_switches: int
    fragmentations: int
    mostly_tracked: int
    mostly_lost: int
    true_positives: int
    false_positives: int
    misses: int
    num_sequences: int
    num_frames: int
    threshold: float


class TrackingUnavailableError(ValueError):
    """Tracking metrics cannot be computed (no ids, TrackEval missing); the message says why."""


def trackeval_scores(sequences: Mapping[str, Sequence[TrackingFrame]],
                     threshold: float = 0.5) -> TrackingScores:
    """Score sequences with TrackEval's HOTA, CLEAR and Identity metrics.

    Args:
        sequences: name -> frames in time order (each frame's ground-truth ids, predicted
            ids and their (G, P) box IoU). Ids are any integers >= 0, distinct within a frame.
        threshold: IoU of a match for CLEAR (MOTA) and Identity (IDF1).

    Raises:
        TrackingUnavailableError: TrackEval is not installed, an id is unknown (< 0) or repeated
            within a frame, or there is no frame.
    """
    try:
        from trackeval.metrics import CLEAR, HOTA, Identity
    except ImportError as err:
        raise TrackingUnavailableError(
            'TrackEval is not installed (pip install trackeval)') from err
    data = {name: _trackeval_data(frames) for name, frames in sequences.items()}
    if not data or not any(d['num_timesteps'] for d in data.values()):
        raise TrackingUnavailableError('no frame to score')
    quiet = {'THRESHOLD': threshold, 'PRINT_CONFIG': False}
    metrics = (HOTA(), CLEAR(quiet), Identity(quiet))
    combined = {}
    for metric in metrics:
        per_seq = {name: metric.eval_sequence(d) for name, d in data.items()}
        combined[metric.get_name()] = (metric.combine_sequences(per_seq) if len(per_seq) > 1
                                       else next(iter(per_seq.values())))
    hota, clear, ident = combined['HOTA'], combined['CLEAR'], combined['Identity']
    return TrackingScores(
        hota=float(np.mean(hota['HOTA'])), deta=float(np.mean(hota['DetA'])),
        assa=float(np.mean(hota['AssA'])), loca=float(np.mean(hota['LocA'])),
        mota=float(clear['MOTA']), motp=float(clear['MOTP']), idf1=float(ident['IDF1']),
        idp=float(ident['IDP']), idr=float(ident['IDR']), id_switches=int(clear['IDSW']),
        fragmentations=int(clear['Frag']), mostly_tracked=int(clear['MT']),
        mostly_lost=int(clear['ML']), true_positives=int(clear['CLR_TP']),
        false_positives=int(clear['CLR_FP']), misses=int(clear['CLR_FN']),
        num_sequences=len(data), num_frames=sum(d['num_timesteps'] for d in data.values()),
        threshold=float(threshold))


def _trackeval_data(frames: Sequence[TrackingFrame]) -> dict:
    """TrackEval's per-sequence input: ids renumbered 0..n-1 in order of appearance."""
    gt_map: dict[int, int] = {}
    pred_map: dict[int, int] = {}
    gt_ids, pred_ids, sims = [], [], []
    for frame in frames:
        for ids, kind in ((frame.gt_ids, 'ground-truth'), (frame.pred_ids, 'predicted')):
            if (np.asarray(ids) < 0).any():
                raise TrackingUnavailableError(f'some {kind} people have no id (-1); tracking '
                                          'metrics need ids on both sides (run with tracking)')
            if len(np.unique(ids)) != len(ids):
                raise TrackingUnavailableError(f'a {kind} id repeats within the frame at '
                                          f'{frame.stamp_ns} ns')
        gt_ids.append(np.array([gt_map.setdefault(int(i), len(gt_map)) for i in frame.gt_ids],
                               dtype=int))
        pred_ids.append(np.array([pred_map.setdefault(int(i), len(pred_map))
                                  for i in frame.pred_ids], dtype=int))
        sims.append(np.asarray(frame.similarity, dtype=float).reshape(len(frame.gt_ids),
                                                                       len(frame.pred_ids)))
    return {'num_timesteps': len(frames), 'num_gt_ids': len(gt_map),
            'num_tracker_ids': len(pred_map), 'num_gt_dets': int(sum(map(len, gt_ids))),
            'num_tracker_dets': int(sum(map(len, pred_ids))), 'gt_ids': gt_ids,
            'tracker_ids': pred_ids, 'similarity_scores': sims}
