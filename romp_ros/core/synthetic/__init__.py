"""Synthetic data with known answers: multi-person sequences for tracking and smoothing."""

from romp_ros.core.synthetic.sequences import (
    SCENARIOS,
    SMPL_PARENTS,
    CameraSpec,
    NoiseSpec,
    SequenceSpec,
    SyntheticFrame,
    SyntheticSequence,
    forward_kinematics,
    generate_sequence,
    preset,
    project_points,
)

__all__ = [
    'CameraSpec',
    'NoiseSpec',
    'SCENARIOS',
    'SMPL_PARENTS',
    'SequenceSpec',
    'SyntheticFrame',
    'SyntheticSequence',
    'forward_kinematics',
    'generate_sequence',
    'preset',
    'project_points',
]
