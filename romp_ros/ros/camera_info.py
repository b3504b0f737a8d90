"""The latest valid camera intrinsics per image frame_id, from sensor_msgs/CameraInfo.

A CameraInfo whose K has a zero, negative or non-finite focal length (an uncalibrated driver
publishes all zeros) or a non-finite principal point is refused and the previous valid K of
that frame is kept. Images of a frame without a valid K use the default field of view: the
node never waits for camera_info.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import threading


@dataclass(frozen=True)
class StoredIntrinsics:
    """A valid K and the image size it was calibrated for (0 when the message left it out)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def for_image(self, height: int, width: int) -> tuple[tuple[float, float, float, float],
                                                          bool]:
        """(fx, fy, cx, cy) for an image of this size, and whether K had to be rescaled.

        A K calibrated at another resolution (e.g. the full sensor while the image was
        downscaled) is scaled by the width and height ratios.
        """
        if not self.width or not self.height or (self.width, self.height) == (width, height):
            return (self.fx, self.fy, self.cx, self.cy), False
        sx, sy = width / self.width, height / self.height
        return (self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy), True


def intrinsics_problem(k) -> str:
    """'' when the 9 row-major K values are usable, else what is wrong with them."""
    values = [float(v) for v in k]
    if len(values) != 9:
        return f'K has {len(values)} values, expected 9'
    fx, cx, fy, cy = values[0], values[2], values[4], values[5]
    if not all(math.isfinite(v) for v in values):
        return 'K contains NaN or infinite values'
    if fx <= 0.0 or fy <= 0.0:
        return f'K has focal lengths fx={fx:g}, fy={fy:g}; they must be positive (uncalibrated?)'
    if not (math.isfinite(cx) and math.isfinite(cy)):
        return 'K has a non-finite principal point'
    return ''


class IntrinsicsStore:
    """Thread-safe map frame_id -> latest valid :class:`StoredIntrinsics`."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._by_frame: dict[str, StoredIntrinsics] = {}

    def update(self, frame_id: str, k, width: int, height: int) -> str:
        """Store the K of a CameraInfo; return '' when stored, else why it was refused."""
        problem = intrinsics_problem(k)
        if problem:
            return problem
        values = [float(v) for v in k]
        stored = StoredIntrinsics(fx=values[0], fy=values[4], cx=values[2], cy=values[5],
                                  width=int(width), height=int(height))
        with self._lock:
            self._by_frame[frame_id] = stored
        return ''

    def get(self, frame_id: str) -> StoredIntrinsics | None:
        """The latest valid intrinsics of ``frame_id``, or None."""
        with self._lock:
            return self._by_frame.get(frame_id)

    def clear(self) -> None:
        """Forget everything (cleanup)."""
        with self._lock:
            self._by_frame.clear()
