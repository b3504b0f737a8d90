"""The latest valid camera per image frame_id, from sensor_msgs/CameraInfo: the whole camera.

Everything the message says is kept (K, D, distortion model, R, P, binning, ROI), and each image
gets the camera of its kind (:meth:`CameraInfoStore.camera_for_image`): raw images K and the
lens, rectified ones P (the node's ``camera_model`` parameter; the rules are in
:mod:`romp_ros.core.geometry.calibration`).

A CameraInfo that describes no usable camera (an uncalibrated driver publishes K = 0; NaN values;
matrices of the wrong size) is refused and the previous valid one of that frame is kept. Images
of a frame without a valid CameraInfo use the default field of view: the node never waits for
camera_info. Problems that can be worked around (an unknown distortion model: the pinhole part
is used) are returned as warnings for the node to log, throttled.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any

from romp_ros.core.geometry.calibration import (
    CameraCalibration,
    calibration_from_message,
    fit_to_image,
)
from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError


@dataclass(frozen=True)
class ImageCamera:
    """The camera of one image.

    Attributes:
        camera: K and lens in pixels of the image.
        warnings: problems worked around (unknown lens, empty P, stereo R), for the log.
        rescaled: True when the CameraInfo was for another resolution of the same aspect ratio
            and K was scaled to the image.
    """

    camera: CameraModel
    warnings: tuple[str, ...] = ()
    rescaled: bool = False


class CameraInfoStore:
    """Thread-safe map frame_id -> latest valid :class:`CameraCalibration`."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._by_frame: dict[str, CameraCalibration] = {}

    def update(self, msg: Any, mode: str = 'raw') -> str:
        """Store a CameraInfo message; return '' when stored, else why it was refused.

        Args:
            msg: the ``sensor_msgs/CameraInfo``.
            mode: 'raw' or 'rectified': the camera the images need (checked to be usable).
        """
        try:
            calibration = calibration_from_message(msg)
            calibration.resolve(mode)
        except CameraModelError as err:
            return str(err)
        with self._lock:
            self._by_frame[msg.header.frame_id] = calibration
        return ''

    def get(self, frame_id: str) -> CameraCalibration | None:
        """The latest valid calibration of ``frame_id``, or None."""
        with self._lock:
            return self._by_frame.get(frame_id)

    def camera_for_image(self, frame_id: str, height: int, width: int,
                         mode: str = 'raw') -> ImageCamera | None:
        """The camera of an image of ``frame_id`` and size (height, width), or None.

        None when no valid CameraInfo of that frame arrived yet.

        Raises:
            CameraModelError: the stored calibration cannot describe this image (another
                aspect ratio, or no camera in ``mode``).
        """
        calibration = self.get(frame_id)
        if calibration is None:
            return None
        resolved = calibration.resolve(mode)
        camera, rescaled = fit_to_image(resolved.camera, height, width)
        return ImageCamera(camera=camera, warnings=resolved.warnings, rescaled=rescaled)

    def clear(self) -> None:
        """Forget everything (cleanup)."""
        with self._lock:
            self._by_frame.clear()
