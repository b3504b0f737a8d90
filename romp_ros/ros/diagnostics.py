"""Runtime statistics of the node, its /diagnostics status, and throttled warnings.

Diagnostic keys (``DiagnosticStatus.values``), all over the last ``WINDOW_S`` seconds unless
"total" is said:

==========================  ========================================================
``rate_hz``                 frames processed per second
``input_rate_hz``           frames received per second
``processing_ms``           mean decode + inference + publishing time per frame
``processing_ms_max``       its maximum
``latency_ms``              mean time from receiving an image to publishing its people
``latency_ms_max``          its maximum (WARN above the latency_warn_ms parameter)
``people``                  people in the last processed frame
``frames_received``         total images received
``frames_processed``        total images processed
``frames_dropped``          total stale images replaced by newer ones before inference
``frames_dropped_window``   of which in the window
``frames_skipped``          total images refused (bad encoding, size, step, data)
``errors``                  total inference errors
``intrinsics``              'camera_info' or 'default_fov' for the last frame
``visualization_dropped``   total frames whose markers / overlay were skipped (the
                            visualisation thread was still busy with an older frame)
==========================  ========================================================
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import threading
import time
from typing import Callable

WINDOW_S = 5.0
STATUS_NAME = 'romp_node: people estimation'


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of :class:`NodeStats` at one time (see the module's key table)."""

    rate_hz: float
    input_rate_hz: float
    processing_ms: float
    processing_ms_max: float
    latency_ms: float
    latency_ms_max: float
    people: int
    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_dropped_window: int
    frames_skipped: int
    errors: int
    intrinsics: str


class NodeStats:
    """Counters and sliding windows updated by the callbacks and the worker (thread-safe)."""

    def __init__(self, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Start empty; ``clock`` returns seconds (monotonic)."""
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._received: deque[float] = deque()
        self._dropped: deque[float] = deque()
        self._done: deque[tuple[float, float, float]] = deque()  # (t, processing s, latency s)
        self._totals = {'received': 0, 'processed': 0, 'dropped': 0, 'skipped': 0, 'errors': 0}
        self._people = 0
        self._intrinsics = 'none'

    def frame_received(self, dropped_stale: bool) -> None:
        """An image arrived; ``dropped_stale``: it replaced one that was never processed."""
        now = self._clock()
        with self._lock:
            self._totals['received'] += 1
            self._received.append(now)
            if dropped_stale:
                self._totals['dropped'] += 1
                self._dropped.append(now)
            self._trim(now)

    def frame_skipped(self) -> None:
        """An image was refused (undecodable)."""
        with self._lock:
            self._totals['skipped'] += 1

    def error(self) -> None:
        """Inference or publishing failed for a frame."""
        with self._lock:
            self._totals['errors'] += 1

    def frame_done(self, processing_s: float, latency_s: float, people: int,
                   intrinsics: str) -> None:
        """A frame's outputs were published."""
        now = self._clock()
        with self._lock:
            self._totals['processed'] += 1
            self._done.append((now, processing_s, latency_s))
            self._people = people
            self._intrinsics = intrinsics
            self._trim(now)

    def snapshot(self) -> StatsSnapshot:
        """The current statistics."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            done = list(self._done)
            span = self._window
            proc = [d[1] * 1e3 for d in done]
            lat = [d[2] * 1e3 for d in done]
            return StatsSnapshot(
                rate_hz=len(done) / span, input_rate_hz=len(self._received) / span,
                processing_ms=sum(proc) / len(proc) if proc else 0.0,
                processing_ms_max=max(proc, default=0.0),
                latency_ms=sum(lat) / len(lat) if lat else 0.0,
                latency_ms_max=max(lat, default=0.0), people=self._people,
                frames_received=self._totals['received'],
                frames_processed=self._totals['processed'],
                frames_dropped=self._totals['dropped'],
                frames_dropped_window=len(self._dropped),
                frames_skipped=self._totals['skipped'], errors=self._totals['errors'],
                intrinsics=self._intrinsics)

    def _trim(self, now: float) -> None:
        limit = now - self._window
        for queue in (self._received, self._dropped):
            while queue and queue[0] < limit:
                queue.popleft()
        while self._done and self._done[0][0] < limit:
            self._done.popleft()


def status_level(snapshot: StatsSnapshot, latency_warn_ms: float, active: bool) -> tuple[int, str]:
    """(level, message) of the status: 0 OK, 1 WARN, 2 ERROR (DiagnosticStatus levels)."""
    if not active:
        return 0, 'inactive (lifecycle)'
    if snapshot.latency_ms_max > latency_warn_ms:
        return 1, (f'latency {snapshot.latency_ms_max:.0f} ms exceeds latency_warn_ms '
                   f'{latency_warn_ms:.0f} ms')
    if snapshot.frames_processed == 0:
        return 0, 'waiting for images'
    if snapshot.frames_dropped_window:
        return 0, (f'{snapshot.rate_hz:.1f} Hz, {snapshot.frames_dropped_window} stale frames '
                   'dropped (input faster than inference)')
    return 0, f'{snapshot.rate_hz:.1f} Hz'


def diagnostic_array(snapshot: StatsSnapshot, stamp, latency_warn_ms: float, active: bool,
                     hardware_id: str, extra: dict[str, str] | None = None):
    """The /diagnostics message (diagnostic_msgs/DiagnosticArray) of ``snapshot``.

    ``extra`` adds key-value pairs (e.g. ``visualization_dropped``).
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    level, message = status_level(snapshot, latency_warn_ms, active)
    values = {
        'rate_hz': f'{snapshot.rate_hz:.2f}', 'input_rate_hz': f'{snapshot.input_rate_hz:.2f}',
        'processing_ms': f'{snapshot.processing_ms:.1f}',
        'processing_ms_max': f'{snapshot.processing_ms_max:.1f}',
        'latency_ms': f'{snapshot.latency_ms:.1f}',
        'latency_ms_max': f'{snapshot.latency_ms_max:.1f}',
        'people': str(snapshot.people), 'frames_received': str(snapshot.frames_received),
        'frames_processed': str(snapshot.frames_processed),
        'frames_dropped': str(snapshot.frames_dropped),
        'frames_dropped_window': str(snapshot.frames_dropped_window),
        'frames_skipped': str(snapshot.frames_skipped), 'errors': str(snapshot.errors),
        'intrinsics': snapshot.intrinsics,
        **(extra or {}),
    }
    status = DiagnosticStatus(level=bytes([level]), name=STATUS_NAME, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


class WarnLimiter:
    """Per-key throttling of repeated warnings, counting what was suppressed.

    ``check(key)`` is True the first time a key is seen and then at most once per
    ``period_s``; :meth:`suppressed` tells how many were swallowed since the last one shown.
    Unlike rclpy's ``throttle_duration_sec`` (per call site), keys separate e.g. encodings.
    """

    def __init__(self, period_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Throttle to one message per key and ``period_s``."""
        self._period = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def check(self, key: str) -> tuple[bool, int]:
        """(show, suppressed since the last shown) for one occurrence of ``key``."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False, 0
            self._last[key] = now
            return True, self._suppressed.pop(key, 0)

    def seen(self, key: str) -> bool:
        """Whether ``key`` was ever shown."""
        with self._lock:
            return key in self._last
