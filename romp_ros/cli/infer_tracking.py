"""Tracking for ``romp-ros infer --track``: one tracker across the frames of each input stream.

Frames arrive in input order (see :mod:`romp_ros.input_sources`). Each stream (a video, a bag
topic, or the image files taken together) is one sequence: the tracker restarts when the
stream changes, and ids keep counting up, so an id never names two people in one output file.
Time comes from the frames (bag header stamps, video positions); frames without one (image
files, videos of unknown frame rate) are spaced ``1 / fps`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

from romp_ros.core.results import FrameResult
from romp_ros.core.tracking import FrameTracker, TrackedFrame, TrackerConfig

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamTiming:
    """How stamps are assigned when a frame carries none.

    Attributes:
        fps: frames per second assumed between frames without a stamp (> 0).
    """

    fps: float = 30.0

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f'--fps must be > 0, got {self.fps}')


class StreamTracker:
    """A :class:`FrameTracker` that follows the input streams of ``infer``."""

    def __init__(self, config: TrackerConfig, timing: StreamTiming = StreamTiming(),
                 repose=None) -> None:
        """``repose``: ``Estimator.pose_bodies`` for smoothed meshes, or None."""
        self._tracker = FrameTracker(config, repose=repose)
        self._timing = timing
        self._stream: str | None = None
        self._index = 0  # frame index within the current stream

    def update(self, frame, result: FrameResult) -> TrackedFrame:
        """Track one frame (an ``input_sources.Frame``) with its estimate."""
        if frame.stream != self._stream:
            if self._stream is not None:
                LOG.info('new input stream %s: tracks restart', frame.stream)
                self._tracker.reset()
            self._stream = frame.stream
            self._index = 0
        if frame.stamp_ns is not None:
            stamp_s = frame.stamp_ns * 1e-9
        else:
            stamp_s = self._index / self._timing.fps
        self._index += 1
        return self._tracker.update(result, stamp_s)
