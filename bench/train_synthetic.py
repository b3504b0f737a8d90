"""The real measure of `romp-ros train`: train ROMP on synthetic renders, score held-out renders.

1. Synthetic datasets (``romp-ros synth``): a training set and a held-out set with another
   seed (made once, reused).
2. The untrained network (the run's step-0 weights) scored on the held-out set with
   ``romp-ros evaluate --dataset``: at the model's detection threshold, and with every center
   taken (top-K, threshold -1) so that its PA-MPJPE on matched people exists at all.
3. ``romp-ros train`` for ``--steps`` optimizer steps, validating on the held-out set.
4. The trained checkpoint scored the same way; learning curves and the table go to
   docs/training.md (between markers) and docs/images/training_*.png.

Matching is the evaluation's: Hungarian on the mean 2D keypoint distance, gated by box
IoU >= 0.1 (docs/evaluation.md). Aim (issue 8): detection F1 >= 0.8 and PA-MPJPE at most half
the untrained model's.

    python bench/train_synthetic.py --backbone efficientnet_v2_s --steps 3000   # CPU, hours
    python bench/train_synthetic.py --backbone hrnet32 --input-size 512 --device cuda ...
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
from pathlib import Path
import platform
import subprocess
import sys
import time

import torch

LOG = logging.getLogger('bench.train_synthetic')
REPO = Path(__file__).resolve().parents[1]
DOC = REPO / 'docs' / 'training.md'
IMAGES = REPO / 'docs' / 'images'


def romp_ros(*args: str) -> None:
    """Run `python -m romp_ros.cli ARGS` (progress bars on stderr)."""
    cmd = [sys.executable, '-m', 'romp_ros.cli', '--quiet', *map(str, args)]
    LOG.info('$ romp-ros %s', ' '.join(map(str, args)))
    subprocess.run(cmd, check=True)


def make_datasets(root: Path, size: int, train_frames: int, val_frames: int) -> tuple[Path, Path]:
    common = ['--people', '1-4', '--size', f'{size}x{size}', '--distance', '2-10',
              '--distortion-prob', '0', '--image-format', 'jpg']
    train, val = root / 'synth_train', root / 'synth_val'
    if not (train / 'dataset.json').exists():
        romp_ros('synth', '--out', train, '--frames', train_frames, '--seed', 0,
                 '--name', 'synth_train', *common)
    if not (val / 'dataset.json').exists():
        romp_ros('synth', '--out', val, '--frames', val_frames, '--seed', 1000,
                 '--name', 'synth_val', *common)
    return train, val


def untrained_checkpoint(run_config: dict, path: Path) -> Path:
    """The network exactly as a run starts (seeded init, heads near zero), in our layout."""
    from romp_ros.train.config import load_train_config
    from romp_ros.train.model_setup import build_training_model
    config = load_train_config(None, **run_config)
    torch.manual_seed(config.seed)
    model = build_training_model(config.model)
    torch.save({'model': model.state_dict(),
                'config': {'model': {'name': config.model.name,
                                     'backbone': config.model.backbone,
                                     'input_size': config.model.input_size}}}, path)
    return path


def evaluate(checkpoint: Path, val: Path, out: Path, backbone: str, device: str,
             thresh: float | None) -> dict:
    args = ['evaluate', '--dataset', val, '--checkpoint', checkpoint, '--models-dir',
            val / 'body_model', '--model', 'romp', '--backbone', backbone, '--device', device,
            '--out', out]
    if thresh is not None:
        args += ['--center-thresh', str(thresh)]
    romp_ros(*args)
    return json.loads((out / 'report.json').read_text())


def plot_curves(run: Path, out: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    from romp_ros.train.run_log import read_log
    rows = read_log(run)
    train_rows = [r for r in rows if 'loss' in r]
    val_rows = [r for r in rows if 'val/f1' in r]
    steps = np.array([r['step'] for r in train_rows])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    window = max(len(steps) // 50, 1)

    def smooth(values):
        values = np.asarray(values, dtype=float)
        kernel = np.ones(window) / window
        return np.convolve(values, kernel, mode='valid'), steps[window - 1:]

    for key in ('loss', 'center', 'keypoints_2d', 'joints_3d', 'pose'):
        if key in train_rows[0]:
            values, at = smooth([r[key] for r in train_rows])
            axes[0].plot(at, values, label=key)
    axes[0].set_yscale('log')
    axes[0].set_xlabel('step')
    axes[0].set_title('training loss terms (weighted, smoothed)')
    axes[0].legend()
    if val_rows:
        vs = [r['step'] for r in val_rows]
        axes[1].plot(vs, [r['val/f1'] for r in val_rows], 'o-', label='F1')
        axes[1].plot(vs, [r['val/precision'] for r in val_rows], '.--', label='precision')
        axes[1].plot(vs, [r['val/recall'] for r in val_rows], '.--', label='recall')
        axes[1].set_ylim(0, 1.02)
        axes[1].set_title('held-out detection')
        axes[1].set_xlabel('step')
        axes[1].legend()
        axes[2].plot(vs, [r['val/mpjpe_mm'] for r in val_rows], 'o-', label='MPJPE')
        axes[2].plot(vs, [r['val/pa_mpjpe_mm'] for r in val_rows], 'o-', label='PA-MPJPE')
        axes[2].set_title('held-out 3D error (mm, matched people)')
        axes[2].set_xlabel('step')
        axes[2].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def row(name: str, report: dict) -> str:
    det, people = report['detection'], report['people']

    def fmt(value, digits=1):
        return '-' if value is None else f'{value:.{digits}f}'
    return (f"| {name} | {fmt(det['precision'], 3)} | {fmt(det['recall'], 3)} | "
            f"{fmt(det['f1'], 3)} | {fmt(report['mpjpe_mm'])} | {fmt(report['pa_mpjpe_mm'])} | "
            f"{people['matched']}/{people['ground_truth']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', type=Path, default=REPO / 'bench_output' / 'train_synthetic')
    parser.add_argument('--backbone', default='efficientnet_v2_s',
                        choices=('efficientnet_v2_s', 'resnet50', 'hrnet32'))
    parser.add_argument('--input-size', type=int, default=256)
    parser.add_argument('--image-size', type=int, default=256, help='synthetic frames, px')
    parser.add_argument('--train-frames', type=int, default=1600)
    parser.add_argument('--val-frames', type=int, default=150)
    parser.add_argument('--steps', type=int, default=3000)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--lr', type=float, default=3e-4)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--doc', type=Path, default=DOC)
    parser.add_argument('--resume', action='store_true', help='continue an interrupted run')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args.root.mkdir(parents=True, exist_ok=True)
    train, val = make_datasets(args.root, args.image_size, args.train_frames, args.val_frames)
    name = f'romp_{args.backbone}_{args.input_size}'
    run = args.root / name
    overrides = [f'model.backbone={args.backbone}', f'model.input_size={args.input_size}',
                 f'data.batch_size={args.batch_size}', f'data.num_workers={args.workers}',
                 f'optim.lr={args.lr}', 'optim.warmup_steps=100', f'optim.max_steps={args.steps}',
                 'logging.log_every=10', 'logging.checkpoint_every=250',
                 'logging.image_every=500', f'validation.path={val}',
                 'validation.every=250', 'validation.max_frames=100']
    from romp_ros.train.config import load_train_config
    from romp_ros.train.config_mapping import to_mapping
    config = load_train_config(REPO / 'config' / 'train' / 'synthetic_cpu.yaml', overrides,
                               {'data.sources': [{'path': str(train)}], 'device': args.device})
    untrained = untrained_checkpoint(to_mapping(config), args.root / f'{name}_untrained.pth')
    eval_device = 'cuda:0' if args.device == 'cuda' else args.device
    before = evaluate(untrained, val, args.root / f'{name}_eval_untrained', args.backbone,
                      eval_device, None)
    before_all = evaluate(untrained, val, args.root / f'{name}_eval_untrained_topk',
                          args.backbone, eval_device, -1.0)
    started = time.time()
    train_args = ['train', '--config', REPO / 'config' / 'train' / 'synthetic_cpu.yaml',
                  '--data', train, '--out', run, '--device', args.device]
    for item in overrides:
        train_args += ['--set', item]
    if args.resume and (run / 'checkpoints' / 'last.pth').exists():
        train_args = ['train', '--out', run, '--resume', '--max-steps', str(args.steps)]
    romp_ros(*train_args)
    hours = (time.time() - started) / 3600
    best = run / 'checkpoints' / 'best.pth'
    last = run / 'checkpoints' / 'last.pth'
    after = evaluate(last, val, args.root / f'{name}_eval_last', args.backbone, eval_device,
                     None)
    after_best = evaluate(best, val, args.root / f'{name}_eval_best', args.backbone,
                          eval_device, None) if best.exists() else None
    IMAGES.mkdir(parents=True, exist_ok=True)
    plot = plot_curves(run, IMAGES / f'training_{name}.png',
                       f'ROMP {args.backbone} at {args.input_size} px on synthetic renders')
    device_name = (torch.cuda.get_device_name(0) if args.device == 'cuda'
                   else f'{platform.processor() or platform.machine()} CPU, '
                        f'{torch.get_num_threads()} threads')
    lines = [
        f'{datetime.date.today()}: ROMP / {args.backbone}, input {args.input_size} px, '
        f'{args.steps} steps of batch {args.batch_size} on {device_name}: '
        f'{hours:.2f} h of training. Training set {args.train_frames} renders (seed 0), '
        f'held-out {args.val_frames} renders (seed 1000), {args.image_size} px.', '',
        '| model | precision | recall | F1 | MPJPE mm | PA-MPJPE mm | matched |',
        '|---|---|---|---|---|---|---|',
        row('untrained, default threshold', before),
        row('untrained, every center (threshold -1)', before_all),
        row(f'trained, last ({args.steps} steps)', after)]
    if after_best is not None:
        lines.append(row('trained, best validation', after_best))
    lines += ['', f'![learning curves](images/{plot.name})']
    marker = f'train-synthetic:{name}'
    begin, end = f'<!-- {marker}:begin -->', f'<!-- {marker}:end -->'
    text = args.doc.read_text(encoding='utf-8') if args.doc.exists() else '# Training\n'
    block = begin + '\n' + '\n'.join(lines) + '\n' + end
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + '\n\n' + block + '\n'
    args.doc.write_text(text, encoding='utf-8')
    LOG.info('\n'.join(lines))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    raise SystemExit(main())
