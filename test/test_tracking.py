"""Tracker: Kalman model, association, lifecycle, bad input and determinism."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from romp_ros.core.results import CameraIntrinsics, FrameResult
from romp_ros.core.tracking import (
    CostWeights,
    Detections,
    RootKalman,
    Tracker,
    TrackerConfig,
    detections_from_frame,
)
from romp_ros.core.tracking.association import assign, iou_matrix, suppress_duplicates
from romp_ros.synthetic import generate_sequence, preset

K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])
IMAGE = (720, 1280)


def _boxes(roots: np.ndarray) -> np.ndarray:
    """Boxes of 1.75 m x 0.6 m people whose pelvis is at ``roots`` (camera frame)."""
    roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
    top = roots + np.array([0.0, -0.85, 0.0])
    bottom = roots + np.array([0.0, 0.9, 0.0])
    u = K[0, 0] * roots[:, 0] / roots[:, 2] + K[0, 2]
    half_w = K[0, 0] * 0.3 / roots[:, 2]
    v0 = K[1, 1] * top[:, 1] / top[:, 2] + K[1, 2]
    v1 = K[1, 1] * bottom[:, 1] / bottom[:, 2] + K[1, 2]
    return np.stack([u - half_w, v0, u + half_w, v1], axis=1)


def _dets(roots, confs=None, betas=None, thetas=None) -> Detections:
    roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
    n = roots.shape[0]
    return Detections.create(
        root=roots, bbox=_boxes(roots) if n else np.zeros((0, 4)),
        betas=np.zeros((n, 10)) if betas is None else betas,
        confs=np.full(n, 0.9) if confs is None else confs,
        thetas=np.zeros((n, 72)) if thetas is None else thetas, cam=np.zeros((n, 3)),
        image_size=IMAGE, intrinsics=K)


# -- Kalman ------------------------------------------------------------------------------------

def test_process_noise_follows_the_real_time_step():
    kf = RootKalman()
    mean, cov = kf.initiate(np.array([[0.0, 0.3, 5.0]]))
    one_mean, one_cov = kf.predict(mean, cov, 0.2)
    many_mean, many_cov = mean, cov
    for _ in range(4):
        many_mean, many_cov = kf.predict(many_mean, many_cov, 0.05)
    # The continuous model composes: four 50 ms steps equal one 200 ms step (a dropped frame
    # is predicted exactly as far as the time that passed).
    np.testing.assert_allclose(many_cov, one_cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(many_mean, one_mean)
    _, long_cov = kf.predict(mean, cov, 1.0)
    assert np.all(np.diag(long_cov[0]) > np.diag(one_cov[0]))


def test_measurement_noise_is_elongated_along_the_viewing_ray():
    kf = RootKalman()
    points = np.array([[1.0, 0.3, 4.0], [-3.0, 0.3, 12.0]])
    covs = kf.measurement_cov(points)
    for point, cov in zip(points, covs, strict=True):
        values, vectors = np.linalg.eigh(cov)
        ray = point / np.linalg.norm(point)
        assert abs(abs(vectors[:, -1] @ ray) - 1.0) < 1e-9
        assert values[-1] > 20.0 * values[0]
    # Both stds grow linearly with range (same direction, 3x the range).
    near, far = kf.measurement_cov(np.array([[1.0, 0.3, 4.0], [3.0, 0.9, 12.0]]))
    np.testing.assert_allclose(np.linalg.eigvalsh(far), 9.0 * np.linalg.eigvalsh(near))


def test_kalman_estimates_walking_velocity_from_noisy_roots():
    rng = np.random.default_rng(0)
    kf = RootKalman()
    velocity = np.array([1.2, 0.0, -0.5])
    start = np.array([-2.0, 0.3, 8.0])
    mean, cov = kf.initiate(start[None])
    for k in range(1, 90):
        truth = start + velocity * k / 30.0
        r = kf.measurement_cov(truth[None])[0]
        z = truth + rng.multivariate_normal(np.zeros(3), r)
        mean, cov = kf.predict(mean, cov, 1.0 / 30.0)
        mean, cov = kf.update(mean, cov, z[None])
    assert np.linalg.norm(mean[0, 3:] - velocity) < 0.35
    assert np.all(np.linalg.eigvalsh(cov[0]) > 0.0)


# -- association -------------------------------------------------------------------------------

def test_assignment_is_globally_optimal_and_respects_the_gate():
    # Greedy nearest-first would take (0, 0) at cost 1 and leave track 1 with cost 10.
    cost = np.array([[1.0, 2.0], [2.0, 10.0]])
    result = assign(cost, np.ones_like(cost, dtype=bool))
    assert result.matches.tolist() == [[0, 1], [1, 0]]
    gated = assign(cost, np.array([[True, False], [False, False]]))
    assert gated.matches.tolist() == [[0, 0]]
    assert gated.unmatched_tracks.tolist() == [1]
    assert gated.unmatched_detections.tolist() == [1]


def test_iou_matrix():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50.0 / 150.0, 0.0, 1.0]])


def test_duplicate_suppression_keeps_people_standing_behind_each_other():
    kf = RootKalman()
    roots = np.array([[0.0, 0.3, 5.0], [0.01, 0.3, 5.02], [0.0, 0.3, 9.0]])
    boxes = np.array([[600.0, 200.0, 680.0, 500.0]] * 3)
    keep = suppress_duplicates(boxes, roots, np.array([0.7, 0.9, 0.8]),
                               kf.measurement_cov(roots), 0.6, 7.81)
    # The twin of the second, less confident, goes; the person 4 m behind stays.
    assert keep.tolist() == [False, True, True]


# -- lifecycle ---------------------------------------------------------------------------------

def test_tentative_confirmed_coasting_and_death():
    cfg = TrackerConfig(min_hits=3, max_coast_s=1.0, report_coast_s=0.5, output_tentative=True)
    tracker = Tracker(cfg)
    root = np.array([[0.0, 0.3, 5.0]])
    states = [tracker.update(_dets(root), k / 30.0).states for k in range(3)]
    assert states == [('tentative',), ('tentative',), ('confirmed',)]
    out = tracker.update(_dets(np.zeros((0, 3))), 3 / 30.0)
    assert out.states == ('coasting',)
    assert out.detection_index.tolist() == [-1]
    assert out.time_since_update[0] == pytest.approx(1 / 30.0)
    assert out.age.tolist() == [3] and out.hits.tolist() == [3]
    # Reported while unseen for <= report_coast_s, kept (re-associable) until max_coast_s.
    assert len(tracker.update(_dets(np.zeros((0, 3))), 0.6)) == 0
    assert tracker.num_tracks == 1
    back = tracker.update(_dets(root), 0.9)
    assert back.ids.tolist() == [1] and back.states == ('confirmed',)
    for k in range(1, 40):
        out = tracker.update(_dets(np.zeros((0, 3))), 0.9 + k / 30.0)
    assert len(out) == 0 and tracker.num_tracks == 0


def test_tentative_tracks_hidden_by_default():
    tracker = Tracker(TrackerConfig(min_hits=3))
    root = np.array([[0.0, 0.3, 5.0]])
    assert len(tracker.update(_dets(root), 0.0)) == 0
    assert len(tracker.update(_dets(root), 1 / 30.0)) == 0
    assert tracker.update(_dets(root), 2 / 30.0).ids.tolist() == [1]


def test_single_frame_false_positive_never_becomes_a_track():
    tracker = Tracker(TrackerConfig(min_hits=3))
    for k in range(30):
        roots = [[0.0, 0.3, 5.0]] if k != 10 else [[0.0, 0.3, 5.0], [2.0, 0.3, 9.0]]
        out = tracker.update(_dets(roots), k / 30.0)
        assert out.ids.tolist() in ([], [1])


def test_ids_survive_a_crossing_with_an_occlusion_gap():
    # Two people walk towards each other 2 m apart in depth; while the far one is behind the
    # near one (10 frames) it is not detected at all.
    tracker = Tracker(TrackerConfig())
    rng = np.random.default_rng(1)
    kf = RootKalman()
    ids_near, ids_far = set(), set()
    for k in range(120):
        t = k / 30.0
        near = np.array([-2.0 + 1.2 * t, 0.35, 5.0])
        far = np.array([2.5 - 1.2 * t, 0.35, 7.0])
        roots = [near] if 55 <= k < 65 else [near, far]
        roots = np.array(roots)
        noise = [rng.multivariate_normal(np.zeros(3), c) for c in kf.measurement_cov(roots)]
        out = tracker.update(_dets(roots + np.array(noise)), t)
        for row, di in enumerate(out.detection_index):
            if di == 0:
                ids_near.add(int(out.ids[row]))
            elif di == 1:
                ids_far.add(int(out.ids[row]))
    assert len(ids_near) == 1 and len(ids_far) == 1
    assert ids_near != ids_far


def test_ids_are_never_reused_and_assigned_in_confidence_order():
    tracker = Tracker(TrackerConfig(min_hits=1))
    roots = np.array([[-1.5, 0.3, 5.0], [1.5, 0.3, 5.0]])
    out = tracker.update(_dets(roots, confs=np.array([0.7, 0.95])), 0.0)
    # The more confident detection (row 1) gets the first id.
    assert dict(zip(out.detection_index.tolist(), out.ids.tolist(), strict=True)) == {1: 1, 0: 2}
    tracker.update(_dets(np.zeros((0, 3))), 10.0)  # both die
    tracker.reset()
    out = tracker.update(_dets(roots), 11.0)
    assert set(out.ids.tolist()) == {3, 4}


def test_coasting_track_leaving_the_image_is_retired():
    tracker = Tracker(TrackerConfig(max_coast_s=3.0, report_coast_s=3.0))
    # Walking right at 2 m/s, 4 m away: the image edge (x = 3.2 m) is reached in ~1.3 s.
    last = None
    for k in range(60):
        root = np.array([[1.0 + 2.0 * k / 30.0, 0.3, 4.0]])
        last = tracker.update(_dets(root if k < 30 else np.zeros((0, 3))), k / 30.0)
    assert len(last) == 0 and tracker.num_tracks == 0


def test_frame_drops_do_not_break_tracks():
    tracker = Tracker(TrackerConfig())
    stamps = [k / 30.0 for k in range(30)] + [1.0 + 0.4 + k / 30.0 for k in range(30)]
    ids = set()
    for t in stamps:
        out = tracker.update(_dets([[-2.0 + 1.5 * t, 0.3, 6.0]]), t)
        ids.update(out.ids.tolist())
    # 0.4 s without frames at 1.5 m/s is a 0.6 m jump; the velocity model bridges it.
    assert ids == {1}


# -- bad input ---------------------------------------------------------------------------------

def test_nan_rows_are_dropped_and_indices_refer_to_the_input():
    tracker = Tracker(TrackerConfig(min_hits=1))
    roots = np.array([[np.nan, 0.3, 5.0], [1.0, 0.3, 6.0]])
    raw = Detections(root=roots, bbox=_boxes(np.nan_to_num(roots, nan=0.0)),
                     betas=np.zeros((2, 10)), confs=np.array([0.9, 0.9]),
                     thetas=np.zeros((2, 72)), cam=np.zeros((2, 3)), intrinsics=K,
                     image_size=IMAGE)
    out = tracker.update(raw, 0.0)
    assert out.num_invalid == 1
    assert out.detection_index.tolist() == [1]
    np.testing.assert_array_equal(out.root[0], roots[1])
    assert Detections.create(root=roots, bbox=raw.bbox, betas=raw.betas, confs=raw.confs,
                             thetas=raw.thetas, cam=raw.cam).num_invalid == 1
    everything_nan = Detections(root=np.full((1, 3), np.nan), bbox=np.full((1, 4), np.nan),
                                betas=np.zeros((1, 10)), confs=np.array([np.nan]),
                                thetas=np.zeros((1, 72)), cam=np.zeros((1, 3)))
    out = tracker.update(everything_nan, 1 / 30.0)
    assert out.num_invalid == 1 and out.states == ('coasting',)


def test_duplicated_detections_make_one_track():
    tracker = Tracker(TrackerConfig(min_hits=1))
    root = np.array([[0.0, 0.3, 5.0]])
    for k in range(10):
        out = tracker.update(_dets(np.concatenate([root, root, root + 0.01])), k / 30.0)
        assert out.ids.tolist() == [1]
        assert out.num_duplicates == 2


def test_long_silence_then_people_again():
    tracker = Tracker(TrackerConfig())
    for k in range(10):
        tracker.update(_dets([[0.0, 0.3, 5.0]]), k / 30.0)
    for k in range(10, 400):
        out = tracker.update(_dets(np.zeros((0, 3))), k / 30.0)
    assert len(out) == 0 and tracker.num_tracks == 0
    for k in range(400, 405):
        out = tracker.update(_dets([[0.0, 0.3, 5.0]]), k / 30.0)
    assert out.ids.tolist() == [2]


def test_stamp_going_backwards_resets_with_a_log(caplog):
    tracker = Tracker(TrackerConfig(min_hits=1))
    for k in range(5):
        tracker.update(_dets([[0.0, 0.3, 5.0]]), 100.0 + k / 30.0)
    with caplog.at_level(logging.WARNING, logger='romp_ros.core.tracking.tracker'):
        out = tracker.update(_dets([[0.0, 0.3, 5.0]]), 100.0)
    assert out.was_reset
    assert 'backwards' in caplog.text
    assert out.ids.tolist() == [2]  # the old track is gone; its id is not reused
    nxt = tracker.update(_dets([[0.0, 0.3, 5.0]]), 100.0 + 1 / 30.0)
    assert not nxt.was_reset and nxt.ids.tolist() == [2]


def test_non_finite_stamp_is_ignored(caplog):
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update(_dets([[0.0, 0.3, 5.0]]), 0.0)
    with caplog.at_level(logging.WARNING):
        out = tracker.update(_dets([[0.0, 0.3, 5.0]]), float('nan'))
    assert 'non-finite' in caplog.text
    assert out.ids.tolist() == [1] and out.detection_index.tolist() == [-1]
    assert tracker.update(_dets([[0.0, 0.3, 5.0]]), 1 / 30.0).states == ('confirmed',)


def test_repeated_stamp_does_not_crash_or_move():
    tracker = Tracker(TrackerConfig(min_hits=1))
    a = tracker.update(_dets([[0.0, 0.3, 5.0]]), 1.0)
    b = tracker.update(_dets([[0.0, 0.3, 5.0]]), 1.0)
    assert a.ids.tolist() == b.ids.tolist() == [1]
    np.testing.assert_allclose(b.root, a.root)


# -- determinism and outputs -------------------------------------------------------------------

def test_two_runs_are_identical():
    seq = generate_sequence(preset('crowd', duration_s=4.0), seed=5)

    def run():
        tracker = Tracker(TrackerConfig())
        return [tracker.update(f.detections, f.stamp_s) for f in seq.frames]

    first, second = run(), run()
    assert sum(len(o) for o in first) > 100
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.ids, b.ids) and a.states == b.states
        assert np.array_equal(a.root, b.root) and np.array_equal(a.thetas, b.thetas)
        assert np.array_equal(a.detection_index, b.detection_index)


def test_output_shapes_and_velocity():
    tracker = Tracker(TrackerConfig())
    for k in range(60):
        t = k / 30.0
        out = tracker.update(_dets([[-1.0 + 1.0 * t, 0.3, 6.0], [1.0, 0.3, 9.0 - 0.5 * t]]), t)
    m = len(out)
    assert m == 2
    assert out.root.shape == (m, 3) and out.root_velocity.shape == (m, 3)
    assert out.root_covariance.shape == (m, 3, 3) and out.bbox.shape == (m, 4)
    assert out.thetas.shape == (m, 72) and out.betas.shape == (m, 10) and out.cam.shape == (m, 3)
    assert out.ids.tolist() == sorted(out.ids.tolist())
    by_det = dict(zip(out.detection_index.tolist(), range(m), strict=True))
    np.testing.assert_allclose(out.root_velocity[by_det[0]], [1.0, 0.0, 0.0], atol=0.1)
    np.testing.assert_allclose(out.root_velocity[by_det[1]], [0.0, 0.0, -0.5], atol=0.1)


def test_an_unseen_track_does_not_take_someone_else_of_another_build():
    """Person A is hidden; B, of a different body shape, appears where A is predicted. The
    shape gate gives B a new track instead of A's id; A's own return gets A's id back."""
    betas_a, betas_b = np.zeros((1, 10)), np.full((1, 10), 1.0)
    tracker = Tracker(TrackerConfig(min_hits=1))
    spot = np.array([[0.0, 0.3, 6.0]])
    first = tracker.update(_dets(spot, betas=betas_a), 0.0).ids.tolist()
    tracker.update(_dets(np.zeros((0, 3))), 0.2)  # A hidden
    out = tracker.update(_dets(spot, betas=betas_b), 0.4)
    assert out.ids[out.detection_index == 0].tolist() != first
    out = tracker.update(_dets(np.vstack([spot, spot + [1.5, 0, 0]]),
                               betas=np.vstack([betas_a, betas_b])), 0.6)
    assert out.ids[out.detection_index == 0].tolist() == first
    # without the gate A's id goes to B
    ungated = Tracker(TrackerConfig(min_hits=1, weights=CostWeights(shape_gate=float('inf'))))
    first = ungated.update(_dets(spot, betas=betas_a), 0.0).ids.tolist()
    ungated.update(_dets(np.zeros((0, 3))), 0.2)
    out = ungated.update(_dets(spot, betas=betas_b), 0.4)
    assert out.ids[out.detection_index == 0].tolist() == first


def test_a_tentative_track_survives_a_dropped_frame_at_15_fps():
    """The default tentative coasting outlasts a dropped frame (and a CPU node's 1-3 Hz)."""
    for period in (1 / 15.0, 0.5):
        tracker = Tracker(TrackerConfig())
        root = np.array([[0.0, 0.3, 5.0]])
        stamps = [0.0, 2 * period, 3 * period]  # the frame at `period` was dropped
        ids = [tracker.update(_dets(root), t).ids.tolist() for t in stamps]
        assert ids == [[], [], [1]], period


def test_the_node_uses_the_tracker_defaults():
    """One set of defaults: romp_node's tracking parameters default to TrackerConfig's."""
    from romp_ros.ros.params import PARAMETERS_BY_NAME
    defaults = TrackerConfig()
    for param, field in (('track_min_hits', 'min_hits'), ('track_max_coast_s', 'max_coast_s'),
                         ('track_tentative_max_coast_s', 'tentative_max_coast_s'),
                         ('track_low_conf', 'low_conf'), ('track_high_conf', 'high_conf'),
                         ('track_new_conf', 'new_track_conf'),
                         ('track_publish_tentative', 'output_tentative')):
        assert PARAMETERS_BY_NAME[param].default == getattr(defaults, field), param


def test_config_validation():
    with pytest.raises(ValueError):
        CostWeights(shape_gate=0.0)
    with pytest.raises(ValueError):
        TrackerConfig(low_conf=0.6, high_conf=0.5)
    with pytest.raises(ValueError):
        TrackerConfig(min_hits=0)
    with pytest.raises(ValueError):
        TrackerConfig(max_coast_s=1.0, report_coast_s=2.0)


def test_detections_from_frame_result():
    joints = np.zeros((2, 24, 3))
    joints[:, 0] = [[0.0, 0.0, 0.05], [0.0, 0.1, 0.0]]
    pj2d = np.zeros((2, 24, 2))
    pj2d[0] = np.nan  # a broken first row
    pj2d[1, :, 0] = np.linspace(100.0, 200.0, 24)
    pj2d[1, :, 1] = np.linspace(50.0, 400.0, 24)
    result = FrameResult(
        cam=np.zeros((2, 3)), smpl_thetas=np.zeros((2, 72)), smpl_betas=np.zeros((2, 10)),
        cam_trans=np.array([[0.0, 0.0, 3.0], [1.0, 0.2, 5.0]]), joints=joints, verts=None,
        pj2d_org=pj2d, center_confs=np.array([0.8, 0.6]), joint_names=('pelvis',) * 24,
        image_size=(720, 1280), intrinsics=CameraIntrinsics(900.0, 900.0, 640.0, 360.0))
    dets = detections_from_frame(result)
    assert len(dets) == 1 and dets.num_invalid == 1
    np.testing.assert_allclose(dets.root, [[1.0, 0.3, 5.0]])
    np.testing.assert_allclose(dets.bbox, [[100.0, 50.0, 200.0, 400.0]])
    np.testing.assert_allclose(dets.intrinsics, K)
    assert dets.image_size == (720, 1280)
    # The tracker reports the FrameResult row, not the row of the cleaned detections.
    assert dets.source_rows().tolist() == [1]
    out = Tracker(TrackerConfig(min_hits=1)).update(dets, 0.0)
    assert out.detection_index.tolist() == [1] and out.num_invalid == 1
