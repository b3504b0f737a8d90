"""Generators with known answers (ground truth), built on the core.

* :mod:`romp_ros.synthetic.body_model`: a synthetic SMPL-family body written in the official
  file formats (the real SMPL files are licence-gated);
* :mod:`romp_ros.synthetic.sequences`: multi-person sequences with identities, for tracking
  and smoothing.
"""

from romp_ros.synthetic.sequences import (
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
