"""Typed, frozen configuration of the estimator.

ROS parameters (romp_ros.ros), CLI flags (romp_ros.cli) and YAML files all map onto
:class:`EstimatorConfig`; nothing else configures the core.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from typing import Any, Mapping

MODEL_NAMES = ('romp', 'bev')
BACKBONE_NAMES = ('hrnet32', 'resnet50', 'efficientnet_v2_s')
PRECISIONS = ('fp32', 'fp16', 'bf16')
COLOR_ORDERS = ('rgb', 'bgr')
# where the network runs (romp_ros.core.runtime); the last two are optional installs
RUNTIME_NAMES = ('torch', 'onnxruntime', 'openvino')
# torch.compile modes of the torch runtime ('reduce-overhead' and 'max-autotune' capture CUDA
# graphs on CUDA devices)
COMPILE_MODES = ('off', 'default', 'reduce-overhead', 'max-autotune')
# how people travel through post-processing (see EstimatorConfig.postprocess)
POSTPROCESS_LAYOUTS = ('compact', 'padded')

# Detection thresholds the reference applies by default to its official checkpoints. BEV: 0.08,
# not the 0.1 of its settings table: simple-romp 1.1.4's `--crowd` flag is `store_false`, so
# crowd mode is on unless turned off, and crowd mode sets 0.08 for every image.
DEFAULT_CENTER_THRESH = {'romp': 0.25, 'bev': 0.08}


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and the accepted values."""


@dataclass(frozen=True)
class EstimatorConfig:
    """Everything the estimator needs to know, validated on construction.

    Attributes:
        model: 'romp' or 'bev'.
        backbone: 'hrnet32' (official), 'resnet50' or 'efficientnet_v2_s' (BEV: hrnet32 only).
        checkpoint: path of the network weights (.pkl / .pth / .pt / .safetensors); '' means
            the default file name for the model inside ``models_dir``.
        models_dir: directory written by ``romp-ros prepare-models`` (body model files).
        device: 'auto' (first CUDA device, else CPU), 'cpu' or 'cuda:N'.
        precision: network precision: 'fp32', 'fp16' or 'bf16' (CUDA only for the latter two).
        center_thresh: minimum body-center score of a detection; None uses the model's default
            (ROMP 0.25, BEV 0.08: the reference's effective defaults).
        max_people: at most this many people per image (the reference's top-K is 64).
        fov_deg: horizontal and vertical field of view assumed when no intrinsics are given
            (the reference assumes 60 degrees over the padded square image).
        input_size: side of the square network input, pixels, a multiple of 32 in
            [128, 1024]. None: the size a ``romp-ros train`` checkpoint records, else 512
            (the official weights' size).
        color_order: channel order of the images handed to ``Estimator.predict``.
        compute_verts: whether to return mesh vertices (the joints are always computed).
        bev_nms_thresh: BEV duplicate suppression threshold on normalised 2D pose distance.
        bev_relative_scale_thresh: BEV outlier removal threshold (relative distance).
        use_smil: BEV only: use the SMIL infant model for people whose age offset exceeds
            ``smil_age_thresh`` when the SMIL file was prepared.
        smil_age_thresh: age offset (11th beta) above which a person is treated as an infant.
        optimize: fold BatchNorm into convolutions and use channels-last memory after loading
            (same outputs up to float rounding, faster; off for debugging layer by layer).
        wide_tiling: run images at least ``wide_min_aspect`` times wider than high (or
            higher than wide) as overlapping square windows (core/tiling.py), so people in
            panoramas keep their size at the network input.
        wide_min_aspect: long side / short side from which an image is tiled (>= 1.5).
        wide_overlap: least shared fraction of neighbouring windows, in [0, 0.75].
        runtime: where the network runs: 'torch' (default), 'onnxruntime' or 'openvino'
            (``pip install 'romp-ros[fast]'``). Pre- and post-processing are the same for all.
            ``checkpoint`` may then be a ``.onnx`` file written by ``romp-ros export``
            (otherwise the torch checkpoint is exported in memory at start-up).
            docs/performance.md compares them.
        compile: torch runtime only: 'off' (default), or a ``torch.compile`` mode for the
            network ('default'; 'reduce-overhead' and 'max-autotune' also replay it as a CUDA
            graph on CUDA). Compiled at start-up for batch 1 (minutes; the compiled kernels
            are cached in ``compile_cache_dir`` for the next start), each other batch size on
            first use. Pays on GPUs; on CPUs it measured no faster than eager here.
        compile_cache_dir: where compiled kernels are kept between runs ('' =
            ``~/.cache/romp_ros/inductor``, unless TORCHINDUCTOR_CACHE_DIR is set).
        postprocess: 'compact' (default): only the people found travel through the body
            model and the translation solve, which costs a wait for the device after the
            center search, and again after BEV's filters. 'padded': every image keeps
            ``max_people`` slots to the end, with a mask of the people, so post-processing
            never waits for the device until the results are copied back, at the price of
            posing empty slots too (lower ``max_people`` to the crowd you expect). Same
            results either way; meant for GPUs (docs/performance.md).
    """

    model: str = 'romp'
    backbone: str = 'hrnet32'
    checkpoint: str = ''
    models_dir: str = ''
    device: str = 'auto'
    precision: str = 'fp32'
    center_thresh: float | None = None
    max_people: int = 64
    fov_deg: float = 60.0
    input_size: int | None = None
    color_order: str = 'rgb'
    compute_verts: bool = True
    bev_nms_thresh: float = 20.0
    bev_relative_scale_thresh: float = 1.6
    use_smil: bool = True
    smil_age_thresh: float = 0.8
    optimize: bool = True
    wide_tiling: bool = False
    wide_min_aspect: float = 2.0
    wide_overlap: float = 0.25
    runtime: str = 'torch'
    compile: str = 'off'
    compile_cache_dir: str = ''
    postprocess: str = 'compact'

    def __post_init__(self) -> None:
        _choice('model', self.model, MODEL_NAMES)
        _choice('backbone', self.backbone, BACKBONE_NAMES)
        if self.model == 'bev' and self.backbone != 'hrnet32':
            raise ConfigError(
                f"backbone={self.backbone!r} is not available for BEV; BEV is built on "
                "'hrnet32' only (ROMP supports every backbone)")
        _choice('precision', self.precision, PRECISIONS)
        _choice('color_order', self.color_order, COLOR_ORDERS)
        _choice('runtime', self.runtime, RUNTIME_NAMES)
        _choice('compile', self.compile, COMPILE_MODES)
        _choice('postprocess', self.postprocess, POSTPROCESS_LAYOUTS)
        if self.compile != 'off' and self.runtime != 'torch':
            raise ConfigError(
                f"compile={self.compile!r} compiles the torch network; runtime "
                f"{self.runtime!r} has its own graph compiler: set compile='off'")
        if self.runtime == 'torch' and self.checkpoint.lower().endswith('.onnx'):
            raise ConfigError(
                f"checkpoint={self.checkpoint!r} is an ONNX file: set runtime='onnxruntime' or "
                "'openvino' (runtime 'torch' loads .pkl/.pth/.pt/.safetensors checkpoints)")
        if not (self.device in ('auto', 'cpu') or _is_cuda_device(self.device)):
            raise ConfigError(
                f"device={self.device!r} is invalid; use 'auto', 'cpu' or 'cuda:N' (N >= 0)")
        if self.center_thresh is not None and not math.isfinite(self.center_thresh):
            raise ConfigError(f'center_thresh={self.center_thresh!r} must be a finite number')
        if not 1 <= self.max_people <= 64:
            raise ConfigError(f'max_people={self.max_people} must be in [1, 64]')
        if not 1.0 <= self.fov_deg <= 179.0:
            raise ConfigError(f'fov_deg={self.fov_deg} must be in [1, 179] degrees')
        if self.input_size is not None and (
                not isinstance(self.input_size, int) or self.input_size % 32
                or not 128 <= self.input_size <= 1024):
            raise ConfigError(
                f'input_size={self.input_size!r} must be a multiple of 32 in [128, 1024]; the '
                'official checkpoints are trained at 512 (other sizes are for weights trained '
                'at that size, e.g. by `romp-ros train`)')
        if not self.bev_nms_thresh >= 0:
            raise ConfigError(f'bev_nms_thresh={self.bev_nms_thresh} must be >= 0')
        if not self.bev_relative_scale_thresh > 0:
            raise ConfigError(
                f'bev_relative_scale_thresh={self.bev_relative_scale_thresh} must be > 0')
        if not self.wide_min_aspect >= 1.5:
            raise ConfigError(f'wide_min_aspect={self.wide_min_aspect} must be >= 1.5 (an '
                              'image is tiled when its long side is this many short sides)')
        if not 0.0 <= self.wide_overlap <= 0.75:
            raise ConfigError(f'wide_overlap={self.wide_overlap} must be in [0, 0.75]')

    @property
    def effective_center_thresh(self) -> float:
        """The detection threshold in force (the model default when none was given)."""
        if self.center_thresh is None:
            return DEFAULT_CENTER_THRESH[self.model]
        return float(self.center_thresh)

    def replace(self, **changes: Any) -> 'EstimatorConfig':
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'EstimatorConfig':
        """Build from a mapping (YAML, ROS parameters); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f'unknown estimator setting(s) {unknown}; valid settings: {sorted(names)}')
        return cls(**dict(values))


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f'{field}={value!r} is invalid; choose one of {list(allowed)}')


def _is_cuda_device(device: str) -> bool:
    prefix, _, index = device.partition(':')
    return prefix == 'cuda' and index.isdigit()
