"""What a finished evaluation session holds: per-frame rows, per-person columns, tracks.

A :class:`SessionResult` is raw material, not averages: the report's numbers are computed from
the concatenated columns of every session (bag, sequence) in a fixed order. So the numbers of
several sessions, or of sessions gathered from several processes, are exactly those of one
process running them all (no averages of averages).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

# Frame accounting: why a frame was not scored.
NO_PREDICTION = 'no_prediction'  # ground truth, but no prediction paired with its stamp
NO_GROUND_TRUTH = 'no_ground_truth'  # a prediction (or image) no ground-truth frame took
DECODE_ERROR = 'decode_error'  # the image or prediction message could not be decoded
INFERENCE_ERROR = 'inference_error'  # the model rejected the image
BAD_GROUND_TRUTH = 'bad_ground_truth'  # the ground-truth message could not be used
DUPLICATE_STAMP = 'duplicate_stamp'  # a second frame with a stamp already seen on its topic
UNREADABLE = 'unreadable'  # listed in the bag's index but unreadable (a damaged bag)
SKIP_REASONS = (NO_PREDICTION, NO_GROUND_TRUTH, DECODE_ERROR, INFERENCE_ERROR,
                BAD_GROUND_TRUTH, DUPLICATE_STAMP, UNREADABLE)
# Reasons whose ground-truth people still count (as missed): the system failed on the frame.
MISSED_REASONS = (NO_PREDICTION, DECODE_ERROR, INFERENCE_ERROR)

# Per ground-truth person: name -> trailing shape (after the people axis) and dtype.
PERSON_COLUMNS: dict[str, tuple[tuple[int, ...], Any]] = {
    'stamp_ns': ((), np.int64), 'sequence': ((), np.int64), 'gt_id': ((), np.int64),
    'pred_id': ((), np.int64), 'matched': ((), bool), 'scored': ((), bool),
    'distance_m': ((), np.float64), 'gt_root': ((3,), np.float64),
    'pred_root': ((3,), np.float64), 'mpjpe': ((), np.float64), 'pa_mpjpe': ((), np.float64),
    'pve': ((), np.float64), 'root_error': ((), np.float64), 'depth_error': ((), np.float64),
    'keypoint_error': ((), np.float64), 'known_joints': ((), np.int64),
    'pck2d_hits': ((), np.int64), 'pck2d_known': ((), np.int64),
}
# Per false-positive prediction.
FALSE_POSITIVE_COLUMNS: dict[str, tuple[tuple[int, ...], Any]] = {
    'stamp_ns': ((), np.int64), 'sequence': ((), np.int64), 'pred_id': ((), np.int64),
    'root': ((3,), np.float64), 'distance_m': ((), np.float64),
}


class Columns:
    """Named numpy columns of equal length, appended in blocks (one block per frame)."""

    def __init__(self, spec: dict[str, tuple[tuple[int, ...], Any]],
                 extra: dict[str, tuple[tuple[int, ...], Any]] | None = None) -> None:
        """Args: the columns' trailing shapes and dtypes (``extra``: e.g. per-joint ones)."""
        self.spec = dict(spec, **(extra or {}))
        self._blocks: dict[str, list[np.ndarray]] = {k: [] for k in self.spec}
        self._frozen: dict[str, np.ndarray] | None = None

    def append(self, **values: Any) -> None:
        """Add a block: every column, each with the same leading length."""
        if set(values) != set(self.spec):
            raise ValueError(f'columns {sorted(set(self.spec) ^ set(values))} missing or unknown')
        lengths = {np.shape(v)[0] if np.ndim(v) else 1 for v in values.values()}
        if len(lengths) != 1:
            raise ValueError(f'blocks of unequal length {lengths}')
        for key, value in values.items():
            shape, dtype = self.spec[key]
            self._blocks[key].append(np.asarray(value, dtype=dtype).reshape((-1,) + shape))
        self._frozen = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column as one array."""
        if self._frozen is None:
            self._frozen = {k: (np.concatenate(b) if b else
                                np.zeros((0,) + self.spec[k][0], dtype=self.spec[k][1]))
                            for k, b in self._blocks.items()}
        return self._frozen


@dataclass(frozen=True)
class TrackingFrame:
    """The identities of one ground-truth frame, for the tracking metrics.

    Attributes:
        stamp_ns: the frame's stamp.
        gt_ids: (G,) ground-truth ids.
        pred_ids: (P,) prediction ids (empty for a frame without prediction).
        similarity: (G, P) box IoU.
    """

    stamp_ns: int
    gt_ids: np.ndarray
    pred_ids: np.ndarray
    similarity: np.ndarray


@dataclass
class SessionResult:
    """Everything one session (one bag, sequence or live run) recorded.

    Attributes:
        name: the sequence's name (the bag path, the dataset sequence, the live topic).
        pairing: 'exact' or 'nearest within X s'.
        joint_set: the joint set's name.
        joint_names: the K joints of the set.
        rows: frames.jsonl objects, one per frame (scored or skipped), in stamp order.
        people: per ground-truth person columns (:data:`PERSON_COLUMNS` + ``joint_errors``
            (K,)), for the people of scored frames and of frames counted as missed.
        false_positives: per false positive (:data:`FALSE_POSITIVE_COLUMNS`).
        tracking: the identities of every frame that counts for tracking.
        skipped: reason -> frames.
        scored: frames scored.
        paired: ground-truth frames that were paired with a prediction stamp.
        box_fallback_frames: frames matched by box IoU (no keypoints on a side).
        notes: things the report must say (read errors, stamp jumps, ...).
        gt_stamps_ns, pred_stamps_ns: first and last stamp of each stream (None if empty).
    """

    name: str
    pairing: str
    joint_set: str
    joint_names: tuple[str, ...]
    rows: list[dict[str, Any]]
    people: dict[str, np.ndarray]
    false_positives: dict[str, np.ndarray]
    tracking: list[TrackingFrame]
    skipped: Counter = field(default_factory=Counter)
    scored: int = 0
    paired: int = 0
    box_fallback_frames: int = 0
    notes: list[str] = field(default_factory=list)
    gt_stamps_ns: tuple[int, int] | None = None
    pred_stamps_ns: tuple[int, int] | None = None

    @property
    def total_frames(self) -> int:
        """Scored plus skipped frames."""
        return self.scored + sum(self.skipped.values())


def concatenate_columns(parts: Sequence[dict[str, np.ndarray]],
                        sequences: Sequence[int]) -> dict[str, np.ndarray]:
    """Columns of several sessions, in the given order, with ``sequence`` set to its index."""
    if not parts:
        return {}
    out = {}
    for key in parts[0]:
        if key == 'sequence':
            out[key] = np.concatenate([np.full(len(p[key]), s, np.int64)
                                       for p, s in zip(parts, sequences, strict=True)])
        else:
            out[key] = np.concatenate([p[key] for p in parts])
    return out
