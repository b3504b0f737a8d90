"""The network of a training run: build, initialise, freeze, and its optimizer groups."""

from __future__ import annotations

from collections.abc import Mapping
import logging
from pathlib import Path

import torch
from torch import nn

from romp_ros.core.nets.checkpoint import load_into
from romp_ros.core.nets.factory import build_model
from romp_ros.train.config import ModelConfig, OptimConfig

LOG = logging.getLogger(__name__)

# Keys of the HRNet-W32 ImageNet release that belong to its classification head.
_HRNET_HEAD_PREFIXES = ('incre_modules.', 'downsamp_modules.', 'final_layer.', 'classifier.')
_RESNET_HEAD_PREFIXES = ('fc.',)


class BackboneWeightsError(ValueError):
    """An ImageNet backbone file that does not fit the backbone; names the keys."""


def build_training_model(config: ModelConfig) -> nn.Module:
    """Build the network and load its starting weights (``init_checkpoint`` or ImageNet)."""
    model = build_model(config.name, config.backbone, input_size=config.input_size)
    if not config.init_checkpoint:
        init_heads(model)
    if config.init_checkpoint:
        report = load_into(model, config.init_checkpoint)
        LOG.info('initialised %s/%s from %s (%d tensors)', config.name, config.backbone,
                 config.init_checkpoint, report.loaded)
    elif config.imagenet_backbone:
        load_imagenet_backbone(model.backbone, config.backbone, Path(config.imagenet_backbone))
    if config.freeze_backbone:
        for param in model.backbone.parameters():
            param.requires_grad_(False)
    return model


def init_heads(model: nn.Module) -> None:
    """Start every layer outside the backbone near zero, as the reference does for training.

    Weights ~ N(0, 0.001), biases 0: the center and parameter maps start small instead of
    torch's default fan-in scale, which gives first losses 10^4-10^6 times the converged ones.
    BatchNorm layers keep (1, 0).
    """
    for name, module in model.named_modules():
        if name.startswith('backbone') or not isinstance(
                module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)):
            continue
        nn.init.normal_(module.weight, std=0.001)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def load_imagenet_backbone(backbone: nn.Module, name: str, path: Path) -> None:
    """Load ImageNet weights from a local file into a backbone (no download ever).

    Accepted files: torchvision's ``resnet50-*.pth`` and ``efficientnet_v2_s-*.pth``, and the
    HRNet-W32 ImageNet release (``hrnetv2_w32_imagenet_pretrained.pth``). Classification
    heads are dropped; every backbone tensor must be present with its shape.

    Raises:
        BackboneWeightsError: a missing file, or keys / shapes that do not fit.
    """
    if not path.is_file():
        raise BackboneWeightsError(f'ImageNet backbone file {path} does not exist (it is never '
                                   'downloaded: fetch it yourself and give its local path)')
    if name == 'efficientnet_v2_s':
        try:
            backbone.load_imagenet_features(path)
        except (ValueError, RuntimeError) as err:
            raise BackboneWeightsError(str(err)) from err
        return
    state = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(state, Mapping) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, Mapping):
        raise BackboneWeightsError(f'{path}: expected a state dict')
    head = _HRNET_HEAD_PREFIXES if name == 'hrnet32' else _RESNET_HEAD_PREFIXES
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    expected = backbone.state_dict()
    # ROMP's ResNet decoder (deconv_layers) is not part of ImageNet weights: it stays random
    body = {k for k in expected if not k.startswith('deconv_layers.')}
    missing = sorted(k for k in body if k not in state and not k.endswith('num_batches_tracked'))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(k for k in state if k in expected and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise BackboneWeightsError(
            f'{path} does not fit the {name} backbone: {len(missing)} missing (e.g. '
            f'{missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), '
            f'{len(wrong)} of another shape (e.g. {wrong[:3]})')
    backbone.load_state_dict(state, strict=False)
    LOG.info('loaded %d ImageNet tensors into the %s backbone from %s', len(state), name, path)


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in inference mode and stop its affine parameters' gradients.

    Call once, before the optimizer and DDP are built; then :func:`batchnorm_eval` after each
    ``model.train()``, which would switch the layers back to batch statistics.
    """
    batchnorm_eval(model)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            for param in module.parameters():
                param.requires_grad_(False)


def batchnorm_eval(model: nn.Module) -> None:
    """Every BatchNorm of ``model`` uses (and keeps) its running statistics."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights decay; biases, norms and embeddings do not."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.dim() <= 1 or name.endswith('.bias') or 'embeddings' in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{'params': decay, 'weight_decay': weight_decay},
            {'params': no_decay, 'weight_decay': 0.0}]


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (ValueError if there are none)."""
    groups = optimizer_groups(model, config.weight_decay)
    if not any(group['params'] for group in groups):
        raise ValueError('no trainable parameters: everything is frozen')
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))
