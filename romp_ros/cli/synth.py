"""`romp-ros synth`: render synthetic people with ground truth into a dataset (and a bag)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def parse_range(flag: str, text: str, kind: type = float) -> tuple:
    """'MIN-MAX' or one value (non-negative numbers) -> (min, max).

    Raises:
        SceneSpecError: naming the flag, when malformed or MIN > MAX.
    """
    from romp_ros.synthetic.scene_spec import SceneSpecError
    example = '1-6' if kind is int else '1.5-20'
    parts = text.split('-')
    try:
        if len(parts) not in (1, 2):
            raise ValueError(text)
        values = tuple(kind(part) for part in parts)
    except ValueError:
        raise SceneSpecError(f'{flag} {text!r}: expected MIN-MAX or one number, e.g. '
                             f'{flag} {example}') from None
    if len(values) == 1:
        values = values * 2
    if values[0] > values[1]:
        raise SceneSpecError(f'{flag} {text!r}: MIN must not exceed MAX, e.g. {flag} {example}')
    return values


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height); SceneSpecError if malformed or not positive."""
    from romp_ros.synthetic.scene_spec import SceneSpecError
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise SceneSpecError(f'--size {text!r}: expected WIDTHxHEIGHT, e.g. 512x512') from None
    if width <= 0 or height <= 0:
        raise SceneSpecError(f'--size {text!r}: width and height must be positive')
    return width, height


def default_bag_path(out: Path) -> Path:
    """Where ``--bag`` puts the bag: a rosbag2 folder ``<OUT>_bag`` next to ``OUT``."""
    return out.parent / f'{out.name}_bag'


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.data.bag_writer import BagWriteError, write_dataset_bag
    from romp_ros.data.dataset_format import GenericDataset
    from romp_ros.synthetic.dataset import write_synthetic_dataset
    from romp_ros.synthetic.scene_spec import SceneSpec

    width, height = parse_size(args.size)
    spec = SceneSpec(
        width=width, height=height, people=parse_range('--people', args.people, int),
        distance_m=parse_range('--distance', args.distance),
        hfov_deg=parse_range('--fov', args.fov),
        camera_height_m=parse_range('--camera-height', args.camera_height),
        distortion_prob=args.distortion_prob, child_prob=args.child_prob,
        sequence=args.sequence, sequence_length=args.sequence_length, fps=args.fps)
    out = Path(args.out).expanduser()
    bag = Path(args.bag_path).expanduser() if args.bag_path else default_bag_path(out)
    if args.bag and (bag.exists() or bag.is_symlink()):
        raise BagWriteError(f'{bag} already exists; choose another --bag-path or remove it')
    report = write_synthetic_dataset(
        out, spec, args.frames, args.seed, models_dir=args.models_dir,
        image_format=args.image_format, copy_body_model=args.copy_body_model,
        name=args.name, description=f'romp-ros synth --seed {args.seed}',
        device=args.device, progress=not args.quiet)
    LOG.info('dataset: %s (%d frames, %d people, %d joints)', report.root, report.frames,
             report.people, len(report.joint_names))
    if args.bag:
        bag_report = write_dataset_bag(GenericDataset(out), bag, compressed=args.compressed,
                                       progress=not args.quiet)
        LOG.info('bag: %s (topics %s)', bag_report.path, ', '.join(bag_report.topics))
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'synth', help='render synthetic people with ground truth (dataset folder, bag)',
        description='Render people of the body model (the synthetic SMPL-format body, or the '
                    'real SMPL of --models-dir) on a ground plane, seen by a known camera '
                    '(some with lens distortion), into a dataset folder in the generic '
                    'format (docs/dataset_format.md) with SMPL pose/shape, translation, 3D '
                    'joints, 2D keypoints with visibility, boxes and track ids. See '
                    'docs/synthetic.md.')
    p.add_argument('--out', type=Path, required=True,
                   help='dataset folder to create (must not exist or be empty)')
    p.add_argument('--frames', type=int, required=True, help='number of frames')
    p.add_argument('--seed', type=int, default=0,
                   help='random seed: the same seed and flags give identical files')
    p.add_argument('--people', default='1-6', metavar='MIN-MAX',
                   help='people per frame (per sequence with --sequence), e.g. 1-6 or 3')
    p.add_argument('--size', default='512x512', metavar='WxH', help='image size in pixels')
    p.add_argument('--sequence', action='store_true',
                   help='frames form sequences: fixed camera and background, people walking '
                        'at --fps with constant track ids, entering and leaving')
    p.add_argument('--sequence-length', type=int, default=0, metavar='N',
                   help='frames per sequence with --sequence (0: all frames are one sequence)')
    p.add_argument('--fps', type=float, default=15.0, help='frame rate of sequences')
    p.add_argument('--distance', default='1.5-20', metavar='MIN-MAX',
                   help='distance of people from the camera on the ground, metres')
    p.add_argument('--fov', default='40-100', metavar='MIN-MAX',
                   help='horizontal field of view, degrees')
    p.add_argument('--camera-height', default='0.5-2.5', metavar='MIN-MAX',
                   help='camera height above the ground, metres')
    p.add_argument('--distortion-prob', type=float, default=0.3,
                   help='share of cameras with lens distortion (plumb_bob, rational, fisheye)')
    p.add_argument('--child-prob', type=float, default=0.15,
                   help="share of children (needs SMPL-A, 'smpla', in the body model)")
    p.add_argument('--image-format', choices=('png', 'jpg'), default='png',
                   help='image files: png (lossless) or jpg (smaller)')
    p.add_argument('--models-dir', type=Path, default=None,
                   help='prepared models directory (romp-ros prepare-models) to render the real '
                        'SMPL; its path is recorded, the files are not copied (licence)')
    p.add_argument('--copy-body-model', action='store_true',
                   help='with --models-dir: copy the prepared body model into the dataset '
                        '(private use only: SMPL is licence-gated)')
    p.add_argument('--name', default='synthetic', help='dataset name in dataset.json')
    p.add_argument('--device', default='cpu',
                   help="where to pose and render: 'cpu' or a torch device such as 'cuda' "
                        '(the same seed gives identical files on one device)')
    p.add_argument('--bag', action='store_true',
                   help='also write a ROS 2 bag of the dataset (image, camera_info, '
                        '/ground_truth/people) at --bag-path')
    p.add_argument('--bag-path', type=Path, default=None,
                   help='the bag to write with --bag (default: a rosbag2 folder OUT_bag next to '
                        'OUT; a .mcap or .db3 name writes a single file)')
    p.add_argument('--compressed', action='store_true',
                   help='with --bag: sensor_msgs/CompressedImage on <topic>/compressed')
    p.set_defaults(func=run)
