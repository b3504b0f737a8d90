"""The evaluation settings, one frozen dataclass shared by the CLI, the runner and the node."""

from __future__ import annotations

from dataclasses import dataclass
import math

from romp_ros.evaluation.matching import DEFAULT_IOU_THRESHOLD
from romp_ros.evaluation.protocols import Protocol, protocol_by_name

# Distance bins (m) of the by-distance tables: [0, 5), [5, 10), ..., [50, inf).
DEFAULT_DISTANCE_BINS_M = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)


@dataclass(frozen=True)
class EvaluationConfig:
    """How predictions are paired, matched and scored.

    Attributes:
        protocol: a name of :data:`romp_ros.evaluation.protocols.PROTOCOLS` (joint set and
            headline numbers).
        stamp_tolerance_s: 0 pairs stamps exactly; > 0 pairs each ground-truth frame with the
            nearest prediction within this many seconds.
        max_wait_s: live mode only: give a ground-truth frame up as unpredicted once the
            ground truth is this far ahead of it (None: wait for a later prediction or the
            end).
        iou_threshold: least box IoU of a matchable pair.
        pck_threshold_mm: the PCK3D threshold (150 mm, MuPoTS).
        auc_max_mm, auc_step_mm: the AUC's thresholds 0, step, ..., max.
        pck2d_alpha: a 2D keypoint counts as correct within alpha x the longer side of the
            person's ground-truth box.
        distance_bins_m: lower edges of the distance bins (the last bin is open-ended).
    """

    protocol: str = 'smpl24'
    stamp_tolerance_s: float = 0.0
    max_wait_s: float | None = None
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    pck_threshold_mm: float = 150.0
    auc_max_mm: float = 150.0
    auc_step_mm: float = 5.0
    pck2d_alpha: float = 0.1
    distance_bins_m: tuple[float, ...] = DEFAULT_DISTANCE_BINS_M

    def __post_init__(self) -> None:
        protocol_by_name(self.protocol)
        for name in ('stamp_tolerance_s', 'pck_threshold_mm', 'auc_max_mm', 'auc_step_mm',
                     'pck2d_alpha'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0, got {value}')
        if self.auc_step_mm <= 0 or self.pck2d_alpha <= 0:
            raise ValueError('auc_step_mm and pck2d_alpha must be > 0')
        if self.max_wait_s is not None and not (math.isfinite(self.max_wait_s)
                                                and self.max_wait_s >= 0):
            raise ValueError(f'max_wait_s must be >= 0 or None, got {self.max_wait_s}')
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError(f'iou_threshold must be in [0, 1], got {self.iou_threshold}')
        bins = tuple(float(b) for b in self.distance_bins_m)
        if not bins or bins[0] != 0.0 or any(b >= c for b, c in zip(bins, bins[1:], strict=False)):
            raise ValueError(f'distance_bins_m must start at 0 and increase, got {bins}')
        object.__setattr__(self, 'distance_bins_m', bins)

    @property
    def protocol_spec(self) -> Protocol:
        """The protocol object."""
        return protocol_by_name(self.protocol)

    @property
    def tolerance_ns(self) -> int:
        """The stamp tolerance in nanoseconds."""
        return int(round(self.stamp_tolerance_s * 1e9))

    @property
    def max_wait_ns(self) -> int | None:
        """The live give-up delay in nanoseconds (None: none)."""
        return None if self.max_wait_s is None else int(round(self.max_wait_s * 1e9))
