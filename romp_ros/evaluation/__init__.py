"""Evaluation: metrics, protocols, matching, stamp pairing, bag replay, reports and plots.

ROS-free; the offline node in ``romp_ros.ros`` and ``romp-ros evaluate`` feed the same
:class:`EvaluationSession`. See docs/evaluation.md for every definition.

Typical use::

    session = EvaluationSession(EvaluationConfig(protocol='smpl24'), name='run1')
    session.add_ground_truth(stamp_ns, people_from_message(gt_msg))
    session.add_prediction(stamp_ns, people_from_message(pred_msg))
    report = session.finish()
    write_report(report, 'out/')
"""

from romp_ros.evaluation.config import EvaluationConfig
from romp_ros.evaluation.errors import EvaluationInputError
from romp_ros.evaluation.matching import Matching, match_people
from romp_ros.evaluation.people import (
    FramePeople,
    PeopleFormatError,
    people_from_infer_npz,
    people_from_label,
    people_from_message,
    people_from_result,
)
from romp_ros.evaluation.protocols import JOINT_SETS, PROTOCOLS, EvalJointSet, Protocol
from romp_ros.evaluation.records import SKIP_REASONS, SessionResult
from romp_ros.evaluation.report import write_report
from romp_ros.evaluation.scoring import FrameScore, score_frame
from romp_ros.evaluation.session import EvaluationSession
from romp_ros.evaluation.summary import Report, build_report
from romp_ros.evaluation.validation import ValidationScores, validation_scores

__all__ = [
    'JOINT_SETS',
    'PROTOCOLS',
    'SKIP_REASONS',
    'EvalJointSet',
    'EvaluationConfig',
    'EvaluationInputError',
    'EvaluationSession',
    'FramePeople',
    'FrameScore',
    'Matching',
    'PeopleFormatError',
    'Protocol',
    'Report',
    'SessionResult',
    'ValidationScores',
    'build_report',
    'match_people',
    'people_from_infer_npz',
    'people_from_label',
    'people_from_message',
    'people_from_result',
    'score_frame',
    'validation_scores',
    'write_report',
]
