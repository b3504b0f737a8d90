"""Pair ground-truth frames with prediction frames by header stamp, incrementally.

Rule: ground-truth frames are taken in stamp order; each takes the prediction frame nearest to
its stamp among those not yet taken and at most ``tolerance`` away (ties: the earlier one).
``tolerance = 0`` is exact pairing (the default): the prediction must carry the very stamp of
the image the ground truth describes, which a perception node does by copying the image
header. A tolerance should stay under half the frame period; otherwise one ground-truth frame
can take the prediction meant for its neighbour.

The same rule runs offline (everything known, :meth:`StampPairer.decide` with ``final``) and
live (stamps arriving as messages do): a ground-truth frame is decided once a prediction with
its very stamp or one later than its stamp + tolerance has arrived (predictions arrive in stamp
order), or, with
``max_wait_ns``, once the ground truth has run that far ahead (the perception node dropped the
frame or stalled). A prediction is given up as unpaired once no ground-truth frame still to
come could take it. Given the same stamps, both modes decide the same pairs as long as no
prediction arrives more than ``max_wait_ns`` late.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class PairingDecisions:
    """What one :meth:`StampPairer.decide` call settled.

    Attributes:
        pairs: (ground-truth stamp, prediction stamp or None) in ground-truth stamp order.
        unpaired_predictions: prediction stamps no ground-truth frame will take.
    """

    pairs: tuple[tuple[int, int | None], ...]
    unpaired_predictions: tuple[int, ...]


class StampPairer:
    """Incremental stamp pairing (module docstring). Stamps are integer nanoseconds."""

    def __init__(self, tolerance_ns: int = 0, max_wait_ns: int | None = None) -> None:
        """Args: the largest stamp difference of a pair; the live-mode give-up delay."""
        if tolerance_ns < 0:
            raise ValueError(f'tolerance_ns must be >= 0, got {tolerance_ns}')
        if max_wait_ns is not None and max_wait_ns < 0:
            raise ValueError(f'max_wait_ns must be >= 0 or None, got {max_wait_ns}')
        self.tolerance_ns = int(tolerance_ns)
        self.max_wait_ns = max_wait_ns
        self._gt: list[int] = []  # pending ground-truth stamps, sorted
        self._pred: list[int] = []  # available prediction stamps, sorted
        self._gt_mark: int | None = None  # latest ground-truth stamp seen
        self._pred_mark: int | None = None  # latest prediction stamp seen

    @property
    def description(self) -> str:
        """'exact' or 'nearest within X s', for reports."""
        if self.tolerance_ns == 0:
            return 'exact'
        return f'nearest within {self.tolerance_ns / 1e9:g} s'

    def add_ground_truth(self, stamp_ns: int) -> None:
        """A ground-truth frame arrived (each stamp once)."""
        bisect.insort(self._gt, int(stamp_ns))
        self._gt_mark = stamp_ns if self._gt_mark is None else max(self._gt_mark, stamp_ns)

    def add_prediction(self, stamp_ns: int) -> None:
        """A prediction frame arrived (each stamp once)."""
        bisect.insort(self._pred, int(stamp_ns))
        self._pred_mark = (stamp_ns if self._pred_mark is None
                           else max(self._pred_mark, stamp_ns))

    def decide(self, final: bool = False) -> PairingDecisions:
        """Settle what can be settled now (everything with ``final``)."""
        tol = self.tolerance_ns
        pairs: list[tuple[int, int | None]] = []
        while self._gt:
            gt = self._gt[0]
            if not (final or self._ground_truth_decidable(gt)):
                break
            self._gt.pop(0)
            pairs.append((gt, self._take_nearest(gt, tol)))
        return PairingDecisions(tuple(pairs), self._expire_predictions(final))

    def _ground_truth_decidable(self, gt: int) -> bool:
        tol = self.tolerance_ns
        if self._pred_mark is not None and self._pred_mark > gt + tol:
            return True
        i = bisect.bisect_left(self._pred, gt)
        if i < len(self._pred) and self._pred[i] == gt:
            return True  # an equal stamp: nothing can come closer
        return (self.max_wait_ns is not None and self._gt_mark is not None
                and self._gt_mark - gt > tol + self.max_wait_ns)

    def _take_nearest(self, gt: int, tol: int) -> int | None:
        lo = bisect.bisect_left(self._pred, gt - tol)
        hi = bisect.bisect_right(self._pred, gt + tol)
        if lo == hi:
            return None
        best = min(range(lo, hi), key=lambda i: (abs(self._pred[i] - gt), self._pred[i]))
        return self._pred.pop(best)

    def _expire_predictions(self, final: bool) -> tuple[int, ...]:
        if final:
            out, self._pred = tuple(self._pred), []
            return out
        # ground truth arrives in stamp order: later frames have stamps >= the oldest pending
        # one, or > the latest seen when none is pending
        if self._gt:
            horizon = self._gt[0]
        elif self._gt_mark is not None:
            horizon = self._gt_mark + 1
        else:
            horizon = None
        limit = None if horizon is None else horizon - self.tolerance_ns  # stamps < limit go
        if self.max_wait_ns is not None and self._pred_mark is not None:
            waited = self._pred_mark - self.tolerance_ns - self.max_wait_ns
            limit = waited if limit is None else max(limit, waited)
        if limit is None:
            return ()
        cut = bisect.bisect_left(self._pred, limit)
        out, self._pred = tuple(self._pred[:cut]), self._pred[cut:]
        return out
