"""One-Euro filters and per-person smoothing: real time steps, rotations, jitter vs lag."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from romp_ros.core.geometry.rotation_numpy import (
    axis_angle_to_quaternion,
    geodesic_angle,
    quaternion_to_axis_angle,
)
from romp_ros.core.tracking.detections import Detections
from romp_ros.core.tracking.one_euro import OneEuroFilter, OneEuroParams, RotationOneEuroFilter
from romp_ros.core.tracking.smoothing import PersonSmoother, SmoothingConfig
from romp_ros.core.tracking.tracker import Tracker, TrackerConfig
from romp_ros.testing.tracking_study import (
    jitter_spec,
    jitter_study,
    naive_axis_angle_smoothing,
    step_lag_s,
)


def _rise_time(fps: float, min_cutoff: float = 2.0) -> float:
    """Seconds for a beta=0 One-Euro filter to reach 63% of a unit step sampled at ``fps``."""
    filt = OneEuroFilter(min_cutoff, 0.0)
    filt(np.zeros(1), 0.0)
    k = 0
    while True:
        k += 1
        if filt(np.ones(1), k / fps)[0] >= 1.0 - np.exp(-1.0):
            return k / fps


def test_cutoff_is_in_hertz_whatever_the_frame_rate():
    # A filter that assumed a fixed rate would react twice as fast in time at 60 Hz as at 30 Hz.
    t30, t60, t15 = _rise_time(30.0), _rise_time(60.0), _rise_time(15.0)
    assert t60 == pytest.approx(t30, abs=1.5 / 30.0)
    assert t15 == pytest.approx(t30, abs=1.5 / 15.0)
    # First-order low-pass at 2 Hz: time constant 1 / (2 pi 2) = 0.08 s.
    assert 0.04 < t30 < 0.16


def test_one_euro_smooths_noise_at_rest_and_follows_fast_motion():
    rng = np.random.default_rng(0)
    stamps = np.arange(300) / 30.0
    noise = rng.normal(0.0, 0.05, (300, 3))
    filt = OneEuroFilter(0.5, 1.0)
    out = np.array([filt(x, t) for x, t in zip(noise, stamps, strict=True)])
    # Frame-to-frame jitter (what a viewer sees) drops well below that of the input.
    assert np.diff(out[30:], axis=0).std() < 0.25 * np.diff(noise[30:], axis=0).std()
    assert out[30:].std() < 0.5 * noise[30:].std()
    # A fast ramp (2 m/s): the speed term raises the cutoff so the lag stays small.
    filt.reset()
    ramp = 2.0 * stamps[:, None] * np.ones(3)
    out = np.array([filt(x, t) for x, t in zip(ramp, stamps, strict=True)])
    assert np.abs(out[60:] - ramp[60:]).max() < 0.25
    slow = OneEuroFilter(0.5, 0.0)
    out_slow = np.array([slow(x, t) for x, t in zip(ramp, stamps, strict=True)])
    assert np.abs(out_slow[60:] - ramp[60:]).max() > np.abs(out[60:] - ramp[60:]).max()


def test_non_increasing_stamp_keeps_state_and_long_gap_restarts():
    filt = OneEuroFilter(1.0, 0.0, reset_gap_s=0.5)
    filt(np.array([0.0]), 0.0)
    first = filt(np.array([1.0]), 0.1)
    assert 0.0 < first[0] < 1.0
    # Same stamp (duplicate message) and an older stamp: output unchanged, state unchanged.
    assert filt(np.array([5.0]), 0.1)[0] == first[0]
    assert filt(np.array([5.0]), 0.05)[0] == first[0]
    assert filt(np.array([1.0]), 0.2)[0] == pytest.approx(
        first[0] + (1.0 - first[0]) * 0.1 / (0.1 + 1.0 / (2 * np.pi)))
    # A gap longer than reset_gap_s: the new sample passes through unchanged.
    assert filt(np.array([7.0]), 2.0)[0] == 7.0


def test_one_euro_params_are_validated():
    with pytest.raises(ValueError):
        OneEuroParams(0.0, 1.0)
    with pytest.raises(ValueError):
        OneEuroParams(1.0, -0.1)
    with pytest.raises(ValueError):
        OneEuroFilter(1.0, 0.0, reset_gap_s=0.0)


def _flipping_rotations(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rotation vectors of an upright person (half turn about x) with small noise and a slow
    turn; canonical rotation vectors (angle <= pi) jump between ~+pi and ~-pi axes."""
    rng = np.random.default_rng(seed)
    stamps = np.arange(num) / 30.0
    yaw = Rotation.from_rotvec(np.outer(0.3 * np.sin(stamps), [0.0, 1.0, 0.0]))
    noise = Rotation.from_rotvec(rng.normal(0.0, 0.04, (num, 3)))
    rots = yaw * Rotation.from_rotvec([np.pi, 0.0, 0.0]) * noise
    return rots.as_rotvec(), stamps


def test_rotation_smoothing_never_flips_across_180_degrees():
    rotvecs, stamps = _flipping_rotations(300)
    # The input really does cross the axis-angle boundary: x components of both signs.
    assert (rotvecs[:, 0] > 2.5).any() and (rotvecs[:, 0] < -2.5).any()
    thetas = np.zeros((300, 72))
    thetas[:, :3] = rotvecs
    smoother = PersonSmoother(SmoothingConfig())
    out = np.array([smoother.update(np.array([0.0, 0.3, 4.0]), th, np.zeros(10),
                                    np.array([0.3, 0.0, 0.0]), t).thetas
                    for th, t in zip(thetas, stamps, strict=True)])
    err = np.degrees(geodesic_angle(out[:, :3], rotvecs))
    assert err.max() < 10.0, err.max()
    # Filtering the raw numbers instead, as a naive smoother does, lands far from the input.
    naive = naive_axis_angle_smoothing(thetas, stamps)
    assert np.degrees(geodesic_angle(naive[:, :3], rotvecs)).max() > 90.0


def test_shared_filters_equal_one_filter_per_quantity():
    """PersonSmoother runs the rotations, and the camera with the betas, through one filter
    each; every element must still get its own parameters: the result equals separate filters
    for the global orientation, the body pose, the camera and the betas (gaps and repeats too)."""
    cfg = SmoothingConfig(root_filter='one_euro', global_orient=OneEuroParams(2.0, 0.7, 1.5),
                          pose=OneEuroParams(0.8, 0.2, 1.0), cam=OneEuroParams(1.3, 0.4, 0.9),
                          betas=OneEuroParams(0.1, 0.0, 1.0))
    separate = {'global': RotationOneEuroFilter.from_params(cfg.global_orient, cfg.reset_gap_s),
                'pose': RotationOneEuroFilter.from_params(cfg.pose, cfg.reset_gap_s),
                'cam': OneEuroFilter.from_params(cfg.cam, cfg.reset_gap_s),
                'betas': OneEuroFilter.from_params(cfg.betas, cfg.reset_gap_s)}
    smoother = PersonSmoother(cfg)
    rng = np.random.default_rng(4)
    stamps = list(np.arange(40) / 30.0) + [40 / 30.0, 40 / 30.0, 3.0] + list(3.0 + np.arange(
        1, 20) / 15.0)  # a repeated stamp, then a gap longer than reset_gap_s
    base = rng.normal(scale=0.5, size=72)
    for stamp in stamps:
        thetas = base + rng.normal(scale=0.05, size=72)
        betas, cam = rng.normal(size=10), rng.normal(size=3)
        out = smoother.update(rng.normal(size=3), thetas, betas, cam, stamp)
        quats = axis_angle_to_quaternion(thetas.reshape(24, 3))
        rotations = np.concatenate([separate['global'](quats[:1], stamp),
                                    separate['pose'](quats[1:], stamp)])
        np.testing.assert_allclose(out.thetas.reshape(24, 3),
                                   quaternion_to_axis_angle(rotations), atol=1e-12)
        np.testing.assert_allclose(out.cam, separate['cam'](cam, stamp), atol=1e-12)
        np.testing.assert_allclose(out.betas, separate['betas'](betas, stamp), atol=1e-12)


def test_rotation_filter_output_is_unit_and_sign_continuous():
    rotvecs, stamps = _flipping_rotations(120, seed=1)
    quats = axis_angle_to_quaternion(rotvecs)
    quats[::2] *= -1.0  # the filter must not care which of q / -q it is given
    filt = RotationOneEuroFilter(1.0, 0.3)
    out = np.array([filt(q[None], t)[0] for q, t in zip(quats, stamps, strict=True)])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
    assert (np.sum(out[1:] * out[:-1], axis=1) > 0.99).all()


def test_rotation_filter_follows_a_steady_turn():
    stamps = np.arange(90) / 30.0
    angles = 2.0 * stamps  # 2 rad/s about z, through 180 degrees at t = 1.57 s
    quats = Rotation.from_rotvec(np.outer(angles, [0.0, 0.0, 1.0])).as_quat()
    filt = RotationOneEuroFilter(1.0, 0.3)
    out = np.array([filt(q[None], t)[0] for q, t in zip(quats, stamps, strict=True)])
    lag = 2.0 * np.arccos(np.clip(np.abs(np.sum(out * quats, axis=1)), 0.0, 1.0))
    assert lag[30:].max() < 0.5  # rad; well under the 2 rad travelled per second
    assert lag[30:].max() > 0.0


def test_smoothing_off_reports_the_raw_values_exactly():
    rng = np.random.default_rng(3)
    betas = rng.normal(0.0, 1.0, (1, 10))
    tracker = Tracker(TrackerConfig(min_hits=1, smoothing=SmoothingConfig.off()))
    for k in range(20):
        dets = Detections.create(
            root=np.array([[0.0, 0.3, 5.0]]) + rng.normal(0.0, 0.02, (1, 3)),
            bbox=np.array([[600.0, 200.0, 680.0, 500.0]]),
            betas=betas + rng.normal(0.0, 0.1, (1, 10)),
            confs=[0.9], thetas=rng.normal(0.0, 1.0, (1, 72)), cam=rng.normal(0.0, 1.0, (1, 3)))
        out = tracker.update(dets, k / 30.0)
        assert len(out) == 1
        # Bit-for-bit: no conversion round trip, no arithmetic.
        assert np.array_equal(out.thetas[0], dets.thetas[0])
        assert np.array_equal(out.betas[0], dets.betas[0])
        assert np.array_equal(out.cam[0], dets.cam[0])
        assert np.array_equal(out.root[0], dets.root[0])
    smoother = PersonSmoother(SmoothingConfig.from_mode('off'))
    th = rng.normal(0.0, 1.0, 72)
    assert np.array_equal(smoother.update(np.ones(3), th, np.ones(10), np.ones(3), 0.0).thetas, th)


def test_smoothing_mode_strings():
    assert SmoothingConfig.from_mode('off').enabled is False
    assert SmoothingConfig.from_mode('default') == SmoothingConfig()
    with pytest.raises(ValueError):
        SmoothingConfig.from_mode('strong')


@pytest.mark.parametrize('speed', [0.0, 0.3])
def test_jitter_drops_at_least_threefold_with_small_lag(speed):
    # Static and slowly pacing person, default estimator noise: the defaults must cut the
    # frame-to-frame joint jitter by >= 3x (the bench measures 6-7x), cut the pose-only jitter
    # too, lower the joint error, and never flip the global orientation.
    report = jitter_study(jitter_spec(speed, duration_s=6.0), seed=0)
    assert report.frames > 150
    assert report.factor >= 3.0, report
    assert report.pose_jitter_smoothed_mm < 0.5 * report.pose_jitter_raw_mm
    assert report.error_smoothed_mm < report.error_raw_mm
    assert report.max_flip_deg < 30.0  # a turning pacer lags by ~15 deg; a flip is ~180


def test_kalman_root_does_not_lag_a_person_walking_towards_the_camera():
    # The reason the Kalman position is the default root: a One-Euro filter cannot tell a
    # 1.5 m/s approach from 5% range noise and trails the person; the constant-velocity model
    # does not. Standing still, the One-Euro root is a little smoother (docs/tracking.md).
    spec = jitter_spec(1.5, duration_s=5.0, direction_deg=-90.0)
    kalman = [jitter_study(spec, s).root_error_smoothed_mm for s in range(4)]
    one_euro = [jitter_study(spec, s, SmoothingConfig(root_filter='one_euro'))
                .root_error_smoothed_mm for s in range(4)]
    assert np.mean(kalman) < 0.8 * np.mean(one_euro)


@pytest.mark.parametrize('root_filter', ['kalman', 'one_euro'])
def test_step_lag_bounds(root_filter):
    # A 0.5 m sideways jump is followed within 0.3 s (90%); depth is smoothed harder (its noise
    # is ~8x larger) but must still catch up within 0.75 s.
    smoothing = SmoothingConfig(root_filter=root_filter)
    lateral = step_lag_s(smoothing, axis=0)
    depth = step_lag_s(smoothing, axis=2)
    assert 0.0 < lateral <= 0.3
    assert lateral < depth <= 0.75
    # With smoothing off the output jumps at once.
    assert step_lag_s(SmoothingConfig.off(), axis=0) == 0.0


def test_root_filter_is_validated():
    with pytest.raises(ValueError):
        SmoothingConfig(root_filter='median')
