"""`romp-ros bench`: time the pipeline stages, or compare runtimes and the reference."""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
import tempfile

from romp_ros.cli.model_flags import add_model_flags, config_from_args

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.compare_reference or args.compare_runtimes:
        return _run_comparison(args)
    from romp_ros.cli.pipeline_bench import run_pipeline_bench
    report = run_pipeline_bench(config_from_args(args), frames=args.frames,
                                height=args.height, width=args.width, batch=args.batch_size)
    for line in report.lines():
        LOG.info('%s', line)
    return 0


def _frame(args: argparse.Namespace):
    import numpy as np
    if args.image is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 255, size=(args.height, args.width, 3), dtype=np.uint8)
    from romp_ros.cli.input_sources import InputError
    try:
        import cv2
    except ImportError as err:
        raise InputError("--image needs OpenCV: pip install 'romp-ros[io]'") from err
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f'--image {args.image}: not a readable image file')
    return np.ascontiguousarray(image[:, :, ::-1])


def _run_comparison(args: argparse.Namespace) -> int:
    import torch

    from romp_ros.cli.doc_section import write_doc_section
    from romp_ros.cli.runtime_compare import (
        compare,
        default_variants,
        device_name,
        int8_variants,
        table_header,
    )
    config = config_from_args(args)
    if config.runtime != 'torch':
        LOG.info('--runtime is ignored with --compare-*: every installed runtime runs')
    variants = default_variants(config.model, config.device, args.compare_reference,
                                bf16=args.bf16)
    frame = _frame(args)
    with tempfile.TemporaryDirectory(prefix='romp_ros_bench_') as tmp:
        if args.int8_calibration is not None:
            from romp_ros.core.runtime.int8_quantization import read_calibration_images
            variants += int8_variants(config, read_calibration_images(args.int8_calibration),
                                      Path(tmp))
        result = compare(config, frame, variants, repeats=args.frames,
                         memory=not args.no_memory)
    device = device_name(config.device)
    gpu = config.device.startswith('cuda')
    lines = [f'{datetime.date.today().isoformat()}, {device}, {result.threads} threads, '
             f'torch {torch.__version__}; {frame.shape[1]}x{frame.shape[0]} frame; median of '
             f'{args.frames} round-robin rounds after a warm-up.', '',
             *table_header(gpu), *result.table_rows()]
    for line in lines:
        LOG.info('%s', line)
    if args.doc:
        write_doc_section(args.doc, '\n'.join(lines), name=args.doc_section)
        LOG.info('table written into %s', args.doc)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'bench', help='time the pipeline stages, or compare runtimes and the reference',
        description='Time preprocessing, network, post-processing and body model on '
                    'synthetic frames with the configured model. --compare-runtimes times '
                    'every installed runtime side by side (round-robin, same frame, same '
                    "weights) with peak memory; --compare-reference adds simple-romp's own "
                    'torch and ONNX Runtime paths (pip install simple-romp).')
    add_model_flags(p)
    p.add_argument('--frames', type=int, default=20,
                   help='timed frames (after 3 warm-ups); rounds with --compare-*')
    p.add_argument('--height', type=int, default=720, help='frame height, pixels')
    p.add_argument('--width', type=int, default=1280, help='frame width, pixels')
    p.add_argument('--batch-size', type=int, default=1, help='frames per network call')
    p.add_argument('--threads', type=int, default=None,
                   help="CPU threads for torch and the runtimes (default: torch's)")
    p.add_argument('--compare-runtimes', action='store_true',
                   help='time torch, onnxruntime and openvino side by side')
    p.add_argument('--compare-reference', action='store_true',
                   help="also run simple-romp's torch and ONNX Runtime pipelines (the "
                        'checkpoint must be in the official layout)')
    p.add_argument('--bf16', action='store_true',
                   help='include openvino bf16 (fast on CPUs with AMX; see its accuracy in '
                        'docs/performance.md)')
    p.add_argument('--int8-calibration', type=Path, default=None, metavar='DIR',
                   help='include the weights quantised to int8 (onnxruntime, openvino), '
                        'calibrated on the jpg / png frames under DIR')
    p.add_argument('--image', type=Path, default=None,
                   help='frame to run on (default: a random --width x --height frame; with '
                        'real weights pick a photo with people)')
    p.add_argument('--no-memory', action='store_true',
                   help='skip the peak-memory processes (faster)')
    p.add_argument('--doc', type=Path, default=None, metavar='FILE.md',
                   help='write the comparison table into this markdown file between '
                        '<!-- SECTION:begin --> and <!-- SECTION:end --> markers')
    p.add_argument('--doc-section', default='compare-bench', metavar='SECTION',
                   help='marker name for --doc')
    p.set_defaults(func=run)
