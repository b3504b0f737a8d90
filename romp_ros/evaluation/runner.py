"""The evaluate job: ground truth from bags or a dataset, predictions recorded or model-run.

Each bag (or dataset sequence) is one :class:`~romp_ros.evaluation.session.EvaluationSession`;
their results are summarised together in input order. Under ``torchrun`` the bags (sequences)
are shared out across the processes and gathered on rank 0, which writes the one report; the
numbers are those of a single process (:mod:`romp_ros.evaluation.distributed`).

Prediction sources (:class:`PredictionSource`):

* ``topic``: a ``romp_ros/PersonMeshArray`` topic recorded in the same bag (e.g.
  ``ros2 bag record`` of the node's ``people``);
* ``npz``: a ``romp-ros infer`` output, paired by stamp (bags) or by image path (datasets);
* ``model``: the estimator run on the bag's image topic (with its CameraInfo: K and the lens
  for raw images, P for rectified ones) or on the dataset's images (with their camera, lens
  included), optionally tracked for the tracking metrics. A camera given with the source
  (``--intrinsics`` / ``--camera-info``) replaces theirs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from romp_ros.core.config import EstimatorConfig
from romp_ros.core.geometry.calibration import (
    CAMERA_MODES,
    CameraCalibration,
    StreamCameras,
    calibration_from_message,
    fit_to_image,
)
from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError
from romp_ros.core.image_decoding import ImageDecodeError
from romp_ros.core.results import CameraIntrinsics
from romp_ros.data.bag_types import CAMERA_INFO, PERSON_MESH_ARRAY
from romp_ros.data.dataset_format import DatasetError, GenericDataset
from romp_ros.evaluation.bag_io import (
    IMAGE_TYPES,
    BagMessage,
    BagReader,
    MessageDecodeError,
    decode_image_message,
    header_stamp_from_cdr,
    open_bag,
)
from romp_ros.evaluation.config import EvaluationConfig
from romp_ros.evaluation.distributed import (
    DistributedContext,
    context_from_env,
    gather_to_main,
    release,
)
from romp_ros.evaluation.errors import EvaluationInputError
from romp_ros.evaluation.people import (
    FramePeople,
    InferFrame,
    PeopleFormatError,
    people_from_infer_npz,
    people_from_label,
    people_from_message,
    people_from_result,
    stamp_to_ns,
)
from romp_ros.evaluation.records import (
    BAD_GROUND_TRUTH,
    DECODE_ERROR,
    INFERENCE_ERROR,
    UNREADABLE,
    SessionResult,
)
from romp_ros.evaluation.session import EvaluationSession, check_pairing
from romp_ros.evaluation.summary import Report, build_report

LOG = logging.getLogger(__name__)
SOURCE_KINDS = ('topic', 'npz', 'model')


@dataclass(frozen=True)
class PredictionSource:
    """Where the predictions come from.

    Attributes:
        kind: 'topic', 'npz' or 'model' (module docstring).
        topic: kind 'topic': the predictions' PersonMeshArray topic.
        npz: kind 'npz': the ``romp-ros infer`` file.
        estimator: kind 'model': the estimator settings (``color_order`` must be 'rgb').
        image_topic: kind 'model' with bags: the image topic ('' = the bag's only one).
        camera_info_topic: kind 'model' with bags: the CameraInfo topic ('' = any CameraInfo
            whose frame_id is the image's).
        track: kind 'model': track people across frames (ids for the tracking metrics).
        batch_size: kind 'model': images per network call.
        camera: kind 'model': one camera for every image (a pinhole
            :class:`CameraIntrinsics`, or a whole :class:`CameraCalibration`), replacing the
            bags' CameraInfo and the datasets' cameras; None: theirs.
        camera_model: 'raw' or 'rectified': what the images are, for CameraInfo / a
            calibration ('' = raw, except bag image topics named image_rect*: rectified).
    """

    kind: str
    topic: str = ''
    npz: Path | None = None
    estimator: EstimatorConfig | None = None
    image_topic: str = ''
    camera_info_topic: str = ''
    track: bool = False
    batch_size: int = 1
    camera: CameraIntrinsics | CameraCalibration | None = None
    camera_model: str = ''

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f'kind={self.kind!r}; choose one of {SOURCE_KINDS}')
        if self.kind == 'topic' and not self.topic:
            raise ValueError("kind 'topic' needs the predictions' topic")
        if self.kind == 'npz' and self.npz is None:
            raise ValueError("kind 'npz' needs the .npz path")
        if self.kind == 'model':
            if self.estimator is None:
                raise ValueError("kind 'model' needs an EstimatorConfig")
            if self.estimator.color_order != 'rgb':
                raise ValueError("the evaluation hands RGB images: color_order must be 'rgb'")
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.camera_model not in ('',) + CAMERA_MODES:
            raise ValueError(f'camera_model={self.camera_model!r}; choose one of '
                             f'{list(CAMERA_MODES)}')


@dataclass(frozen=True)
class EvaluateJob:
    """One ``romp-ros evaluate`` run.

    Attributes:
        source: where predictions come from.
        out_dir: where report.json, report.md, frames.jsonl and the plots go.
        bags: ground-truth bags (each one a sequence), or
        dataset: a dataset folder in the generic format (each of its sequences one).
        gt_topic: bags: the ground truth's PersonMeshArray topic.
        config: pairing, matching and scoring settings.
        plots: write the plots.
        progress: show progress bars (rank 0).
    """

    source: PredictionSource
    out_dir: Path
    bags: tuple[Path, ...] = ()
    dataset: Path | None = None
    gt_topic: str = ''
    config: EvaluationConfig = field(default_factory=EvaluationConfig)
    plots: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if bool(self.bags) == (self.dataset is not None):
            raise EvaluationInputError('give ground truth as --bag BAG (one or more) or as '
                                       '--dataset DIR, not both and not neither')
        if self.bags and not self.gt_topic:
            raise EvaluationInputError("bags need --gt-topic TOPIC (the ground truth's "
                                       'romp_ros/PersonMeshArray topic)')
        if self.dataset is not None and self.source.kind == 'topic':
            raise EvaluationInputError('--pred-topic reads predictions from a bag; with '
                                       '--dataset use --pred-npz FILE or run a model '
                                       '(--checkpoint / --models-dir)')
        if len(set(self.bags)) != len(self.bags):
            raise EvaluationInputError('a bag is given twice')


# ----------------------------------------------------------------------------- the job


def run_evaluation(job: EvaluateJob,
                   on_progress: Callable[[int, int], None] | None = None) -> Report | None:
    """Run the job (on every torchrun process); rank 0 writes and returns the report.

    ``on_progress(done, total)`` is called on each process after each of its bags (or dataset
    sequences), with its own counts (the offline node publishes them).

    Raises:
        EvaluationInputError: bad input anywhere (every process raises the same line).
    """
    from romp_ros.evaluation.report import write_report

    context = context_from_env()
    dataset = _open_dataset(job.dataset) if job.dataset is not None else None
    items = list(job.bags) if job.bags else _sequences(dataset)
    mine = [i for i in range(len(items)) if i % context.world_size == context.rank]
    LOG.debug('rank %d evaluates items %s', context.rank, mine)
    local: list[tuple[int, SessionResult]] = []
    error: tuple[int, str] | None = None
    current = -1  # the item being evaluated (errors of earlier items win on rank 0)
    try:
        predictor = _ModelPredictor.build(job.source, context) if mine else None
        npz = _load_npz(job.source) if mine else None
        for done, current in enumerate(mine, start=1):
            local.append((current, _evaluate_item(job, dataset, items[current], predictor,
                                                  npz, context)))
            if on_progress is not None:
                on_progress(done, len(mine))
    except EvaluationInputError as err:
        error = (current, str(err))
    try:
        gathered = gather_to_main(local, error, context)
        if gathered is None:
            return None
        results = [result for _, result in sorted(gathered, key=lambda pair: pair[0])]
        report = build_report(results, job.config)
        write_report(report, job.out_dir, plots=job.plots)
        return report
    finally:
        release(context)


def _sequences(dataset: GenericDataset) -> list[tuple[str, list[int]]]:
    """(name, frame rows) of each sequence of a dataset, in order of first appearance."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, frame in enumerate(dataset.frames):
        groups[frame.sequence or dataset.info.name].append(i)
    return list(groups.items())


def _open_dataset(path: Path | None) -> GenericDataset:
    """Any dataset format of romp_ros.data.sources (generic folder, 3DPW, COCO-style, ...)."""
    from romp_ros.data.sources import SourceSpec, open_source
    try:
        return open_source(SourceSpec(path=str(path)))
    except DatasetError as err:
        raise EvaluationInputError(str(err)) from err


def _load_npz(source: PredictionSource) -> list[InferFrame] | None:
    if source.kind != 'npz':
        return None
    if not Path(source.npz).is_file():
        raise EvaluationInputError(f'{source.npz}: no such .npz file (--pred-npz)')
    return people_from_infer_npz(source.npz)


def _evaluate_item(job: EvaluateJob, dataset: GenericDataset | None, item: Any,
                   predictor: '_ModelPredictor | None', npz: list[InferFrame] | None,
                   context: DistributedContext) -> SessionResult:
    progress = job.progress and context.rank == 0
    if job.bags:
        result = evaluate_bag(item, job.gt_topic, job.source, job.config, predictor=predictor,
                              npz=npz, progress=progress)
    else:
        name, rows = item
        result = evaluate_dataset_sequence(dataset, name, rows, job.source, job.config,
                                           predictor=predictor, npz=npz, progress=progress)
    check_pairing(result)
    return result


# ----------------------------------------------------------------------------- bags


def evaluate_bag(path: str | os.PathLike, gt_topic: str, source: PredictionSource,
                 config: EvaluationConfig, *, predictor: '_ModelPredictor | None' = None,
                 npz: list[InferFrame] | None = None, progress: bool = False) -> SessionResult:
    """Evaluate one bag; returns the session's raw result (see :func:`run_evaluation`).

    Raises:
        EvaluationInputError: a missing/corrupt/empty bag, a missing topic or one of the
            wrong type, an npz without stamps.
    """
    from tqdm import tqdm

    with open_bag(path) as bag:
        bag.require_topic(gt_topic, (PERSON_MESH_ARRAY,), '--gt-topic')
        session = EvaluationSession(config, name=str(path))
        topics = [gt_topic]
        if source.kind == 'topic':
            bag.require_topic(source.topic, (PERSON_MESH_ARRAY,), '--pred-topic')
            topics.append(source.topic)
        elif source.kind == 'npz':
            _feed_npz_by_stamp(session, npz if npz is not None else _load_npz(source),
                               source.npz)
        else:
            if predictor is None:
                raise ValueError('a model source needs a predictor')
            image_topic, info_topics = _image_topics(bag, source)
            topics += [image_topic, *info_topics]
            predictor.start_stream()
        total = sum(bag.topics[t].count for t in set(topics))
        # frame_id -> latest CameraInfo; '*' for that of an explicitly chosen camera_info topic
        latest_k: dict[str, CameraCalibration] = {}
        cameras = _CameraChoice(source)
        for message in tqdm(bag.messages(list(dict.fromkeys(topics))), total=total,
                            unit='msg', desc=Path(path).name, disable=not progress):
            if message.topic == gt_topic:
                _feed_people_message(session, bag, message, ground_truth=True)
            if source.kind == 'topic' and message.topic == source.topic:
                _feed_people_message(session, bag, message, ground_truth=False)
            elif source.kind == 'model' and message.msgtype == CAMERA_INFO:
                _update_intrinsics(bag, message, latest_k, bool(source.camera_info_topic))
            elif source.kind == 'model' and message.msgtype in IMAGE_TYPES:
                _feed_image_message(session, bag, message, latest_k, predictor, cameras)
        if predictor is not None and source.kind == 'model':
            predictor.flush(session)
        _account_unread(session, bag, topics)
    return session.close()


def _image_topics(bag: BagReader, source: PredictionSource) -> tuple[str, list[str]]:
    if source.image_topic:
        bag.require_topic(source.image_topic, IMAGE_TYPES, '--image-topic')
        image_topic = source.image_topic
    else:
        images = bag.topics_of_type(IMAGE_TYPES)
        if len(images) != 1:
            found = ', '.join(t.topic for t in images) or 'none'
            raise EvaluationInputError(
                f'{bag.path}: running a model needs one image topic; found {found}. Pick one '
                'with --image-topic')
        image_topic = images[0].topic
    if source.camera_info_topic:
        bag.require_topic(source.camera_info_topic, (CAMERA_INFO,), '--camera-info-topic')
        return image_topic, [source.camera_info_topic]
    return image_topic, [t.topic for t in bag.topics_of_type((CAMERA_INFO,))]


def _feed_people_message(session: EvaluationSession, bag: BagReader, message: BagMessage,
                         ground_truth: bool) -> None:
    reason = BAD_GROUND_TRUTH if ground_truth else DECODE_ERROR
    try:
        people = people_from_message(bag.deserialize(message))
    except (MessageDecodeError, PeopleFormatError) as err:
        stamp = header_stamp_from_cdr(message.raw)
        detail = f'{message.topic}: {err}'
        if stamp is None:
            session.add_unplaced(reason, detail, ground_truth=ground_truth)
        elif ground_truth:
            session.add_ground_truth(stamp, None, reason, detail)
        else:
            session.add_prediction(stamp, None, reason, detail)
        return
    if ground_truth:
        session.add_ground_truth(people.stamp_ns, people)
    else:
        session.add_prediction(people.stamp_ns, people)


def _update_intrinsics(bag: BagReader, message: BagMessage,
                       latest_k: dict[str, CameraCalibration], explicit: bool) -> None:
    try:
        msg = bag.deserialize(message)
        calibration = calibration_from_message(msg)
    except (MessageDecodeError, CameraModelError) as err:
        LOG.warning('%s: camera_info skipped: %s', bag.path, err)
        return
    if calibration.k[0] > 0 and calibration.k[4] > 0:  # K = 0: not calibrated
        latest_k['*' if explicit else msg.header.frame_id] = calibration


class _CameraChoice:
    """The camera of each image: the source's own, else the bag's / dataset's."""

    def __init__(self, source: PredictionSource) -> None:
        self._source = source
        self._streams = StreamCameras(source.camera_model)

    def for_calibration(self, calibration: CameraCalibration | None, height: int, width: int,
                        topic: str = '') -> CameraIntrinsics | CameraModel | None:
        """The camera for an image of (height, width) (None: the default field of view)."""
        fixed = self._source.camera
        if isinstance(fixed, CameraIntrinsics):
            return fixed
        if fixed is not None:
            calibration = fixed
        if calibration is None:
            return None
        return self._streams.for_image(calibration, height, width, topic)

    def for_label(self, label: Any, height: int, width: int
                  ) -> CameraIntrinsics | CameraModel | None:
        """The camera of a dataset frame (its ``CameraLabel``: K and lens) for its image."""
        if self._source.camera is not None or label is None:
            return self.for_calibration(None, height, width)
        try:
            camera = CameraModel(label.width, label.height, tuple(label.k),
                                 label.distortion_model, tuple(label.d))
            return fit_to_image(camera, height, width)[0]
        except CameraModelError as err:
            self._streams.warn_once(f'dataset camera not usable for {width}x{height} images '
                                    f'({err}); the default field of view is assumed')
            return None


def _feed_image_message(session: EvaluationSession, bag: BagReader, message: BagMessage,
                        latest_k: dict[str, CameraCalibration],
                        predictor: '_ModelPredictor', cameras: _CameraChoice) -> None:
    try:
        msg = bag.deserialize(message)
    except MessageDecodeError as err:
        stamp = header_stamp_from_cdr(message.raw)
        if stamp is None:
            session.add_unplaced(DECODE_ERROR, str(err), ground_truth=False)
        else:
            session.add_prediction(stamp, None, DECODE_ERROR, str(err))
        return
    stamp = stamp_to_ns(msg.header.stamp)
    try:
        pixels = decode_image_message(msg, message.msgtype)
    except ImageDecodeError as err:
        session.add_prediction(stamp, None, DECODE_ERROR, f'{message.topic}: {err}')
        return
    frame_id = msg.header.frame_id
    height, width = pixels.shape[:2]
    camera = cameras.for_calibration(latest_k.get('*') or latest_k.get(frame_id), height,
                                     width, message.topic)
    predictor.add(session, stamp, pixels, camera, frame_id)


def _feed_npz_by_stamp(session: EvaluationSession, frames: list[InferFrame], path: Any) -> None:
    stamped = [f for f in frames if f.stamp_ns is not None]
    if not stamped:
        raise EvaluationInputError(
            f'{path}: the .npz frames have no stamps (made from image files or a video without '
            'a frame rate), so they cannot be paired with a bag; run `romp-ros infer` on the '
            'bag itself')
    for frame in sorted(stamped, key=lambda f: f.stamp_ns):
        session.add_prediction(frame.stamp_ns, frame.people)


def _account_unread(session: EvaluationSession, bag: BagReader, topics: Iterable[str]) -> None:
    if bag.read_error is None:
        return
    if not any(bag.read_counts.values()):
        raise EvaluationInputError(f'{bag.path}: no message could be read, the bag is corrupt '
                                   f'({bag.read_error})')
    session.add_note(f'reading stopped early: {bag.read_error}')
    for topic in dict.fromkeys(topics):
        missing = bag.unread(topic)
        if missing:
            session.add_unplaced(UNREADABLE, f'{topic}: unreadable after a storage error',
                                 count=missing)


# ----------------------------------------------------------------------------- datasets


def evaluate_dataset_sequence(dataset: GenericDataset, name: str, rows: list[int],
                              source: PredictionSource,
                              config: EvaluationConfig, *,
                              predictor: '_ModelPredictor | None' = None,
                              npz: list[InferFrame] | None = None,
                              progress: bool = False) -> SessionResult:
    """Evaluate one sequence (frames ``rows``) of a generic-format dataset.

    Ground truth: the frames' labels (stamps: ``stamp_ns``, else the frame index). Predictions:
    the model on the frame images with the frames' cameras (K and lens), or the npz frames
    whose input path is the frame's image.
    """
    from tqdm import tqdm

    session = EvaluationSession(config, name=name)
    by_path = _npz_by_path(npz if npz is not None else _load_npz(source)) \
        if source.kind == 'npz' else {}
    if predictor is not None:
        predictor.start_stream()
    cameras = _CameraChoice(source)
    joint_names = dataset.info.joint_names
    for row in tqdm(rows, unit='frame', desc=name, disable=not progress):
        frame = dataset.frames[row]
        gt = people_from_label(frame, joint_names)
        session.add_ground_truth(gt.stamp_ns, gt)
        if source.kind == 'npz':
            found = by_path.get(_resolved(dataset.image_path(frame)))
            if found is not None:
                session.add_prediction(gt.stamp_ns, _restamped(found.people, gt.stamp_ns))
            continue
        try:
            pixels = dataset.load_image(frame)
        except DatasetError as err:
            session.add_prediction(gt.stamp_ns, None, DECODE_ERROR, str(err))
            continue
        height, width = pixels.shape[:2]
        predictor.add(session, gt.stamp_ns, pixels,
                      cameras.for_label(frame.camera, height, width), '')
    if predictor is not None:
        predictor.flush(session)
    if rows and rows[0] == 0 and dataset.skipped.total:  # said once, by the first sequence
        _account_dataset_skips(session, dataset)
    return session.close()


def _account_dataset_skips(session: EvaluationSession, dataset: GenericDataset) -> None:
    """Rows of frames.jsonl the dataset reader dropped are unusable ground-truth frames."""
    for reason, count in sorted(dataset.skipped.counts.items()):
        if 'field dropped' in reason:
            session.add_note(f'dataset: {count} x {reason}')
        else:
            session.add_unplaced(BAD_GROUND_TRUTH, f'dataset row skipped: {reason}', count=count,
                                 ground_truth=True)


def _npz_by_path(frames: list[InferFrame]) -> dict[str, InferFrame]:
    return {_resolved(Path(f.source)): f for f in frames}


def _resolved(path: Path) -> str:
    return str(Path(path).expanduser().resolve())


def _restamped(people: FramePeople, stamp_ns: int) -> FramePeople:
    return FramePeople(stamp_ns, people.joint_names, people.joints_3d, people.keypoints_2d,
                       people.bbox, people.ids, people.confidences, people.verts,
                       people.translation, people.frame_id)


# ----------------------------------------------------------------------------- the model


class _ModelPredictor:
    """Runs the estimator on batches of frames (and the tracker, if asked) for a session."""

    def __init__(self, estimator: Any, batch_size: int, track: bool) -> None:
        self.estimator = estimator
        self.batch_size = batch_size
        self.track = track
        self._batch: list[tuple[int, np.ndarray, CameraIntrinsics | CameraModel | None,
                                str]] = []
        self._tracker: Any = None

    @classmethod
    def build(cls, source: PredictionSource, context: DistributedContext
              ) -> '_ModelPredictor | None':
        """The predictor of a model source (None for recorded predictions)."""
        if source.kind != 'model':
            return None
        from romp_ros.core.estimator import Estimator
        config = source.estimator
        if context.world_size > 1 and config.device == 'auto':
            import torch
            if torch.cuda.is_available():
                config = config.replace(
                    device=f'cuda:{context.local_rank % torch.cuda.device_count()}')
        return cls(Estimator(config), source.batch_size, source.track)

    def start_stream(self) -> None:
        """A new bag or sequence: a fresh tracker (ids restart)."""
        self._batch = []
        if self.track:
            from romp_ros.core.tracking import FrameTracker, TrackerConfig
            repose = self.estimator.pose_bodies
            self._tracker = FrameTracker(TrackerConfig(), repose=repose)

    def add(self, session: EvaluationSession, stamp_ns: int, pixels: np.ndarray,
            intrinsics: CameraIntrinsics | CameraModel | None, frame_id: str) -> None:
        """Queue one RGB frame; runs the network when the batch is full."""
        self._batch.append((stamp_ns, pixels, intrinsics, frame_id))
        if len(self._batch) >= self.batch_size:
            self.flush(session)

    def flush(self, session: EvaluationSession) -> None:
        """Run the queued frames and hand their people to the session."""
        from romp_ros.core.geometry.intrinsics import IntrinsicsError
        from romp_ros.core.preprocess import ImageInputError
        batch, self._batch = self._batch, []
        if not batch:
            return
        try:
            results = self.estimator.predict([b[1] for b in batch],
                                             intrinsics=[b[2] for b in batch])
        except (ImageInputError, IntrinsicsError):
            results = []
            for item in batch:  # find the offending frame(s); the others still count
                try:
                    results.extend(self.estimator.predict([item[1]], intrinsics=[item[2]]))
                except (ImageInputError, IntrinsicsError) as err:
                    results.append(err)
        for (stamp, _, _, frame_id), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                session.add_prediction(stamp, None, INFERENCE_ERROR, str(result))
                continue
            ids = None
            if self._tracker is not None:
                tracked = self._tracker.update(result, stamp / 1e9)
                result, ids = tracked.result, tracked.ids
            session.add_prediction(stamp, people_from_result(result, stamp, ids, frame_id))
