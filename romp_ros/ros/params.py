"""ROS parameters of the romp node: one table of specs, declarations, validation, mapping.

Every parameter is declared from :data:`PARAMETERS` with a ``ParameterDescriptor`` (description,
type, range, read-only flag), so ``ros2 param describe`` documents the node and the YAML file
(``config/romp.yaml``) can be checked against the declarations. Values map onto the core's
frozen :class:`~romp_ros.core.config.EstimatorConfig` plus the node's own frozen
:class:`NodeConfig`.

When a value takes effect:

* ``read_only`` parameters (model, backbone, checkpoint, models_dir, autostart): at start-up only
  (command line / YAML).
* ``APPLY_CONFIGURE`` (device, precision, thresholds, field of view): on the next lifecycle
  ``configure`` (deactivate + cleanup + configure rebuilds the estimator).
* ``APPLY_ACTIVATE`` (image transport, QoS): on the next ``activate``.
* ``APPLY_NOW`` (publishing options, TF prefix, latency threshold): from the next frame.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import math
import re
from typing import Any, Callable, Iterable, Mapping

from romp_ros.core.config import (
    BACKBONE_NAMES,
    COMPILE_MODES,
    MODEL_NAMES,
    POSTPROCESS_LAYOUTS,
    PRECISIONS,
    RUNTIME_NAMES,
    ConfigError,
    EstimatorConfig,
)
from romp_ros.core.geometry.calibration import CAMERA_MODES
from romp_ros.core.tracking.tracker import TrackerConfig

APPLY_NOW = 'now'
APPLY_CONFIGURE = 'configure'
APPLY_ACTIVATE = 'activate'
APPLY_STARTUP = 'startup'

IMAGE_TRANSPORTS = ('raw', 'compressed')
QOS_RELIABILITIES = ('best_effort', 'reliable')
SMOOTHING_MODES = ('default', 'off')
_DEVICE_RE = re.compile(r'^(auto|cpu|cuda:\d+)$')
# The tracking defaults are the core's, defined once (library, `romp-ros infer --track`, node).
_TRACKING = TrackerConfig()
# TF frame names: letters, digits, '_' and '/' (no leading '/', no '//'): see sanitize_frame_prefix
_FRAME_CHAR_RE = re.compile(r'[^A-Za-z0-9_/]')
# a relative ROS namespace: tokens of letters, digits and '_' that start with a letter
_NAMESPACE_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$')
MAX_CAMERAS = 16


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter of the node.

    Attributes:
        name: parameter name.
        default: default value; its Python type (bool, int, float, str) is the parameter type.
        description: one line for ``ros2 param describe``.
        choices: allowed string values (checked by :func:`validate_value`).
        min_value, max_value: inclusive numeric range (declared as Integer/FloatingPointRange).
        read_only: settable only at start-up.
        apply: when a change takes effect: APPLY_NOW, APPLY_CONFIGURE, APPLY_ACTIVATE or
            APPLY_STARTUP.
        constraints: extra human-readable constraint text for the descriptor.
    """

    name: str
    default: bool | int | float | str | tuple[str, ...]
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = False
    apply: str = APPLY_NOW
    constraints: str = ''

    @property
    def value_type(self) -> type:
        """The Python type of the parameter's values (tuple: a string array)."""
        return type(self.default)


PARAMETERS: tuple[ParamSpec, ...] = (
    # -- model (start-up only) ------------------------------------------------------------------
    ParamSpec('model', 'romp', 'network: romp (2D body centers) or bev (3D centers, children)',
              choices=MODEL_NAMES, read_only=True, apply=APPLY_STARTUP),
    ParamSpec('backbone', 'hrnet32', 'feature extractor (BEV: hrnet32 only)',
              choices=BACKBONE_NAMES, read_only=True, apply=APPLY_STARTUP),
    ParamSpec('checkpoint', '', "network weights file; '' = the model's official file name "
              'inside models_dir', read_only=True, apply=APPLY_STARTUP),
    ParamSpec('models_dir', '~/romp_models', 'folder written by `romp-ros prepare-models` '
              '(body model files; official checkpoints by `romp-ros download`)',
              read_only=True, apply=APPLY_STARTUP),
    ParamSpec('autostart', True, 'configure and activate on start-up (false: wait for the '
              'lifecycle services)', read_only=True, apply=APPLY_STARTUP),
    # -- estimator (next configure) -------------------------------------------------------------
    ParamSpec('device', 'auto', "inference device: 'auto' (CUDA if available), 'cpu' or "
              "'cuda:N'", apply=APPLY_CONFIGURE, constraints='auto | cpu | cuda:N'),
    ParamSpec('precision', 'fp32', 'network precision: fp16/bf16 on CUDA (torch; onnxruntime '
              'with TensorRT: fp16); bf16 on the CPU with runtime openvino',
              choices=PRECISIONS, apply=APPLY_CONFIGURE),
    ParamSpec('runtime', 'torch', "where the network runs: 'torch', 'onnxruntime' or "
              "'openvino' (pip install 'romp-ros[fast]'); checkpoint may then be a .onnx file "
              'of `romp-ros export`', choices=RUNTIME_NAMES, apply=APPLY_CONFIGURE),
    ParamSpec('compile', 'off', "runtime torch: 'off', or a torch.compile mode for the "
              "network ('default'; 'reduce-overhead' / 'max-autotune' replay CUDA graphs on "
              'CUDA); compiled during configure (minutes the first time, cached in '
              '~/.cache/romp_ros/inductor); pays on GPUs', choices=COMPILE_MODES,
              apply=APPLY_CONFIGURE),
    ParamSpec('postprocess', 'compact', "'compact': only the people found are posed (waits "
              "for the device after the center search); 'padded': max_people slots per "
              'image to the end, no wait for the device before the copy back (for GPUs; '
              'lower max_people to the crowd you expect)', choices=POSTPROCESS_LAYOUTS,
              apply=APPLY_CONFIGURE),
    ParamSpec('center_thresh', -1.0, 'minimum body-center score of a person; negative = the '
              "model's default (romp 0.25, bev 0.08)", min_value=-1.0, max_value=1.0,
              apply=APPLY_CONFIGURE),
    ParamSpec('max_people', 64, 'at most this many people per image', min_value=1,
              max_value=64, apply=APPLY_CONFIGURE),
    ParamSpec('default_fov_deg', 60.0, 'field of view assumed until a valid camera_info '
              'arrives for the image frame, degrees', min_value=1.0, max_value=179.0,
              apply=APPLY_CONFIGURE),
    ParamSpec('wide_tiling', False, 'run panoramic / stitched images as overlapping square '
              'windows so that their people keep their size at the network input',
              apply=APPLY_CONFIGURE),
    ParamSpec('wide_min_aspect', 2.0, 'with wide_tiling: tile images whose long side is at '
              'least this many short sides', min_value=1.5, max_value=10.0,
              apply=APPLY_CONFIGURE),
    ParamSpec('wide_overlap', 0.25, 'with wide_tiling: least shared fraction of neighbouring '
              'windows', min_value=0.0, max_value=0.75, apply=APPLY_CONFIGURE),
    # -- tracking (next configure) --------------------------------------------------------------
    ParamSpec('tracking', True, 'stable person ids across frames (romp_ros.core.tracking: 3D '
              'Kalman + two-stage association, one tracker per camera frame_id); false: ids are '
              'per-frame indices', apply=APPLY_CONFIGURE),
    ParamSpec('smoothing', 'default', "temporal smoothing of tracked people's root position: "
              "'default' (Kalman) or 'off'", choices=SMOOTHING_MODES, apply=APPLY_CONFIGURE),
    ParamSpec('track_min_hits', _TRACKING.min_hits, 'detections that confirm a new track; '
              'people are published once their track is confirmed', min_value=1, max_value=30,
              apply=APPLY_CONFIGURE),
    ParamSpec('track_max_coast_s', _TRACKING.max_coast_s, 'seconds an unseen track can still '
              'be re-associated (occlusions) before its id is retired', min_value=0.0,
              max_value=60.0, apply=APPLY_CONFIGURE),
    ParamSpec('track_tentative_max_coast_s', _TRACKING.tentative_max_coast_s,
              'seconds an unconfirmed track survives between detections; must exceed the time '
              'between processed frames (a dropped frame included; CPU: ~0.3-1 s)',
              min_value=0.0, max_value=60.0, apply=APPLY_CONFIGURE),
    ParamSpec('track_low_conf', _TRACKING.low_conf, 'detections below this confidence are '
              'ignored by the tracker; between track_low_conf and track_high_conf they only keep '
              'existing tracks alive', min_value=0.0, max_value=1.0, apply=APPLY_CONFIGURE),
    ParamSpec('track_high_conf', _TRACKING.high_conf, 'detections at or above this confidence '
              'are matched first (must be >= track_low_conf)', min_value=0.0, max_value=1.0,
              apply=APPLY_CONFIGURE),
    ParamSpec('track_new_conf', _TRACKING.new_track_conf, 'minimum confidence of a detection '
              'that starts a track (must be >= track_high_conf); lower it for models whose '
              'scores are low (BEV)', min_value=0.0, max_value=1.0, apply=APPLY_CONFIGURE),
    ParamSpec('track_publish_tentative', _TRACKING.output_tentative, 'also publish people '
              'whose track is not confirmed yet (track_state TENTATIVE)', apply=APPLY_CONFIGURE),
    ParamSpec('publish_coasting_tf', False, 'keep publishing body_<id> TF frames (at the '
              'predicted position) for confirmed tracks briefly unseen, e.g. occluded'),
    # -- cameras (next configure: the publishers are made there) --------------------------------
    ParamSpec('camera_namespaces', (), 'cameras of this node as topic namespaces: camera NS is '
              'read from NS/image (or NS/image/compressed) and NS/camera_info, and its people, '
              "markers, overlay and bird's-eye view go to NS/people, ...; the newest frames of "
              'all cameras share one network call. Empty: one camera on image and camera_info',
              apply=APPLY_CONFIGURE,
              constraints=f'up to {MAX_CAMERAS} distinct relative names: letters, digits, _ '
                          'and /, each part starting with a letter'),
    # -- input (next activate) ------------------------------------------------------------------
    ParamSpec('image_transport', 'raw', "input: 'raw' subscribes to image (sensor_msgs/Image), "
              "'compressed' to image/compressed (sensor_msgs/CompressedImage)",
              choices=IMAGE_TRANSPORTS, apply=APPLY_ACTIVATE),
    ParamSpec('qos_reliability', 'best_effort', 'reliability of the image and camera_info '
              'subscriptions (best_effort also hears reliable publishers)',
              choices=QOS_RELIABILITIES, apply=APPLY_ACTIVATE),
    ParamSpec('overlap_frames', False, 'start the next frame before publishing the previous '
              "one's people, so the host's tracking and publishing overlap the GPU's work on "
              'the next frame when frames queue up (pays on a GPU with postprocess: padded; on '
              'a CPU it only delays each frame by the next one)', apply=APPLY_ACTIVATE),
    ParamSpec('qos_depth', 5, 'queue depth of the image and camera_info subscriptions',
              min_value=1, max_value=100, apply=APPLY_ACTIVATE),
    ParamSpec('camera_model', 'raw', "what the images are: 'raw' (distorted, as the camera "
              "delivers them: CameraInfo K and D are used) or 'rectified' (image_rect topics of "
              'image_proc: P is used, no distortion)', choices=CAMERA_MODES),
    # -- outputs (from the next frame) ----------------------------------------------------------
    ParamSpec('publish_vertices', False, 'fill PersonMesh.vertices (about 83 kB per person)'),
    ParamSpec('publish_joint_frames', True, 'publish a TF frame per ROS4HRI body joint '
              '(head_<id>, l_wrist_<id>, ...) besides body_<id>'),
    ParamSpec('publish_markers', True, 'publish RViz markers (mesh, skeleton, label) on '
              'markers'),
    ParamSpec('marker_mesh', True, 'include the body mesh (TRIANGLE_LIST) in the markers; '
              'false keeps skeletons and labels only (much lighter)'),
    ParamSpec('publish_overlay', True, 'publish the input image with skeletons and meshes '
              'drawn on it on overlay (only while someone subscribes)'),
    ParamSpec('publish_birds_eye', True, "publish the bird's-eye view (people around the "
              'camera from above, metres grid, field of view, ids, trails) on birds_eye '
              '(only while someone subscribes)'),
    ParamSpec('birds_eye_range_m', 12.0, "distance in front of the camera the bird's-eye "
              'view shows, metres', min_value=1.0, max_value=200.0),
    ParamSpec('birds_eye_size_px', 480, "side of the square bird's-eye image, pixels",
              min_value=64, max_value=4096),
    ParamSpec('tf_prefix', '', 'prepended to every person TF frame name (invalid characters '
              "become '_'), e.g. 'front_' gives front_body_3"),
    ParamSpec('latency_warn_ms', 500.0, 'diagnostics WARN when the image-to-output latency '
              'exceeds this, milliseconds', min_value=1.0, max_value=600000.0),
)

PARAMETERS_BY_NAME: Mapping[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    """The node's settings, validated; the estimator's part is an :class:`EstimatorConfig`.

    Attributes:
        estimator: configuration of the core estimator.
        image_transport: 'raw' or 'compressed'.
        camera_model: 'raw' (K and the lens of CameraInfo) or 'rectified' (P).
        qos_reliability: 'best_effort' or 'reliable' (input subscriptions).
        qos_depth: input subscription depth.
        camera_namespaces: the cameras' topic namespaces; () = one camera on the node's own
            ``image`` and ``camera_info``.
        publish_vertices, publish_joint_frames, publish_markers, marker_mesh, publish_overlay,
            publish_birds_eye: output switches.
        birds_eye_range_m, birds_eye_size_px: the bird's-eye view's range and size.
        tf_prefix: sanitised frame-name prefix ('' or ending in '_' or '/').
        latency_warn_ms: diagnostics latency threshold.
        autostart: configure + activate on start-up.
        tracking, smoothing, track_min_hits, track_max_coast_s, track_tentative_max_coast_s,
            track_low_conf, track_high_conf, track_new_conf, track_publish_tentative,
            publish_coasting_tf: person tracking (see
            :func:`romp_ros.ros.person_ids.make_id_source`).
        overlap_frames: start the next batch before publishing the previous one.
    """

    estimator: EstimatorConfig
    image_transport: str = 'raw'
    camera_model: str = 'raw'
    qos_reliability: str = 'best_effort'
    qos_depth: int = 5
    camera_namespaces: tuple[str, ...] = ()
    publish_vertices: bool = False
    publish_joint_frames: bool = True
    publish_markers: bool = True
    marker_mesh: bool = True
    publish_overlay: bool = True
    publish_birds_eye: bool = True
    birds_eye_range_m: float = 12.0
    birds_eye_size_px: int = 480
    tf_prefix: str = ''
    latency_warn_ms: float = 500.0
    autostart: bool = True
    tracking: bool = True
    smoothing: str = 'default'
    track_min_hits: int = _TRACKING.min_hits
    track_max_coast_s: float = _TRACKING.max_coast_s
    track_tentative_max_coast_s: float = _TRACKING.tentative_max_coast_s
    track_low_conf: float = _TRACKING.low_conf
    track_high_conf: float = _TRACKING.high_conf
    track_new_conf: float = _TRACKING.new_track_conf
    track_publish_tentative: bool = _TRACKING.output_tentative
    publish_coasting_tf: bool = False
    overlap_frames: bool = False


def sanitize_frame_prefix(prefix: str) -> str:
    """Make ``prefix`` usable at the start of TF frame names.

    Characters other than letters, digits, '_' and '/' become '_'; leading '/' (tf2 rejects
    them) and repeated '/' are removed. A non-empty result that does not end in '_' or '/' gets
    a '_' so that 'front' + 'body_3' reads 'front_body_3'.
    """
    text = _FRAME_CHAR_RE.sub('_', prefix.strip())
    text = re.sub('/+', '/', text).lstrip('/')
    if text and not text.endswith(('_', '/')):
        text += '_'
    return text


def validate_value(name: str, value: Any,
                   table: Mapping[str, ParamSpec] | None = None) -> str:
    """Check one parameter value against its spec in ``table`` (default: romp_node's).

    Returns '' when valid, else the reason.
    """
    spec = (PARAMETERS_BY_NAME if table is None else table).get(name)
    if spec is None:
        return ''  # not ours (use_sim_time, ...)
    expected = spec.value_type
    if expected is tuple:
        # None: an array declared without a value (an empty list has no ROS type)
        if value is None or (isinstance(value, (list, tuple))
                             and all(isinstance(v, str) for v in value)):
            return _check_namespaces(value or ()) if name == 'camera_namespaces' else ''
        return f'{name} must be a list of strings, got {value!r}'
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return f'{name} must be of type {expected.__name__}, got {type(value).__name__}'
    if spec.choices and value not in spec.choices:
        return f'{name}={value!r} is invalid; choose one of {list(spec.choices)}'
    if expected in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            return f'{name}={value} must be a finite number'
        if spec.min_value is not None and value < spec.min_value:
            return f'{name}={value} is below the minimum {spec.min_value}'
        if spec.max_value is not None and value > spec.max_value:
            return f'{name}={value} is above the maximum {spec.max_value}'
    if name == 'device' and not _DEVICE_RE.match(value):
        return f"device={value!r} is invalid; use 'auto', 'cpu' or 'cuda:N' (N >= 0)"
    return ''


def _check_namespaces(names) -> str:
    bad = [n for n in names if not _NAMESPACE_RE.match(n)]
    if bad:
        return (f'camera_namespaces: {bad} are not relative topic namespaces; use names like '
                "'front' or 'rig/left' (letters, digits, _ and /, each part starting with a "
                'letter, no leading /; remap or set the node namespace for absolute ones)')
    if len(set(names)) != len(names):
        return f'camera_namespaces lists a camera twice: {list(names)}'
    if len(names) > MAX_CAMERAS:
        return f'camera_namespaces: {len(names)} cameras, at most {MAX_CAMERAS} per node'
    return ''


def estimator_config(values: Mapping[str, Any]) -> EstimatorConfig:
    """The :class:`EstimatorConfig` of a full set of parameter values.

    Raises:
        ConfigError: an invalid value or combination (e.g. BEV with a non-HRNet backbone).
    """
    thresh = float(values['center_thresh'])
    return EstimatorConfig(
        model=values['model'], backbone=values['backbone'],
        checkpoint=values['checkpoint'], models_dir=values['models_dir'],
        device=values['device'], precision=values['precision'], runtime=values['runtime'],
        compile=values['compile'], postprocess=values['postprocess'],
        center_thresh=None if thresh < 0 else thresh, max_people=int(values['max_people']),
        fov_deg=float(values['default_fov_deg']), color_order='rgb', compute_verts=True,
        wide_tiling=bool(values['wide_tiling']),
        wide_min_aspect=float(values['wide_min_aspect']),
        wide_overlap=float(values['wide_overlap']))


def node_config(values: Mapping[str, Any]) -> NodeConfig:
    """Build the :class:`NodeConfig` from parameter values (defaults fill missing names).

    Raises:
        ConfigError: an invalid value (the message names the parameter and the reason).
    """
    merged = {spec.name: spec.default for spec in PARAMETERS}
    merged.update(values)
    for name, value in merged.items():
        reason = validate_value(name, value)
        if reason:
            raise ConfigError(reason)
    node_fields = {f.name for f in fields(NodeConfig)} - {'estimator'}
    own = {name: merged[name] for name in node_fields}
    own['tf_prefix'] = sanitize_frame_prefix(own['tf_prefix'])
    own['camera_namespaces'] = tuple(own['camera_namespaces'] or ())
    own['latency_warn_ms'] = float(own['latency_warn_ms'])
    own['birds_eye_range_m'] = float(own['birds_eye_range_m'])
    own['track_max_coast_s'] = float(own['track_max_coast_s'])
    for name in ('track_tentative_max_coast_s', 'track_low_conf', 'track_high_conf',
                 'track_new_conf'):
        own[name] = float(own[name])
    if not own['track_low_conf'] <= own['track_high_conf'] <= own['track_new_conf']:
        raise ConfigError(
            f"need track_low_conf <= track_high_conf <= track_new_conf, got "
            f"{own['track_low_conf']}, {own['track_high_conf']}, {own['track_new_conf']}")
    return NodeConfig(estimator=estimator_config(merged), **own)


# -- rclpy side ---------------------------------------------------------------------------------


def _descriptor(spec: ParamSpec):
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
             tuple: ParameterType.PARAMETER_STRING_ARRAY}
    constraints = spec.constraints
    if spec.choices:
        constraints = 'one of: ' + ', '.join(spec.choices)
    when = {APPLY_NOW: 'applied from the next frame',
            APPLY_CONFIGURE: 'applied on the next lifecycle configure',
            APPLY_ACTIVATE: 'applied on the next lifecycle activate',
            APPLY_STARTUP: 'start-up only'}[spec.apply]
    descriptor = ParameterDescriptor(
        name=spec.name, type=types[spec.value_type], description=spec.description,
        additional_constraints=f'{constraints}; {when}' if constraints else when,
        read_only=spec.read_only)
    if spec.value_type is int and spec.min_value is not None:
        descriptor.integer_range = [IntegerRange(
            from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    elif spec.value_type is float and spec.min_value is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)]
    return descriptor


def declare_parameters(node, specs: Iterable[ParamSpec] = PARAMETERS) -> None:
    """Declare every parameter on ``node`` with its descriptor.

    Raises:
        rclpy.exceptions.InvalidParameterValueException: a start-up override is invalid (the
            validation callback registered with :func:`make_validation_callback` says why).
    """
    from rclpy.parameter import Parameter
    for spec in specs:
        default = spec.default
        if isinstance(default, tuple):
            # an empty list has no type of its own: declare the type, the value stays unset
            default = list(default) if default else Parameter.Type.STRING_ARRAY
        node.declare_parameter(spec.name, default, _descriptor(spec))


def current_values(node, specs: Iterable[ParamSpec] = PARAMETERS) -> dict[str, Any]:
    """The node's current values of our parameters (string arrays as tuples)."""
    from rclpy.exceptions import ParameterUninitializedException
    values = {}
    for spec in specs:
        try:
            value = node.get_parameter(spec.name).value
        except ParameterUninitializedException:
            value = spec.default
        values[spec.name] = tuple(value) if isinstance(spec.default, tuple) else value
    return values


def make_validation_callback(on_accepted: Callable[[dict[str, Any]], None] | None = None,
                             check_combination: Callable[[dict[str, Any]], str] | None = None,
                             table: Mapping[str, ParamSpec] | None = None):
    """An ``add_on_set_parameters_callback`` callback that rejects invalid values with a reason.

    Args:
        on_accepted: called with {name: value} of an accepted change (Humble has no post-set
            callback, so changes are applied from here).
        check_combination: returns '' when the changes keep the whole parameter set valid
            (e.g. BEV needs the hrnet32 backbone), else the reason to reject them.
        table: the specs by name (default: romp_node's).
    """
    from rcl_interfaces.msg import SetParametersResult

    def callback(parameters) -> SetParametersResult:
        changes = {}
        for param in parameters:
            reason = validate_value(param.name, param.value, table)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            changes[param.name] = param.value
        reason = check_combination(changes) if check_combination is not None else ''
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if on_accepted is not None:
            on_accepted(changes)
        return SetParametersResult(successful=True, reason='')

    return callback
