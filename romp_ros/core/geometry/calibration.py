"""A whole ``sensor_msgs/CameraInfo`` (or a ROS calibration YAML) -> the camera of the images.

``CameraInfo`` describes the full-resolution sensor: K and D for the raw (distorted) image, R and
P for the rectified one, plus binning and a region of interest (ROI) when the driver delivers a
reduced image. Which camera an image needs (:meth:`CameraCalibration.resolve`):

* ``raw`` images (``image_raw``, ``image_color``, ...): K with the lens (``distortion_model``,
  D);
* ``rectified`` images (``image_rect``, ``image_rect_color``, the output of image_proc): the
  left 3 x 3 of P, no lens. P's fourth column (a stereo baseline) and R are not applied: the
  results are in the frame of the image's ``header.frame_id`` (R is the identity for
  monocular cameras);
* ROI and binning, as ``image_geometry.PinholeCameraModel`` applies them to K and P: the
  principal point moves by the ROI offset (full-resolution pixels), then focal lengths and
  principal point are divided by the binning factors. The image is then
  ``roi.width / binning_x`` by ``roi.height / binning_y`` pixels (the full size when the ROI
  is empty); the lens coefficients act on normalised coordinates and stay as they are.

A distortion model this package does not know, or coefficients that do not fit the model, do
not stop anything: the camera falls back to its pinhole part and the reason is returned as a
warning, for the caller to log.

:func:`load_camera_info_yaml` reads the calibration files written by ``camera_calibration`` /
``camera_info_manager`` (keys ``image_width``, ``image_height``, ``camera_matrix``,
``distortion_model``, ``distortion_coefficients``, ``rectification_matrix``,
``projection_matrix``).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError

LOG = logging.getLogger(__name__)

CAMERA_MODES = ('raw', 'rectified')
_IDENTITY_3X3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# A rectification R this far from the identity (max abs entry difference) is a stereo pair's.
_R_TOLERANCE = 1e-6
# Image sizes whose aspect ratios differ by less than this are a pure rescale of each other.
_ASPECT_TOLERANCE = 0.01


class CalibrationFileError(CameraModelError):
    """A camera calibration file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class ResolvedCamera:
    """The camera of an image, and what the caller should warn about.

    Attributes:
        camera: the camera (K, lens) in pixels of the delivered image.
        warnings: human-readable problems that were worked around (empty when none).
    """

    camera: CameraModel
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CameraCalibration:
    """The fields of a ``sensor_msgs/CameraInfo``.

    Attributes:
        width, height: full-resolution image size, pixels (0: unknown).
        k: the 9 row-major values of K.
        distortion_model: the CameraInfo string ('' = none).
        d: the distortion coefficients.
        r: the 9 row-major values of R (rectification rotation).
        p: the 12 row-major values of P (rectified projection); all zero = not given.
        binning_x, binning_y: binning factors (0 and 1 both mean none).
        roi: (x_offset, y_offset, width, height) in full-resolution pixels; zero width or
            height = the full image.
    """

    width: int
    height: int
    k: tuple[float, ...]
    distortion_model: str = ''
    d: tuple[float, ...] = ()
    r: tuple[float, ...] = _IDENTITY_3X3
    p: tuple[float, ...] = (0.0,) * 12
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        for name, count in (('k', 9), ('r', 9), ('p', 12)):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != count:
                raise CameraModelError(f'camera {name.upper()} has {len(values)} values, '
                                       f'expected {count}')
            if not all(math.isfinite(v) for v in values):
                raise CameraModelError(f'camera {name.upper()} contains NaN or infinite values')
            object.__setattr__(self, name, values)
        object.__setattr__(self, 'd', tuple(float(v) for v in self.d))
        object.__setattr__(self, 'distortion_model', str(self.distortion_model or ''))
        if int(self.width) < 0 or int(self.height) < 0:
            raise CameraModelError(f'camera size {self.width}x{self.height} is negative')
        if int(self.binning_x) < 0 or int(self.binning_y) < 0:
            raise CameraModelError(f'binning ({self.binning_x}, {self.binning_y}) is negative')
        roi = tuple(int(v) for v in self.roi)
        if len(roi) != 4 or min(roi) < 0:
            raise CameraModelError(f'ROI {self.roi!r} must be 4 non-negative integers '
                                   '(x_offset, y_offset, width, height)')
        for name in ('width', 'height', 'binning_x', 'binning_y'):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, 'roi', roi)

    @property
    def has_projection(self) -> bool:
        """Whether P was given (a non-zero focal length in it)."""
        return self.p[0] > 0.0 and self.p[5] > 0.0

    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images this CameraInfo describes.

        ROI and binning applied; zeros when the message gives no size.
        """
        _, _, roi_w, roi_h = self.roi
        bx, by = max(self.binning_x, 1), max(self.binning_y, 1)
        full_w = roi_w if roi_w and roi_h else self.width
        full_h = roi_h if roi_w and roi_h else self.height
        return full_h // by, full_w // bx

    def resolve(self, mode: str = 'raw') -> ResolvedCamera:
        """The camera of the delivered images (see the module docstring).

        Args:
            mode: 'raw' (K and the lens) or 'rectified' (P, no lens).

        Returns:
            :class:`ResolvedCamera`; its ``camera`` has the size of :meth:`image_size` (or
            1 x 1 when the message gives none).

        Raises:
            CameraModelError: an unknown mode, or a K (raw) / K and P (rectified) without
                positive focal lengths, i.e. an uncalibrated camera.
        """
        if mode not in CAMERA_MODES:
            raise CameraModelError(f'camera mode {mode!r} is invalid; choose one of '
                                   f'{list(CAMERA_MODES)}')
        warnings: list[str] = []
        k_fx, k_fy = self.k[0], self.k[4]
        if abs(self.k[1]) > 1e-9 * max(abs(k_fx), 1.0):
            warnings.append(f'K has skew {self.k[1]:g}; it is ignored')
        if mode == 'rectified' and self.has_projection:
            fx, fy, cx, cy = self.p[0], self.p[5], self.p[2], self.p[6]
            if max(abs(a - b) for a, b in zip(self.r, _IDENTITY_3X3, strict=True)) > _R_TOLERANCE:
                warnings.append('R is not the identity (a stereo pair): results are in the '
                                'rectified camera frame, which R rotates away from the '
                                "image's frame_id")
            model, coefficients = 'none', ()
        else:
            if mode == 'rectified':
                warnings.append('camera_model is rectified but P is empty: using K without '
                                'the lens')
            fx, fy, cx, cy = k_fx, k_fy, self.k[2], self.k[5]
            model, coefficients = (self.distortion_model, self.d) if mode == 'raw' \
                else ('none', ())
        if not (fx > 0.0 and fy > 0.0):
            raise CameraModelError(
                f'focal lengths fx={fx:g}, fy={fy:g} must be positive (an all-zero K means '
                'the camera is not calibrated)')
        x_off, y_off, _, _ = self.roi
        cx, cy = cx - x_off, cy - y_off
        bx, by = max(self.binning_x, 1), max(self.binning_y, 1)
        fx, cx, fy, cy = fx / bx, cx / bx, fy / by, cy / by
        height, width = self.image_size()
        size = (width or 1, height or 1)
        if not any(coefficients) and model in ('', 'plumb_bob', 'rational_polynomial'):
            model, coefficients = 'none', ()
        try:
            camera = CameraModel(size[0], size[1], (fx, fy, cx, cy), model or 'none',
                                 coefficients)
        except CameraModelError as err:
            warnings.append(f'{err}; the lens is ignored (pinhole K only), so people towards '
                            'the image edges are placed less accurately')
            camera = CameraModel(size[0], size[1], (fx, fy, cx, cy))
        return ResolvedCamera(camera=camera, warnings=tuple(warnings))


def image_camera(calibration: CameraCalibration, height: int, width: int,
                 mode: str = 'raw') -> tuple[CameraModel, tuple[str, ...]]:
    """The camera of an image of (height, width) from a calibration, and warnings.

    :meth:`CameraCalibration.resolve` then :func:`fit_to_image`; a rescale is reported in
    the warnings.

    Raises:
        CameraModelError: see both.
    """
    resolved = calibration.resolve(mode)
    camera, rescaled = fit_to_image(resolved.camera, height, width)
    warnings = resolved.warnings
    if rescaled:
        warnings += (f'the calibration is for {resolved.camera.width}x{resolved.camera.height} '
                     f'images, the image is {width}x{height}: K is scaled',)
    return camera, warnings


def calibration_from_message(msg: Any) -> CameraCalibration:
    """The :class:`CameraCalibration` of a ``sensor_msgs/CameraInfo`` object.

    Any object with the message's field names works (rclpy messages, rosbags' dataclasses);
    nothing of ROS is imported. ``binning_x``, ``binning_y`` and ``roi`` are optional.

    Raises:
        CameraModelError: matrices of the wrong size or with NaN / infinite values.
    """
    roi = getattr(msg, 'roi', None)
    roi_values = ((int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
                  if roi is not None else (0, 0, 0, 0))
    return CameraCalibration(
        width=int(msg.width), height=int(msg.height), k=tuple(float(v) for v in msg.k),
        distortion_model=str(msg.distortion_model), d=tuple(float(v) for v in msg.d),
        r=tuple(float(v) for v in msg.r), p=tuple(float(v) for v in msg.p),
        binning_x=int(getattr(msg, 'binning_x', 0)), binning_y=int(getattr(msg, 'binning_y', 0)),
        roi=roi_values)


def camera_mode_for_topic(topic: str) -> str:
    """The images a topic carries: 'rectified' or 'raw'.

    'rectified' for the names image_proc gives rectified images (``image_rect``,
    ``image_rect_color``, also inside a namespace or with a transport suffix), else 'raw'.
    """
    parts = [part for part in topic.split('/') if part]
    return 'rectified' if any(part.startswith('image_rect') for part in parts) else 'raw'


class StreamCameras:
    """The camera of each image of recorded streams (bags, datasets), from their calibrations.

    Replays must not stop at one bad calibration: one that cannot serve an image gives None
    (the caller's default field of view) and a warning. Each distinct warning is logged once,
    not once per frame.

    Args:
        mode: 'raw' or 'rectified' for every stream; '' decides per topic
            (:func:`camera_mode_for_topic`).
    """

    def __init__(self, mode: str = '') -> None:
        if mode not in ('',) + CAMERA_MODES:
            raise ValueError(f'mode={mode!r}; choose one of {CAMERA_MODES}, or "" (per topic)')
        self._mode = mode
        self._said: set[str] = set()

    def for_image(self, calibration: CameraCalibration, height: int, width: int,
                  topic: str = '') -> CameraModel | None:
        """The camera of an image of (height, width) on ``topic``; None where unusable."""
        mode = self._mode or camera_mode_for_topic(topic)
        name = topic or 'camera'
        try:
            camera, warnings = image_camera(calibration, height, width, mode)
        except CameraModelError as err:
            self.warn_once(f'{name}: not usable for {width}x{height} images ({err}); the '
                           'default field of view is assumed')
            return None
        for text in warnings:
            self.warn_once(f'{name}: {text}')
        return camera

    def warn_once(self, text: str) -> None:
        """Log ``text`` as a warning unless it was logged already."""
        if text not in self._said:
            self._said.add(text)
            LOG.warning('%s', text)


def fit_to_image(camera: CameraModel, height: int, width: int) -> tuple[CameraModel, bool]:
    """The camera for an image of (height, width), rescaled when the image is resized.

    Returns the camera itself when it has the image's size, else a copy for an image that is
    a resized version of what the camera was calibrated for.

    K scales with the width and height ratios; the lens coefficients act on normalised
    coordinates and do not change.

    Returns:
        (camera, rescaled).

    Raises:
        CameraModelError: the aspect ratios differ by more than 1 % (a crop or another
            camera, not a resize): the calibration cannot be mapped onto the image.
    """
    if (camera.width, camera.height) == (width, height):
        return camera, False
    if camera.width <= 1 and camera.height <= 1:  # the calibration gave no size
        return CameraModel(width, height, camera.k, camera.distortion_model, camera.d), False
    sx, sy = width / camera.width, height / camera.height
    if abs(sx / sy - 1.0) > _ASPECT_TOLERANCE:
        raise CameraModelError(
            f'the camera is calibrated for {camera.width}x{camera.height} images but the image '
            f'is {width}x{height}, of another aspect ratio; use the calibration of this '
            'resolution (a crop needs its ROI)')
    fx, fy, cx, cy = camera.k
    return CameraModel(width, height, (fx * sx, fy * sy, cx * sx, cy * sy),
                       camera.distortion_model, camera.d), True


def load_camera_info_yaml(path: str | Path) -> CameraCalibration:
    """Read a ROS camera calibration YAML (camera_calibration / camera_info_manager format).

    Required keys: ``image_width``, ``image_height``, ``camera_matrix``. Optional:
    ``distortion_model`` (default plumb_bob when coefficients are given),
    ``distortion_coefficients``, ``rectification_matrix`` (identity), ``projection_matrix``
    (none). Matrices are ``{rows: R, cols: C, data: [R*C numbers]}``.

    Raises:
        CalibrationFileError: a missing or unreadable file, not YAML, an OpenCV FileStorage
            file, a missing key, or a matrix of the wrong size.
    """
    import yaml
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError as err:
        raise CalibrationFileError(f'{path}: no such camera calibration file') from err
    except (OSError, UnicodeDecodeError) as err:
        raise CalibrationFileError(f'{path}: cannot read the camera calibration ({err})') \
            from err
    if text.lstrip().startswith('%YAML:1.0'):
        raise CalibrationFileError(
            f'{path}: this is an OpenCV FileStorage file, not a ROS camera calibration; '
            'write one with camera_calibration (or copy K and D into the ROS layout: '
            'image_width, image_height, camera_matrix, distortion_model, '
            'distortion_coefficients, projection_matrix)')
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CalibrationFileError(f'{path}: not valid YAML ({err})') from err
    if not isinstance(data, Mapping):
        raise CalibrationFileError(f'{path}: expected a mapping with image_width, image_height '
                                   'and camera_matrix (a ROS camera calibration file)')
    try:
        return calibration_from_mapping(data)
    except CameraModelError as err:
        raise CalibrationFileError(f'{path}: {err}') from err


def calibration_from_mapping(data: Mapping[str, Any]) -> CameraCalibration:
    """:func:`load_camera_info_yaml` on an already parsed mapping (CameraModelError)."""
    missing = [key for key in ('image_width', 'image_height', 'camera_matrix')
               if key not in data]
    if missing:
        raise CameraModelError(f'missing key(s) {missing}; a ROS camera calibration has '
                               'image_width, image_height, camera_matrix, distortion_model, '
                               'distortion_coefficients, rectification_matrix and '
                               'projection_matrix')
    width, height = _integer(data, 'image_width'), _integer(data, 'image_height')
    k = _matrix(data, 'camera_matrix', 3, 3)
    d = _matrix(data, 'distortion_coefficients', 1, None) if 'distortion_coefficients' in data \
        else ()
    model = data.get('distortion_model')
    if model is None:
        model = 'plumb_bob' if any(d) else ''
    if not isinstance(model, str):
        raise CameraModelError(f'distortion_model must be a string, got {model!r}')
    r = _matrix(data, 'rectification_matrix', 3, 3) if 'rectification_matrix' in data \
        else _IDENTITY_3X3
    p = _matrix(data, 'projection_matrix', 3, 4) if 'projection_matrix' in data \
        else (0.0,) * 12
    return CameraCalibration(width=width, height=height, k=k, distortion_model=model, d=d,
                             r=r, p=p)


def _integer(data: Mapping[str, Any], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CameraModelError(f'{key} must be a positive integer, got {value!r}')
    return value


def _matrix(data: Mapping[str, Any], key: str, rows: int, cols: int | None
            ) -> tuple[float, ...]:
    """The data of a ``{rows, cols, data}`` matrix entry, checked against its shape."""
    entry = data[key]
    if isinstance(entry, Mapping):
        values = entry.get('data')
        declared = (entry.get('rows'), entry.get('cols'))
    else:
        values, declared = entry, (None, None)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise CameraModelError(f'{key} must be {{rows, cols, data: [numbers]}}, got {entry!r}')
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise CameraModelError(f'{key} data must be numbers, got {values!r}') from err
    if declared[0] is not None and declared[1] is not None \
            and declared[0] * declared[1] != len(numbers):
        raise CameraModelError(f'{key} declares {declared[0]}x{declared[1]} but holds '
                               f'{len(numbers)} values')
    if cols is not None and len(numbers) != rows * cols:
        raise CameraModelError(f'{key} must hold {rows}x{cols} = {rows * cols} values, got '
                               f'{len(numbers)}')
    return numbers
