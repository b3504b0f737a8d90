"""The one place that builds networks: :func:`build_model` plus static model facts."""

from __future__ import annotations

from dataclasses import dataclass
import types

from torch import nn

MODEL_NAMES = ('romp', 'bev')
BACKBONE_NAMES = ('hrnet32', 'resnet50', 'efficientnet_v2_s')


@dataclass(frozen=True)
class ModelSpec:
    """Static facts about one model / backbone combination.

    Attributes:
        name: 'romp' or 'bev'.
        backbone: backbone name (see ``BACKBONE_NAMES``).
        checkpoint_file: file name of the official weights.
        params_dim: length of a person's parameter vector (camera + 6D pose + betas).
        betas_dim: shape coefficients (10 SMPL; BEV adds the SMPL-A age offset).
        map_size: side of the center map the people are detected on, at the official 512
            input (S / 8 for ROMP and S / 4 for BEV at another input size S).
    """

    name: str
    backbone: str
    checkpoint_file: str
    params_dim: int
    betas_dim: int
    map_size: int


MODEL_SPECS = types.MappingProxyType({
    ('romp', 'hrnet32'): ModelSpec('romp', 'hrnet32', 'ROMP.pkl', 145, 10, 64),
    ('romp', 'resnet50'): ModelSpec('romp', 'resnet50', 'ROMP_ResNet50_V1.pkl', 145, 10, 64),
    ('romp', 'efficientnet_v2_s'): ModelSpec(
        'romp', 'efficientnet_v2_s', 'ROMP_EfficientNetV2S.pth', 145, 10, 64),
    ('bev', 'hrnet32'): ModelSpec('bev', 'hrnet32', 'BEV.pth', 146, 11, 128),
})


@dataclass(frozen=True)
class ParameterCount:
    """Learnable parameter counts (buffers excluded)."""

    backbone: int
    heads: int
    total: int


def model_spec(name: str, backbone: str = 'hrnet32') -> ModelSpec:
    """Return the :class:`ModelSpec` of a combination, or raise ValueError naming the choices."""
    if name not in MODEL_NAMES:
        raise ValueError(f'unknown model {name!r}; valid models: {", ".join(MODEL_NAMES)}')
    if backbone not in BACKBONE_NAMES:
        raise ValueError(
            f'unknown backbone {backbone!r}; valid backbones: {", ".join(BACKBONE_NAMES)}')
    spec = MODEL_SPECS.get((name, backbone))
    if spec is None:
        valid = ', '.join(b for (n, b) in MODEL_SPECS if n == name)
        raise ValueError(f'model {name!r} is not available with backbone {backbone!r}; '
                         f'valid backbones for {name!r}: {valid}')
    return spec


def build_backbone(backbone: str) -> nn.Module:
    """Build a randomly initialised backbone by name.

    Every backbone maps (B, 3, S, S) RGB in [-1, 1] to (B, out_channels, S/4, S/4), S a
    multiple of 32 (512 officially).
    The non-HRNet modules are imported only when asked for.
    """
    if backbone == 'hrnet32':
        from romp_ros.core.nets.hrnet import HRNet32
        return HRNet32()
    if backbone == 'resnet50':
        from romp_ros.core.nets.resnet import ResNet50Backbone
        return ResNet50Backbone()
    if backbone == 'efficientnet_v2_s':
        from romp_ros.core.nets.efficientnet import EfficientNetV2SBackbone
        return EfficientNetV2SBackbone()
    raise ValueError(
        f'unknown backbone {backbone!r}; valid backbones: {", ".join(BACKBONE_NAMES)}')


def build_model(name: str, backbone: str = 'hrnet32', input_size: int = 512) -> nn.Module:
    """Build ROMP ('romp') or BEV ('bev') with the named backbone, randomly initialised.

    ``input_size`` is the side S of the square input, a multiple of 32 (512 for the official
    weights). ROMP runs at any such size whatever it was built for; BEV's layers depend on it
    (see :class:`~romp_ros.core.nets.bev_net.BEVNet`).

    Load weights with :func:`romp_ros.core.nets.checkpoint.load_into` (or
    :mod:`romp_ros.testing.seeded_weights` for tests). The model is returned in train mode, as
    torch does; call ``.eval()`` for inference.
    """
    model_spec(name, backbone)  # validates the combination
    check_input_size(input_size)
    if name == 'romp':
        from romp_ros.core.nets.romp_net import ROMPNet
        return ROMPNet(build_backbone(backbone))
    from romp_ros.core.nets.bev_net import BEVNet
    return BEVNet(build_backbone(backbone), input_size=input_size)


def check_input_size(input_size: int) -> int:
    """Validate a network input side (a multiple of 32 in [128, 1024]); returns it."""
    if not isinstance(input_size, int) or input_size % 32 or not 128 <= input_size <= 1024:
        raise ValueError(f'input_size={input_size!r} must be a multiple of 32 in [128, 1024] '
                         '(512 for the official weights)')
    return input_size


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count the learnable parameters of a model built by :func:`build_model`."""
    total = sum(p.numel() for p in model.parameters())
    backbone = sum(p.numel() for p in model.backbone.parameters())
    return ParameterCount(backbone=backbone, heads=total - backbone, total=total)
