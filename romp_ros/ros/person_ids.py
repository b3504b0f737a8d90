"""Person identities for the node's outputs: the one place where the tracker plugs in.

The node asks an :class:`IdSource` (one per camera frame_id) for the people of each frame and
their identities; messages, TF frame names and marker ids all come from what it returns.

* :class:`FrameIndexIds` (``tracking: false``): every detection, ids are per-frame indices
  (PersonMesh.msg: "per-frame index when tracking is off").
* :class:`TrackerIds` (``tracking: true``): ``romp_ros.core.tracking.Tracker`` gives stable
  ids, track states, ages and root velocities (docs/tracking.md). People are published once
  their track is confirmed (or tentative, on request) and observed in the frame; a coasting
  track (unseen, predicted) is not published, but keeps its id for re-association. With
  smoothing on, each person is moved rigidly so that the pelvis sits on the tracker's smoothed
  root; the pose and shape are the frame's own (re-posing the mesh with smoothed parameters
  needs a body-model call the core does not expose yet).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """

    ids: tuple[int, ...]
    states: tuple[int, ...]
    ages: tuple[int, ...]
    velocities: np.ndarray | None = None

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


def select_people(result: FrameResult, rows: np.ndarray) -> FrameResult:
    """``result`` restricted to the people ``rows`` (in that order)."""
    rows = np.asarray(rows, dtype=np.int64)
    types = tuple(result.model_type[i] for i in rows) if result.model_type else ()
    return replace(
        result, cam=result.cam[rows], smpl_thetas=result.smpl_thetas[rows],
        smpl_betas=result.smpl_betas[rows], cam_trans=result.cam_trans[rows],
        joints=result.joints[rows], verts=None if result.verts is None else result.verts[rows],
        pj2d_org=result.pj2d_org[rows], center_confs=result.center_confs[rows],
        model_type=types)


class TrackerIds:
    """Stable ids from ``romp_ros.core.tracking.Tracker`` (see the module docstring)."""

    def __init__(self, config) -> None:
        """``config``: a ``romp_ros.core.tracking.TrackerConfig``."""
        from romp_ros.core.tracking import Tracker
        self._tracker = Tracker(config)

    def update(self, result: FrameResult, stamp_s: float) -> tuple[FrameResult, Identities]:
        """The observed, reported tracks of the frame, by descending confidence."""
        from romp_ros.core.tracking import detections_from_frame

        out = self._tracker.update(detections_from_frame(result), stamp_s)
        observed = np.flatnonzero(out.detection_index >= 0)
        rows = out.detection_index[observed]
        order = np.argsort(-result.center_confs[rows], kind='stable')
        observed, rows = observed[order], rows[order]
        people = select_people(result, rows)
        # rigid shift onto the smoothed root (zero when smoothing is off)
        shift = out.root[observed] - people.joints_camera()[:, 0]
        people = replace(people, cam_trans=(people.cam_trans + shift).astype(
            people.cam_trans.dtype))
        return people, Identities(
            ids=tuple(int(i) for i in out.ids[observed]),
            states=tuple(_STATES[out.states[i]] for i in observed),
            ages=tuple(int(a) for a in out.age[observed]),
            velocities=np.asarray(out.root_velocity[observed], dtype=np.float64))

    def reset(self) -> None:
        """Drop every track (ids keep counting up, none is reused)."""
        self._tracker.reset()


def make_id_source(config) -> IdSource:
    """The identity source for a :class:`~romp_ros.ros.params.NodeConfig`."""
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
        smoothing=SmoothingConfig.from_mode(config.smoothing)))
