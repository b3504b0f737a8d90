"""Full-pipeline speed of every runtime beside the reference's torch and ONNX Runtime paths.

    python bench/runtime_speed.py                    # tables -> docs/performance.md
    python bench/runtime_speed.py --threads 2 --no-write

The oracle tests' 1280x720 frame (two photos side by side), seeded weights in the official
layout, the same synthetic body model on both sides. ROMP-HRNet-32 and BEV run beside
simple-romp's own pipelines (its ONNX path exists for ROMP only); the other two ROMP backbones
have no reference and are compared among runtimes. Variants are timed round-robin in one
process (romp_ros/cli/runtime_compare.py, the code of `romp-ros bench --compare-reference`);
peak RSS comes from a fresh process per variant.
"""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
import platform
import tempfile

from runtime_fixtures import (
    PERFORMANCE_DOC,
    SeededSetup,
    calibration_frames,
    frame_1280x720,
    load_average,
)
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.cli.runtime_compare import compare, default_variants, int8_variants, table_header
from romp_ros.core import Estimator, EstimatorConfig

LOG = logging.getLogger('bench.runtime_speed')
MODELS = (('romp', 'hrnet32'), ('bev', 'hrnet32'), ('romp', 'resnet50'),
          ('romp', 'efficientnet_v2_s'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', type=int, default=2, help='torch / runtime threads')
    parser.add_argument('--repeats', type=int, default=5, help='round-robin rounds')
    parser.add_argument('--models', nargs='+', default=[f'{m}/{b}' for m, b in MODELS],
                        help='model/backbone pairs')
    parser.add_argument('--root', type=Path, default=Path(tempfile.gettempdir()) / 'romp_bench',
                        help='where the synthetic body model and seeded weights are cached')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-RSS processes')
    parser.add_argument('--no-int8', action='store_true',
                        help='skip the int8 variants (quantised with 10 calibration photos)')
    parser.add_argument('--no-write', action='store_true', help='do not update the docs')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    torch.set_num_threads(args.threads)
    setup = SeededSetup(args.root).prepare()
    frame = frame_1280x720()
    load_before = load_average()
    rows = []
    for pair in args.models:
        model, backbone = pair.split('/')
        config = EstimatorConfig(model=model, backbone=backbone, device='cpu',
                                 checkpoint=str(setup.checkpoint(model, backbone)),
                                 models_dir=str(setup.models_dir))
        variants = default_variants(model, 'cpu', reference=backbone == 'hrnet32', bf16=True)
        with tempfile.TemporaryDirectory(prefix='romp_bench_int8_') as tmp:
            if not args.no_int8:
                # seeded weights' int8 maps find spurious people: cap them at the fp32 count,
                # so that every row does the same post-processing work (the issue's "same
                # people count"; the accuracy of int8 is measured on trained weights)
                people = Estimator(config.replace(color_order='rgb')).predict([frame])[0]
                variants += int8_variants(config, calibration_frames(), Path(tmp),
                                          max_people=max(1, people.num_people))
            result = compare(config, frame, variants, repeats=args.repeats,
                             memory=not args.no_memory)
        rows.extend(result.table_rows())
        LOG.info('\n'.join(result.table_rows()))
    text = '\n'.join([
        f'{datetime.date.today().isoformat()}, CPU {platform.machine()} (2 cores, AMX), '
        f'{args.threads} threads, torch {torch.__version__}; 1280x720 frame, seeded weights; '
        f'median of {args.repeats} round-robin rounds; int8 calibrated on 10 other photos, '
        f'people capped at the fp32 count; 1-minute load average '
        f'{load_before} before / {load_average()} after (other jobs shared the machine).',
        '', *table_header(), *rows])
    LOG.info('%s', text)
    if not args.no_write:
        # one section per thread count: 1 and 2 threads behave differently on a busy machine
        name = f'runtime-speed-{args.threads}t'
        write_doc_section(PERFORMANCE_DOC, text, name=name)
        LOG.info('updated %s', PERFORMANCE_DOC)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
