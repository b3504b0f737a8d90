"""`romp-ros bench`: time the pipeline stages on this machine."""

from __future__ import annotations

import argparse
import logging

from romp_ros.cli.model_flags import add_model_flags, config_from_args

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.cli.pipeline_bench import run_pipeline_bench
    report = run_pipeline_bench(config_from_args(args), frames=args.frames,
                                height=args.height, width=args.width, batch=args.batch_size)
    for line in report.lines():
        LOG.info('%s', line)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'bench', help='time the pipeline stages on this machine',
        description='Time preprocessing, network, post-processing and body model on '
                    'synthetic frames with the configured model (see bench/ for the '
                    'side-by-side comparison with the reference).')
    add_model_flags(p)
    p.add_argument('--frames', type=int, default=20, help='timed frames (after 3 warm-ups)')
    p.add_argument('--height', type=int, default=720, help='frame height, pixels')
    p.add_argument('--width', type=int, default=1280, help='frame width, pixels')
    p.add_argument('--batch-size', type=int, default=1, help='frames per network call')
    p.set_defaults(func=run)
