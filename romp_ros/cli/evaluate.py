"""`romp-ros evaluate`: score predictions against ground truth in bags or a dataset.

Writes report.json, report.md, frames.jsonl and plots (docs/evaluation.md). Under
``torchrun --nproc_per_node N -m romp_ros.cli evaluate --bag A --bag B ...`` the bags are
shared out across the processes and rank 0 writes the merged report.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from romp_ros.cli.camera_flags import add_camera_flags, add_camera_model_flag, fixed_camera
from romp_ros.cli.model_flags import add_model_flags, config_from_args

LOG = logging.getLogger(__name__)

# romp_ros.evaluation.protocols.PROTOCOLS, spelled out so that --help needs no numpy
# (test/test_evaluate_cli.py checks they agree)
PROTOCOL_NAMES = ('3dpw_14', '3dpw_24', 'agora', 'mupots', 'smpl24')


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.evaluation.config import EvaluationConfig
    from romp_ros.evaluation.errors import EvaluationInputError
    from romp_ros.evaluation.runner import EvaluateJob, run_evaluation

    try:
        config = EvaluationConfig(protocol=args.protocol,
                                  stamp_tolerance_s=args.stamp_tolerance,
                                  iou_threshold=args.iou_threshold)
        source = _source(args)
    except ValueError as err:
        raise EvaluationInputError(f'invalid flags: {err}') from err
    job = EvaluateJob(source=source, out_dir=args.out, bags=tuple(args.bag or ()),
                      dataset=args.dataset, gt_topic=args.gt_topic or '', config=config,
                      plots=not args.no_plots, progress=not args.quiet)
    report = run_evaluation(job)
    if report is not None:
        s = report.summary
        LOG.info('%d frames (%d scored); F1 %s; MPJPE %s mm; PA-MPJPE %s mm -> %s',
                 s['frames']['total'], s['frames']['scored'], _num(s['detection']['f1']),
                 _num(s['mpjpe_mm']), _num(s['pa_mpjpe_mm']), args.out)
    return 0


def _source(args: argparse.Namespace):
    from romp_ros.evaluation.runner import PredictionSource
    if args.pred_topic:
        return PredictionSource('topic', topic=args.pred_topic)
    if args.pred_npz:
        return PredictionSource('npz', npz=args.pred_npz)
    if args.models_dir is None:
        from romp_ros.evaluation.errors import EvaluationInputError
        raise EvaluationInputError(
            'no predictions: give --pred-topic TOPIC (recorded in the bag), --pred-npz FILE '
            '(a `romp-ros infer` output), or run a model with --models-dir DIR [--checkpoint '
            'CKPT]')
    estimator = config_from_args(args, fov_deg=args.fov, color_order='rgb',
                                 compute_verts=not args.no_verts)
    fixed = fixed_camera(args)
    return PredictionSource('model', estimator=estimator, image_topic=args.image_topic or '',
                            camera_info_topic=args.camera_info_topic or '', track=args.track,
                            batch_size=args.batch_size,
                            camera=fixed.intrinsics or fixed.calibration,
                            camera_model=args.camera_model or '')


def _num(value) -> str:
    return 'n/a' if value is None else f'{value:.3f}'


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'evaluate', help='score predictions against ground truth (bags or a dataset)',
        description='Compare predicted people with ground truth: recorded predictions (a '
                    'PersonMeshArray topic in the bag, or a `romp-ros infer` .npz) or a '
                    "model run on the bag's images / the dataset's images. Writes "
                    'report.json, report.md, frames.jsonl and plots into --out. Under torchrun '
                    'the bags are shared out across the processes.')
    gt = p.add_argument_group('ground truth')
    gt.add_argument('--bag', type=Path, action='append', metavar='BAG',
                    help='a rosbag2 folder (with metadata.yaml) or a .mcap / .db3 file; give '
                         'it several times for several bags (each one a sequence)')
    gt.add_argument('--gt-topic', metavar='TOPIC',
                    help='with --bag: the ground truth, a romp_ros/PersonMeshArray topic')
    gt.add_argument('--dataset', type=Path, metavar='DIR',
                    help='a dataset folder in the generic format (docs/dataset_format.md) '
                         'instead of bags')
    pred = p.add_argument_group('recorded predictions')
    pred.add_argument('--pred-topic', metavar='TOPIC',
                      help="a romp_ros/PersonMeshArray topic in the bag (e.g. a recording of "
                           "the node's people topic)")
    pred.add_argument('--pred-npz', type=Path, metavar='FILE',
                      help='a `romp-ros infer` .npz: paired by stamp with bags, by image path '
                           'with a dataset')
    model = p.add_argument_group('running a model instead (needs --models-dir)')
    add_model_flags(model, models_dir_required=False)
    model.add_argument('--image-topic', metavar='TOPIC',
                       help="bags: the image topic (default: the bag's only image topic)")
    model.add_argument('--camera-info-topic', metavar='TOPIC',
                       help='bags: the CameraInfo topic whose camera solves the translations '
                            "(default: any CameraInfo with the image's frame_id)")
    add_camera_flags(model.add_mutually_exclusive_group())
    add_camera_model_flag(model)
    model.add_argument('--fov', type=float, default=60.0, metavar='DEG',
                       help='field of view assumed for images without a calibrated camera')
    model.add_argument('--batch-size', type=int, default=1,
                       help='images per network call (larger is faster on a GPU)')
    model.add_argument('--track', action='store_true',
                       help='track people across frames (ids for the tracking metrics)')
    model.add_argument('--no-verts', action='store_true',
                       help='skip mesh vertices (faster; no PVE)')
    score = p.add_argument_group('scoring')
    score.add_argument('--protocol', choices=PROTOCOL_NAMES, default='smpl24',
                       help='joint set and headline metrics (docs/evaluation.md): smpl24 '
                            '(default) / 3dpw_24: 24 SMPL joints; 3dpw_14: the 14 LSP-order '
                            'H36M-regressor joints; mupots: PCK3D / AUC; agora: errors / F1')
    score.add_argument('--stamp-tolerance', type=float, default=0.0, metavar='SEC',
                       help='pair each ground-truth frame with the nearest prediction within '
                            'SEC seconds (default 0: the stamps must be equal)')
    score.add_argument('--iou-threshold', type=float, default=0.1, metavar='IOU',
                       help='least box IoU of a ground-truth / prediction pair (AGORA: 0.1)')
    p.add_argument('--out', type=Path, required=True, metavar='DIR',
                   help='output folder: report.json, report.md, frames.jsonl, eval_*.png')
    p.add_argument('--no-plots', action='store_true', help='do not draw the plots')
    p.set_defaults(func=run)
