"""Tracking and smoothing studies on synthetic sequences (trackers compared on known truth).

* :func:`evaluate_sequences` runs a tracker over :class:`SyntheticSequence` objects and scores it
  with motmetrics (CLEAR MOT and identity metrics, :mod:`romp_ros.evaluation.tracking_metrics`).
  Ground truth and hypotheses are matched by 2D box IoU >= 0.5, the MOTChallenge convention, so
  the score does not depend on which 3D root estimate a tracker reports (the 3D error of the
  estimator is the same for everyone).
* :class:`ReferenceBaselineTracker` re-implements the tracking that simple-romp 1.1.4 does for
  ROMP's ``--temporal_optimize``: norfair's tracker on the 2D body centre (a constant-velocity
  Kalman filter per point, greedy nearest-first matching under a Euclidean threshold, a hit
  counter that delays initialisation and ends tracks) followed by the reference's id lookup.
  There is no 3D, no appearance and no confidence handling.
* :func:`jitter_study` and :func:`step_lag_s` measure what the One-Euro smoothing buys.

This module generates its sequences with :mod:`romp_ros.synthetic`; the scoring of recorded
data (:mod:`romp_ros.evaluation.tracking_metrics`) does not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import motmetrics as mm
import numpy as np

from romp_ros.core.geometry.rotation_numpy import geodesic_angle
from romp_ros.core.tracking.detections import Detections
from romp_ros.core.tracking.kalman import RootKalman, RootNoiseModel
from romp_ros.core.tracking.one_euro import OneEuroFilter, OneEuroParams
from romp_ros.core.tracking.smoothing import PersonSmoother, SmoothingConfig
from romp_ros.core.tracking.tracker import Tracker, TrackerConfig
from romp_ros.evaluation.tracking_metrics import MotScores, iou_distances, summarize
from romp_ros.synthetic.sequences import (
    NoiseSpec,
    SequenceSpec,
    SyntheticSequence,
    forward_kinematics,
    generate_sequence,
)


class HypothesisTracker(Protocol):
    """What :func:`evaluate_sequences` needs from a tracker."""

    def reset(self) -> None:
        """Forget everything (called before each sequence)."""

    def step(self, detections: Detections, stamp_s: float) -> tuple[np.ndarray, np.ndarray]:
        """One frame -> (K,) int ids and (K, 4) boxes [u_min, v_min, u_max, v_max] reported."""


class RompRosTracker:
    """:class:`~romp_ros.core.tracking.tracker.Tracker` as a :class:`HypothesisTracker`.

    Reports confirmed and coasting tracks, coasting ones at their predicted box.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracker = Tracker(self.config)

    def reset(self) -> None:
        """Start a fresh tracker (ids start again at 1)."""
        self._tracker = Tracker(self.config)

    def step(self, detections: Detections, stamp_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Run one frame."""
        out = self._tracker.update(detections, stamp_s)
        return out.ids, out.bbox


@dataclass(frozen=True)
class BaselineConfig:
    """The reference's tracking settings (simple-romp 1.1.4 + norfair defaults).

    Attributes:
        distance_threshold: norfair's threshold, in the units of the points (200 in the
            reference).
        point_source: 'cam': the reference's points, ``cam[[2, 1]] * 512`` (weak-perspective
            translation of the normalised padded square, times 512: 2 units per pixel of the
            512 network input, so 200 = 100 input pixels); 'box_center': the box centre in
            pixels of the padded square resized to 512 (200 = 200 input pixels).
        updates_per_frame: tracker updates per image. The reference calls ``update`` 8 extra
            times before the real call while a flag that is never set says it is not
            initialised, i.e. 9 times per image; 1 is what was intended.
        hit_counter_max, initialization_delay: norfair's lifecycle (defaults 15 and 15 // 2);
            an object is reported once its counter exceeds the delay, gains 2 per match, loses
            1 per update and dies below 0.
        kalman_r, kalman_q, kalman_p: norfair's default filter: R = 4 I, velocity process
            noise 0.1, initial velocity variance 10 (position variance 1, position process 1),
            one time unit per update.
    """

    distance_threshold: float = 200.0
    point_source: str = 'cam'
    updates_per_frame: int = 9
    hit_counter_max: int = 15
    initialization_delay: int | None = None
    kalman_r: float = 4.0
    kalman_q: float = 0.1
    kalman_p: float = 10.0

    def __post_init__(self) -> None:
        if self.point_source not in ('cam', 'box_center'):
            raise ValueError(f'unknown point_source {self.point_source!r}')
        if self.updates_per_frame < 1:
            raise ValueError('updates_per_frame must be >= 1')


class _BaselineObject:
    """One norfair-like tracked point.

    The filter is constant-velocity per image axis; both axes start with the same covariance and
    see the same updates, so one 2x2 covariance [[pp, pv], [pv, vv]] serves both.
    """

    def __init__(self, point: np.ndarray, cfg: BaselineConfig) -> None:
        self.pos = point.astype(np.float64).copy()
        self.vel = np.zeros(2)
        self.pp, self.pv, self.vv = 1.0, 0.0, cfg.kalman_p
        self.hit_counter = 1
        self.id: int | None = None
        self.last_point = point.copy()

    def predict(self, q_vel: float) -> None:
        self.pos = self.pos + self.vel
        # F P F^T + Q with F = [[1, 1], [0, 1]], Q = diag(1, q_vel).
        self.pp, self.pv, self.vv = (self.pp + 2.0 * self.pv + self.vv + 1.0,
                                     self.pv + self.vv, self.vv + q_vel)

    def correct(self, point: np.ndarray, r: float) -> None:
        s = self.pp + r
        k_pos, k_vel = self.pp / s, self.pv / s
        innovation = point - self.pos
        self.pos = self.pos + k_pos * innovation
        self.vel = self.vel + k_vel * innovation
        self.pp, self.pv, self.vv = ((1.0 - k_pos) * self.pp, (1.0 - k_pos) * self.pv,
                                     self.vv - k_vel * self.pv)


class ReferenceBaselineTracker:
    """The reference's 2D-centre tracking, as a :class:`HypothesisTracker`.

    Each image: the points are pushed through ``updates_per_frame`` tracker updates; then, as
    the reference does, *every* detection gets the id of the reported object whose last matched
    point is nearest to it. Two detections can so receive the same id; the evaluation keeps the
    one nearest to that object's last point and reports the other without an id (a miss), since
    a MOT hypothesis id can appear once per frame. Frames without any reported object give no ids.
    """

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config or BaselineConfig()
        self._delay = (self.config.hit_counter_max // 2 if self.config.initialization_delay is None
                       else self.config.initialization_delay)
        self._objects: list[_BaselineObject] = []
        self._next_id = 1

    def reset(self) -> None:
        """Drop every object; ids start again at 1."""
        self._objects = []
        self._next_id = 1

    def points(self, detections: Detections) -> np.ndarray:
        """(N, 2) the points the reference tracks."""
        if self.config.point_source == 'cam':
            return detections.cam[:, [2, 1]] * 512.0
        h, w = detections.image_size if detections.image_size is not None else (512, 512)
        side = float(max(h, w))
        centre = 0.5 * (detections.bbox[:, :2] + detections.bbox[:, 2:])
        # Padded square centred on the image, resized to 512.
        return (centre - np.array([w / 2.0, h / 2.0]) + side / 2.0) * (512.0 / side)

    def step(self, detections: Detections, stamp_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Run one image (the stamp is unused: the reference assumes one time unit per call)."""
        dets = detections.finite()
        pts = self.points(dets)
        for _ in range(self.config.updates_per_frame):
            self._update(pts)
        active = [o for o in self._objects if o.id is not None]
        if not active or len(pts) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 4))
        last = np.stack([o.last_point for o in active])
        dist = np.linalg.norm(pts[:, None, :] - last[None, :, :], axis=-1)
        nearest = dist.argmin(axis=1)
        best_for_object: dict[int, int] = {}
        for d, o in enumerate(nearest):
            if o not in best_for_object or dist[d, o] < dist[best_for_object[o], o]:
                best_for_object[o] = d
        rows = sorted(best_for_object.values())
        ids = np.array([active[nearest[d]].id for d in rows], dtype=np.int64)
        return ids, dets.bbox[rows]

    def _update(self, pts: np.ndarray) -> None:
        cfg = self.config
        self._objects = [o for o in self._objects if o.hit_counter >= 0]
        for o in self._objects:
            o.hit_counter -= 1
            o.predict(cfg.kalman_q)
        remaining = np.arange(len(pts))
        for initialised in (True, False):
            group = [o for o in self._objects if (o.id is not None) == initialised]
            remaining = self._match(group, pts, remaining)
        for d in remaining:
            self._objects.append(_BaselineObject(pts[d], cfg))
        for o in self._objects:
            if o.id is None and o.hit_counter > self._delay:
                o.id = self._next_id
                self._next_id += 1

    def _match(self, objects: list[_BaselineObject], pts: np.ndarray,
               remaining: np.ndarray) -> np.ndarray:
        """Greedy global-minimum matching under the threshold; returns unmatched detections."""
        thr = self.config.distance_threshold
        if not objects or remaining.size == 0:
            return remaining
        est = np.stack([o.pos for o in objects])
        dist = np.linalg.norm(pts[remaining][:, None] - est[None], axis=-1)
        dist = np.where(dist > thr, thr + 1.0, dist)
        used = np.zeros(remaining.size, dtype=bool)
        while dist.size and dist.min() < thr:
            d, o = np.unravel_index(int(dist.argmin()), dist.shape)
            self._hit(objects[o], pts[remaining[d]])
            used[d] = True
            dist[d, :] = thr + 1.0
            dist[:, o] = thr + 1.0
        return remaining[~used]

    def _hit(self, obj: _BaselineObject, point: np.ndarray) -> None:
        cfg = self.config
        obj.last_point = point.copy()
        if obj.hit_counter < cfg.hit_counter_max:
            obj.hit_counter += 2
        obj.correct(point, cfg.kalman_r)



# -- MOT scoring of a tracker ------------------------------------------------------------------

def accumulate(sequence: SyntheticSequence, tracker: HypothesisTracker,
               min_iou: float = 0.5) -> mm.MOTAccumulator:
    """Run ``tracker`` (after a reset) over the sequence and accumulate MOT events."""
    tracker.reset()
    acc = mm.MOTAccumulator(auto_id=True)
    for frame in sequence.frames:
        ids, boxes = tracker.step(frame.detections, frame.stamp_s)
        dist = iou_distances(frame.gt_bbox, np.asarray(boxes).reshape(-1, 4), min_iou)
        acc.update(frame.gt_ids.tolist(), np.asarray(ids).tolist(), dist)
    return acc



def evaluate_sequences(sequences: Sequence[SyntheticSequence], tracker: HypothesisTracker,
                       min_iou: float = 0.5) -> dict[str, MotScores]:
    """Scores per sequence (keyed '<scenario>/<seed>/<i>') and pooled under 'OVERALL'."""
    accs = [accumulate(seq, tracker, min_iou) for seq in sequences]
    return summarize(accs, [f'{seq.spec.scenario}/{seq.seed}/{i}'
                            for i, seq in enumerate(sequences)])


def tracker_factories() -> dict[str, Callable[[], HypothesisTracker]]:
    """The trackers compared in docs/tracking.md, by display name."""
    return {
        'romp_ros': lambda: RompRosTracker(TrackerConfig()),
        'reference (as shipped)': lambda: ReferenceBaselineTracker(BaselineConfig()),
        'reference (1 update/frame)': lambda: ReferenceBaselineTracker(
            BaselineConfig(updates_per_frame=1)),
    }


# -- smoothing studies ------------------------------------------------------------------------

@dataclass(frozen=True)
class JitterReport:
    """Smoothing on vs off for one person tracked over a sequence (all lengths in mm).

    Attributes:
        jitter_raw_mm: mean over frame pairs and joints of ``|dJ_est - dJ_true|``, the
            frame-to-frame joint motion the true motion does not explain, camera-frame joints,
            smoothing off.
        jitter_smoothed_mm: the same with smoothing on.
        factor: jitter_raw_mm / jitter_smoothed_mm.
        pose_jitter_raw_mm: the same jitter of root-relative joints (pose only), smoothing off.
        pose_jitter_smoothed_mm: the same, smoothing on.
        error_raw_mm: mean camera-frame joint position error, smoothing off.
        error_smoothed_mm: the same, smoothing on.
        root_error_raw_mm: mean root position error, smoothing off.
        root_error_smoothed_mm: the same, smoothing on.
        orient_error_deg: mean geodesic angle between the smoothed and the true global
            orientation.
        max_flip_deg: the largest such angle (a 180-degree flip would show here).
        frames: consecutive frame pairs that entered the jitter averages.
    """

    jitter_raw_mm: float
    jitter_smoothed_mm: float
    factor: float
    pose_jitter_raw_mm: float
    pose_jitter_smoothed_mm: float
    error_raw_mm: float
    error_smoothed_mm: float
    root_error_raw_mm: float
    root_error_smoothed_mm: float
    orient_error_deg: float
    max_flip_deg: float
    frames: int


@dataclass(frozen=True)
class _PersonTrace:
    joints: np.ndarray  # (F, 24, 3) estimated, camera frame
    true_joints: np.ndarray  # (F, 24, 3)
    orient: np.ndarray  # (F, 3) estimated global orientation
    true_orient: np.ndarray  # (F, 3)
    stamps: np.ndarray  # (F,)


def _trace_person(sequence: SyntheticSequence, config: TrackerConfig,
                  identity: int) -> _PersonTrace:
    """Track a sequence; keep the frames where ``identity`` is detected and reported."""
    tracker = Tracker(config)
    est, true, est_go, true_go, stamps = [], [], [], [], []
    scale = sequence.height_scale[identity]
    for frame in sequence.frames:
        out = tracker.update(frame.detections, frame.stamp_s)
        rows = np.flatnonzero(frame.det_gt_ids == identity)
        gt_rows = np.flatnonzero(frame.gt_ids == identity)
        if rows.size == 0 or gt_rows.size == 0:
            continue
        hit = np.flatnonzero(out.detection_index == rows[0])
        if hit.size == 0:
            continue
        m = hit[0]
        est.append(forward_kinematics(out.thetas[m], scale) + out.root[m])
        true.append(frame.gt_joints[gt_rows[0]])
        est_go.append(out.thetas[m, :3])
        true_go.append(frame.gt_thetas[gt_rows[0], :3])
        stamps.append(frame.stamp_s)
    return _PersonTrace(np.array(est).reshape(-1, 24, 3), np.array(true).reshape(-1, 24, 3),
                        np.array(est_go).reshape(-1, 3), np.array(true_go).reshape(-1, 3),
                        np.array(stamps))


def jitter_study(spec: SequenceSpec, seed: int, smoothing: SmoothingConfig | None = None,
                 identity: int = 0) -> JitterReport:
    """Track one person of a generated sequence with smoothing off and on; compare.

    Jitter is the frame-to-frame joint motion that the true motion does not explain, so it is
    meaningful for walking people as well as for standing ones. Only consecutive frame pairs
    (no dropped frame or missed detection between) count.
    """
    sequence = generate_sequence(spec, seed)
    results = {}
    for name, sm in (('raw', SmoothingConfig.off()), ('on', smoothing or SmoothingConfig())):
        trace = _trace_person(sequence, TrackerConfig(min_hits=1, smoothing=sm), identity)
        consecutive = np.diff(trace.stamps) < 1.5 / spec.fps

        def jitter(est: np.ndarray, true: np.ndarray, keep: np.ndarray = consecutive) -> float:
            d = np.diff(est, axis=0)[keep] - np.diff(true, axis=0)[keep]
            return float(np.linalg.norm(d, axis=-1).mean() * 1000.0)

        rel = trace.joints - trace.joints[:, :1]
        true_rel = trace.true_joints - trace.true_joints[:, :1]
        results[name] = {
            'jitter': jitter(trace.joints, trace.true_joints),
            'pose_jitter': jitter(rel, true_rel),
            'error': float(np.linalg.norm(trace.joints - trace.true_joints, axis=-1).mean()
                           * 1000.0),
            'root_error': float(np.linalg.norm(trace.joints[:, 0] - trace.true_joints[:, 0],
                                               axis=-1).mean() * 1000.0),
            'orient': np.degrees(geodesic_angle(trace.orient, trace.true_orient)),
            'frames': int(consecutive.sum()),
        }
    raw, on = results['raw'], results['on']
    return JitterReport(
        jitter_raw_mm=raw['jitter'], jitter_smoothed_mm=on['jitter'],
        factor=raw['jitter'] / max(on['jitter'], 1e-12),
        pose_jitter_raw_mm=raw['pose_jitter'], pose_jitter_smoothed_mm=on['pose_jitter'],
        error_raw_mm=raw['error'], error_smoothed_mm=on['error'],
        root_error_raw_mm=raw['root_error'], root_error_smoothed_mm=on['root_error'],
        orient_error_deg=float(on['orient'].mean()), max_flip_deg=float(on['orient'].max()),
        frames=on['frames'])


def jitter_spec(speed_m_s: float = 0.0, duration_s: float = 10.0,
                direction_deg: float | None = None) -> SequenceSpec:
    """One person, standing (0 m/s) or pacing, with the default estimator noise.

    Standing and sideways pacing happen 4-6 m away; walking towards the camera
    (``direction_deg=-90``) starts 12 m away. No misses or false positives: those are the
    tracker's business, not the smoother's.
    """
    noise = NoiseSpec(miss_rate=0.0, fp_per_frame=0.0)
    depth = (3.0, 12.0) if direction_deg is not None and direction_deg % 180.0 else (4.0, 6.0)
    return SequenceSpec('static', num_people=1, duration_s=duration_s, depth_range=depth,
                        speed_range=(speed_m_s, speed_m_s), noise=noise,
                        walk_direction_deg=direction_deg)


def step_lag_s(smoothing: SmoothingConfig | None = None, step_m: float = 0.5, axis: int = 0,
               fps: float = 30.0, depth_m: float = 4.0, fraction: float = 0.9,
               noise: RootNoiseModel | None = None) -> float:
    """Seconds for the reported root to cover ``fraction`` of a sudden ``step_m`` move.

    The root holds still at ``depth_m`` for 2 s, then jumps by ``step_m`` along ``axis`` (0 = x
    lateral, 2 = z depth). Noise-free input: noise raises a One-Euro cutoff, so for that filter
    this is the slowest case. With ``root_filter='kalman'`` the tracker's Kalman filter (noise
    model ``noise``) is stepped without gating. Returns inf if not reached within 3 s.
    """
    smoothing = smoothing or SmoothingConfig()
    kf = RootKalman(noise)
    smoother = PersonSmoother(smoothing)
    use_kalman = smoothing.enabled and smoothing.root_filter == 'kalman'
    thetas = np.zeros(72)
    thetas[0] = np.pi
    betas, cam = np.zeros(10), np.array([0.3, 0.0, 0.0])
    start = np.array([0.0, 0.3, depth_m])
    target = start.copy()
    target[axis] += step_m
    period = 1.0 / fps
    mean, cov = kf.initiate(start[None])
    n_before = int(round(2.0 * fps))
    for i in range(int(round(5.0 * fps)) + 1):
        stamp = i * period
        measured = start if i < n_before else target
        if i > 0:
            mean, cov = kf.predict(mean, cov, period)
            mean, cov = kf.update(mean, cov, measured[None])
        out = smoother.update(measured, thetas, betas, cam, stamp,
                              mean[0, :3] if use_kalman else None)
        if i >= n_before and out.root[axis] - start[axis] >= fraction * step_m:
            return (i - n_before) * period
    return float('inf')


def naive_axis_angle_smoothing(thetas: np.ndarray, stamps: np.ndarray,
                               params: OneEuroParams | None = None) -> np.ndarray:
    """One-Euro on the raw axis-angle numbers, the approach :class:`PersonSmoother` avoids.

    Shown for comparison only: near 180 degrees consecutive rotation vectors of almost the same
    rotation point in opposite directions, and averaging them yields a rotation far from both.

    Args:
        thetas: (F, 72) raw poses of one person.
        stamps: (F,) seconds.
        params: One-Euro parameters (default: the reference's pose setting, 3 Hz and 0.7).

    Returns:
        (F, 72) smoothed poses.
    """
    params = params or OneEuroParams(3.0, 0.7, 1.0)
    filt = OneEuroFilter.from_params(params, reset_gap_s=1e9)
    return np.stack([filt(th, float(t)) for th, t in zip(thetas, stamps, strict=True)])
