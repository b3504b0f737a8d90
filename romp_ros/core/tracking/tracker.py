"""Multi-person tracker: 3D constant-velocity Kalman + ByteTrack-style two-threshold matching.

Per frame (:meth:`Tracker.update`):

1. Input hygiene: rows with NaN/inf are dropped, detections below ``low_conf`` ignored, and
   duplicates of one person (same box *and* same 3D spot) suppressed, keeping the most
   confident one, so a duplicated detection can never spawn a twin track.
2. Every track is predicted to the frame's stamp with the real time step; tracks unseen for
   longer than their allowed coasting time die first.
3. Stage 1: high-confidence detections against all confirmed tracks (matched or coasting),
   with the combined cost of :mod:`~romp_ros.core.tracking.association`.
4. Stage 2: the remaining confirmed tracks against low-confidence detections (partly occluded
   people score low), which must also overlap the track's predicted box.
5. Stage 3: the remaining high-confidence detections against tentative tracks.
6. Unmatched confirmed tracks coast (retired after ``max_coast_s``, or as soon as their
   predicted box has walked out of the image); unmatched tentative tracks die after
   ``tentative_max_coast_s``; unmatched detections above ``new_track_conf`` start tentative
   tracks, most confident first, which are confirmed after ``min_hits`` matches.

Track ids are positive integers handed out in creation order and never reused by a Tracker
instance, not even across :meth:`Tracker.reset` (so a bag loop cannot alias two people).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import itertools
import logging
import math
from typing import Iterator

import numpy as np

from romp_ros.core.tracking.association import (
    CostWeights,
    assign,
    combined_cost,
    iou_matrix,
    shape_distance,
    suppress_duplicates,
)
from romp_ros.core.tracking.detections import Detections
from romp_ros.core.tracking.kalman import RootKalman, RootNoiseModel
from romp_ros.core.tracking.smoothing import PersonSmoother, SmoothedPerson, SmoothingConfig

_LOG = logging.getLogger(__name__)

TENTATIVE = 'tentative'
CONFIRMED = 'confirmed'
COASTING = 'coasting'


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters (defaults argued in docs/tracking.md).

    Attributes:
        high_conf: detections at or above this take part in stage 1 and may start tracks.
        low_conf: detections below this are ignored; those in [low_conf, high_conf) can only
            keep an existing confirmed track alive (stage 2).
        new_track_conf: minimum confidence of a detection that starts a new track.
        min_hits: matches (including the first) that confirm a tentative track.
        max_coast_s: seconds a confirmed track survives without a match (occlusions); it can
            be re-associated until then.
        report_coast_s: coasting tracks are reported while unseen for at most this long (their
            predicted box drifts; a robot still wants to know about a person hidden a moment).
        tentative_max_coast_s: the same for tentative tracks. It must exceed the time between
            processed frames, a dropped frame included: 1.5 s lets a person be confirmed at
            30 Hz, at 15 Hz with drops and on a CPU at 1-3 Hz alike (the node and
            ``romp-ros infer --track`` use these defaults too).
        output_tentative: also report tentative tracks.
        weights: association cost weights and gates.
        second_stage_min_iou: IoU a low-confidence detection needs with the track's box.
        duplicate_iou: box IoU above which two detections may be one person ...
        duplicate_chi2: ... if their roots are also this close (squared Mahalanobis, 3 dof).
        min_inside_fraction: a coasting track whose predicted box has less of its area inside
            the image is retired (the person left the field of view); needs ``image_size``.
        shape_window: the betas running mean averages about this many most recent matches.
        noise: Kalman process and measurement noise.
        smoothing: One-Euro parameters of the reported quantities.
    """

    high_conf: float = 0.5
    low_conf: float = 0.15
    new_track_conf: float = 0.6
    min_hits: int = 3
    max_coast_s: float = 3.0
    report_coast_s: float = 1.0
    tentative_max_coast_s: float = 1.5
    output_tentative: bool = False
    weights: CostWeights = field(default=CostWeights())
    second_stage_min_iou: float = 0.1
    duplicate_iou: float = 0.6
    duplicate_chi2: float = 7.81
    min_inside_fraction: float = 0.5
    shape_window: int = 20
    noise: RootNoiseModel = field(default=RootNoiseModel())
    smoothing: SmoothingConfig = field(default=SmoothingConfig())

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_conf <= self.high_conf <= 1.0:
            raise ValueError('need 0 <= low_conf <= high_conf <= 1')
        if self.new_track_conf < self.high_conf:
            raise ValueError('new_track_conf must be >= high_conf')
        if self.min_hits < 1:
            raise ValueError('min_hits must be >= 1')
        if not (self.max_coast_s >= 0 and self.tentative_max_coast_s >= 0):
            raise ValueError('coasting times must be >= 0')
        if not 0 <= self.report_coast_s <= self.max_coast_s:
            raise ValueError('need 0 <= report_coast_s <= max_coast_s')
        if self.shape_window < 1:
            raise ValueError('shape_window must be >= 1')


@dataclass(frozen=True)
class TrackingOutput:
    """The tracks reported for one frame, ordered by ascending id (M tracks, B betas).

    Attributes:
        stamp_s: the frame's stamp, seconds.
        ids: (M,) int64 track ids (>= 1).
        states: M of 'tentative' | 'confirmed' | 'coasting' ('confirmed' = matched this frame).
        age: (M,) int64 frames since the track was created (0 on its first frame).
        hits: (M,) int64 frames in which it was matched.
        time_since_update: (M,) s since its last match (0 when matched this frame).
        detection_index: (M,) int64 the matched detection's producer row
            (``Detections.source_rows()``: the ``FrameResult`` row for
            :func:`detections_from_frame`, even when NaN rows were dropped), -1 when coasting.
        root: (M, 3) m, root in the camera optical frame: the Kalman estimate by default
            (``SmoothingConfig.root_filter``), One-Euro-smoothed or raw otherwise; while coasting,
            the Kalman prediction (or the last root moved by the Kalman velocity).
        root_velocity: (M, 3) m/s, Kalman velocity in the camera optical frame.
        root_covariance: (M, 3, 3) m^2, Kalman position covariance.
        bbox: (M, 4) px, the matched detection's box; while coasting, the predicted box.
        confs: (M,) the matched detection's confidence (the last one while coasting).
        thetas: (M, 72) smoothed SMPL pose, axis-angle, radians (held while coasting).
        betas: (M, B) smoothed shape (held while coasting).
        cam: (M, 3) smoothed weak-perspective camera (held while coasting).
        num_invalid: input rows dropped for NaN/inf values.
        num_duplicates: input rows suppressed as duplicates of another detection.
        was_reset: True when this frame's stamp went backwards and the tracker restarted.
    """

    stamp_s: float
    ids: np.ndarray
    states: tuple[str, ...]
    age: np.ndarray
    hits: np.ndarray
    time_since_update: np.ndarray
    detection_index: np.ndarray
    root: np.ndarray
    root_velocity: np.ndarray
    root_covariance: np.ndarray
    bbox: np.ndarray
    confs: np.ndarray
    thetas: np.ndarray
    betas: np.ndarray
    cam: np.ndarray
    num_invalid: int = 0
    num_duplicates: int = 0
    was_reset: bool = False

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class _Track:
    """Mutable per-track bookkeeping, private to :class:`Tracker`."""

    def __init__(self, track_id: int, mean: np.ndarray, cov: np.ndarray, stamp_s: float,
                 smoother: PersonSmoother) -> None:
        self.id = track_id
        self.mean = mean
        self.cov = cov
        self.confirmed = False
        self.hits = 0
        self.age = 0
        self.last_update_s = stamp_s
        self.smoother = smoother
        self.bbox = np.zeros(4)
        self.anchor_root = mean[:3].copy()  # filtered root when ``bbox`` was measured
        self.betas_mean = np.zeros(0)
        self.conf = 0.0
        self.det_index = -1
        self.smoothed: SmoothedPerson | None = None
        self.smoothed_stamp_s = stamp_s


class Tracker:
    """Tracks people across frames and smooths their reported quantities.

    Not thread-safe; use one instance per camera stream.
    """

    def __init__(self, config: TrackerConfig | None = None,
                 ids: Iterator[int] | None = None) -> None:
        """Start with no tracks.

        Args:
            config: thresholds, noise and smoothing.
            ids: where new track ids come from. The trackers of several cameras in one node
                share one counter (``itertools.count(1)``) so that an id names one person
                across them (TF frame ``body_<id>`` has one parent). Default: its own, from 1.
        """
        self.config = config or TrackerConfig()
        self._kf = RootKalman(self.config.noise)
        self._tracks: list[_Track] = []
        self._ids = ids if ids is not None else itertools.count(1)
        self._last_stamp: float | None = None
        self._num_betas = 10
        self._intrinsics: np.ndarray | None = None
        self._image_size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Drop every track (ids keep counting up, so none is ever reused)."""
        self._tracks = []
        self._last_stamp = None

    @property
    def num_tracks(self) -> int:
        """Live tracks of all states."""
        return len(self._tracks)

    def update(self, detections: Detections, stamp_s: float) -> TrackingOutput:
        """Process one frame's detections taken at ``stamp_s`` seconds."""
        cfg = self.config
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            _LOG.warning('ignoring a frame with a non-finite stamp (%s)', stamp_s)
            return self._output(self._last_stamp or 0.0, 0, 0, False, report_only=True)
        was_reset = False
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            _LOG.warning('stamp went backwards (%.3f s -> %.3f s, e.g. a bag loop): '
                         'resetting the tracker', self._last_stamp, stamp_s)
            self.reset()
            was_reset = True
        dt = 0.0 if self._last_stamp is None else stamp_s - self._last_stamp
        self._last_stamp = stamp_s

        dets = detections.finite()
        num_invalid = dets.num_invalid
        # Producer rows (FrameResult rows) survive every filtering step via ``input_index``.
        input_index = dets.source_rows()
        if len(dets):
            self._num_betas = dets.betas.shape[1]
        if dets.intrinsics is not None:
            self._intrinsics = dets.intrinsics
        if dets.image_size is not None:
            self._image_size = dets.image_size
        usable = dets.confs >= cfg.low_conf
        dets, input_index = dets.select(usable), input_index[usable]
        keep = suppress_duplicates(dets.bbox, dets.root, dets.confs,
                                   self._kf.measurement_cov(dets.root), cfg.duplicate_iou,
                                   cfg.duplicate_chi2)
        num_duplicates = int((~keep).sum())
        dets, input_index = dets.select(keep), input_index[keep]

        self._predict(stamp_s, dt)
        pred_boxes = np.array([self._predicted_box(t, self._intrinsics) for t in self._tracks])
        pred_boxes = pred_boxes.reshape(-1, 4)

        high = np.flatnonzero(dets.confs >= cfg.high_conf)
        low = np.flatnonzero(dets.confs < cfg.high_conf)
        confirmed = [i for i, t in enumerate(self._tracks) if t.confirmed]
        tentative = [i for i, t in enumerate(self._tracks) if not t.confirmed]

        matches: list[tuple[int, int]] = []
        m1, left_tracks, left_high = self._match(confirmed, high, dets, pred_boxes, 0.0)
        matches += m1
        m2, _, _ = self._match(left_tracks, low, dets, pred_boxes, cfg.second_stage_min_iou)
        matches += m2
        m3, _, left_high = self._match(tentative, left_high, dets, pred_boxes, 0.0)
        matches += m3

        matched_tracks = {ti for ti, _ in matches}
        if matches:
            tracks = [self._tracks[ti] for ti, _ in matches]
            means, covs = self._kf.update(np.stack([t.mean for t in tracks]),
                                          np.stack([t.cov for t in tracks]),
                                          dets.root[[di for _, di in matches]])
            for track, mean, cov in zip(tracks, means, covs, strict=True):
                track.mean, track.cov = mean, cov
        for ti, di in matches:
            self._record_match(self._tracks[ti], dets, di, int(input_index[di]), stamp_s)
        for ti, track in enumerate(self._tracks):
            track.age += 1
            if ti not in matched_tracks:
                track.det_index = -1
        self._retire_coasting(stamp_s)

        starters = [int(d) for d in left_high if dets.confs[d] >= cfg.new_track_conf]
        starters.sort(key=lambda d: (-float(dets.confs[d]), d))
        for di in starters:
            self._start_track(dets, di, int(input_index[di]), stamp_s)
        for track in self._tracks:
            if not track.confirmed and track.hits >= cfg.min_hits:
                track.confirmed = True
        return self._output(stamp_s, num_invalid, num_duplicates, was_reset)

    # -- steps ------------------------------------------------------------------------------

    def _predict(self, stamp_s: float, dt: float) -> None:
        cfg = self.config
        alive = []
        for track in self._tracks:
            unseen = stamp_s - track.last_update_s
            limit = cfg.max_coast_s if track.confirmed else cfg.tentative_max_coast_s
            if unseen <= limit:
                alive.append(track)
        self._tracks = alive
        if not alive or dt <= 0.0:
            return
        means = np.stack([t.mean for t in alive])
        covs = np.stack([t.cov for t in alive])
        means, covs = self._kf.predict(means, covs, dt)
        for track, mean, cov in zip(alive, means, covs, strict=True):
            track.mean, track.cov = mean, cov

    def _match(self, track_idx: list[int], det_idx: np.ndarray, dets: Detections,
               pred_boxes: np.ndarray,
               min_iou: float) -> tuple[list[tuple[int, int]], list[int], np.ndarray]:
        """Assign the listed tracks to the listed detections; returns global indices."""
        det_idx = np.asarray(det_idx, dtype=np.int64)
        if not track_idx or det_idx.size == 0:
            return [], list(track_idx), det_idx
        tracks = [self._tracks[i] for i in track_idx]
        means = np.stack([t.mean for t in tracks])
        covs = np.stack([t.cov for t in tracks])
        d2 = self._kf.mahalanobis_sq(means, covs, dets.root[det_idx])
        iou = iou_matrix(pred_boxes[track_idx], dets.bbox[det_idx])
        shape = np.zeros_like(d2)
        for row, track in enumerate(tracks):
            if track.betas_mean.size:
                shape[row] = shape_distance(track.betas_mean[None], dets.betas[det_idx],
                                            self.config.weights.shape_noise)[0]
        cost, valid = combined_cost(d2, iou, shape, self.config.weights)
        if min_iou > 0.0:
            valid &= iou >= min_iou
        result = assign(cost, valid)
        matches = [(track_idx[r], int(det_idx[c])) for r, c in result.matches]
        left_tracks = [track_idx[r] for r in result.unmatched_tracks]
        return matches, left_tracks, det_idx[result.unmatched_detections]

    def _record_match(self, track: _Track, dets: Detections, di: int, input_row: int,
                      stamp_s: float) -> None:
        """Bookkeeping and smoothing of a match (the Kalman correction is done by then)."""
        track.hits += 1
        track.last_update_s = stamp_s
        track.bbox = dets.bbox[di].copy()
        track.anchor_root = track.mean[:3].copy()
        track.conf = float(dets.confs[di])
        track.det_index = input_row
        betas = dets.betas[di]
        if track.betas_mean.shape != betas.shape:
            track.betas_mean = betas.copy()
        else:
            weight = 1.0 / min(track.hits, self.config.shape_window)
            track.betas_mean = track.betas_mean + weight * (betas - track.betas_mean)
        track.smoothed = track.smoother.update(dets.root[di], dets.thetas[di], betas,
                                               dets.cam[di], stamp_s, track.mean[:3])
        track.smoothed_stamp_s = stamp_s

    def _start_track(self, dets: Detections, di: int, input_row: int, stamp_s: float) -> None:
        mean, cov = self._kf.initiate(dets.root[di][None])
        track = _Track(next(self._ids), mean[0], cov[0], stamp_s,
                       PersonSmoother(self.config.smoothing))
        self._record_match(track, dets, di, input_row, stamp_s)
        self._tracks.append(track)

    def _retire_coasting(self, stamp_s: float) -> None:
        """Drop unmatched tracks that left the image or went behind the camera."""
        image_size, intrinsics = self._image_size, self._intrinsics
        alive = []
        for track in self._tracks:
            if track.det_index < 0 and track.last_update_s < stamp_s:
                if track.mean[2] <= 0.1:
                    continue
                if image_size is not None and intrinsics is not None:
                    box = self._predicted_box(track, intrinsics)
                    if _inside_fraction(box, image_size) < self.config.min_inside_fraction:
                        continue
            alive.append(track)
        self._tracks = alive

    def _predicted_box(self, track: _Track, intrinsics: np.ndarray | None) -> np.ndarray:
        """The last measured box moved with the Kalman motion since (needs K; else unmoved)."""
        if intrinsics is None or track.mean[2] <= 0.1 or track.anchor_root[2] <= 0.1:
            return track.bbox.copy()
        old_px = _project(intrinsics, track.anchor_root)
        new_px = _project(intrinsics, track.mean[:3])
        # Pinhole: image offsets from the projected root scale with 1 / depth.
        scale = float(np.clip(track.anchor_root[2] / track.mean[2], 0.5, 2.0))
        lo = new_px + (track.bbox[:2] - old_px) * scale
        hi = new_px + (track.bbox[2:] - old_px) * scale
        return np.concatenate([lo, hi])

    def _output(self, stamp_s: float, num_invalid: int, num_duplicates: int, was_reset: bool,
                report_only: bool = False) -> TrackingOutput:
        cfg = self.config
        shown = [t for t in self._tracks
                 if (t.confirmed or cfg.output_tentative)
                 and stamp_s - t.last_update_s <= cfg.report_coast_s]
        shown.sort(key=lambda t: t.id)
        kalman_root = cfg.smoothing.enabled and cfg.smoothing.root_filter == 'kalman'
        m, b = len(shown), self._num_betas
        ids = np.array([t.id for t in shown], dtype=np.int64)
        matched = [t.det_index >= 0 and not report_only for t in shown]
        states = tuple(TENTATIVE if not t.confirmed else (CONFIRMED if hit else COASTING)
                       for t, hit in zip(shown, matched, strict=True))
        since = np.array([max(stamp_s - t.last_update_s, 0.0) for t in shown], dtype=np.float64)
        root = np.zeros((m, 3))
        thetas = np.zeros((m, 72))
        betas = np.zeros((m, b))
        cam = np.zeros((m, 3))
        bbox = np.zeros((m, 4))
        for row, t in enumerate(shown):
            sm = t.smoothed
            if sm is None:  # unreachable: every track is created from a match
                continue
            coast_s = stamp_s - t.smoothed_stamp_s
            if coast_s <= 0.0:
                # Copied untouched, so that smoothing 'off' reports the input exactly.
                root[row] = sm.root
            elif kalman_root:
                root[row] = t.mean[:3]
            else:
                root[row] = sm.root + t.mean[3:] * coast_s
            thetas[row] = sm.thetas
            if sm.betas.shape == (b,):
                betas[row] = sm.betas
            cam[row] = sm.cam
            bbox[row] = t.bbox if matched[row] else self._predicted_box(t, self._intrinsics)
        return TrackingOutput(
            stamp_s=stamp_s, ids=ids, states=states,
            age=np.array([t.age for t in shown], dtype=np.int64),
            hits=np.array([t.hits for t in shown], dtype=np.int64),
            time_since_update=since,
            detection_index=np.array([t.det_index if hit else -1
                                      for t, hit in zip(shown, matched, strict=True)],
                                     dtype=np.int64),
            root=root,
            root_velocity=np.array([t.mean[3:] for t in shown]).reshape(m, 3),
            root_covariance=np.array([t.cov[:3, :3] for t in shown]).reshape(m, 3, 3),
            bbox=bbox, confs=np.array([t.conf for t in shown], dtype=np.float64),
            thetas=thetas, betas=betas, cam=cam, num_invalid=num_invalid,
            num_duplicates=num_duplicates, was_reset=was_reset)


def _project(k: np.ndarray, point: np.ndarray) -> np.ndarray:
    return np.array([k[0, 0] * point[0] / point[2] + k[0, 2],
                     k[1, 1] * point[1] / point[2] + k[1, 2]])


def _inside_fraction(box: np.ndarray, image_size: tuple[int, int]) -> float:
    """Share of a box's area inside a (height, width) image."""
    h, w = image_size
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    if area <= 0.0:
        return 0.0
    iw = max(min(box[2], w) - max(box[0], 0.0), 0.0)
    ih = max(min(box[3], h) - max(box[1], 0.0), 0.0)
    return iw * ih / area
