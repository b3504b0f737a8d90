"""RViz markers and the overlay image, built on their own thread.

A full-resolution mesh marker is about 41 k ``geometry_msgs/Point`` objects per person, which
rclpy builds and serialises in Python (tens of milliseconds per person); the overlay draws
every triangle. Doing that on the inference thread would slow people and TF down whenever RViz
is open, so the inference worker hands each frame's result to this worker through a one-slot,
latest-wins buffer: visualisation runs at the rate it can, never holds up inference, and drops
stale frames (counted) rather than queueing them.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any, Callable

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from romp_ros.core.results import FrameResult
from romp_ros.ros import conversions
from romp_ros.ros.frame_buffer import LatestSlot
from romp_ros.ros.person_ids import Identities


@dataclass(frozen=True)
class VisualizationJob:
    """One frame to visualise.

    Attributes:
        result: the estimator's result (vertices in body frame, see FrameResult).
        identities: person ids (colours, marker ids).
        header: the image header.
        pixels: the decoded image (H, W, 3) for the overlay, or None for markers only.
        color_order: 'rgb' or 'bgr', the order of ``pixels``.
        markers: build the MarkerArray.
        mesh: include the mesh in the markers.
    """

    result: FrameResult
    identities: Identities
    header: Header
    pixels: np.ndarray | None
    color_order: str
    markers: bool
    mesh: bool


class VisualizationWorker:
    """Publishes markers and overlays for the newest submitted frame on a daemon thread."""

    def __init__(self, markers_pub: Any, overlay_pub: Any, faces: np.ndarray,
                 warn: Callable[[str, str], None]) -> None:
        """Start the thread; ``warn(key, text)`` reports a throttled warning."""
        self._markers_pub = markers_pub
        self._overlay_pub = overlay_pub
        self._faces = faces
        self._warn = warn
        self._state = conversions.MarkerPublisherState()
        self._slot: LatestSlot[VisualizationJob] = LatestSlot()
        self._stop = threading.Event()
        self._last_frame_id = ''
        self._thread = threading.Thread(target=self._run, name='romp_visualization',
                                        daemon=True)
        self._thread.start()

    def submit(self, job: VisualizationJob) -> None:
        """Queue ``job``, replacing a frame that was not visualised yet."""
        self._slot.put(job)

    @property
    def dropped(self) -> int:
        """Frames replaced before they were visualised."""
        return self._slot.counters().dropped

    def stop(self, timeout: float, clear_markers: bool = True) -> bool:
        """Stop the thread (True when it ended in time); optionally DELETEALL the markers."""
        self._stop.set()
        self._slot.close()
        self._thread.join(timeout)
        if clear_markers:
            self._markers_pub.publish(self._state.clear(Header(frame_id=self._last_frame_id)))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._slot.take(timeout=0.2)
            if job is None:
                continue
            try:
                self._visualise(job)
            except Exception as err:  # a drawing bug must not end visualisation for good
                self._warn(f'visualization:{type(err).__name__}',
                           f'visualization failed: {type(err).__name__}: {err}')

    def _visualise(self, job: VisualizationJob) -> None:
        self._last_frame_id = job.header.frame_id
        if job.markers:
            array = self._state.markers(job.result, job.header, job.identities,
                                        self._faces if job.mesh else None)
            if array.markers and not self._stop.is_set():  # nothing to add or delete: skip
                self._markers_pub.publish(array)
        if job.pixels is not None:
            self._publish_overlay(job)

    def _publish_overlay(self, job: VisualizationJob) -> None:
        try:
            from romp_ros.ros.overlay import draw_overlay
            canvas = draw_overlay(job.pixels, job.result, job.identities.ids, self._faces,
                                  job.color_order)
        except ImportError as err:
            self._warn('overlay_import', f'overlay disabled: {err} (install OpenCV)')
            return
        height, width = canvas.shape[:2]
        msg = Image(header=conversions.copy_header(job.header), height=height, width=width,
                    encoding='rgb8' if job.color_order == 'rgb' else 'bgr8', is_bigendian=0,
                    step=width * 3)
        msg.data = canvas.tobytes()
        if not self._stop.is_set():
            self._overlay_pub.publish(msg)
