"""`romp-ros make-bag`: a labelled dataset -> a ROS 2 bag (image, camera_info, ground truth)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def open_labelled_dataset(path: Path, *, format: str = 'auto', split: str = '',
                          models_dir: Path | None = None):
    """The dataset at ``path``, in any format of :mod:`romp_ros.data.sources`.

    A generic dataset folder, a 3DPW folder (sequenceFiles/, imageFiles/), a COCO-style JSON,
    ... all give the same frame records (``romp_ros.data.bag_writer.LabelledFrames``).

    Raises:
        DatasetError: not a dataset in a known format (the message says what was found).
    """
    from romp_ros.data.sources import SourceSpec, open_source
    return open_source(SourceSpec(path=str(path), format=format, split=split,
                                  models_dir=str(models_dir) if models_dir else ''))


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.data.bag_writer import write_dataset_bag
    dataset = open_labelled_dataset(Path(args.dataset).expanduser(), format=args.format,
                                    split=args.split, models_dir=args.models_dir)
    skipped = getattr(dataset, 'skipped', None)
    if skipped is not None and skipped.total:
        LOG.warning('%s: %d unusable rows skipped: %s', args.dataset, skipped.total,
                    dict(skipped.counts))
    report = write_dataset_bag(
        dataset, args.out_bag, compressed=args.compressed, compression=args.compression,
        image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
        gt_topic=args.gt_topic, frame_id=args.frame_id, storage=args.storage, fps=args.fps,
        progress=not args.quiet)
    LOG.info('wrote %s: %d frames, %d people, topics %s (%s)', report.path, report.frames,
             report.people, ', '.join(report.topics), report.storage)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'make-bag', help='turn a labelled dataset into a ROS 2 bag with ground truth',
        description='Write a dataset folder (docs/dataset_format.md) as a ROS 2 bag: '
                    'sensor_msgs/Image (or CompressedImage), sensor_msgs/CameraInfo and the '
                    'ground truth as romp_ros/PersonMeshArray, all with the same header stamp '
                    'per frame. No ROS installation is needed (rosbags).')
    p.add_argument('dataset', type=Path, metavar='DATASET_DIR',
                   help='the dataset: a folder in the generic format, a 3DPW folder, ... '
                        '(see --format)')
    p.add_argument('out_bag', type=Path, metavar='OUT_BAG',
                   help='the bag to create: a rosbag2 folder, or a single .mcap / .db3 file; '
                        'must not exist')
    p.add_argument('--format', default='auto',
                   help="the dataset's format: auto (detected), generic, 3dpw, coco, h36m, "
                        'mpi_inf_3dhp, muco or agora (docs/datasets.md)')
    p.add_argument('--split', default='',
                   help="the split of formats that have several (3DPW: train, validation, "
                        "test; default 'train')")
    p.add_argument('--models-dir', type=Path, default=None,
                   help='prepared body models: 3DPW and AGORA need them for the SMPL '
                        'translations')
    p.add_argument('--compressed', action='store_true',
                   help='sensor_msgs/CompressedImage on <image-topic>/compressed')
    p.add_argument('--compression', choices=('jpeg', 'png'), default='jpeg',
                   help='format of compressed images (files already in it are copied as is)')
    p.add_argument('--image-topic', default='/camera/image', help='image topic')
    p.add_argument('--camera-info-topic', default='/camera/camera_info',
                   help='camera_info topic')
    p.add_argument('--gt-topic', default='/ground_truth/people',
                   help='ground-truth PersonMeshArray topic')
    p.add_argument('--frame-id', default='camera_optical_frame', help='header frame_id')
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default=None,
                   help='storage of a folder bag (default mcap; a file suffix decides for '
                        'single files)')
    p.add_argument('--fps', type=float, default=None,
                   help='stamp rate for datasets without stamps (default: the dataset fps, '
                        'else 10)')
    p.set_defaults(func=run)
