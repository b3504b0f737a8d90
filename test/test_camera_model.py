"""The camera model (K + CameraInfo distortion) against OpenCV as the independent reference."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError

W, H = 640, 480


def _plumb_bob() -> CameraModel:
    # 90 degree horizontal field of view, strong barrel distortion
    f = W / 2 / math.tan(math.radians(45))
    return CameraModel(W, H, (f, f * 1.01, 322.5, 238.0), 'plumb_bob',
                       (-0.3, 0.1, 0.0012, -0.0008, -0.01))


def _rational() -> CameraModel:
    # a wide-angle calibration of the usual form (numerator and denominator both large)
    return CameraModel(W, H, (300.0, 301.0, 318.0, 243.0), 'rational_polynomial',
                       (0.8, 0.12, 0.0006, -0.0004, 0.002, 1.1, 0.3, 0.01))


def _fisheye() -> CameraModel:
    # 125 degree horizontal (about 155 degree diagonal) equidistant lens
    f = (W / 2) / math.radians(62.5)
    return CameraModel(W, H, (f, f, 321.0, 239.5), 'equidistant', (0.05, -0.01, 0.003, -0.0005))


CAMERAS = {'plumb_bob': _plumb_bob, 'rational_polynomial': _rational, 'equidistant': _fisheye}


def _opencv_project(cam: CameraModel, points: np.ndarray) -> np.ndarray:
    """OpenCV's projection of (N, 3) camera-frame points (N, 2)."""
    zero = np.zeros(3)
    dist = np.asarray(cam.d, dtype=np.float64)
    if cam.distortion_model == 'equidistant':
        out, _ = cv2.fisheye.projectPoints(points.reshape(1, -1, 3), zero, zero, cam.matrix(),
                                           dist)
    else:
        out, _ = cv2.projectPoints(points.reshape(-1, 1, 3), zero, zero, cam.matrix(), dist)
    return out.reshape(-1, 2)


def _image_grid(cam: CameraModel, step: int = 16) -> np.ndarray:
    """(N, 2) pixels covering the whole image, its borders and exact corners included."""
    us = np.unique(np.concatenate([np.arange(0, cam.width + 1, step), [cam.width]]))
    vs = np.unique(np.concatenate([np.arange(0, cam.height + 1, step), [cam.height]]))
    uu, vv = np.meshgrid(us, vs)
    return np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float64)


def _corner_ideal_radius(cam: CameraModel) -> float:
    corners = np.array([[0, 0], [cam.width, 0], [0, cam.height], [cam.width, cam.height]], float)
    ideal = cam.undistort_points(cam.to_normalised(corners))
    return float(np.linalg.norm(ideal, axis=1).max())


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_project_matches_opencv(name):
    cam = CAMERAS[name]()
    rng = np.random.default_rng(0)
    # rays through the whole image (corners included), at random depths, plus random points
    rays = cam.pixel_rays(_image_grid(cam, 32))
    depth = rng.uniform(0.3, 30.0, len(rays))
    points = np.concatenate([rays * depth[:, None],
                             rng.uniform([-2, -2, 0.5], [2, 2, 10], (200, 3))])
    ours = cam.project(points)
    ref = _opencv_project(cam, points)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_distort_points_matches_opencv(name):
    cam = CAMERAS[name]()
    rng = np.random.default_rng(1)
    limit = 0.9 * _corner_ideal_radius(cam) / math.sqrt(2)
    ideal = rng.uniform(-limit, limit, (500, 2))
    ours = cam.distort_points(ideal)
    unit = CameraModel(10, 10, (1.0, 1.0, 0.0, 0.0), cam.distortion_model, cam.d)
    ref = _opencv_project(unit, np.concatenate([ideal, np.ones((500, 1))], axis=1))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_undistort_round_trip_through_opencv_across_the_whole_image(name):
    """Undistorted pixels (incl. the corners), re-projected by OpenCV, land back within 1e-4 px."""
    cam = CAMERAS[name]()
    # the lens is one-to-one over the whole image, so the inverse is well defined
    radius = (math.atan(_corner_ideal_radius(cam)) if name == 'equidistant'
              else _corner_ideal_radius(cam))
    assert cam.radial_monotonic_up_to(radius * 1.05)
    pixels = _image_grid(cam)
    ideal = cam.undistort_points(cam.to_normalised(pixels))
    back = _opencv_project(cam, np.concatenate([ideal, np.ones((len(ideal), 1))], axis=1))
    err = np.abs(back - pixels).max()
    assert err < 1e-4, err
    # the same through our own forward model
    assert np.abs(cam.to_pixels(cam.distort_points(ideal)) - pixels).max() < 1e-4


def test_undistort_agrees_with_opencv_iterative_undistort():
    """Where OpenCV's fixed-point iteration converges (the central region) both agree."""
    cam = _plumb_bob()
    pixels = _image_grid(cam, 8)
    centre = np.array([cam.k[2], cam.k[3]])
    central = pixels[np.all(np.abs(pixels - centre) < [0.3 * W, 0.3 * H], axis=1)]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 500, 1e-14)
    ref = cv2.undistortPoints(central.reshape(-1, 1, 2), cam.matrix(), np.array(cam.d),
                              R=None, P=None, criteria=criteria).reshape(-1, 2)
    ours = cam.undistort_points(cam.to_normalised(central))
    np.testing.assert_allclose(cam.to_pixels(ours), cam.to_pixels(ref), atol=1e-4)

    fish = _fisheye()
    pixels = _image_grid(fish, 16)
    ref = cv2.fisheye.undistortPoints(
        pixels.reshape(1, -1, 2), fish.matrix(), np.array(fish.d),
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)).reshape(-1, 2)
    ours = fish.undistort_points(fish.to_normalised(pixels))
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_pixel_rays_project_back_to_their_pixels(name):
    cam = CAMERAS[name]()
    pixels = _image_grid(cam, 20)
    rays = cam.pixel_rays(pixels)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(cam.project(rays * 3.0), pixels, atol=1e-4)


def test_fisheye_projects_rays_beyond_ninety_degrees():
    cam = _fisheye()
    # 100 degrees off-axis, to the right: a real fisheye sees it, a pinhole cannot
    angle = math.radians(100)
    point = np.array([math.sin(angle), 0.0, math.cos(angle)])
    u, v = cam.project(point)
    theta_d = angle * (1 + sum(c * angle ** (2 * i + 2) for i, c in enumerate(cam.d)))
    assert u == pytest.approx(cam.k[2] + cam.k[0] * theta_d)
    assert v == pytest.approx(cam.k[3])
    assert np.isnan(cam.undistort_points(cam.to_normalised(np.array([u, v])))).all()
    np.testing.assert_allclose(cam.pixel_rays(np.array([u, v])), point, atol=1e-9)


def test_pinhole_models_give_nan_behind_the_camera():
    for cam in (_plumb_bob(), CameraModel(W, H, (500.0, 500.0, 320.0, 240.0))):
        out = cam.project(np.array([[0.1, 0.2, -1.0], [0.0, 0.0, 0.0], [0.1, 0.2, 1.0]]))
        assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()


def test_ideal_pinhole_and_zero_fisheye():
    cam = CameraModel.pinhole_from_fov(W, H, 90.0)
    assert not cam.is_distorted
    np.testing.assert_allclose(cam.project(np.array([1.0, -0.5, 2.0])),
                               [320 + 320 * 0.5, 240 - 320 * 0.25])
    # an equidistant lens with D = 0 is still a fisheye (r = f * theta), not a pinhole
    fish = CameraModel(W, H, (300.0, 300.0, 320.0, 240.0), 'equidistant', (0, 0, 0, 0))
    assert fish.is_distorted
    u, _ = fish.project(np.array([1.0, 0.0, 1.0]))
    assert u == pytest.approx(320 + 300 * math.pi / 4)


def test_monotonic_range_detects_fold_back():
    # r_d = r - 0.5 r^3 peaks at r = 0.816: beyond that, far points fold back into the image
    cam = CameraModel(W, H, (300.0, 300.0, 320.0, 240.0), 'plumb_bob', (-0.5, 0, 0, 0, 0))
    assert cam.radial_monotonic_up_to(0.8)
    assert not cam.radial_monotonic_up_to(0.85)


def test_camera_info_fields_round_trip():
    for make in CAMERAS.values():
        cam = make()
        fields = cam.camera_info_fields()
        assert len(fields['k']) == 9 and len(fields['p']) == 12 and len(fields['r']) == 9
        again = CameraModel.from_camera_info_fields(fields['width'], fields['height'],
                                                    fields['k'], fields['distortion_model'],
                                                    fields['d'])
        assert again == cam
    plain = CameraModel(W, H, (500.0, 500.0, 320.0, 240.0))
    fields = plain.camera_info_fields()
    assert fields['distortion_model'] == 'plumb_bob' and fields['d'] == [0.0] * 5
    again = CameraModel.from_camera_info_fields(W, H, fields['k'], 'plumb_bob', fields['d'])
    assert not again.is_distorted


def test_coefficient_counts_and_aliases():
    k9 = [400.0, 0.0, 320.0, 0.0, 410.0, 240.0, 0.0, 0.0, 1.0]
    cam = CameraModel.from_camera_info_fields(W, H, k9, 'plumb_bob', [-0.1, 0.01, 0.0, 0.0])
    assert cam.d == (-0.1, 0.01, 0.0, 0.0, 0.0) and cam.k == (400.0, 410.0, 320.0, 240.0)
    assert CameraModel.from_camera_info_fields(W, H, k9, 'fisheye',
                                               [0.1, 0, 0, 0]).distortion_model == 'equidistant'
    assert CameraModel.from_camera_info_fields(W, H, k9, '', []).distortion_model == 'none'
    # trailing zeros beyond the count (e.g. 14-element OpenCV vectors) are accepted
    assert len(CameraModel(W, H, (1, 1, 0, 0), 'rational_polynomial',
                           (0.1,) + (0.0,) * 13).d) == 8


@pytest.mark.parametrize('kwargs, message', [
    ({'k9': [0.0] * 9}, 'K'),
    ({'k9': [400.0, 2.0, 320.0, 0.0, 400.0, 240.0, 0.0, 0.0, 1.0]}, 'skew'),
    ({'k9': [400.0, 0.0, 320.0]}, '9'),
    ({'model': 'kannala_brandt'}, 'kannala_brandt'),
    ({'model': '', 'd': [0.1, 0, 0, 0, 0]}, 'empty'),
    ({'model': 'rational_polynomial', 'd': [0.1, 0.0, 0.0, 0.0, 0.0]}, '8'),
    ({'model': 'plumb_bob', 'd': [0.1, 0.0, 0.0, 0.0, 0.0, 0.3]}, 'extras'),
    ({'model': 'plumb_bob', 'd': [0.1, float('nan'), 0.0, 0.0, 0.0]}, 'finite'),
])
def test_bad_camera_info_is_one_clear_error(kwargs, message):
    k9 = kwargs.get('k9', [400.0, 0.0, 320.0, 0.0, 400.0, 240.0, 0.0, 0.0, 1.0])
    with pytest.raises(CameraModelError, match=message):
        CameraModel.from_camera_info_fields(W, H, k9, kwargs.get('model', 'plumb_bob'),
                                            kwargs.get('d', [0.0] * 5))
