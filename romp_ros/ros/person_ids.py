"""Person identities for the node's outputs: the one place where the tracker plugs in.

The node asks an :class:`IdSource` (one per camera frame_id) for the people of each frame and
their identities; messages, TF frame names and marker ids all come from what it returns.

* :class:`FrameIndexIds` (``tracking: false``): every detection, ids are per-frame indices
  (PersonMesh.msg: "per-frame index when tracking is off").
* :class:`TrackerIds` (``tracking: true``): ``romp_ros.core.tracking.Tracker`` gives stable
  ids, track states, ages and root velocities (docs/tracking.md). People are published once
  their track is confirmed (or tentative, on request) and observed in the frame; a coasting
  track (unseen, predicted) is not published, but keeps its id for re-association. With
  smoothing on, each body is rebuilt from the smoothed pose and shape and placed on the
  smoothed root (``FrameTracker`` in the core).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from romp_ros.core.results import FrameResult

# PersonMesh.STATE_* values (kept here so that this module does not need the messages)
STATE_TENTATIVE = 0
STATE_CONFIRMED = 1
STATE_COASTING = 2
_STATES = {'tentative': STATE_TENTATIVE, 'confirmed': STATE_CONFIRMED,
           'coasting': STATE_COASTING}


@dataclass(frozen=True)
class Identities:
    """Identity of each person of one frame, in the order of the frame's results.

    Attributes:
        ids: (N,) track ids (per-frame indices when tracking is off).
        states: (N,) PersonMesh.STATE_* values.
        ages: (N,) frames since the track was born (0 when tracking is off).
        velocities: (N, 3) pelvis velocities [m/s], camera frame, or None when unknown.
        coasting_ids, coasting_roots, coasting_thetas: confirmed tracks unseen in this frame
            (predicted root, last pose); published in TF only with publish_coasting_tf.
    """

    ids: tuple[int, ...]
    states: tuple[int, ...]
    ages: tuple[int, ...]
    velocities: np.ndarray | None = None
    coasting_ids: tuple[int, ...] = ()
    coasting_roots: np.ndarray | None = None  # (C, 3) m, camera frame
    coasting_thetas: np.ndarray | None = None  # (C, 72)

    def __len__(self) -> int:
        """N."""
        return len(self.ids)


class IdSource(Protocol):
    """Assigns identities to the people of successive frames of one camera stream."""

    def update(self, result: FrameResult, stamp_s: float) -> tuple[FrameResult, Identities]:
        """The people to publish for ``result`` (a subset, maybe moved) and their identities."""

    def reset(self) -> None:
        """Forget all tracks (new stream, reconfiguration)."""


class FrameIndexIds:
    """No tracking: person ``k`` of a frame (by descending confidence) gets id ``k``."""

    def update(self, result: FrameResult, stamp_s: float) -> tuple[FrameResult, Identities]:
        """Every person, ids 0..N-1, all confirmed, age 0, no velocity."""
        del stamp_s
        count = result.num_people
        return result, Identities(ids=tuple(range(count)), states=(STATE_CONFIRMED,) * count,
                                  ages=(0,) * count)

    def reset(self) -> None:
        """Nothing to forget."""


class TrackerIds:
    """Stable ids from ``romp_ros.core.tracking.FrameTracker`` (see the module docstring)."""

    def __init__(self, config, repose=None, ids=None) -> None:
        """Track one camera.

        Args:
            config: a ``TrackerConfig``.
            repose: ``Estimator.pose_bodies``, or None.
            ids: the node's id counter, shared by every camera's tracker.
        """
        from romp_ros.core.tracking import FrameTracker
        self._tracker = FrameTracker(config, repose=repose, ids=ids)

    def update(self, result: FrameResult, stamp_s: float) -> tuple[FrameResult, Identities]:
        """The observed, reported tracks of the frame, by descending confidence."""
        tracked = self._tracker.update(result, stamp_s)
        return tracked.result, Identities(
            ids=tuple(int(i) for i in tracked.ids),
            states=tuple(_STATES[s] for s in tracked.states),
            ages=tuple(int(a) for a in tracked.ages), velocities=tracked.velocities,
            coasting_ids=tuple(int(i) for i in tracked.coasting_ids),
            coasting_roots=tracked.coasting_roots, coasting_thetas=tracked.coasting_thetas)

    def reset(self) -> None:
        """Drop every track (ids keep counting up, none is reused)."""
        self._tracker.reset()


def make_id_source(config, repose=None, ids=None) -> IdSource:
    """The identity source for a :class:`~romp_ros.ros.params.NodeConfig`.

    ``repose`` (``Estimator.pose_bodies``) lets smoothing rebuild the meshes from the smoothed
    pose and shape; without it the bodies are only moved onto the smoothed root. ``ids``
    (``itertools.count(1)``), shared by the sources of every camera of a node, makes track ids
    unique within the node, so ``body_<id>`` has one parent frame.
    """
    if not config.tracking:
        return FrameIndexIds()
    from romp_ros.core.tracking import SmoothingConfig, TrackerConfig
    return TrackerIds(TrackerConfig(
        min_hits=config.track_min_hits, max_coast_s=config.track_max_coast_s,
        tentative_max_coast_s=config.track_tentative_max_coast_s,
        low_conf=config.track_low_conf, high_conf=config.track_high_conf,
        new_track_conf=config.track_new_conf,
        report_coast_s=min(TrackerConfig.report_coast_s, config.track_max_coast_s),
        output_tentative=config.track_publish_tentative,
        smoothing=SmoothingConfig.from_mode(config.smoothing)), repose=repose, ids=ids)
