"""Accuracy cost of each fast path against the default fp32 torch path, same weights.

    python bench/runtime_accuracy.py              # table -> docs/performance.md
    python bench/runtime_accuracy.py --no-write   # only log it

Every variant runs the whole estimator (the same pre- and post-processing; only the network
call differs) on the same RGB frames: the oracle tests' photos and 1280x720 frame plus a few
more bundled photos. People are matched to the torch fp32 ones by their 2D pelvis (Hungarian,
at most 5 % of the image diagonal apart). Reported per variant: people found (missed / extra
against torch), root-relative 3D joint error of matched people (mean and max, mm), relative
translation error (median and max, %) and the mean 2D joint error (px).

int8: the maps graph statically quantised (bench/int8_quantization.py) with min / max ranges
from 10 other photos.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import logging
from pathlib import Path
import tempfile

import numpy as np
from runtime_fixtures import (
    PERFORMANCE_DOC,
    SeededSetup,
    calibration_frames,
    eval_frames,
    load_average,
    write_section,
)
from scipy.optimize import linear_sum_assignment
import torch

from romp_ros.core import Estimator, EstimatorConfig
from romp_ros.core.runtime.onnx_graphs import export_graphs

LOG = logging.getLogger('bench.runtime_accuracy')
BEGIN, END = '<!-- runtime-accuracy:begin -->', '<!-- runtime-accuracy:end -->'
MATCH_FRACTION = 0.05


@dataclass
class Tally:
    """Running sums of one variant's differences from the baseline."""

    baseline_people: int = 0
    people: int = 0
    matched: int = 0
    joint_errors_mm: list = None
    trans_rel: list = None
    pj2d_px: list = None

    def __post_init__(self):
        self.joint_errors_mm, self.trans_rel, self.pj2d_px = [], [], []


def _match(base, other, diagonal: float) -> tuple[np.ndarray, np.ndarray]:
    if base.num_people == 0 or other.num_people == 0:
        return np.zeros(0, int), np.zeros(0, int)
    cost = np.linalg.norm(base.pj2d_org[:, None, 0] - other.pj2d_org[None, :, 0], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] < MATCH_FRACTION * diagonal
    return rows[ok], cols[ok]


def _accumulate(tally: Tally, base, other, image_shape) -> None:
    diagonal = float(np.hypot(*image_shape[:2]))
    rows, cols = _match(base, other, diagonal)
    tally.baseline_people += base.num_people
    tally.people += other.num_people
    tally.matched += len(rows)
    if not len(rows):
        return
    jb = base.joints[rows, :24] - base.joints[rows, :1]  # (M, 24, 3) root-relative
    jo = other.joints[cols, :24] - other.joints[cols, :1]
    tally.joint_errors_mm.extend((np.linalg.norm(jb - jo, axis=-1).mean(axis=1) * 1e3).tolist())
    tb, to = base.cam_trans[rows], other.cam_trans[cols]
    tally.trans_rel.extend((np.linalg.norm(tb - to, axis=1) / np.linalg.norm(tb, axis=1)
                            ).tolist())
    tally.pj2d_px.extend(np.linalg.norm(base.pj2d_org[rows, :24] - other.pj2d_org[cols, :24],
                                        axis=-1).mean(axis=1).tolist())


def _variants(model: str, setup: SeededSetup, tmp: Path, with_int8: bool
              ) -> dict[str, EstimatorConfig]:
    ckpt = setup.checkpoint(model)
    base = EstimatorConfig(model=model, checkpoint=str(ckpt), models_dir=str(setup.models_dir),
                           device='cpu')
    variants = {
        'torch fp32 (baseline)': base,
        'onnxruntime fp32': base.replace(runtime='onnxruntime'),
        'openvino fp32': base.replace(runtime='openvino'),
        'openvino bf16': base.replace(runtime='openvino', precision='bf16'),
    }
    if with_int8:
        from int8_quantization import quantize_maps_graph

        from romp_ros.core.nets.checkpoint import load_into, read_checkpoint
        from romp_ros.core.nets.factory import build_model
        net = build_model(model)
        load_into(net, read_checkpoint(ckpt)[0])
        graphs = quantize_maps_graph(export_graphs(net.eval(), model, 'hrnet32', 512),
                                     calibration_frames())
        path = tmp / f'{model}_int8.onnx'
        graphs.save(path)
        variants['onnxruntime int8'] = base.replace(runtime='onnxruntime', checkpoint=str(path))
        variants['openvino int8'] = base.replace(runtime='openvino', checkpoint=str(path))
    return variants


def run(models: list[str], root: Path, with_int8: bool) -> list[tuple[str, str, Tally]]:
    setup = SeededSetup(root).prepare()
    frames = eval_frames()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            variants = _variants(model, setup, Path(tmp), with_int8)
            base_est = Estimator(variants.pop('torch fp32 (baseline)'))
            base_results = {name: base_est.predict([f])[0] for name, f in frames.items()}
            del base_est
            for label, config in variants.items():
                est = Estimator(config)
                tally = Tally()
                for name, frame in frames.items():
                    _accumulate(tally, base_results[name], est.predict([frame])[0], frame.shape)
                rows.append((model, label, tally))
                LOG.info('%s %s: %d/%d people matched', model, label, tally.matched,
                         tally.baseline_people)
                del est
    return rows


def table(rows) -> str:
    lines = ['| model | runtime | people (torch) | matched | missed | extra '
             '| joints mean / max mm | translation median / max % | 2D mean px |',
             '|---|---|---|---|---|---|---|---|---|']
    for model, label, t in rows:
        joints = (f'{np.mean(t.joint_errors_mm):.2f} / {np.max(t.joint_errors_mm):.2f}'
                  if t.joint_errors_mm else '-')
        trans = (f'{np.median(t.trans_rel) * 100:.3f} / {np.max(t.trans_rel) * 100:.2f}'
                 if t.trans_rel else '-')
        pj = f'{np.mean(t.pj2d_px):.2f}' if t.pj2d_px else '-'
        lines.append(f'| {model} | {label} | {t.people} ({t.baseline_people}) | {t.matched} | '
                     f'{t.baseline_people - t.matched} | {t.people - t.matched} | {joints} | '
                     f'{trans} | {pj} |')
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=['romp', 'bev'])
    parser.add_argument('--root', type=Path, default=Path(tempfile.gettempdir()) / 'romp_bench',
                        help='where the synthetic body model and seeded weights are cached')
    parser.add_argument('--no-int8', action='store_true', help='skip the int8 variants')
    parser.add_argument('--threads', type=int, default=1, help='torch / runtime threads')
    parser.add_argument('--no-write', action='store_true', help='do not update the docs')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.set_num_threads(args.threads)
    rows = run(args.models, args.root, not args.no_int8)
    frames = eval_frames()
    text = (f'{len(frames)} frames ({", ".join(frames)}), seeded weights, '
            f'torch {torch.__version__}; differences from the default torch fp32 path.\n\n'
            + table(rows))
    LOG.info('%s\n(load average %s)', text, load_average())
    if not args.no_write:
        write_section(PERFORMANCE_DOC, BEGIN, END, text)
        LOG.info('updated %s', PERFORMANCE_DOC)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
