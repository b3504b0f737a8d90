"""CameraInfo / calibration YAML -> the camera of the images: raw, rectified, binning, ROI."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from romp_ros.core.geometry.calibration import (
    CalibrationFileError,
    CameraCalibration,
    StreamCameras,
    calibration_from_message,
    camera_mode_for_topic,
    fit_to_image,
    image_camera,
    load_camera_info_yaml,
)
from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError

K = (400.0, 0.0, 322.0, 0.0, 402.0, 238.0, 0.0, 0.0, 1.0)
D = (-0.28, 0.09, 0.001, -0.0005, -0.01)
P = (380.0, 0.0, 318.0, 0.0, 0.0, 381.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# what camera_calibration's cameracalibrator writes (ost.yaml)
CALIBRATION_YAML = """image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [400.0, 0.0, 322.0, 0.0, 402.0, 238.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28, 0.09, 0.001, -0.0005, -0.01]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [380.0, 0.0, 318.0, 0.0, 0.0, 381.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def _points(count: int = 200, seed: int = 0) -> np.ndarray:
    """Camera-frame points seen by a 640x480 camera of focal ~400 px."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(1.0, 10.0, count)
    xy = rng.uniform(-0.7, 0.7, (count, 2)) * z[:, None]
    return np.concatenate([xy, z[:, None]], axis=1)


def _opencv(k9, d, points) -> np.ndarray:
    k = np.asarray(k9, dtype=np.float64).reshape(3, 3)
    out, _ = cv2.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k,
                               np.asarray(d, dtype=np.float64) if d is not None else None)
    return out.reshape(-1, 2)


def test_yaml_of_camera_calibration_gives_k_and_lens_for_raw_images(tmp_path):
    path = tmp_path / 'ost.yaml'
    path.write_text(CALIBRATION_YAML)
    calibration = load_camera_info_yaml(path)
    assert (calibration.width, calibration.height) == (640, 480)
    resolved = calibration.resolve('raw')
    assert resolved.warnings == ()
    camera = resolved.camera
    assert (camera.width, camera.height) == (640, 480)
    assert camera.distortion_model == 'plumb_bob' and camera.d == D
    points = _points()
    np.testing.assert_allclose(camera.project(points), _opencv(K, D, points), atol=1e-6)


def test_rectified_images_use_p_without_the_lens(tmp_path):
    calibration = CameraCalibration(640, 480, K, 'plumb_bob', D, p=P)
    camera = calibration.resolve('rectified').camera
    assert not camera.is_distorted and camera.k == (380.0, 381.0, 318.0, 241.0)
    points = _points()
    projection = np.asarray(P).reshape(3, 4)
    homog = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ projection.T
    np.testing.assert_allclose(camera.project(points), homog[:, :2] / homog[:, 2:], atol=1e-9)
    # a stereo pair's R is not applied: said, not silently ignored
    tilted = CameraCalibration(640, 480, K, 'plumb_bob', D, p=P,
                               r=(1.0, 0.0, 0.0, 0.0, math.cos(0.02), -math.sin(0.02), 0.0,
                                  math.sin(0.02), math.cos(0.02)))
    assert any('R is not the identity' in w for w in tilted.resolve('rectified').warnings)
    # no P: K without the lens, with a warning
    no_p = CameraCalibration(640, 480, K, 'plumb_bob', D).resolve('rectified')
    assert no_p.camera.k == (400.0, 402.0, 322.0, 238.0) and not no_p.camera.is_distorted
    assert any('P is empty' in w for w in no_p.warnings)


@pytest.mark.parametrize('binning, roi', [((2, 2), (0, 0, 0, 0)), ((1, 1), (100, 60, 320, 240)),
                                          ((2, 3), (40, 30, 480, 360)), ((0, 0), (0, 0, 0, 0))])
def test_binning_and_roi_follow_the_sensor(binning, roi):
    """The camera of the delivered image sees a point where the full sensor sees it, moved by
    the ROI offset and divided by the binning (image_geometry's rule)."""
    calibration = CameraCalibration(640, 480, K, 'plumb_bob', D, p=P, binning_x=binning[0],
                                    binning_y=binning[1], roi=roi)
    bx, by = max(binning[0], 1), max(binning[1], 1)
    x_off, y_off, roi_w, roi_h = roi
    expected_size = ((roi_h or 480) // by, (roi_w or 640) // bx)
    assert calibration.image_size() == expected_size
    points = _points()
    full = _opencv(K, D, points)
    delivered = (full - [x_off, y_off]) / [bx, by]
    camera = calibration.resolve('raw').camera
    assert (camera.height, camera.width) == expected_size
    np.testing.assert_allclose(camera.project(points), delivered, atol=1e-6)
    # rectified images: the same rule on P
    rect = calibration.resolve('rectified').camera
    full_rect = _opencv(P[:3] + P[4:7] + P[8:11], None, points)
    np.testing.assert_allclose(rect.project(points), (full_rect - [x_off, y_off]) / [bx, by],
                               atol=1e-6)


def test_unknown_lenses_fall_back_to_the_pinhole_with_a_warning():
    odd = CameraCalibration(640, 480, K, 'kannala_brandt', (0.1, 0.01, 0.0, 0.0, 0.0, 0.0))
    resolved = odd.resolve('raw')
    assert not resolved.camera.is_distorted and resolved.camera.k == (400.0, 402.0, 322.0,
                                                                      238.0)
    assert any("'kannala_brandt' is not supported" in w for w in resolved.warnings)
    wrong_count = CameraCalibration(640, 480, K, 'equidistant', (0.1, 0.2))
    assert any('equidistant takes 4' in w for w in wrong_count.resolve('raw').warnings)
    # a plumb_bob driver default (D all zero) is simply a pinhole
    plain = CameraCalibration(640, 480, K, 'plumb_bob', (0.0,) * 5).resolve('raw')
    assert plain.warnings == () and plain.camera.distortion_model == 'none'
    with pytest.raises(CameraModelError, match='not calibrated'):
        CameraCalibration(640, 480, (0.0,) * 9).resolve('raw')
    with pytest.raises(CameraModelError, match='mode'):
        CameraCalibration(640, 480, K).resolve('undistorted')
    with pytest.raises(CameraModelError, match='NaN'):
        CameraCalibration(640, 480, (math.nan,) + K[1:])


def test_resized_images_get_a_scaled_camera_and_crops_are_refused():
    camera = CameraModel(640, 480, (400.0, 402.0, 322.0, 238.0), 'plumb_bob', D)
    half, rescaled = fit_to_image(camera, 240, 320)
    assert rescaled and half.k == (200.0, 201.0, 161.0, 119.0) and half.d == camera.d
    points = _points()
    np.testing.assert_allclose(half.project(points), camera.project(points) / 2.0, atol=1e-9)
    assert fit_to_image(camera, 480, 640) == (camera, False)
    with pytest.raises(CameraModelError, match='another aspect ratio'):
        fit_to_image(camera, 512, 512)
    calibration = CameraCalibration(640, 480, K, 'plumb_bob', D)
    _, warnings = image_camera(calibration, 240, 320)
    assert any('K is scaled' in w for w in warnings)


def test_stream_cameras_pick_the_mode_by_topic_fall_back_and_warn_once(caplog):
    calibration = CameraCalibration(640, 480, K, 'plumb_bob', D, p=P)
    streams = StreamCameras()
    raw = streams.for_image(calibration, 480, 640, '/front/image_raw')
    assert raw.is_distorted and raw.k == (400.0, 402.0, 322.0, 238.0)
    rectified = streams.for_image(calibration, 480, 640, '/front/image_rect')
    assert not rectified.is_distorted and rectified.k == (380.0, 381.0, 318.0, 241.0)
    # a mode given for every stream wins over the topic's name
    forced = StreamCameras('raw').for_image(calibration, 480, 640, '/front/image_rect')
    assert forced.is_distorted
    caplog.set_level('WARNING')
    for _ in range(3):  # a crop is refused: None (the default field of view), said once
        assert streams.for_image(calibration, 512, 512, '/front/image_raw') is None
        half = streams.for_image(calibration, 240, 320, '/front/image_raw')
        assert half.k == (200.0, 201.0, 161.0, 119.0)
    texts = [r.getMessage() for r in caplog.records]
    assert len(texts) == 2, texts
    assert texts[0].startswith('/front/image_raw: not usable for 512x512 images')
    assert 'default field of view' in texts[0] and 'K is scaled' in texts[1]
    with pytest.raises(ValueError, match='undistorted'):
        StreamCameras('undistorted')


@pytest.mark.parametrize('text, fragment', [
    ('%YAML:1.0\n---\ncamera_matrix: !!opencv-matrix\n  rows: 3\n', 'OpenCV FileStorage'),
    ('image_width: 640\nimage_height: 480\n', "missing key(s) ['camera_matrix']"),
    ('[1, 2, 3]\n', 'expected a mapping'),
    ('image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n',
     'declares 3x3 but holds 2 values'),
    ('image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: '
     '[1, 0, 0, 0, 1, 0, 0, 0, x]}\n', 'must be numbers'),
    ('image_width: -1\nimage_height: 480\ncamera_matrix: [1, 0, 0, 0, 1, 0, 0, 0, 1]\n',
     'positive integer'),
    ('image_width: [640\n', 'not valid YAML'),
])
def test_bad_calibration_files_name_the_problem(tmp_path, text, fragment):
    path = tmp_path / 'cam.yaml'
    path.write_text(text)
    with pytest.raises(CalibrationFileError, match='cam.yaml') as err:
        load_camera_info_yaml(path)
    assert fragment in str(err.value)
    with pytest.raises(CalibrationFileError, match='no such camera calibration file'):
        load_camera_info_yaml(tmp_path / 'missing.yaml')


def test_camera_info_messages_and_topic_names():
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    msg = types['sensor_msgs/msg/CameraInfo'](
        header=types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id='cam'),
        height=480, width=640, distortion_model='rational_polynomial',
        d=np.array([0.1, 0.01, 0, 0, 0, 0.05, 0.0, 0.0]), k=np.array(K), r=np.eye(3).ravel(),
        p=np.array(P), binning_x=2, binning_y=2,
        roi=types['sensor_msgs/msg/RegionOfInterest'](x_offset=10, y_offset=20, height=400,
                                                      width=600, do_rectify=False))
    calibration = calibration_from_message(msg)
    assert calibration.roi == (10, 20, 600, 400) and calibration.binning_x == 2
    assert calibration.image_size() == (200, 300)
    assert calibration.resolve('raw').camera.distortion_model == 'rational_polynomial'
    assert camera_mode_for_topic('/front/image_rect_color') == 'rectified'
    assert camera_mode_for_topic('/front/image_rect/compressed') == 'rectified'
    assert camera_mode_for_topic('/front/image_raw') == 'raw'
    assert camera_mode_for_topic('/rectifier/image') == 'raw'


def test_evaluation_uses_the_datasets_lens_the_bags_camera_info_or_the_given_camera():
    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.results import CameraIntrinsics
    from romp_ros.data.dataset_format import CameraLabel
    from romp_ros.evaluation.runner import PredictionSource, _CameraChoice

    config = EstimatorConfig()
    label = CameraLabel(width=640, height=480, k=(400.0, 402.0, 322.0, 238.0),
                        distortion_model='plumb_bob', d=D)
    own = _CameraChoice(PredictionSource('model', estimator=config))
    camera = own.for_label(label, 240, 320)  # the dataset stores half-size images
    assert camera.d == D and camera.k == (200.0, 201.0, 161.0, 119.0)
    calibration = CameraCalibration(640, 480, K, 'plumb_bob', D, p=P)
    assert own.for_calibration(calibration, 480, 640, '/cam/image_raw').d == D
    rect = own.for_calibration(calibration, 480, 640, '/cam/image_rect')
    assert rect.k == (380.0, 381.0, 318.0, 241.0) and not rect.is_distorted
    assert own.for_calibration(calibration, 512, 512, '/cam/image_raw') is None  # a crop
    assert own.for_calibration(None, 480, 640) is None
    pinhole = CameraIntrinsics(500.0, 500.0, 320.0, 240.0)
    given = _CameraChoice(PredictionSource('model', estimator=config, camera=pinhole))
    assert given.for_label(label, 480, 640) is pinhole
    assert given.for_calibration(calibration, 480, 640, '/cam/image_raw') is pinhole
    forced = _CameraChoice(PredictionSource('model', estimator=config, camera=calibration,
                                            camera_model='rectified'))
    assert forced.for_label(label, 480, 640).k == (380.0, 381.0, 318.0, 241.0)
    with pytest.raises(ValueError, match='camera_model'):
        PredictionSource('model', estimator=config, camera_model='fisheye')
