"""The training configuration: frozen dataclasses, read from YAML, overridden by CLI flags.

``config/train/*.yaml`` files map onto :class:`TrainConfig` section by section; ``--set
key.sub=value`` overrides any key by its dotted path. Everything is validated when the config
is built, so a bad value stops the run at start-up with one message naming the key.

The loss weights and augmentation settings are owned by their modules
(:class:`romp_ros.train.losses.LossWeights`, :class:`romp_ros.data.augment.AugmentConfig`);
this config keeps them as mappings and checks them by building those objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from romp_ros.data.sources import SourceSpec
from romp_ros.train.config_mapping import (
    ConfigMappingError,
    apply_overrides,
    from_mapping,
    set_dotted,
    to_mapping,
)

MODEL_NAMES = ('romp', 'bev')
BACKBONE_NAMES = ('hrnet32', 'resnet50', 'efficientnet_v2_s')
SCHEDULES = ('cosine', 'linear', 'constant')
AMP_MODES = ('none', 'bf16', 'fp16')


class TrainConfigError(ValueError):
    """An invalid training configuration; the message names the key and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train and where its weights start.

    Attributes:
        name: 'romp' or 'bev'.
        backbone: 'hrnet32', 'resnet50' or 'efficientnet_v2_s' (BEV: hrnet32).
        input_size: side of the square network input, a multiple of 32 (512 = official).
        init_checkpoint: weights to start from (an official ROMP/BEV file or one of ours):
            fine-tuning. '' starts from random (or ImageNet backbone) weights.
        imagenet_backbone: a LOCAL file of ImageNet weights for the backbone (torchvision's
            ResNet-50 / EfficientNetV2-S, or the HRNet-W32 ImageNet release); nothing is
            downloaded at run time.
        freeze_backbone: train the heads only.
        freeze_batchnorm: keep every BatchNorm in inference mode (running statistics and
            affine parameters frozen): fine-tuning with small batches.
        sync_batchnorm: with several CUDA processes, compute BatchNorm statistics over the
            global batch (torch's SyncBatchNorm; not available on CPU).
    """

    name: str = 'romp'
    backbone: str = 'hrnet32'
    input_size: int = 512
    init_checkpoint: str = ''
    imagenet_backbone: str = ''
    freeze_backbone: bool = False
    freeze_batchnorm: bool = False
    sync_batchnorm: bool = True

    def __post_init__(self) -> None:
        _choice('model.name', self.name, MODEL_NAMES)
        _choice('model.backbone', self.backbone, BACKBONE_NAMES)
        if self.name == 'bev' and self.backbone != 'hrnet32':
            raise TrainConfigError(f"model.backbone={self.backbone!r}: BEV is built on "
                                   "'hrnet32' only")
        if self.input_size % 32 or not 128 <= self.input_size <= 1024:
            raise TrainConfigError(f'model.input_size={self.input_size} must be a multiple '
                                   'of 32 in [128, 1024] (512 for the official weights)')
        if self.init_checkpoint and self.imagenet_backbone:
            raise TrainConfigError('model.init_checkpoint and model.imagenet_backbone both '
                                   'set: a full checkpoint already holds backbone weights')


@dataclass(frozen=True)
class DataConfig:
    """Training data and loading.

    Attributes:
        sources: the datasets (:class:`romp_ros.data.sources.SourceSpec`: path, weight,
            format, ...), mixed by their weights; ``--data DIR`` replaces them.
        epoch_length: samples per epoch of the mix (0 = the sum of the sources' lengths).
        batch_size: GLOBAL batch size, split evenly over the processes of a torchrun job.
        num_workers: data-loading processes per training process (0 = in the main process).
        augment: settings of :class:`romp_ros.data.augment.AugmentConfig` (the input size
            comes from ``model.input_size``).
        models_dir: prepared body models for the labels' SMPL parameters; '' = the one a
            dataset ships with (synthetic datasets carry theirs).
    """

    sources: tuple[SourceSpec, ...] = ()
    epoch_length: int = 0
    batch_size: int = 8
    num_workers: int = 2
    augment: dict[str, Any] = field(default_factory=dict)
    models_dir: str = ''

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise TrainConfigError(f'data.batch_size={self.batch_size} must be >= 1')
        if self.num_workers < 0:
            raise TrainConfigError(f'data.num_workers={self.num_workers} must be >= 0')
        if self.epoch_length < 0:
            raise TrainConfigError(f'data.epoch_length={self.epoch_length} must be >= 0')


@dataclass(frozen=True)
class OptimConfig:
    """AdamW, warm-up and schedule, mixed precision, clipping.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to norms and biases).
        betas: AdamW betas.
        warmup_steps: linear warm-up from ``warmup_start`` x lr to lr.
        warmup_start: fraction of lr at step 1.
        schedule: after warm-up: 'cosine' or 'linear' decay to ``min_lr_ratio`` x lr at
            ``max_steps``, or 'constant'.
        min_lr_ratio: final learning rate as a fraction of lr.
        grad_clip: clip the global gradient norm to this (0 = off).
        amp: 'none', 'bf16' (CPU and CUDA) or 'fp16' (CUDA, with a gradient scaler).
        max_steps: total optimizer steps of the run (``--max-steps`` overrides).
    """

    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 500
    warmup_start: float = 0.01
    schedule: str = 'cosine'
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    amp: str = 'none'
    max_steps: int = 100_000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise TrainConfigError(f'optim.lr={self.lr} must be > 0')
        if not self.weight_decay >= 0:
            raise TrainConfigError(f'optim.weight_decay={self.weight_decay} must be >= 0')
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise TrainConfigError(f'optim.betas={self.betas} must be two numbers in [0, 1)')
        if self.warmup_steps < 0:
            raise TrainConfigError(f'optim.warmup_steps={self.warmup_steps} must be >= 0')
        if not 0 < self.warmup_start <= 1:
            raise TrainConfigError(f'optim.warmup_start={self.warmup_start} must be in (0, 1]')
        _choice('optim.schedule', self.schedule, SCHEDULES)
        if not 0 <= self.min_lr_ratio <= 1:
            raise TrainConfigError(f'optim.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]')
        if not self.grad_clip >= 0:
            raise TrainConfigError(f'optim.grad_clip={self.grad_clip} must be >= 0')
        _choice('optim.amp', self.amp, AMP_MODES)
        if self.max_steps < 1:
            raise TrainConfigError(f'optim.max_steps={self.max_steps} must be >= 1')


@dataclass(frozen=True)
class LoggingConfig:
    """What the run writes, and how often (in optimizer steps).

    Attributes:
        log_every: a log.jsonl row and TensorBoard scalars every this many steps.
        checkpoint_every: write checkpoints/last.pth every this many steps (and at the end).
        image_every: TensorBoard images of predictions on a fixed batch (0 = never).
        tensorboard: write TensorBoard events (needs the ``tensorboard`` package).
    """

    log_every: int = 20
    checkpoint_every: int = 500
    image_every: int = 500
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ('log_every', 'checkpoint_every'):
            if getattr(self, name) < 1:
                raise TrainConfigError(f'logging.{name}={getattr(self, name)} must be >= 1')
        if self.image_every < 0:
            raise TrainConfigError(f'logging.image_every={self.image_every} must be >= 0')


@dataclass(frozen=True)
class ValidationConfig:
    """Held-out scoring during training; the best score keeps checkpoints/best.pth.

    Attributes:
        path: a held-out dataset ('' = no validation).
        every: validate every this many steps (and at the end).
        max_frames: frames of the held-out set used (0 = all).
        metric: what 'best' means: 'pa_mpjpe_mm' (lower is better) or 'f1' (higher).
        center_thresh: detection threshold used when scoring (None = the model default).
    """

    path: str = ''
    every: int = 1000
    max_frames: int = 200
    metric: str = 'pa_mpjpe_mm'
    center_thresh: float | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise TrainConfigError(f'validation.every={self.every} must be >= 1')
        if self.max_frames < 0:
            raise TrainConfigError(f'validation.max_frames={self.max_frames} must be >= 0')
        _choice('validation.metric', self.metric, ('pa_mpjpe_mm', 'mpjpe_mm', 'f1'))


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (what ``RUN_DIR/config.yaml`` holds, resolved).

    Attributes:
        model, data, optim, logging, validation: the sections above.
        loss: weights of the loss terms (:class:`romp_ros.train.losses.LossWeights` fields);
            terms not given keep the paper's weight for the model.
        seed: seeds weights, data order and augmentation; runs are deterministic on CPU.
        device: 'auto', 'cpu' or 'cuda' (torchrun: each process takes its LOCAL_RANK GPU).
        world_size: processes of the run (filled in at start, informative in config.yaml).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: dict[str, float] = field(default_factory=dict)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    seed: int = 0
    device: str = 'auto'
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.device not in ('auto', 'cpu', 'cuda'):
            raise TrainConfigError(f"device={self.device!r}; use 'auto', 'cpu' or 'cuda'")
        if self.world_size < 1:
            raise TrainConfigError(f'world_size={self.world_size} must be >= 1')
        loss_weights(self)  # validates the loss section
        augment_config(self)  # validates the augmentation section

    def to_yaml(self) -> str:
        """The resolved configuration as YAML (RUN_DIR/config.yaml)."""
        return yaml.safe_dump(to_mapping(self), sort_keys=False)


def loss_weights(config: TrainConfig):
    """The :class:`~romp_ros.train.losses.LossWeights` of a config (validated)."""
    from romp_ros.train.losses import LossWeights
    base = LossWeights.for_model(config.model.name).as_dict()  # the paper's weights
    try:
        return from_mapping(LossWeights, {**base, **config.loss}, 'loss')
    except ConfigMappingError as err:
        raise TrainConfigError(str(err)) from err


def augment_config(config: TrainConfig):
    """The :class:`~romp_ros.data.augment.AugmentConfig` of a config (validated)."""
    from romp_ros.data.augment import AugmentConfig
    values = dict(config.data.augment)
    if 'input_size' in values:
        raise TrainConfigError('data.augment.input_size: set model.input_size instead')
    values['input_size'] = config.model.input_size
    try:
        return from_mapping(AugmentConfig, values, 'data.augment')
    except ConfigMappingError as err:
        raise TrainConfigError(str(err)) from err


def load_train_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                      values: Mapping[str, Any] | None = None,
                      **replacements: Any) -> TrainConfig:
    """Read a YAML config (or the defaults), apply ``--set`` overrides, validate.

    Args:
        path: a YAML file (``config/train/*.yaml``) or None for the defaults.
        overrides: ``key.sub=value`` strings (values are YAML), applied in order.
        values: dotted keys set to Python values after the overrides (CLI flags).
        replacements: top-level sections replaced wholesale (mappings), last.

    Raises:
        TrainConfigError: an unreadable file, an unknown key, a wrong type or value.
    """
    mapping: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise TrainConfigError(f'training config {path} does not exist (see config/train/ '
                                   'for examples)')
        try:
            loaded = yaml.safe_load(path.read_text(encoding='utf-8'))
        except yaml.YAMLError as err:
            raise TrainConfigError(f'{path}: not valid YAML ({err})') from err
        if loaded is not None and not isinstance(loaded, Mapping):
            raise TrainConfigError(f'{path}: expected a mapping of sections at the top level')
        mapping = dict(loaded or {})
    try:
        mapping = apply_overrides(mapping, list(overrides))
        for key, value in (values or {}).items():
            set_dotted(mapping, key, value)
        for key, value in replacements.items():
            mapping[key] = value
        return from_mapping(TrainConfig, mapping)
    except ConfigMappingError as err:
        where = f'{path}: ' if path is not None else ''
        raise TrainConfigError(f'{where}{err}') from err
    except TrainConfigError as err:
        where = f'{path}: ' if path is not None else ''
        raise TrainConfigError(f'{where}{err}') from err


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainConfigError(f'{key}={value!r}; choose one of {list(allowed)}')
