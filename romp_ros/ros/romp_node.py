"""The ROMP / BEV perception node: camera images in, people (messages, TF, markers) out.

A thin lifecycle node (``rclpy.lifecycle.LifecycleNode``) around the core estimator, following
the ROS 2 managed-node conventions:

* ``configure`` reads the parameters, loads the model (a missing file fails with one message
  naming it and the command that creates it) and creates the publishers as lifecycle
  publishers: the topics exist from then on, and carry messages only while the node is active;
* ``activate`` enables the publishers, subscribes to the inputs and starts the inference
  worker; ``deactivate`` undoes that without waiting for a frame in flight (the worker drops
  it); ``cleanup`` releases the model and the publishers. ``autostart`` (default) runs
  configure + activate at start-up so that ``ros2 run romp_ros romp_node`` just works.

Subscription callbacks only put the newest image into a one-slot buffer; a worker thread
decodes it, runs the estimator and publishes. Frames that arrive while the worker is busy
replace the waiting one (counted as dropped), so latency and memory stay bounded whatever the
input rate. With ``camera_namespaces`` there is one such slot per camera: the worker takes the
newest frame of every camera and runs them through one network call; tracking, outputs and the
visualization stay per camera. The node changes no process-wide state (the Python loggers are
left as they are), so several nodes can share a process. Topics, parameters and frames:
docs/ros_interface.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import itertools
import logging
import re
import threading
import time
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from romp_ros.core.config import ConfigError
from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError
from romp_ros.core.image_decoding import ImageDecodeError, decode_compressed, decode_raw_image
from romp_ros.core.render import BirdsEyeConfig
from romp_ros.msg import BodyModel, PersonMeshArray
from romp_ros.ros import conversions
from romp_ros.ros.camera_info import CameraInfoStore
from romp_ros.ros.diagnostics import NodeStats, WarnLimiter, diagnostic_array
from romp_ros.ros.frame_buffer import LatestPerStream, PendingFrame
from romp_ros.ros.lifecycle import WorkingLifecycleNode, run_node
from romp_ros.ros.params import (
    PARAMETERS_BY_NAME,
    NodeConfig,
    current_values,
    declare_parameters,
    make_validation_callback,
    node_config,
)
from romp_ros.ros.person_ids import IdSource, make_id_source
from romp_ros.ros.visualization import VisualizationJob, VisualizationWorker

if TYPE_CHECKING:  # the estimator (and torch) is imported when the node configures
    from romp_ros.core.estimator import PendingPrediction

NODE_NAME = 'romp_node'
# Every publication of the node: topic (relative names follow the node's namespace) -> type.
OUTPUT_TOPICS = {
    'people': PersonMeshArray,
    'body_model': BodyModel,
    '/tf': TFMessage,
    'markers': MarkerArray,
    'overlay': Image,
    'birds_eye': Image,
    '/diagnostics': DiagnosticArray,
}
# Outputs of each camera: under its namespace with camera_namespaces (front/people, ...).
PER_CAMERA_TOPICS = ('people', 'markers', 'overlay', 'birds_eye')
# Inputs: 'image' (raw) or 'image/compressed' (image_transport=compressed), and 'camera_info'.
INPUT_TOPICS = {'image': Image, 'image/compressed': CompressedImage, 'camera_info': CameraInfo}
OUTPUT_DEPTH = 5
TF_DEPTH = 100
DIAGNOSTICS_PERIOD_S = 1.0
# Deactivation does not wait for the inference worker; only the visualization thread (which
# publishes the markers' DELETEALL) gets this long, and destroying the node at exit as long
# for a frame in flight.
VISUALIZATION_STOP_TIMEOUT_S = 1.0
SHUTDOWN_JOIN_TIMEOUT_S = 10.0
MARKERS_ACK_TIMEOUT_S = 0.5
WARN_PERIOD_S = 10.0


def input_qos(reliability: str, depth: int) -> QoSProfile:
    """Sensor-data style QoS of the image and camera_info subscriptions."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, durability=DurabilityPolicy.VOLATILE,
        reliability=(ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                     else ReliabilityPolicy.BEST_EFFORT))


def output_qos(depth: int = OUTPUT_DEPTH, latched: bool = False) -> QoSProfile:
    """Reliable QoS of the outputs (RViz and recorders subscribe reliably)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class _ForwardToRosLog(logging.Handler):
    """Sends the core's Python log records to the node's logger, throttled per message.

    Only records emitted by this node's own threads (its inference worker, and the thread
    running its configure) are forwarded, so two nodes in one process each get their own.
    The records' level filter is the application's (the node sets no logger level).
    """

    def __init__(self, node: 'RompNode') -> None:
        super().__init__(logging.NOTSET)
        self._node = node
        self._lock = threading.Lock()
        self._threads: set[int] = set()

    def attach_thread(self) -> None:
        """Forward what the calling thread logs (until :meth:`detach_thread`)."""
        with self._lock:
            self._threads.add(threading.get_ident())

    def detach_thread(self) -> None:
        """Stop forwarding the calling thread's records."""
        with self._lock:
            self._threads.discard(threading.get_ident())

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            ours = record.thread in self._threads
        if not ours:
            return
        show, suppressed = self._node.warn_limiter.check(f'core:{record.name}:{record.msg}')
        if not show:
            return
        text = record.getMessage() + (f' ({suppressed} similar suppressed)' if suppressed else '')
        self._node.log_at(record.levelno, text)


@dataclass
class _Worker:
    """One activation's inference thread, its stop flag and its input slot.

    Each activation gets a new one, so a worker still finishing a frame after ``deactivate``
    never takes the frames of the next activation.
    """

    thread: threading.Thread
    stop: threading.Event
    slot: LatestPerStream[PendingFrame]


@dataclasses.dataclass(frozen=True)
class _InFlight:
    """A batch whose network call was started and whose people are not published yet."""

    ready: list  # (frame, decoded image, rgb pixels, camera or None), one per camera
    pending: PendingPrediction
    started: float  # time.monotonic() when the worker took the frames


def stream_topic(stream: str, name: str) -> str:
    """A camera's topic: ``name`` under the camera namespace ``stream`` ('' = the node's own)."""
    return f'{stream}/{name}' if stream else name


class RompNode(WorkingLifecycleNode):
    """Lifecycle node running ROMP / BEV on a camera stream (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters; nothing is loaded before ``configure``.

        Raises:
            rclpy.exceptions.InvalidParameterValueException: an invalid start-up value.
        """
        super().__init__(NODE_NAME, **kwargs)
        # what destroy_node reads, set first: a failed declaration below still destroys
        self._log_handler: _ForwardToRosLog | None = None
        self._worker: _Worker | None = None
        self._retired: list[_Worker] = []  # deactivated workers possibly finishing a frame
        # visualizers that did not stop in time (a mesh marker takes long): joined at shutdown,
        # since a thread still inside rclpy when the process exits can abort it
        self._retired_visualizers: list[VisualizationWorker] = []
        self.warn_limiter = WarnLimiter(WARN_PERIOD_S)
        self._values: dict = {}
        self._live: NodeConfig | None = None
        self.add_on_set_parameters_callback(make_validation_callback(
            self._on_parameters_accepted, self._check_combination))
        declare_parameters(self)
        self._values = current_values(self)
        self._live = node_config(self._values)
        self._config: NodeConfig | None = None  # the configuration of the loaded estimator
        self._estimator = None
        self._faces = None
        self._stats = NodeStats()
        self._cameras = CameraInfoStore()
        self._id_sources: dict[tuple[str, str], IdSource] = {}  # per (camera, frame_id)
        # one id counter for all of them, for the node's life: an id names one person of one
        # camera, so body_<id> has one parent in TF, and no id comes back after a reconfigure
        self._track_ids = itertools.count(1)
        self._visualizers: dict[str, VisualizationWorker] = {}  # per camera
        self._streams: tuple[str, ...] = ('',)  # camera namespaces of the configuration
        self._largest_batch = 0  # most camera frames one network call has taken
        self._pubs: dict = {}  # by topic name (a camera's own under its namespace)
        self._subs: list = []
        self._timer = None
        self._active = False
        self._announced_frames: set[str] = set()
        self._fov_warned: set[str] = set()
        self._log_handler = _ForwardToRosLog(self)
        logging.getLogger('romp_ros').addHandler(self._log_handler)

    # -- parameters -------------------------------------------------------------------------
    def _check_combination(self, changes: dict) -> str:
        """'' if the parameter set stays consistent with ``changes`` applied, else why not."""
        if not self._values:
            return ''  # declaration in progress: each value is checked on its own
        candidate = dict(self._values)
        candidate.update({k: v for k, v in changes.items() if k in PARAMETERS_BY_NAME})
        try:
            node_config(candidate)
        except ConfigError as err:
            return str(err)
        return ''

    def _on_parameters_accepted(self, changes: dict) -> None:
        ours = {k: v for k, v in changes.items() if k in PARAMETERS_BY_NAME}
        if not ours or not self._values:
            return
        self._values.update(ours)
        self._live = node_config(self._values)
        later = sorted(k for k in ours if PARAMETERS_BY_NAME[k].apply in ('configure', 'activate'))
        if later:
            self.get_logger().info(
                f'parameter(s) {later} changed; they take effect on the next lifecycle '
                'configure/activate')

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Build the estimator from the parameters; FAILURE with one message on error."""
        from romp_ros.core.body.model_files import ModelFilesError
        from romp_ros.core.estimator import Estimator, EstimatorError
        from romp_ros.core.nets.checkpoint import CheckpointError

        self._log_handler.attach_thread()
        try:
            config = node_config(self._values)
            estimator = Estimator(config.estimator)
        except (ModelFilesError, EstimatorError, CheckpointError, ConfigError) as err:
            self.get_logger().error(f'configure failed: {err}')
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # rclpy would turn it into a silent ERROR transition
            self.get_logger().error(f'configure failed: {type(err).__name__}: {err}')
            return TransitionCallbackReturn.FAILURE
        finally:
            self._log_handler.detach_thread()
        self._config, self._estimator = config, estimator
        self._faces = estimator.faces
        self._streams = config.camera_namespaces or ('',)
        self._id_sources.clear()
        try:
            self._create_publishers()
        except Exception as err:  # e.g. an invalid remapped topic name
            self.get_logger().error(f'configure failed: {type(err).__name__}: {err}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        est = config.estimator
        self.get_logger().info(
            f'loaded {est.model}/{est.backbone} on {estimator.device} '
            f'({estimator.runner.describe()}, input {estimator.input_size} px); '
            f'{len(estimator.joint_names)} joints, {self._num_vertices()} vertices')
        return TransitionCallbackReturn.SUCCESS

    def _create_publishers(self) -> None:
        """The outputs, as lifecycle publishers (they publish only while active).

        /diagnostics is a plain publisher with its own timer, so that the node reports its
        state (inactive included) from configure to cleanup.
        """
        for topic, msg_type in OUTPUT_TOPICS.items():
            if topic == '/diagnostics':
                self._pubs[topic] = self.create_publisher(msg_type, topic, output_qos())
                continue
            if topic == 'body_model':
                qos = output_qos(1, latched=True)
            else:
                qos = output_qos(TF_DEPTH if topic == '/tf' else OUTPUT_DEPTH)
            names = ([stream_topic(s, topic) for s in self._streams]
                     if topic in PER_CAMERA_TOPICS else [topic])
            for name in names:
                self._pubs[name] = self.create_lifecycle_publisher(msg_type, name, qos)
        self._timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, publish the body model, subscribe and start the worker."""
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        try:
            self._activate(node_config(self._values))
        except Exception as err:  # e.g. an invalid remapped topic name; undo what was made
            self.get_logger().error(f'activate failed: {type(err).__name__}: {err}')
            self.on_deactivate(state)  # stops the work and disables the publishers again
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _activate(self, config: NodeConfig) -> None:
        self._pubs['body_model'].publish(conversions.body_model_message(
            self._config.estimator.model, self._faces, self._num_vertices(),
            self._estimator.joint_names, self.get_clock().now().to_msg()))
        birds_eye = BirdsEyeConfig(size=(config.birds_eye_size_px,) * 2,
                                   depth_range_m=config.birds_eye_range_m)
        for stream in self._streams:
            self._visualizers[stream] = VisualizationWorker(
                self._pubs[stream_topic(stream, 'markers')],
                self._pubs[stream_topic(stream, 'overlay')], self._faces, self._warn,
                birds_eye_pub=self._pubs[stream_topic(stream, 'birds_eye')],
                birds_eye_config=birds_eye)
        stop, slot = threading.Event(), LatestPerStream()
        thread = threading.Thread(target=self._work, args=(stop, slot, config.overlap_frames),
                                  name='romp_inference', daemon=True)
        self._worker = _Worker(thread=thread, stop=stop, slot=slot)
        thread.start()
        self._subscribe(config)
        self._active = True
        topics = ', '.join(self._image_topic(config, s) for s in self._streams)
        self.get_logger().info(f'active: listening on {topics} '
                               f'({config.qos_reliability}, depth {config.qos_depth})')

    def destroy_node(self) -> None:
        """Wait (bounded) for deactivated workers, detach the log forwarding, destroy."""
        self._join_retired(SHUTDOWN_JOIN_TIMEOUT_S)
        if self._log_handler is not None:
            logging.getLogger('romp_ros').removeHandler(self._log_handler)
            self._log_handler = None
        super().destroy_node()

    def _join_retired(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._retired:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                self.get_logger().warning('an inference worker was still busy at shutdown')
        self._retired = [w for w in self._retired if w.thread.is_alive()]
        busy = [v for v in self._retired_visualizers
                if not v.join(max(0.0, deadline - time.monotonic()))]
        if busy:
            self.get_logger().warning('a visualization worker was still busy at shutdown')
        self._retired_visualizers = busy

    def _subscribe(self, config: NodeConfig) -> None:
        qos = input_qos(config.qos_reliability, config.qos_depth)
        for stream in self._streams:
            if config.image_transport == 'compressed':
                self._subs.append(self.create_subscription(
                    CompressedImage, self._image_topic(config, stream),
                    lambda msg, s=stream: self._enqueue(msg, True, s), qos))
            else:
                self._subs.append(self.create_subscription(
                    Image, stream_topic(stream, 'image'),
                    lambda msg, s=stream: self._enqueue(msg, False, s), qos))
            self._subs.append(self.create_subscription(
                CameraInfo, stream_topic(stream, 'camera_info'), self._on_camera_info, qos))

    def _image_topic(self, config: NodeConfig, stream: str = '') -> str:
        name = stream_topic(stream, 'image')
        resolve = getattr(self, 'resolve_topic_name', None)
        base = resolve(name) if resolve is not None else name
        return f'{base}/compressed' if config.image_transport == 'compressed' else base

    def _stop_work(self) -> None:
        """Stop listening and inferring, and delete the markers (undoes :meth:`_activate`).

        A partial activation is undone too: each resource is checked.

        Does not wait for the inference worker: it is told to stop, its slot is closed, and a
        frame it is still inferring is dropped (its stop flag is checked before publishing).
        The publishers stay (they are disabled by the lifecycle transition).
        """
        self._active = False
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._worker is not None:
            self._worker.stop.set()
            self._worker.slot.close()
            self._retired = [w for w in self._retired if w.thread.is_alive()]
            self._retired.append(self._worker)
            self._worker = None
        context_ok = rclpy.ok(context=self.context)
        for stream, visualizer in self._visualizers.items():
            if not visualizer.stop(VISUALIZATION_STOP_TIMEOUT_S, clear_markers=context_ok):
                self.get_logger().warning('the visualization worker did not stop in time; '
                                          'it is waited for at shutdown')
                self._retired_visualizers = [v for v in self._retired_visualizers
                                             if not v.join(0.0)] + [visualizer]
            markers = self._pubs.get(stream_topic(stream, 'markers'))
            wait_acked = getattr(markers, 'wait_for_all_acked', None)
            if context_ok and wait_acked is not None:  # RViz gets the DELETEALL before we go
                wait_acked(Duration(seconds=MARKERS_ACK_TIMEOUT_S))
        self._visualizers = {}

    def _destroy_publishers(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for topic, pub in self._pubs.items():
            if topic == '/diagnostics':
                self.destroy_publisher(pub)
            else:
                self.destroy_lifecycle_publisher(pub)
        self._pubs = {}

    def _release(self) -> None:
        self._destroy_publishers()
        if self._estimator is None:
            return
        device = getattr(self._estimator, 'device', None)
        self._estimator = None
        self._faces = None
        self._config = None
        self._cameras.clear()
        self._announced_frames.clear()
        self._fov_warned.clear()
        self._id_sources.clear()
        if device is not None and device.type == 'cuda':
            import torch
            torch.cuda.empty_cache()

    def _num_vertices(self) -> int:
        body = getattr(self._estimator, 'body_model', None)
        count = getattr(body, 'num_vertices', None)
        return int(count) if count is not None else int(self._faces.max()) + 1

    # -- callbacks (executor thread: never block) --------------------------------------------
    def _enqueue(self, msg, compressed: bool, stream: str) -> None:
        worker = self._worker
        if worker is None:
            return
        dropped = worker.slot.put(stream, PendingFrame(
            msg=msg, compressed=compressed, received=time.monotonic(), stream=stream))
        self._stats.frame_received(dropped)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        frame = msg.header.frame_id
        mode = self._live.camera_model
        problem = self._cameras.update(msg, mode)
        if problem:
            self._warn(f'camera_info:{frame}:{re.sub(r"[-0-9.e]+", "N", problem)}',
                       f"camera_info for frame '{frame}' ignored: {problem}; using the last "
                       'valid camera of that frame or the default field of view')
        elif frame not in self._announced_frames:
            self._announced_frames.add(frame)
            lens = msg.distortion_model or 'no'
            self.get_logger().info(
                f"using camera_info of frame '{frame}' ({mode} images: "
                + (f'K and the {lens} lens)' if mode == 'raw' else 'P, no lens)'))

    def _publish_diagnostics(self) -> None:
        pub = self._pubs.get('/diagnostics')
        if pub is None or self._config is None:
            return
        est = self._config.estimator
        hardware = f'{est.model}/{est.backbone} on {getattr(self._estimator, "device", "?")}'
        extra = {'visualization_dropped': str(sum(v.dropped
                                                  for v in self._visualizers.values())),
                 'cameras': str(len(self._streams)),
                 'largest_network_batch': str(self._largest_batch)}
        pub.publish(diagnostic_array(self._stats.snapshot(), self.get_clock().now().to_msg(),
                                     self._live.latency_warn_ms, self._active, hardware, extra))

    # -- worker thread ----------------------------------------------------------------------
    def _work(self, stop: threading.Event, slot: LatestPerStream[PendingFrame],
              overlap: bool) -> None:
        """Take the newest frames, run them, publish; with ``overlap``, one batch behind.

        With ``overlap_frames`` a batch is started (its network queued on the GPU) before the
        previous batch is tracked and published, so the host's work on one overlaps the GPU's
        on the next. A batch waits for the next one only if frames are already waiting: with
        none, it is published at once.
        """
        handler = self._log_handler
        if handler is not None:
            handler.attach_thread()
        in_flight: _InFlight | None = None
        try:
            while not stop.is_set():
                # the newest frame of every camera; no waiting while a batch is in flight
                frames = slot.take_all(timeout=0.0 if in_flight is not None else 0.2)
                started = self._guarded(stop, self._start, frames) if frames else None
                if in_flight is not None:
                    self._guarded(stop, self._finish, in_flight)
                in_flight = started
                if in_flight is not None and not overlap:
                    self._guarded(stop, self._finish, in_flight)
                    in_flight = None
        finally:
            if handler is not None:
                handler.detach_thread()

    def _guarded(self, stop: threading.Event, step, work):
        """``step(work, stop)`` for one batch; an exception is counted and logged, never fatal."""
        try:
            return step(work, stop)
        except Exception as err:  # keep the node alive whatever one frame does
            self._stats.error()
            if not stop.is_set():
                self._warn(f'worker:{type(err).__name__}',
                           f'frame failed: {type(err).__name__}: {err}', error=True)
            return None

    def _warn(self, key: str, text: str, error: bool = False) -> None:
        show, suppressed = self.warn_limiter.check(key)
        if not show:
            return
        if suppressed:
            text += f' ({suppressed} similar suppressed)'
        (self.get_logger().error if error else self.get_logger().warning)(text)

    def _decode(self, frame: PendingFrame):
        msg = frame.msg
        try:
            if frame.compressed:
                return decode_compressed(msg.format, msg.data)
            return decode_raw_image(msg)
        except ImageDecodeError as err:
            self._stats.frame_skipped()
            kind = msg.format if frame.compressed else msg.encoding
            self._warn(f'decode:{kind}:{re.sub(r"[0-9]+", "N", str(err))}',
                       f'image skipped: {err}')
            return None

    def _camera(self, frame_id: str, height: int, width: int,
                fov_deg: float) -> CameraModel | None:
        """The camera of an image of ``frame_id`` (K and lens, or P), or None (default FOV)."""
        mode = self._live.camera_model
        try:
            found = self._cameras.camera_for_image(frame_id, height, width, mode)
        except CameraModelError as err:
            self._warn(f'camera_unusable:{frame_id}:{mode}',
                       f"camera_info of frame '{frame_id}' does not fit its {width}x{height} "
                       f'images: {err}; assuming the default field of view')
            return None
        if found is None:
            if frame_id not in self._fov_warned:  # once per frame (until cleanup)
                self._fov_warned.add(frame_id)
                self.get_logger().warning(
                    f"no valid camera_info for frame '{frame_id}' yet; assuming the default "
                    f'field of view ({fov_deg:g} deg) until one arrives')
            return None
        for text in found.warnings:
            self._warn(f'camera_note:{frame_id}:{text[:40]}',
                       f"camera_info of frame '{frame_id}': {text}")
        if found.rescaled:
            stored = self._cameras.get(frame_id)
            height_info, width_info = stored.image_size() if stored is not None else (0, 0)
            self._warn(f'rescaled_k:{frame_id}',
                       f"camera_info of frame '{frame_id}' is for {width_info}x{height_info} "
                       f'images, the image is {width}x{height}; K is scaled')
        return found.camera

    def _start(self, frames: list[PendingFrame], stop: threading.Event) -> _InFlight | None:
        """Decode the frames (one per camera) and start them through one network call."""
        started = time.monotonic()
        estimator, config = self._estimator, self._config
        if estimator is None or config is None or stop.is_set():
            return None
        ready = []  # (frame, decoded image, rgb pixels, camera or None)
        for frame in frames:
            decoded = self._decode(frame)
            if decoded is None:
                continue
            pixels = (decoded.pixels if decoded.color_order == 'rgb'
                      else decoded.pixels[:, :, ::-1])
            height, width = pixels.shape[:2]
            camera = self._camera(frame.msg.header.frame_id, height, width,
                                  config.estimator.fov_deg)
            ready.append((frame, decoded, pixels, camera))
        if not ready or stop.is_set():
            return None
        pending = estimator.submit([r[2] for r in ready], intrinsics=[r[3] for r in ready])
        self._largest_batch = max(self._largest_batch, len(ready))
        return _InFlight(ready=ready, pending=pending, started=started)

    def _finish(self, batch: _InFlight, stop: threading.Event) -> None:
        """Wait for a started batch's people, then track and publish each camera's."""
        results = batch.pending.result()
        for (frame, decoded, _, camera), result in zip(batch.ready, results, strict=True):
            if stop.is_set():  # deactivated meanwhile: drop the frames, leave the trackers alone
                return
            self._publish(frame, decoded, camera, result, batch.started)

    def _publish(self, frame: PendingFrame, decoded, camera, result, started: float) -> None:
        """Track one camera's result and publish its people, TF and visualization."""
        header, stream = frame.msg.header, frame.stream
        estimator, config = self._estimator, self._config
        cfg, est = self._live, config.estimator
        pubs, visualizer = self._pubs, self._visualizers.get(stream)
        if not pubs or visualizer is None:
            return
        # markers and overlay only while someone listens, on the visualization thread
        wanted = {topic: pubs[stream_topic(stream, topic)].get_subscription_count() > 0
                  for topic in ('markers', 'overlay', 'birds_eye')}
        markers = cfg.publish_markers and wanted['markers']
        overlay = cfg.publish_overlay and wanted['overlay']
        birds_eye = cfg.publish_birds_eye and wanted['birds_eye']
        if not (cfg.publish_vertices or overlay or (markers and cfg.marker_mesh)):
            # nobody reads this frame's meshes: smoothing then re-poses the joints only
            result = dataclasses.replace(result, verts=None)
        stamp_s = header.stamp.sec + header.stamp.nanosec * 1e-9
        key = (stream, header.frame_id)
        source = self._id_sources.get(key)
        if source is None:
            source = self._id_sources[key] = make_id_source(
                config, repose=estimator.pose_bodies, ids=self._track_ids)
        result, identities = source.update(result, stamp_s)
        people_pub = pubs[stream_topic(stream, 'people')]
        people_pub.publish(conversions.person_mesh_array(
            result, header, identities, est.model, est.backbone, cfg.publish_vertices))
        latency = time.monotonic() - frame.received
        if not header.frame_id:
            self._warn('empty_frame_id', 'image with an empty header.frame_id: people TF '
                       'frames need a parent frame and are not published')
        else:
            tf = conversions.tf_message(result, header, identities, cfg.tf_prefix,
                                        cfg.publish_joint_frames)
            if cfg.publish_coasting_tf:
                tf.transforms.extend(conversions.coasting_transforms(header, identities,
                                                                     cfg.tf_prefix))
            if tf.transforms:
                pubs['/tf'].publish(tf)
        if markers or overlay or birds_eye:
            visualizer.submit(VisualizationJob(
                result=result, identities=identities, header=header,
                pixels=decoded.pixels if overlay else None, color_order=decoded.color_order,
                markers=markers, mesh=cfg.marker_mesh, birds_eye=birds_eye))
        self._stats.frame_done(time.monotonic() - started, latency, result.num_people,
                               'camera_info' if camera is not None else 'default_fov')


def main(args=None) -> int:
    """Run the node until SIGINT/SIGTERM; exit status 1 when autostart fails to configure."""
    from rclpy.exceptions import InvalidParameterValueException, ParameterException
    return run_node(RompNode, NODE_NAME,
                    (InvalidParameterValueException, ParameterException, ConfigError), args)


if __name__ == '__main__':
    raise SystemExit(main())
