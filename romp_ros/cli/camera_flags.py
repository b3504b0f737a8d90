"""The camera flags of the sub-commands that run a model: --intrinsics, --camera-info, --fov.

``--intrinsics FX,FY,CX,CY`` gives a pinhole K (undistorted or rectified images);
``--camera-info FILE.yaml`` a ROS camera calibration (K, D, P; ``--camera-model`` says whether
the images are raw or rectified, docs/geometry.md). Either applies to every input frame and
wins over a bag's or dataset's own camera.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy-backed: imported where used, so `romp-ros --help` needs no numpy
    from romp_ros.core.geometry.calibration import CameraCalibration
    from romp_ros.core.geometry.camera_model import CameraModel
    from romp_ros.core.results import CameraIntrinsics

LOG = logging.getLogger(__name__)

# romp_ros.core.geometry.calibration.CAMERA_MODES (test/test_cli.py checks they agree)
CAMERA_MODES = ('raw', 'rectified')


def add_camera_flags(group) -> None:
    """Add --intrinsics and --camera-info to ``group`` (a mutually exclusive group)."""
    group.add_argument('--intrinsics', default=None, metavar='FX,FY,CX,CY',
                       help='pinhole camera intrinsics in pixels of the input images (for '
                            'undistorted or rectified images); translations are solved with '
                            'this K')
    group.add_argument('--camera-info', default=None, metavar='FILE.yaml',
                       help='a ROS camera calibration YAML (camera_calibration / '
                            'camera_info_manager): K and the lens for raw images, P for '
                            "rectified ones (--camera-model); rescaled to the images' size")


def add_camera_model_flag(parser: argparse.ArgumentParser) -> None:
    """Add --camera-model."""
    parser.add_argument('--camera-model', choices=CAMERA_MODES, default=None,
                        help="what the images are, for --camera-info and bags' CameraInfo: "
                             "'raw' (distorted, as the camera delivers them: K and D) or "
                             "'rectified' (image_rect: P). Default: raw for --camera-info; "
                             'for bags, rectified when the image topic is an image_rect one')


@dataclass
class FixedCamera:
    """The camera of --intrinsics or --camera-info, for frames of any size.

    Attributes:
        intrinsics: --intrinsics, or None.
        calibration: --camera-info, or None.
        mode: 'raw' or 'rectified' (for ``calibration``).
    """

    intrinsics: CameraIntrinsics | None = None
    calibration: CameraCalibration | None = None
    mode: str = 'raw'
    _said: set = field(default_factory=set)

    @property
    def given(self) -> bool:
        """Whether a camera was given at all."""
        return self.intrinsics is not None or self.calibration is not None

    def for_image(self, height: int, width: int) -> CameraIntrinsics | CameraModel | None:
        """The camera for a frame of (height, width) (None when no camera was given).

        Raises:
            CameraModelError: the calibration does not fit the frame (another aspect ratio).
        """
        if self.intrinsics is not None:
            return self.intrinsics
        if self.calibration is None:
            return None
        from romp_ros.core.geometry.calibration import image_camera
        camera, warnings = image_camera(self.calibration, height, width, self.mode)
        for text in warnings:
            if text not in self._said:  # once per distinct message
                self._said.add(text)
                LOG.warning('--camera-info: %s', text)
        return camera


def fixed_camera(args: argparse.Namespace) -> FixedCamera:
    """The :class:`FixedCamera` of the parsed flags.

    Raises:
        IntrinsicsError: a malformed --intrinsics.
        CalibrationFileError: an unreadable or malformed --camera-info file.
    """
    from romp_ros.core.geometry.calibration import load_camera_info_yaml
    from romp_ros.core.geometry.intrinsics import parse_intrinsics_arg
    if args.intrinsics:
        return FixedCamera(intrinsics=parse_intrinsics_arg(args.intrinsics))
    if args.camera_info:
        calibration = load_camera_info_yaml(args.camera_info)
        camera = FixedCamera(calibration=calibration, mode=args.camera_model or 'raw')
        camera.calibration.resolve(camera.mode)  # an uncalibrated file fails here, once
        return camera
    return FixedCamera()
