"""Accuracy cost of each fast path against the default fp32 torch path, same weights.

    python bench/runtime_accuracy.py              # seeded weights -> docs/performance.md
    python bench/runtime_accuracy.py --no-write   # only log it
    python bench/runtime_accuracy.py --trained-checkpoint RUN/checkpoints/best.pth \
        --dataset VAL --calibration TRAIN/images  # trained weights, scored against labels

Every variant runs the whole estimator (the same pre- and post-processing; only the network
call differs) on the same RGB frames: the oracle tests' photos and 1280x720 frame plus a few
more bundled photos. People are matched to the torch fp32 ones by their 2D pelvis (Hungarian,
at most 5 % of the image diagonal apart). Reported per variant: people found (missed / extra
against torch), root-relative 3D joint error of matched people (mean and max, mm), relative
translation error (median and max, %) and the mean 2D joint error (px).

int8: the maps graph statically quantised (``romp-ros export --int8-calibration``: the
package's ``quantize_int8``) with min / max ranges from other frames than the measured ones.

Seeded weights are hand-wired and far more sensitive to rounding than trained ones, so the
second mode measures weights trained by ``bench/train_synthetic.py`` on its validation set: the
same differences from torch fp32 on the dataset's frames, and each variant scored against the
labels by ``romp-ros evaluate`` (detection F1, MPJPE, PA-MPJPE, root error).
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
)
from scipy.optimize import linear_sum_assignment
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.cli.runtime_compare import int8_variants
from romp_ros.core import Estimator, EstimatorConfig
from romp_ros.core.runtime.int8_quantization import read_calibration_images

LOG = logging.getLogger('bench.runtime_accuracy')
DOC_SECTION = 'runtime-accuracy'
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


def _variants(base: EstimatorConfig, tmp: Path, calibration: list[np.ndarray] | None
              ) -> dict[str, EstimatorConfig]:
    """The fast paths of one checkpoint; int8 (``int8_variants``) when calibration frames are
    given."""
    variants = {
        'onnxruntime fp32': base.replace(runtime='onnxruntime'),
        'openvino fp32': base.replace(runtime='openvino'),
        'openvino bf16': base.replace(runtime='openvino', precision='bf16'),
    }
    for int8 in int8_variants(base, calibration, tmp) if calibration is not None else ():
        variants[int8.label.removeprefix('ours ')] = base.replace(runtime=int8.runtime,
                                                                  checkpoint=int8.checkpoint)
    return variants


def compare(base: EstimatorConfig, variants: dict[str, EstimatorConfig],
            frames: dict[str, np.ndarray]) -> dict[str, Tally]:
    """Each variant's differences from ``base`` on the same frames."""
    base_est = Estimator(base)
    base_results = {name: base_est.predict([f])[0] for name, f in frames.items()}
    del base_est
    tallies = {}
    for label, config in variants.items():
        est = Estimator(config)
        tally = Tally()
        for name, frame in frames.items():
            _accumulate(tally, base_results[name], est.predict([frame])[0], frame.shape)
        tallies[label] = tally
        LOG.info('%s: %d/%d people matched', label, tally.matched, tally.baseline_people)
        del est
    return tallies


def run(models: list[str], root: Path, with_int8: bool) -> list[tuple[str, str, Tally]]:
    """The seeded-weights table rows."""
    setup = SeededSetup(root).prepare()
    frames = eval_frames()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            base = EstimatorConfig(model=model, checkpoint=str(setup.checkpoint(model)),
                                   models_dir=str(setup.models_dir), device='cpu')
            variants = _variants(base, Path(tmp), calibration_frames() if with_int8 else None)
            rows += [(model, label, tally)
                     for label, tally in compare(base, variants, frames).items()]
    return rows


def _dataset_frames(dataset: Path, count: int) -> dict[str, np.ndarray]:
    import cv2
    paths = sorted((dataset / 'images').glob('*.jpg'))
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(count, len(paths))).astype(int)]
    return {p.name: np.ascontiguousarray(cv2.imread(str(p))[:, :, ::-1]) for p in paths}


def _score(config: EstimatorConfig, backbone: str, dataset: Path, out: Path) -> dict:
    """``romp-ros evaluate --dataset`` of one variant; its report.json."""
    import json

    from romp_ros.cli.main import main as romp_ros
    status = romp_ros(['--quiet', 'evaluate', '--dataset', str(dataset), '--checkpoint',
                       config.checkpoint, '--models-dir', config.models_dir, '--model',
                       config.model, '--backbone', backbone, '--runtime', config.runtime,
                       '--precision', config.precision, '--no-plots', '--out', str(out)])
    if status != 0:
        raise RuntimeError(f'romp-ros evaluate failed for {config.runtime} {config.precision}')
    return json.loads((out / 'report.json').read_text())


def run_trained(checkpoint: Path, backbone: str, dataset: Path, calibration: Path,
                frames: int) -> str:
    """The trained-weights table: differences from torch fp32 and scores against labels."""
    from romp_ros.core.nets.checkpoint import read_checkpoint
    input_size = read_checkpoint(checkpoint)[1].input_size or 512
    base = EstimatorConfig(model='romp', backbone=backbone, checkpoint=str(checkpoint),
                           models_dir=str(dataset / 'body_model'), device='cpu',
                           input_size=input_size)
    with tempfile.TemporaryDirectory() as tmp:
        variants = _variants(base, Path(tmp), read_calibration_images(calibration, 64))
        tallies = compare(base, variants, _dataset_frames(dataset, frames))
        scores = {label: _score(config, backbone, dataset, Path(tmp) / f'eval{i}')
                  for i, (label, config) in enumerate(
                      {'torch fp32 (baseline)': base, **variants}.items())}
    lines = ['| runtime | F1 | precision / recall | MPJPE mm | PA-MPJPE mm | root error mm '
             '| joints vs torch mean / max mm | people vs torch (matched / missed / extra) |',
             '|---|---|---|---|---|---|---|---|']
    for label, report in scores.items():
        det = report['detection']
        tally = tallies.get(label)
        diff = ('-' if tally is None or not tally.joint_errors_mm else
                f'{np.mean(tally.joint_errors_mm):.2f} / {np.max(tally.joint_errors_mm):.2f}')
        people = ('-' if tally is None else f'{tally.matched} / '
                  f'{tally.baseline_people - tally.matched} / {tally.people - tally.matched}')
        lines.append(f"| {label} | {det['f1']:.3f} | {det['precision']:.3f} / "
                     f"{det['recall']:.3f} | {report['mpjpe_mm']:.1f} | "
                     f"{report['pa_mpjpe_mm']:.1f} | {report['root_error_mm']:.0f} | {diff} | "
                     f'{people} |')
    n_frames = min(frames, len(list((dataset / 'images').glob('*.jpg'))))
    scored = scores['torch fp32 (baseline)']['frames']['scored']
    return (f'romp/{backbone} trained by bench/train_synthetic.py ({checkpoint.name}, '
            f'{input_size} px), scored on {dataset.name} ({scored} frames); int8 calibrated '
            f'on 64 frames of {calibration.parent.name}; differences '
            f'from torch fp32 on {n_frames} of the frames; torch {torch.__version__}.\n\n'
            + '\n'.join(lines))


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
    parser.add_argument('--trained-checkpoint', type=Path, default=None,
                        help='trained ROMP weights (bench/train_synthetic.py): score every '
                             'variant on --dataset instead of the seeded-weights table')
    parser.add_argument('--backbone', default='hrnet32', help='backbone of --trained-checkpoint')
    parser.add_argument('--dataset', type=Path, help='labelled validation dataset folder')
    parser.add_argument('--calibration', type=Path, help='int8 calibration images (a folder)')
    parser.add_argument('--frames', type=int, default=50,
                        help='dataset frames for the differences from torch fp32')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.set_num_threads(args.threads)
    if args.trained_checkpoint is not None:
        if args.dataset is None or args.calibration is None:
            parser.error('--trained-checkpoint needs --dataset and --calibration')
        text = run_trained(args.trained_checkpoint, args.backbone, args.dataset,
                           args.calibration, args.frames)
        LOG.info('%s\n(load average %s)', text, load_average())
        if not args.no_write:
            name = f'runtime-accuracy-trained-{args.backbone}'
            write_doc_section(PERFORMANCE_DOC, text, name=name)
        return 0
    rows = run(args.models, args.root, not args.no_int8)
    frames = eval_frames()
    text = (f'{len(frames)} frames ({", ".join(frames)}), seeded weights, '
            f'torch {torch.__version__}; differences from the default torch fp32 path.\n\n'
            + table(rows))
    LOG.info('%s\n(load average %s)', text, load_average())
    if not args.no_write:
        write_doc_section(PERFORMANCE_DOC, text, name=DOC_SECTION)
        LOG.info('updated %s', PERFORMANCE_DOC)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
