"""Generators with known answers (ground truth), built on the core.

* :mod:`romp_ros.synthetic.body_model`: a synthetic SMPL-family body written in the official
  file formats (the real SMPL files are licence-gated);
* :mod:`romp_ros.synthetic.poses`: walking gaits and random poses within joint limits;
* :mod:`romp_ros.synthetic.backgrounds`: procedural textures, photographs, ground planes;
* :mod:`romp_ros.synthetic.scenes`: rendered multi-person scenes and sequences with ground
  truth (camera, lens, people, visibility), specified by
  :mod:`~romp_ros.synthetic.scene_spec`, with :mod:`~romp_ros.synthetic.scene_camera` (lens,
  mounting, lens warp) and :mod:`~romp_ros.synthetic.appearance` (clothes, light);
* :mod:`romp_ros.synthetic.dataset`: synthetic datasets in the generic format
  (``romp-ros synth``);
* :mod:`romp_ros.synthetic.sequences`: multi-person detection sequences with identities, for
  tracking and smoothing.
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
