"""The ``romp-ros`` entry point: builds the parser from the sub-command modules and dispatches.

Each sub-command lives in its own module with ``add_parser(sub)`` and ``run(args)``. Heavy
libraries (torch, OpenCV, rosbags) are imported by the sub-command that needs them, so
``romp-ros --help`` is instant and works without them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

LOG = logging.getLogger('romp_ros.cli')

# Sub-command modules of romp_ros.cli, in the order --help lists them.
SUBCOMMAND_MODULES = ('infer', 'prepare_models', 'download', 'synth', 'make_bag', 'train',
                      'evaluate', 'export', 'export_motion', 'bench')

# Error classes whose message is the whole story (shown as one line, without a traceback),
# as (module, class name); a module that cannot be imported contributes nothing.
_USER_ERRORS = (
    ('romp_ros.core.config', 'ConfigError'),
    ('romp_ros.cli.input_sources', 'InputError'),
    ('romp_ros.core.body.model_files', 'ModelFilesError'),
    ('romp_ros.core.estimator', 'EstimatorError'),
    ('romp_ros.core.nets.checkpoint', 'CheckpointError'),
    ('romp_ros.core.geometry.intrinsics', 'IntrinsicsError'),
    ('romp_ros.core.preprocess', 'ImageInputError'),
    ('romp_ros.core.download', 'DownloadError'),
    ('romp_ros.core.body.restricted_pickle', 'UnsafePickleError'),
    ('romp_ros.core.body.prepare', 'PrepareError'),
    ('romp_ros.data.dataset_format', 'DatasetError'),
    ('romp_ros.synthetic.scene_spec', 'SceneSpecError'),
    ('romp_ros.data.bag_writer', 'BagWriteError'),
    ('romp_ros.core.geometry.camera_model', 'CameraModelError'),
    ('romp_ros.evaluation.errors', 'EvaluationInputError'),
    ('romp_ros.train.config', 'TrainConfigError'),
    ('romp_ros.train.loop', 'TrainingError'),
    ('romp_ros.train.checkpoints', 'TrainCheckpointError'),
    ('romp_ros.train.model_setup', 'BackboneWeightsError'),
    ('romp_ros.export.errors', 'MotionExportError'),
    ('romp_ros.core.runtime.base', 'RuntimeSetupError'),
    ('romp_ros.cli.reference_pipelines', 'ReferenceNotInstalledError'),
)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception classes reported as one clear line (no traceback)."""
    errors: list[type[BaseException]] = [FileNotFoundError]
    for module, name in _USER_ERRORS:
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (built on demand, never at import time)."""
    parser = argparse.ArgumentParser(
        prog='romp-ros',
        description='Multi-person 3D human mesh estimation (ROMP / BEV, SMPL) without ROS: '
                    'the same library the romp_ros ROS 2 node runs.')
    parser.add_argument('--log-level', default='INFO',
                        choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'), help='logging verbosity')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f'romp_ros.cli.{name}').add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``romp-ros``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format='%(levelname)s %(name)s: %(message)s', stream=sys.stderr)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        LOG.error('interrupted')
        return 130
    except user_errors() as err:  # one clear line, no traceback
        LOG.error('%s', err)
        return 2
