"""The ``romp-ros`` command line: inference, model preparation, downloads and benchmarks.

Heavy libraries (torch, OpenCV, rosbags) are imported by the sub-command that needs them, so
``romp-ros --help`` is instant and works without them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
import sys
from typing import Callable, Sequence

LOG = logging.getLogger('romp_ros.cli')

MODEL_CHOICES = ('romp', 'bev')
BACKBONE_CHOICES = ('hrnet32', 'resnet50', 'efficientnet_v2_s')


def _user_errors() -> tuple[type[BaseException], ...]:
    """Error classes whose message is the whole story: shown without a traceback."""
    from romp_ros.core.config import ConfigError
    from romp_ros.input_sources import InputError
    errors: list[type[BaseException]] = [ConfigError, InputError, FileNotFoundError]
    for module, name in (('romp_ros.core.body.model_files', 'ModelFilesError'),
                         ('romp_ros.core.estimator', 'EstimatorError'),
                         ('romp_ros.core.nets.checkpoint', 'CheckpointError'),
                         ('romp_ros.core.geometry.intrinsics', 'IntrinsicsError'),
                         ('romp_ros.core.preprocess', 'ImageInputError'),
                         ('romp_ros.core.download', 'DownloadError'),
                         ('romp_ros.core.body.restricted_pickle', 'UnsafePickleError'),
                         ('romp_ros.core.body.prepare', 'PrepareError')):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


# -- sub-command: infer ---------------------------------------------------------------------
def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', choices=MODEL_CHOICES, default='romp',
                        help='network: romp (2D center map) or bev (3D center map, children)')
    parser.add_argument('--backbone', choices=BACKBONE_CHOICES, default='hrnet32',
                        help='feature extractor; official weights exist for hrnet32 (ROMP, '
                             'BEV) and resnet50 (ROMP); efficientnet_v2_s is the light one')
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='network weights (.pkl/.pth/.safetensors); default: the '
                             "model's official file name inside --models-dir")
    parser.add_argument('--models-dir', type=Path, required=True,
                        help='folder written by `romp-ros prepare-models` (body model files)')
    parser.add_argument('--center-thresh', type=float, default=None,
                        help='minimum body-center score (default: romp 0.25, bev 0.1)')
    parser.add_argument('--max-people', type=int, default=64,
                        help='at most this many people per image (1..64)')
    parser.add_argument('--device', default='auto',
                        help="'auto' (CUDA if available), 'cpu' or 'cuda:N'")
    parser.add_argument('--precision', choices=('fp32', 'fp16', 'bf16'), default='fp32',
                        help='network precision on CUDA (post-processing stays fp32)')


def _config_from_args(args: argparse.Namespace, **extra):
    from romp_ros.core.config import EstimatorConfig
    return EstimatorConfig(
        model=args.model, backbone=args.backbone,
        checkpoint=str(args.checkpoint) if args.checkpoint else '',
        models_dir=str(args.models_dir), device=args.device, precision=args.precision,
        center_thresh=args.center_thresh, max_people=args.max_people, **extra)


def _cmd_infer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from romp_ros.core.estimator import Estimator
    from romp_ros.core.geometry.intrinsics import parse_intrinsics_arg
    from romp_ros.infer_output import InferenceWriter
    from romp_ros.infer_tracking import StreamTracker
    from romp_ros.input_sources import check_inputs, count_frames, iter_frames

    check_inputs(list(args.inputs))
    fixed_k = parse_intrinsics_arg(args.intrinsics) if args.intrinsics else None
    config = _config_from_args(args, fov_deg=args.fov, color_order='rgb',
                               compute_verts=not args.no_verts, wide_tiling=args.wide_tiling,
                               wide_min_aspect=args.wide_min_aspect,
                               wide_overlap=args.wide_overlap)
    tracking = _tracking_setup(args) if args.track else None  # fail before loading
    estimator = Estimator(config)
    tracker = None
    if tracking is not None:
        tracker = StreamTracker(*tracking,
                                repose=estimator.pose_bodies if not args.no_verts else None)
    writer = InferenceWriter(joint_names=estimator.joint_names, with_verts=not args.no_verts,
                             with_tracks=args.track)
    batch: list = []

    def flush() -> None:
        images = [f.pixels[..., ::-1] if f.color_order == 'bgr' else f.pixels for f in batch]
        ks = [fixed_k or (None if args.ignore_camera_info else f.intrinsics) for f in batch]
        for frame, result in zip(batch, estimator.predict(images, intrinsics=ks), strict=True):
            if tracker is None:
                writer.add(frame, result)
            else:
                tracked = tracker.update(frame, result)
                writer.add(frame, tracked.result, tracked)
        batch.clear()

    frames = iter_frames(list(args.inputs), topic=args.topic)
    for frame in tqdm(frames, total=count_frames(list(args.inputs), args.topic), unit='frame',
                      desc='infer', disable=args.quiet):
        batch.append(frame)
        if len(batch) >= args.batch_size:
            flush()
    if batch:
        flush()
    path = writer.save(args.out)
    LOG.info('%d frame(s), %d person detection(s) -> %s', writer.num_frames,
             writer.num_people, path)
    return 0


def _add_infer(sub) -> None:
    p = sub.add_parser(
        'infer', help='estimate people in images, videos or bags; write a .npz',
        description='Run ROMP/BEV on image files, videos or ROS 2 bags (an image topic) and '
                    'write every person of every frame to one .npz (names follow '
                    "simple-romp's result dict; joints/verts are in the body frame: add "
                    'cam_trans for the camera frame).')
    p.add_argument('inputs', nargs='+', type=Path, metavar='INPUT',
                   help='image files, videos, or bags (folder with metadata.yaml, .mcap, .db3)')
    _add_model_flags(p)
    k = p.add_mutually_exclusive_group()
    k.add_argument('--intrinsics', default=None, metavar='FX,FY,CX,CY',
                   help='camera intrinsics in pixels of the input images; translations are '
                        're-solved with this K')
    k.add_argument('--fov', type=float, default=60.0, metavar='DEG',
                   help='field of view assumed when no intrinsics are known (default 60, the '
                        "reference's assumption)")
    p.add_argument('--ignore-camera-info', action='store_true',
                   help="bags: do not use the bag's camera_info K")
    p.add_argument('--topic', default=None,
                   help='bags: image topic to read (default: the first image topic)')
    p.add_argument('--batch-size', type=int, default=1,
                   help='frames per network call (larger is faster on a GPU)')
    p.add_argument('--no-verts', action='store_true',
                   help='do not store mesh vertices (much smaller files)')
    p.add_argument('--wide-tiling', action='store_true',
                   help='run panoramas (long side >= --wide-min-aspect short sides) as '
                        'overlapping square windows (docs/geometry.md)')
    p.add_argument('--wide-min-aspect', type=float, default=2.0, metavar='R',
                   help='with --wide-tiling: tile from this aspect ratio on (default 2)')
    p.add_argument('--wide-overlap', type=float, default=0.25, metavar='F',
                   help='with --wide-tiling: least overlap of neighbouring windows (0..0.75)')
    p.add_argument('--out', type=Path, required=True, help='output .npz path')
    t = p.add_argument_group('tracking', 'stable identities across frames (docs/tracking.md)')
    t.add_argument('--track', action='store_true',
                   help='associate people across the frames of each video, bag or image '
                        'sequence; adds track_ids, track_states, track_ages, root_velocity')
    t.add_argument('--smoothing', choices=('default', 'off'), default='default',
                   help='with --track: temporal smoothing of pose, shape and position')
    t.add_argument('--fps', type=float, default=30.0,
                   help='with --track: frame rate of images and of videos without one '
                        '(bags use their stamps)')
    t.add_argument('--track-high-conf', type=float, default=None, metavar='C',
                   help='detections at or above C match tracks first (default 0.5)')
    t.add_argument('--track-low-conf', type=float, default=None, metavar='C',
                   help='detections below C are ignored (default 0.15)')
    t.add_argument('--track-new-conf', type=float, default=None, metavar='C',
                   help='a new track needs this confidence (default 0.6)')
    t.add_argument('--track-min-hits', type=int, default=None, metavar='K',
                   help='matches that confirm a track (default 3)')
    t.add_argument('--track-tentative', action='store_true',
                   help='also output tentative (not yet confirmed) tracks')
    p.set_defaults(func=_cmd_infer)


def _tracking_setup(args: argparse.Namespace):
    """(TrackerConfig, StreamTiming) of the tracking flags (library defaults where not given).

    Raises:
        ConfigError: an invalid flag value, with the reason.
    """
    from romp_ros.core.config import ConfigError
    from romp_ros.core.tracking import SmoothingConfig, TrackerConfig
    from romp_ros.infer_tracking import StreamTiming
    given = {'high_conf': args.track_high_conf, 'low_conf': args.track_low_conf,
             'new_track_conf': args.track_new_conf, 'min_hits': args.track_min_hits}
    try:
        config = TrackerConfig(**{k: v for k, v in given.items() if v is not None},
                               output_tentative=args.track_tentative,
                               smoothing=SmoothingConfig.from_mode(args.smoothing))
        return config, StreamTiming(fps=args.fps)
    except ValueError as err:
        raise ConfigError(f'invalid tracking flags: {err}') from err


# -- sub-command: prepare-models --------------------------------------------------------------
def _cmd_prepare(args: argparse.Namespace) -> int:
    from romp_ros.core.body.prepare import prepare_models
    report = prepare_models(smpl=args.smpl, models_dir=args.models_dir, smil=args.smil,
                            extra=args.extra)
    LOG.info('%s', report)
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        'prepare-models', help='convert the licence-gated SMPL/SMIL downloads once',
        description='Convert the official SMPL (and optionally SMIL and the extra joint '
                    'regressors) into the safe .npz format the estimator loads. Pickles are '
                    'read with a restricted unpickler that allows only array classes.')
    p.add_argument('--smpl', type=Path, required=True,
                   help='SMPL_NEUTRAL.pkl (SMPL v1.1.0) or the official SMPL zip')
    p.add_argument('--smil', type=Path, default=None,
                   help='smil_web.pkl, the SMIL infant model (BEV only)')
    p.add_argument('--extra', type=Path, default=None,
                   help='folder with J_regressor_extra.npy, J_regressor_h36m.npy, '
                        'smpl_kid_template.npy (71 joints and BEV children)')
    p.add_argument('--models-dir', type=Path, required=True, help='output folder')
    p.set_defaults(func=_cmd_prepare)


# -- sub-command: download --------------------------------------------------------------------
def _cmd_download(args: argparse.Namespace) -> int:
    from romp_ros.core.download import download_official
    path = download_official(args.name, args.models_dir, sha256=args.sha256, url=args.url)
    LOG.info('saved %s', path)
    return 0


def _add_download(sub) -> None:
    p = sub.add_parser(
        'download', help='fetch an official checkpoint with SHA-256 verification',
        description='Download an official ROMP/BEV checkpoint from its release URL, resuming '
                    'partial downloads, verifying the SHA-256 and writing atomically.')
    p.add_argument('name', help='file name, e.g. ROMP.pkl or BEV.pth')
    p.add_argument('--models-dir', type=Path, required=True, help='destination folder')
    p.add_argument('--sha256', default=None,
                   help='expected SHA-256 (required when the registry has none)')
    p.add_argument('--url', default=None, help='override the release URL (mirrors)')
    p.set_defaults(func=_cmd_download)


# -- sub-command: bench -----------------------------------------------------------------------
def _cmd_bench(args: argparse.Namespace) -> int:
    from romp_ros.pipeline_bench import run_pipeline_bench
    report = run_pipeline_bench(_config_from_args(args), frames=args.frames,
                                height=args.height, width=args.width, batch=args.batch_size)
    for line in report.lines():
        LOG.info('%s', line)
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser(
        'bench', help='time the pipeline stages on this machine',
        description='Time preprocessing, network, post-processing and body model on '
                    'synthetic frames with the configured model (see bench/ for the '
                    'side-by-side comparison with the reference).')
    _add_model_flags(p)
    p.add_argument('--frames', type=int, default=20, help='timed frames (after 3 warm-ups)')
    p.add_argument('--height', type=int, default=720, help='frame height, pixels')
    p.add_argument('--width', type=int, default=1280, help='frame width, pixels')
    p.add_argument('--batch-size', type=int, default=1, help='frames per network call')
    p.set_defaults(func=_cmd_bench)


SUBCOMMANDS: tuple[Callable, ...] = (_add_infer, _add_prepare, _add_download, _add_bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (built on demand, never at import time)."""
    parser = argparse.ArgumentParser(
        prog='romp-ros',
        description='Multi-person 3D human mesh estimation (ROMP / BEV, SMPL) without ROS: '
                    'the same library the romp_ros ROS 2 node runs.')
    parser.add_argument('--log-level', default='INFO',
                        choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'), help='logging verbosity')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``romp-ros``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format='%(levelname)s %(name)s: %(message)s', stream=sys.stderr)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        LOG.error('interrupted')
        return 130
    except _user_errors() as err:  # one clear line, no traceback
        LOG.error('%s', err)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
