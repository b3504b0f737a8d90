"""A one-slot, latest-wins hand-over between subscription callbacks and the inference worker.

Camera drivers publish at a fixed rate whatever the inference speed. The callback only stores
the newest message here (no decoding, no copying); the worker takes it when it is free. A
message still waiting when a newer one arrives is stale: it is replaced and counted as dropped.
Memory is therefore bounded to one pending message and the latency to one inference period.

With several cameras (:class:`LatestPerStream`) there is one such slot per camera, and the worker
takes the newest frame of every camera at once, for one batched network call.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Any, Generic, TypeVar

T = TypeVar('T')


@dataclass(frozen=True)
class PendingFrame:
    """An input message waiting for inference.

    Attributes:
        msg: the sensor_msgs/Image or sensor_msgs/CompressedImage.
        compressed: whether ``msg`` is a CompressedImage.
        received: ``time.monotonic()`` when the callback got it.
        stream: the camera namespace it came from ('' for the node's own ``image`` topic).
    """

    msg: Any
    compressed: bool
    received: float
    stream: str = ''


@dataclass(frozen=True)
class SlotCounters:
    """Counters of a :class:`LatestSlot` since it was created or reset."""

    put: int
    taken: int
    dropped: int


class LatestPerStream(Generic[T]):
    """One latest-wins slot per stream (camera); :meth:`take_all` empties all of them at once.

    Streams keep their first-put order in what :meth:`take_all` returns, so a batch lists the
    cameras in a stable order.
    """

    def __init__(self) -> None:
        """Create an empty, open buffer."""
        self._cond = threading.Condition()
        self._items: dict[str, T] = {}
        self._order: list[str] = []
        self._closed = False
        self._put = 0
        self._taken = 0
        self._dropped = 0

    def put(self, stream: str, item: T) -> bool:
        """Store ``item`` for ``stream``; True when it replaced that stream's stale item.

        Items put after :meth:`close` are discarded (and not counted).
        """
        with self._cond:
            if self._closed:
                return False
            replaced = stream in self._items
            if replaced:
                self._dropped += 1
            elif stream not in self._order:
                self._order.append(stream)
            self._items[stream] = item
            self._put += 1
            self._cond.notify()
            return replaced

    def take_all(self, timeout: float | None = None) -> list[T]:
        """Remove and return the newest item of every stream that has one.

        Waits up to ``timeout`` s for the first item; returns [] on timeout or close.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._cond.wait(remaining)
            if self._closed:
                return []
            items = [self._items[s] for s in self._order if s in self._items]
            self._items = {}
            self._taken += len(items)
            return items

    def close(self) -> None:
        """Wake every waiter; later puts are ignored and takes return []."""
        with self._cond:
            self._closed = True
            self._items = {}
            self._cond.notify_all()

    def counters(self) -> SlotCounters:
        """A consistent snapshot of the counters (over all streams)."""
        with self._cond:
            return SlotCounters(put=self._put, taken=self._taken, dropped=self._dropped)

    def reopen(self) -> None:
        """Accept items again after :meth:`close` (counters are kept)."""
        with self._cond:
            self._closed = False


class LatestSlot(Generic[T]):
    """Thread-safe single slot: :meth:`put` replaces, :meth:`take` waits for an item.

    A :class:`LatestPerStream` with one stream.
    """

    def __init__(self) -> None:
        """Create an empty, open slot."""
        self._streams: LatestPerStream[T] = LatestPerStream()

    def put(self, item: T) -> bool:
        """Store ``item``; return True when it replaced a stale one (counted as dropped).

        Items put after :meth:`close` are discarded (and not counted).
        """
        return self._streams.put('', item)

    def take(self, timeout: float | None = None) -> T | None:
        """Remove and return the item, waiting up to ``timeout`` s; None on timeout or close."""
        items = self._streams.take_all(timeout)
        return items[0] if items else None

    def close(self) -> None:
        """Wake every waiter; later puts are ignored and takes return None."""
        self._streams.close()

    def reopen(self) -> None:
        """Accept items again after :meth:`close` (counters are kept)."""
        self._streams.reopen()

    def counters(self) -> SlotCounters:
        """A consistent snapshot of the counters."""
        return self._streams.counters()
