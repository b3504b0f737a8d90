"""RViz markers and the overlay image, built on their own thread.

A full-resolution mesh marker is about 41 k ``geometry_msgs/Point`` objects per person, which
rclpy builds and serialises in Python (tens of milliseconds per person); the overlay draws
every triangle. Doing that on the inference thread would slow people and TF down whenever RViz
is open, so the inference worker hands each frame's result to this worker through a one-slot,
latest-wins buffer: visualisation runs at the rate it can, never holds up inference, and drops
stale frames (counted) rather than queueing them.

With a bird's-eye publisher, each visualised frame also becomes a top-down picture of the
people around the camera (``romp_ros.core.render.draw_birds_eye``), with trails per person
id (docs/visualization.md).
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Any, Callable

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from romp_ros.core.render import BirdsEyeConfig, BirdsEyePeople, TrailKeeper, draw_birds_eye
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
        birds_eye: draw and publish the bird's-eye view (needs a bird's-eye publisher).
    """

    result: FrameResult
    identities: Identities
    header: Header
    pixels: np.ndarray | None
    color_order: str
    markers: bool
    mesh: bool
    birds_eye: bool = False


class VisualizationWorker:
    """Publishes markers and overlays for the newest submitted frame on a daemon thread."""

    def __init__(self, markers_pub: Any, overlay_pub: Any, faces: np.ndarray,
                 warn: Callable[[str, str], None], birds_eye_pub: Any = None,
                 birds_eye_config: BirdsEyeConfig | None = None) -> None:
        """Start the thread; ``warn(key, text)`` reports a throttled warning.

        ``birds_eye_pub``: a sensor_msgs/Image publisher for the bird's-eye view, or None;
        ``birds_eye_config``: its size and scale (None: the default 480 x 480, 12 m).
        """
        self._markers_pub = markers_pub
        self._overlay_pub = overlay_pub
        self._birds_eye_pub = birds_eye_pub
        self._birds_eye_config = birds_eye_config or BirdsEyeConfig()
        self._trails = TrailKeeper()
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

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a stopped worker's last frame; True when it ended."""
        self._thread.join(timeout)
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
        if self._birds_eye_pub is not None:
            self._publish_birds_eye(job)

    def _publish_birds_eye(self, job: VisualizationJob) -> None:
        # trails follow every visualised frame, the picture only when someone wants it
        people = BirdsEyePeople.from_result(job.result, job.identities.ids)
        stamp_s = job.header.stamp.sec + job.header.stamp.nanosec * 1e-9
        self._trails.update(people.ids, people.positions, stamp_s)
        if not job.birds_eye:
            return
        try:
            picture = draw_birds_eye(people, self._birds_eye_config,
                                     intrinsics=job.result.intrinsics,
                                     image_width=job.result.image_size[1],
                                     trails=self._trails.trails())
        except ImportError as err:
            self._warn('birds_eye_import', f"bird's-eye view disabled: {err} (install OpenCV)")
            return
        height, width = picture.shape[:2]
        msg = Image(header=conversions.copy_header(job.header), height=height, width=width,
                    encoding='rgb8', is_bigendian=0, step=width * 3)
        msg.data = picture.tobytes()
        if not self._stop.is_set():
            self._birds_eye_pub.publish(msg)

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
