"""`romp-ros train`: train or fine-tune ROMP / BEV; one process, or many under torchrun."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.train.config import load_train_config
    from romp_ros.train.loop import train

    values: dict = {}
    if args.data:
        values['data.sources'] = [{'path': str(path)} for path in args.data]
    for flag, key in ((args.init, 'model.init_checkpoint'), (args.models_dir, 'data.models_dir'),
                      (args.device, 'device')):
        if flag is not None:
            values[key] = str(flag)
    config = load_train_config(args.config, list(args.set or []), values)
    if not args.resume and not config.data.sources:
        from romp_ros.train.config import TrainConfigError
        raise TrainConfigError('no training data: give --data DIR (a dataset folder, e.g. from '
                               '`romp-ros synth`) or data.sources in the config')
    summary = train(config, args.out, resume=args.resume, max_steps=args.max_steps,
                    progress=not args.quiet)
    LOG.info('%s: %d steps, last loss %.4g, %d process(es)', summary.run_dir, summary.steps,
             summary.last_loss, summary.world_size)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'train', help='train or fine-tune ROMP / BEV (torchrun for several processes)',
        description='Train a ROMP or BEV network on synthetic renders and real datasets. One '
                    'process by default; `torchrun --nproc_per_node N -m romp_ros.cli train '
                    '...` trains with DistributedDataParallel (the global batch is split over '
                    'the processes). RUN_DIR receives config.yaml, log.jsonl, TensorBoard '
                    'events and checkpoints/last.pth (best.pth with validation). See '
                    'docs/training.md.')
    p.add_argument('--config', type=Path, default=None, metavar='YAML',
                   help='training configuration (config/train/*.yaml); default: built-in '
                        'defaults')
    p.add_argument('--data', type=Path, action='append', default=None, metavar='DIR',
                   help='a training dataset (repeatable); replaces data.sources of the config '
                        '(use the config for sampling weights)')
    p.add_argument('--out', type=Path, required=True, metavar='RUN_DIR',
                   help='run folder; must not hold a run unless --resume')
    p.add_argument('--max-steps', type=int, default=None, metavar='N',
                   help='stop after N optimizer steps in total, counted from 1 (with --resume: '
                        'continue up to this total); default optim.max_steps. The learning-'
                        'rate schedule always spans optim.max_steps, so a run stopped and '
                        'resumed is the same run')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in RUN_DIR from checkpoints/last.pth, exactly '
                        '(same configuration, data order and random state)')
    p.add_argument('--init', type=Path, default=None, metavar='CKPT',
                   help='start from these network weights (an official ROMP/BEV file or a '
                        'romp_ros checkpoint): fine-tuning')
    p.add_argument('--models-dir', type=Path, default=None, metavar='DIR',
                   help='prepared body models for the SMPL labels (default: the one the '
                        'dataset ships with)')
    p.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default=None,
                   help='default: the config (auto = CUDA when available); under torchrun '
                        'each process takes the GPU of its LOCAL_RANK')
    p.add_argument('--set', action='append', default=None, metavar='KEY=VALUE',
                   help='override any config key by its dotted path, e.g. --set optim.lr=3e-4 '
                        '--set model.freeze_backbone=true (repeatable)')
    p.set_defaults(func=run)
