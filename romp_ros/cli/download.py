"""`romp-ros download`: fetch an official checkpoint with SHA-256 verification."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.core.download import download_official
    path = download_official(args.name, args.models_dir, sha256=args.sha256, url=args.url)
    LOG.info('saved %s', path)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'download', help='fetch an official checkpoint with SHA-256 verification',
        description='Download an official ROMP/BEV checkpoint from its release URL, resuming '
                    'partial downloads, verifying the SHA-256 and writing atomically.')
    p.add_argument('name', help='file name, e.g. ROMP.pkl or BEV.pth')
    p.add_argument('--models-dir', type=Path, required=True, help='destination folder')
    p.add_argument('--sha256', default=None,
                   help='expected SHA-256 (required when the registry has none)')
    p.add_argument('--url', default=None, help='override the release URL (mirrors)')
    p.set_defaults(func=run)
