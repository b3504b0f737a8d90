"""Track the people of successive frames: stable ids, and smoothed, re-posed bodies.

:class:`FrameTracker` joins the estimator's :class:`~romp_ros.core.results.FrameResult` and
the :class:`~romp_ros.core.tracking.Tracker`: it returns the people to publish (observed
tracks, by descending confidence) with their identities. With smoothing on, each person's
body is rebuilt from the tracker's smoothed pose and shape (``repose``, normally
:meth:`Estimator.pose_bodies`), placed so the pelvis sits on the smoothed root, and its 2D
keypoints are re-projected with the frame's intrinsics: the mesh itself is steady, not only its
position. ROS-free; the node and the CLI share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np

from romp_ros.core.results import FrameResult
from romp_ros.core.tracking.detections import detections_from_frame
from romp_ros.core.tracking.tracker import Tracker, TrackerConfig

# (betas (N, B), thetas (N, 72), with_verts=...) -> joints (N, J, 3), verts (N, V, 3) or None,
# body frame: Estimator.pose_bodies
ReposeFn = Callable[..., tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class TrackedFrame:
    """The people of one frame after tracking (N of them, ordered by descending confidence).

    Attributes:
        result: the people to publish; smoothed when smoothing is on.
        ids: (N,) int64 track ids (>= 1, never reused).
        states: N of 'tentative' | 'confirmed' (coasting tracks are not in a frame's people).
        ages: (N,) int64 frames since each track was born.
        velocities: (N, 3) pelvis velocity, m/s, camera optical frame.
        was_reset: the tracker restarted on this frame (its stamp went backwards).
        coasting_ids: (C,) ids of confirmed tracks not observed in this frame but still
            reported (within ``TrackerConfig.report_coast_s``).
        coasting_roots: (C, 3) their predicted pelvis positions, m, camera optical frame.
        coasting_thetas: (C, 72) their last (smoothed) pose; [:, :3] orients the body.
    """

    result: FrameResult
    ids: np.ndarray
    states: tuple[str, ...]
    ages: np.ndarray
    velocities: np.ndarray
    was_reset: bool = False
    coasting_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    coasting_roots: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    coasting_thetas: np.ndarray = field(default_factory=lambda: np.zeros((0, 72)))


class FrameTracker:
    """Stateful tracking of one camera stream (one instance per camera)."""

    def __init__(self, config: TrackerConfig, repose: ReposeFn | None = None,
                 ids: Iterator[int] | None = None) -> None:
        """Track one camera stream.

        Args:
            config: the tracker configuration.
            repose: for smoothed meshes, a body-model call (``Estimator.pose_bodies``).
            ids: the id counter shared with other cameras' trackers (:class:`Tracker`);
                default: its own.
        """
        self.config = config
        self._tracker = Tracker(config, ids=ids)
        self._repose = repose

    def reset(self) -> None:
        """Forget every track (ids keep counting up; none is reused)."""
        self._tracker.reset()

    def update(self, result: FrameResult, stamp_s: float) -> TrackedFrame:
        """Associate the frame's people with the tracks; return the observed ones."""
        out = self._tracker.update(detections_from_frame(result), stamp_s)
        observed = np.flatnonzero(out.detection_index >= 0)
        rows = out.detection_index[observed]
        order = np.argsort(-result.center_confs[rows], kind='stable')
        observed, rows = observed[order], rows[order]
        people = result.select(rows)
        if self.config.smoothing.enabled and len(rows):
            people = self._smoothed(people, out, observed)
        coasting = np.array([i for i, s in enumerate(out.states) if s == 'coasting'],
                            dtype=np.int64)
        return TrackedFrame(
            result=people, ids=out.ids[observed].astype(np.int64),
            states=tuple(out.states[i] for i in observed),
            ages=out.age[observed].astype(np.int64),
            velocities=np.asarray(out.root_velocity[observed], dtype=np.float64),
            was_reset=out.was_reset, coasting_ids=out.ids[coasting].astype(np.int64),
            coasting_roots=np.asarray(out.root[coasting], dtype=np.float64).reshape(-1, 3),
            coasting_thetas=np.asarray(out.thetas[coasting], dtype=np.float64).reshape(-1, 72))

    def _smoothed(self, people: FrameResult, out, observed: np.ndarray) -> FrameResult:
        root = out.root[observed]  # (N, 3) smoothed pelvis, camera frame
        if self._repose is None:
            # no body model: move each body rigidly onto its smoothed root
            shift = root - people.joints_camera()[:, 0]
            return replace(people, cam_trans=(people.cam_trans + shift).astype(np.float32))
        thetas = out.thetas[observed].astype(np.float32)  # (N, 72)
        betas = out.betas[observed].astype(np.float32)  # (N, B)
        # meshes only where the frame carries them (the node drops them when nobody reads them)
        joints, verts = self._repose(betas, thetas, with_verts=people.verts is not None)
        trans = (root - joints[:, 0]).astype(np.float32)  # (N, 3)
        # through the frame's camera, lens included: pj2d_org is in the raw image's pixels
        pj2d = people.intrinsics.project(joints + trans[:, None])  # (N, J, 2)
        return replace(people, smpl_thetas=thetas, smpl_betas=betas,
                       cam=out.cam[observed].astype(np.float32), cam_trans=trans,
                       joints=joints.astype(np.float32),
                       verts=None if verts is None or people.verts is None
                       else verts.astype(np.float32),
                       pj2d_org=pj2d.astype(np.float32))
