"""`romp-ros export-motion`: an `infer` results file -> glTF, BVH, OBJ / PLY or JSON."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)

# romp_ros.export.export_motion.FORMATS, spelled out so that --help needs no numpy
# (test/test_export.py checks they agree)
EXPORT_FORMATS = ('glb', 'bvh', 'obj', 'ply', 'json')


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.export import ExportOptions, export_motion

    options = ExportOptions(fmt=args.format, track=args.track, fps=args.fps,
                            models_dir=args.models_dir, axes=args.axes)
    summary = export_motion(args.results, args.out, options)
    shown = ', '.join(str(p) for p in summary.paths[:4])
    more = f' (+{len(summary.paths) - 4} more)' if len(summary.paths) > 4 else ''
    LOG.info('%s: %d frame(s), %d track(s) -> %s%s', args.format, summary.frames,
             len(summary.tracks), shown or 'nothing written', more)
    if summary.skipped_people:
        LOG.warning('%d detection(s) with NaN/inf values were left out',
                    summary.skipped_people)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'export-motion', help='export tracked people to glTF (.glb), BVH, OBJ/PLY or JSON',
        description='Export what `romp-ros infer --track` wrote to animation and mesh '
                    'formats (docs/export.md). glb, bvh, obj and ply use a y-up frame '
                    '(a camera-frame point (x, y, z) becomes (x, -y, -z), metres) so people '
                    'stand upright in Blender and game engines; json keeps the camera '
                    'optical frame of the results file.')
    p.add_argument('results', type=Path, metavar='RESULTS.npz',
                   help='the .npz written by `romp-ros infer --track --out`')
    p.add_argument('--format', required=True, choices=EXPORT_FORMATS,
                   help='glb: one skinned, animated armature per track (needs --models-dir); '
                        'bvh: one skeleton file per track; obj / ply: one mesh per frame in a '
                        'folder per track (needs --models-dir); json: every parameter of '
                        'every frame')
    p.add_argument('--out', type=Path, required=True, metavar='PATH',
                   help='output file; bvh writes <stem>_track<ID>.bvh and obj / ply write '
                        'folders <stem>_track<ID>/ next to it')
    p.add_argument('--track', type=int, default=None, metavar='ID',
                   help='export this track only (default: every track)')
    p.add_argument('--fps', type=float, default=None, metavar='F',
                   help="frame rate of the animation (default: the file's stamps, else 30)")
    p.add_argument('--models-dir', type=Path, default=None, metavar='DIR',
                   help='prepared body models (`romp-ros prepare-models`): the skin for glb, '
                        'the faces for obj / ply')
    p.add_argument('--axes', choices=('yup', 'camera'), default='yup',
                   help='obj / ply vertices: y-up (default) or the camera optical frame')
    p.set_defaults(func=run)
