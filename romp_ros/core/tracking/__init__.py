"""ROS-free multi-person tracking and temporal smoothing of ROMP/BEV outputs.

Typical use, one :class:`Tracker` per camera stream::

    tracker = Tracker(TrackerConfig())
    out = tracker.update(detections_from_frame(result), stamp_s)
    out.ids, out.states, out.root, out.thetas  # (M,), M states, (M, 3), (M, 72)

See docs/tracking.md for the design, the parameter choices and the evaluation.
"""

from romp_ros.core.tracking.association import Assignment, CostWeights
from romp_ros.core.tracking.detections import Detections, detections_from_frame
from romp_ros.core.tracking.frame_tracker import FrameTracker, TrackedFrame
from romp_ros.core.tracking.kalman import RootKalman, RootNoiseModel
from romp_ros.core.tracking.one_euro import OneEuroFilter, OneEuroParams, RotationOneEuroFilter
from romp_ros.core.tracking.smoothing import PersonSmoother, SmoothedPerson, SmoothingConfig
from romp_ros.core.tracking.tracker import (
    COASTING,
    CONFIRMED,
    TENTATIVE,
    Tracker,
    TrackerConfig,
    TrackingOutput,
)

__all__ = [
    'COASTING',
    'CONFIRMED',
    'TENTATIVE',
    'Assignment',
    'CostWeights',
    'Detections',
    'FrameTracker',
    'OneEuroFilter',
    'OneEuroParams',
    'PersonSmoother',
    'RootKalman',
    'RootNoiseModel',
    'RotationOneEuroFilter',
    'SmoothedPerson',
    'SmoothingConfig',
    'TrackedFrame',
    'Tracker',
    'TrackerConfig',
    'TrackingOutput',
    'detections_from_frame',
]
