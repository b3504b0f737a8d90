"""`romp-ros infer`: people in images, videos and bags -> one .npz (optionally tracked).

Results are streamed to the output as frames are processed (bounded memory, whatever the
length of the input; see ``infer_output``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from romp_ros.cli.camera_flags import (
    FixedCamera,
    add_camera_flags,
    add_camera_model_flag,
    fixed_camera,
)
from romp_ros.cli.model_flags import add_model_flags, config_from_args

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from tqdm import tqdm

    from romp_ros.cli.infer_output import InferenceWriter
    from romp_ros.cli.infer_tracking import StreamTracker
    from romp_ros.cli.input_sources import check_inputs, count_frames, iter_frames
    from romp_ros.core.estimator import Estimator

    check_inputs(list(args.inputs))
    fixed = fixed_camera(args)
    config = config_from_args(args, fov_deg=args.fov, color_order='rgb',
                              compute_verts=not args.no_verts, wide_tiling=args.wide_tiling,
                              wide_min_aspect=args.wide_min_aspect,
                              wide_overlap=args.wide_overlap)
    tracking = _tracking_setup(args) if args.track else None  # fail before loading
    estimator = Estimator(config)
    tracker = None
    if tracking is not None:
        tracker = StreamTracker(*tracking,
                                repose=estimator.pose_bodies if not args.no_verts else None)
    batch: list = []
    renderer = _renderer(args, estimator)
    cameras = _FrameCameras(fixed, args.ignore_camera_info, args.camera_model)

    def flush(writer: InferenceWriter) -> None:
        images = [f.pixels[..., ::-1] if f.color_order == 'bgr' else f.pixels for f in batch]
        ks = [cameras.for_frame(f) for f in batch]
        for frame, result in zip(batch, estimator.predict(images, intrinsics=ks), strict=True):
            if tracker is None:
                writer.add(frame, result)
                if renderer is not None:
                    renderer.add(frame, result)
            else:
                tracked = tracker.update(frame, result)
                writer.add(frame, tracked.result, tracked)
                if renderer is not None:
                    renderer.add(frame, tracked.result, tracked.ids)
        batch.clear()

    frames = iter_frames(list(args.inputs), topic=args.topic)
    with InferenceWriter(args.out, joint_names=estimator.joint_names,
                         with_verts=not args.no_verts, with_tracks=args.track) as writer:
        for frame in tqdm(frames, total=count_frames(list(args.inputs), args.topic),
                          unit='frame', desc='infer', disable=args.quiet):
            batch.append(frame)
            if len(batch) >= args.batch_size:
                flush(writer)
        if batch:
            flush(writer)
    LOG.info('%d frame(s), %d person detection(s) -> %s', writer.num_frames,
             writer.num_people, writer.path)
    if renderer is not None:
        LOG.info('%d picture(s) and video(s) -> %s', len(renderer.close()), args.render)
    return 0


class _FrameCameras:
    """The camera of each input frame: --intrinsics / --camera-info, else the bag's own."""

    def __init__(self, fixed: FixedCamera, ignore_camera_info: bool,
                 camera_model: str | None) -> None:
        from romp_ros.core.geometry.calibration import StreamCameras
        self._fixed = fixed
        self._ignore = ignore_camera_info
        self._streams = StreamCameras(camera_model or '')

    def for_frame(self, frame):
        """A camera for ``Estimator.predict`` (None: the default field of view)."""
        height, width = frame.pixels.shape[:2]
        if self._fixed.given:
            return self._fixed.for_image(height, width)
        if self._ignore:
            return None
        # the bag's whole CameraInfo (input_sources.Frame.camera_info); older readers give K
        calibration = getattr(frame, 'camera_info', None)
        if calibration is None:
            return frame.intrinsics
        topic = frame.source.partition(':')[2].rpartition('#')[0]
        return self._streams.for_image(calibration, height, width, topic)


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'infer', help='estimate people in images, videos or bags; write a .npz',
        description='Run ROMP/BEV on image files, videos or ROS 2 bags (an image topic) and '
                    'write every person of every frame to one .npz (names follow '
                    "simple-romp's result dict; joints/verts are in the body frame: add "
                    'cam_trans for the camera frame).')
    p.add_argument('inputs', nargs='+', type=Path, metavar='INPUT',
                   help='image files, videos, or bags (folder with metadata.yaml, .mcap, .db3)')
    add_model_flags(p)
    k = p.add_mutually_exclusive_group()
    add_camera_flags(k)
    k.add_argument('--fov', type=float, default=60.0, metavar='DEG',
                   help='field of view assumed when no camera is known (default 60, the '
                        "reference's assumption)")
    add_camera_model_flag(p)
    p.add_argument('--ignore-camera-info', action='store_true',
                   help="bags: do not use the bag's CameraInfo")
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
    r = p.add_argument_group('rendering', 'pictures of the results (docs/visualization.md)')
    r.add_argument('--render', type=Path, default=None, metavar='DIR',
                   help='write overlay images (an overlay video for video and bag inputs), '
                        "bird's-eye views and a contact sheet into DIR")
    r.add_argument('--render-maps', action='store_true',
                   help="with --render: also the network's center map (and BEV's bird's-eye "
                        'depth map) of every frame; one more network pass per frame')
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
    p.set_defaults(func=run)


def _renderer(args: argparse.Namespace, estimator):
    """The ``--render`` writer, or None."""
    if args.render is None:
        if args.render_maps:
            LOG.warning('--render-maps does nothing without --render DIR')
        return None
    from romp_ros.cli.render_output import RenderOptions, RenderWriter
    faces = None if args.no_verts else estimator.faces
    return RenderWriter(RenderOptions(args.render, maps=args.render_maps, fps=args.fps),
                        faces, estimator)


def _tracking_setup(args: argparse.Namespace):
    """(TrackerConfig, StreamTiming) of the tracking flags (library defaults where not given).

    Raises:
        ConfigError: an invalid flag value, with the reason.
    """
    from romp_ros.cli.infer_tracking import StreamTiming
    from romp_ros.core.config import ConfigError
    from romp_ros.core.tracking import SmoothingConfig, TrackerConfig
    given = {'high_conf': args.track_high_conf, 'low_conf': args.track_low_conf,
             'new_track_conf': args.track_new_conf, 'min_hits': args.track_min_hits}
    try:
        config = TrackerConfig(**{k: v for k, v in given.items() if v is not None},
                               output_tentative=args.track_tentative,
                               smoothing=SmoothingConfig.from_mode(args.smoothing))
        return config, StreamTiming(fps=args.fps)
    except ValueError as err:
        raise ConfigError(f'invalid tracking flags: {err}') from err
