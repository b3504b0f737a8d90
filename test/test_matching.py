"""Matching (Hungarian on 2D keypoints, IoU gate) and stamp pairing (exact, nearest, live)."""

from __future__ import annotations

import numpy as np
import pytest

from romp_ros.evaluation.matching import match_people, mean_keypoint_distance
from romp_ros.evaluation.pairing import StampPairer
from romp_ros.evaluation.people import keypoint_boxes


def _person(u, v, size=100.0, joints=5):
    """Keypoints of a person whose box is ``size`` px wide starting at (u, v)."""
    t = np.linspace(0.0, 1.0, joints)
    return np.stack([u + size * t, v + 2 * size * t], axis=1)


def test_hungarian_finds_the_optimal_assignment_where_greedy_does_not():
    # one keypoint each, on a line: g0 = 0, g1 = 3, p0 = 1, p1 = -2 -> costs [[1, 2], [2, 5]].
    # Greedy nearest-first takes g0-p0 (1) then g1-p1 (5) = 6; the optimum is 2 + 2 = 4.
    gt = np.array([[[0.0, 0.0]], [[3.0, 0.0]]])
    pred = np.array([[[1.0, 0.0]], [[-2.0, 0.0]]])
    box = np.array([[-10.0, -10.0, 20.0, 20.0]] * 2)  # one box for all: every pair allowed
    m = match_people(gt, pred, box, box)
    assert m.gt_to_pred.tolist() == [1, 0]
    np.testing.assert_allclose(m.cost, [2.0, 2.0])


def test_iou_gate_forbids_far_boxes_even_with_close_keypoints():
    gt = _person(100, 100)[None]
    pred = gt.copy()
    far_box = np.array([[1000.0, 1000.0, 1100.0, 1300.0]])
    m = match_people(gt, pred, keypoint_boxes(gt), far_box)
    assert m.gt_index.size == 0
    assert m.missed.tolist() == [0] and m.false_positives.tolist() == [0]
    # IoU of exactly the threshold passes, just below does not
    box = np.array([[0.0, 0.0, 10.0, 10.0]])
    shifted = box + [[9.0, 0.0, 9.0, 0.0]]  # overlap 1x10 / union 190 ~ 0.0526
    assert match_people(gt, pred, box, shifted, iou_threshold=0.05).gt_index.size == 1
    assert match_people(gt, pred, box, shifted, iou_threshold=0.06).gt_index.size == 0


def test_unmatched_ground_truth_is_missed_and_unmatched_prediction_is_false():
    gt = np.stack([_person(100, 100), _person(500, 100), _person(900, 100)])
    pred = np.stack([_person(905, 102), _person(102, 98), _person(1500, 600)])
    m = match_people(gt, pred, keypoint_boxes(gt), keypoint_boxes(pred))
    assert m.gt_to_pred.tolist() == [1, -1, 0]
    assert m.missed.tolist() == [1]
    assert m.false_positives.tolist() == [2]
    assert (m.gt_index.tolist(), m.pred_index.tolist()) == ([0, 2], [1, 0])


def test_unknown_keypoints_are_left_out_of_the_distance():
    gt = _person(100, 100)[None]
    pred = gt + 4.0
    pred[0, 2] = np.nan
    gt2 = gt.copy()
    gt2[0, 0] = np.nan
    d = mean_keypoint_distance(gt2, pred)
    assert d[0, 0] == pytest.approx(4.0 * np.sqrt(2.0))
    assert np.isnan(mean_keypoint_distance(np.full((1, 5, 2), np.nan), pred)[0, 0])


def test_without_keypoints_the_boxes_decide():
    box_gt = np.array([[0.0, 0.0, 100, 200], [300, 0, 400, 200]])
    box_pred = np.array([[305.0, 5, 400, 200], [2.0, 0, 100, 190]])
    nan_kp = np.full((2, 5, 2), np.nan)
    m = match_people(nan_kp, nan_kp, box_gt, box_pred)
    assert m.used_box_fallback
    assert m.gt_to_pred.tolist() == [1, 0]


def test_empty_frames():
    none = np.zeros((0, 5, 2))
    m = match_people(none, _person(1, 1)[None], np.zeros((0, 4)), np.array([[0, 0, 10, 10.]]))
    assert m.false_positives.tolist() == [0] and m.gt_to_pred.size == 0
    m = match_people(_person(1, 1)[None], none, np.array([[0, 0, 10, 10.]]), np.zeros((0, 4)))
    assert m.missed.tolist() == [0]


# -- stamp pairing ---------------------------------------------------------------------------


def _offline(gt, pred, tol):
    pairer = StampPairer(tol)
    for s in gt:
        pairer.add_ground_truth(s)
    for s in pred:
        pairer.add_prediction(s)
    out = pairer.decide(final=True)
    return dict(out.pairs), sorted(out.unpaired_predictions)


def test_exact_pairing_pairs_equal_stamps_only():
    pairs, unpaired = _offline([100, 200, 300], [100, 201, 300, 400], 0)
    assert pairs == {100: 100, 200: None, 300: 300}
    assert unpaired == [201, 400]


def test_tolerance_pairs_the_nearest_one_to_one():
    # 200 has two candidates within 10: 195 (5 away) and 204 (4 away) -> 204
    pairs, unpaired = _offline([100, 200, 300], [103, 195, 204, 312], 10)
    assert pairs == {100: 103, 200: 204, 300: None}
    assert unpaired == [195, 312]
    # a tie goes to the earlier stamp; a prediction serves one frame only
    pairs, _ = _offline([100, 110], [105], 5)
    assert pairs == {100: 105, 110: None}
    assert StampPairer(int(0.02e9)).description == 'nearest within 0.02 s'
    assert StampPairer(0).description == 'exact'


@pytest.mark.parametrize('tol', [0, 3])
def test_incremental_pairing_equals_offline(tol):
    rng = np.random.default_rng(tol)
    gt = np.arange(0, 3000, 100)
    pred = [int(s + rng.integers(-tol, tol + 1)) for s in gt if rng.random() > 0.2]
    pred += [5, 1555]  # predictions without ground truth
    pred = sorted(set(pred))
    expected = _offline(gt, pred, tol)
    pairer = StampPairer(tol)
    pairs, unpaired = {}, []
    # the streams interleave as a bag's log order would (predictions a little late)
    events = [(s, 'gt') for s in gt] + [(s + 150, 'pred', s) for s in pred]
    for event in sorted(events, key=lambda e: e[0]):
        if event[1] == 'gt':
            pairer.add_ground_truth(event[0])
        else:
            pairer.add_prediction(event[2])
        out = pairer.decide()
        pairs.update(out.pairs)
        unpaired += out.unpaired_predictions
        # nothing is decided before its time: every decided frame's window has passed
        assert all(p is None or abs(p - g) <= tol for g, p in out.pairs)
    out = pairer.decide(final=True)
    pairs.update(out.pairs)
    unpaired += out.unpaired_predictions
    assert (pairs, sorted(unpaired)) == expected


def test_live_mode_gives_up_on_a_dropped_frame_after_max_wait():
    pairer = StampPairer(0, max_wait_ns=500)
    pairer.add_ground_truth(100)
    assert pairer.decide().pairs == ()  # the prediction may still come
    pairer.add_ground_truth(400)
    assert pairer.decide().pairs == ()
    pairer.add_ground_truth(700)  # 600 ns past frame 100: given up
    assert pairer.decide().pairs == ((100, None),)
    pairer.add_prediction(400)
    assert pairer.decide().pairs == ((400, 400),)
    with pytest.raises(ValueError):
        StampPairer(-1)
