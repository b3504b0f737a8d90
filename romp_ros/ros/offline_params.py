"""ROS parameters of the offline node, and their mapping onto the library's job specs.

One table of :class:`~romp_ros.ros.params.ParamSpec` (description, type, range) is declared
on the node; :func:`offline_job` turns a full set of values into a frozen :class:`OfflineJob`
holding the library's own configuration objects (:class:`EvaluationConfig`,
:class:`EvaluateJob`, :class:`TrainConfig`). Everything is start-up / configure time: a bad
value fails ``configure`` with one message naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from romp_ros.core.config import BACKBONE_NAMES, MODEL_NAMES, ConfigError
from romp_ros.ros.params import APPLY_CONFIGURE, APPLY_STARTUP, ParamSpec, validate_value

JOBS = ('evaluate_live', 'evaluate_bags', 'evaluate_dataset', 'train')
PROTOCOL_NAMES = ('smpl24', '3dpw_24', '3dpw_14', 'mupots', 'agora')

OFFLINE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('job', 'evaluate_live', 'what to run: evaluate_live (score the perception '
              "node's people against a ground-truth topic, e.g. during `ros2 bag play`), "
              'evaluate_bags, evaluate_dataset, or train', choices=JOBS, read_only=True,
              apply=APPLY_STARTUP),
    ParamSpec('output_dir', 'offline_output', 'where the job writes: the evaluation report '
              '(report.json, report.md, frames.jsonl, plots) or the training run folder',
              apply=APPLY_CONFIGURE),
    ParamSpec('autostart', True, 'configure and activate on start-up (false: wait for the '
              'lifecycle services)', read_only=True, apply=APPLY_STARTUP),
    ParamSpec('exit_when_done', True, 'shut the node down when a batch job (bags, dataset, '
              'train) has ended', apply=APPLY_CONFIGURE),
    ParamSpec('progress_period_s', 1.0, 'period of the progress and diagnostics messages, '
              'seconds', min_value=0.1, max_value=60.0, apply=APPLY_CONFIGURE),
    # -- evaluation ----------------------------------------------------------------------------
    ParamSpec('protocol', 'smpl24', 'evaluation protocol (joint set, headline numbers; '
              'docs/evaluation.md)', choices=PROTOCOL_NAMES, apply=APPLY_CONFIGURE),
    ParamSpec('stamp_tolerance_s', 0.0, 'pair a ground-truth frame with the nearest prediction '
              'within this many seconds (0: identical header stamps only)', min_value=0.0,
              max_value=10.0, apply=APPLY_CONFIGURE),
    ParamSpec('max_wait_s', 2.0, 'live: a ground-truth frame with no prediction once the '
              'ground truth is this many seconds ahead counts as missed (a frame the '
              'perception node dropped)', min_value=0.0, max_value=600.0,
              apply=APPLY_CONFIGURE),
    ParamSpec('idle_timeout_s', 0.0, 'live: finish and write the report when no ground truth '
              'arrived for this many seconds after the first (0: only on deactivate or '
              'shutdown)', min_value=0.0, max_value=3600.0, apply=APPLY_CONFIGURE),
    ParamSpec('iou_threshold', 0.1, 'least box IoU of a matchable prediction / ground-truth '
              'pair (AGORA: 0.1)', min_value=0.0, max_value=1.0, apply=APPLY_CONFIGURE),
    ParamSpec('bags', (), 'evaluate_bags: the bags (rosbag2 folders, .mcap or .db3 files)',
              apply=APPLY_CONFIGURE),
    ParamSpec('dataset', '', 'evaluate_dataset: a dataset folder (docs/dataset_format.md)',
              apply=APPLY_CONFIGURE),
    ParamSpec('gt_topic', '/ground_truth/people', "evaluate_bags: the ground truth's "
              'romp_ros/PersonMeshArray topic in the bags', apply=APPLY_CONFIGURE),
    ParamSpec('pred_topic', '', "evaluate_bags: recorded predictions' PersonMeshArray topic; "
              "'' runs the model below on the bags' images", apply=APPLY_CONFIGURE),
    ParamSpec('image_topic', '', "evaluate_bags with a model: the image topic ('' = the "
              "bag's only one)", apply=APPLY_CONFIGURE),
    ParamSpec('camera_info_topic', '', 'evaluate_bags with a model: the CameraInfo topic '
              "('' = the one of the image's frame_id)", apply=APPLY_CONFIGURE),
    # -- model (evaluation with a model; training) -----------------------------------------------
    ParamSpec('model', '', "network to run or train; '' = romp for evaluation, the training "
              "config's for training", choices=('',) + MODEL_NAMES, apply=APPLY_CONFIGURE),
    ParamSpec('backbone', '', "backbone to run or train (BEV: hrnet32); '' = hrnet32 for "
              "evaluation, the training config's for training", choices=('',) + BACKBONE_NAMES,
              apply=APPLY_CONFIGURE),
    ParamSpec('checkpoint', '', 'network weights to evaluate, or to start training from '
              "(fine-tuning); '' = evaluate the official file in models_dir / train from "
              'scratch', apply=APPLY_CONFIGURE),
    ParamSpec('models_dir', '', 'prepared body models (`romp-ros prepare-models`); training: '
              "'' = the one the dataset ships with", apply=APPLY_CONFIGURE),
    ParamSpec('device', 'auto', "'auto', 'cpu' or 'cuda' (training) / 'cuda:N' (evaluation)",
              apply=APPLY_CONFIGURE, constraints='auto | cpu | cuda | cuda:N'),
    # -- training --------------------------------------------------------------------------------
    ParamSpec('train_config', '', "train: a training config (config/train/*.yaml); '' = "
              'the built-in defaults', apply=APPLY_CONFIGURE),
    ParamSpec('train_data', (), 'train: the training datasets (replace data.sources)',
              apply=APPLY_CONFIGURE),
    ParamSpec('max_steps', 0, 'train: stop after this many optimizer steps in total (0: the '
              "config's optim.max_steps)", min_value=0, max_value=100_000_000,
              apply=APPLY_CONFIGURE),
    ParamSpec('resume', False, 'train: continue the run in output_dir from its last '
              'checkpoint', apply=APPLY_CONFIGURE),
    ParamSpec('train_overrides', (), "train: config overrides 'key.sub=value' (as --set)",
              apply=APPLY_CONFIGURE),
)
OFFLINE_PARAMETERS_BY_NAME = {spec.name: spec for spec in OFFLINE_PARAMETERS}


@dataclass(frozen=True)
class OfflineJob:
    """What the offline node will run, built and validated at configure time.

    Attributes:
        kind: one of :data:`JOBS`.
        output_dir: report folder or training run folder.
        exit_when_done: shut down after a batch job.
        progress_period_s: progress / diagnostics period.
        idle_timeout_s: live: finish after this long without ground truth (0: never).
        evaluation: the :class:`~romp_ros.evaluation.config.EvaluationConfig` (evaluations).
        evaluate_job: the :class:`~romp_ros.evaluation.runner.EvaluateJob` (bags, dataset).
        train_config: the :class:`~romp_ros.train.config.TrainConfig` (train).
        resume: train: continue the run.
        max_steps: train: stop after this many steps (None: the config's).
    """

    kind: str
    output_dir: Path
    exit_when_done: bool = True
    progress_period_s: float = 1.0
    idle_timeout_s: float = 0.0
    evaluation: Any = None
    evaluate_job: Any = None
    train_config: Any = None
    resume: bool = False
    max_steps: int | None = None


def offline_job(values: Mapping[str, Any]) -> OfflineJob:
    """Build the :class:`OfflineJob` of a full set of parameter values.

    Raises:
        ConfigError: an invalid value, a missing input, or an invalid combination; the
            message names the parameter.
    """
    merged = {spec.name: spec.default for spec in OFFLINE_PARAMETERS}
    merged.update(values)
    for name, value in merged.items():
        reason = validate_value(name, value, OFFLINE_PARAMETERS_BY_NAME)
        if reason:
            raise ConfigError(reason)
    kind = merged['job']
    if not merged['output_dir']:
        raise ConfigError('output_dir is empty: give the folder the job writes to')
    common = {'kind': kind, 'output_dir': Path(merged['output_dir']).expanduser(),
              'exit_when_done': bool(merged['exit_when_done']),
              'progress_period_s': float(merged['progress_period_s']),
              'idle_timeout_s': float(merged['idle_timeout_s'])}
    if kind == 'train':
        return OfflineJob(**common, train_config=_train_config(merged),
                          resume=bool(merged['resume']),
                          max_steps=int(merged['max_steps']) or None)
    evaluation = _evaluation_config(merged, live=kind == 'evaluate_live')
    if kind == 'evaluate_live':
        return OfflineJob(**common, evaluation=evaluation)
    return OfflineJob(**common, evaluation=evaluation,
                      evaluate_job=_evaluate_job(merged, evaluation, kind))


def _evaluation_config(values: Mapping[str, Any], live: bool):
    from romp_ros.evaluation.config import EvaluationConfig
    try:
        return EvaluationConfig(protocol=values['protocol'],
                                stamp_tolerance_s=float(values['stamp_tolerance_s']),
                                max_wait_s=float(values['max_wait_s']) if live else None,
                                iou_threshold=float(values['iou_threshold']))
    except ValueError as err:
        raise ConfigError(f'evaluation parameters: {err}') from err


def _evaluate_job(values: Mapping[str, Any], evaluation, kind: str):
    from romp_ros.evaluation.errors import EvaluationInputError
    from romp_ros.evaluation.runner import EvaluateJob, PredictionSource
    if kind == 'evaluate_bags' and not values['bags']:
        raise ConfigError("job 'evaluate_bags' needs the bags parameter (a list of bags)")
    if kind == 'evaluate_dataset' and not values['dataset']:
        raise ConfigError("job 'evaluate_dataset' needs the dataset parameter (a folder)")
    try:
        if kind == 'evaluate_bags' and values['pred_topic']:
            source = PredictionSource('topic', topic=values['pred_topic'])
        else:
            source = PredictionSource('model', estimator=_estimator_config(values),
                                      image_topic=values['image_topic'],
                                      camera_info_topic=values['camera_info_topic'])
        return EvaluateJob(
            source=source, out_dir=Path(values['output_dir']).expanduser(),
            bags=tuple(Path(b).expanduser() for b in values['bags'])
            if kind == 'evaluate_bags' else (),
            dataset=Path(values['dataset']).expanduser() if kind == 'evaluate_dataset' else None,
            gt_topic=values['gt_topic'] if kind == 'evaluate_bags' else '',
            config=evaluation, plots=True, progress=False)
    except (EvaluationInputError, ValueError) as err:
        raise ConfigError(str(err)) from err


def _estimator_config(values: Mapping[str, Any]):
    from romp_ros.core.config import EstimatorConfig
    if not values['models_dir']:
        raise ConfigError('running a model needs models_dir (a folder written by `romp-ros '
                          'prepare-models`), or set pred_topic to score recorded predictions')
    device = values['device'] if values['device'] != 'cuda' else 'cuda:0'
    return EstimatorConfig(model=values['model'] or 'romp',
                           backbone=values['backbone'] or 'hrnet32',
                           checkpoint=values['checkpoint'], models_dir=values['models_dir'],
                           device=device, color_order='rgb', compute_verts=False)


def _train_config(values: Mapping[str, Any]):
    from romp_ros.train.config import TrainConfigError, load_train_config
    dotted: dict[str, Any] = {}
    if values['model']:
        dotted['model.name'] = values['model']
    if values['backbone']:
        dotted['model.backbone'] = values['backbone']
    if values['train_data']:
        dotted['data.sources'] = [{'path': path} for path in values['train_data']]
    if values['checkpoint']:
        dotted['model.init_checkpoint'] = values['checkpoint']
    if values['models_dir']:
        dotted['data.models_dir'] = values['models_dir']
    device = values['device']
    if device.startswith('cuda:'):
        raise ConfigError(f"device={device!r}: training takes 'auto', 'cpu' or 'cuda' "
                          '(several GPUs: torchrun, docs/training.md)')
    dotted['device'] = device
    try:
        config = load_train_config(values['train_config'] or None,
                                   list(values['train_overrides']), dotted)
    except TrainConfigError as err:
        raise ConfigError(f'training configuration: {err}') from err
    if not config.data.sources and not values['resume']:
        raise ConfigError("job 'train' needs train_data (or data.sources in train_config)")
    return config
