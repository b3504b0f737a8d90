"""EfficientNetV2-S backbone for ROMP: a lighter drop-in for the ResNet-50 backbone.

torchvision's ``efficientnet_v2_s().features`` (stride 32, 1280 channels) is adapted to ROMP's
64-channel, stride-4 feature map by a 1x1 projection to 256 channels followed by the same
4x4 stride-2 deconvolution stack ROMP uses after ResNet-50 (256 -> 256 -> 128 -> 64). The
intermediate widths and resolutions (256 at H/16, 128 at H/8, 64 at H/4) therefore match the
official ResNet-50 decoder; only its 2048-channel input layer is replaced by the cheap 1x1
projection at the lowest resolution. docs/backbones.md compares parameter counts and the
alternatives.

No weights are downloaded: pass ``pretrained_path`` to start from a local copy of torchvision's
ImageNet checkpoint (``efficientnet_v2_s-*.pth``).
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
import os

import torch
from torch import nn
from torchvision.models import efficientnet_v2_s

from romp_ros.core.nets.resnet import ImageNetNormalize, check_backbone_input, make_deconv_stack

_LOG = logging.getLogger(__name__)

# Channels of the last torchvision feature stage and of the projection that follows it.
_FEATURE_CHANNELS = 1280
_PROJECT_CHANNELS = 256


def _features_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``features.*`` part of a torchvision EfficientNet state dict, prefix removed.

    A mapping without any ``features.`` key is taken to be a features-only state dict already.
    The classifier entries of a full checkpoint are dropped: the backbone has no classifier.
    """
    prefix = 'features.'
    if any(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()
                if key.startswith(prefix)}
    return dict(state)


class EfficientNetV2SBackbone(nn.Module):
    """EfficientNetV2-S + deconvolutions: (B, 3, H, W) in [-1, 1] -> (B, 64, H/4, W/4).

    Args:
        pretrained_path: optional local path of torchvision's ImageNet EfficientNetV2-S weights
            (full model or ``features`` only); loaded with ``weights_only=True``. The
            projection and deconvolution layers keep their random initialisation.

    State-dict keys: ``features.*`` (torchvision names), ``project.{0,1}.*`` and
    ``deconv_layers.{0,1,3,4,6,7}.*``.
    """

    out_channels: int = 64

    def __init__(self, pretrained_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        # torchvision's ImageNet weights expect ImageNet-standardised RGB; applying the same
        # conversion for random initialisation keeps one input convention for both cases.
        self.input_norm = ImageNetNormalize()
        self.features = efficientnet_v2_s(weights=None).features
        self.project = nn.Sequential(
            nn.Conv2d(_FEATURE_CHANNELS, _PROJECT_CHANNELS, kernel_size=1, bias=False),
            nn.BatchNorm2d(_PROJECT_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.deconv_layers = make_deconv_stack(
            _PROJECT_CHANNELS, (256, 128, self.out_channels))
        if pretrained_path is not None:
            self.load_imagenet_features(pretrained_path)

    def load_imagenet_features(self, path: str | os.PathLike[str]) -> None:
        """Load torchvision ImageNet weights from ``path`` into ``features``.

        Raises:
            ValueError: the file is not an EfficientNetV2-S state dict (missing or unexpected
                feature keys); a tensor of the wrong shape raises RuntimeError from torch.
        """
        state = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(f'{path}: expected a state dict, got {type(state).__name__}')
        features = _features_state_dict(state)
        # Compare key sets before loading so a wrong file leaves the weights untouched.
        expected = set(self.features.state_dict())
        missing = sorted(expected - set(features))
        unexpected = sorted(set(features) - expected)
        if missing or unexpected:
            raise ValueError(
                f'{path} is not an EfficientNetV2-S checkpoint: {len(missing)} missing keys '
                f'(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})')
        self.features.load_state_dict(features, strict=True)
        _LOG.info('loaded EfficientNetV2-S ImageNet features from %s', path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, 64, H/4, W/4) of RGB images (B, 3, H, W) normalised to [-1, 1]."""
        check_backbone_input(x)
        x = self.input_norm(x)  # (B, 3, H, W), ImageNet-standardised
        x = self.features(x)  # (B, 1280, H/32, W/32)
        x = self.project(x)  # (B, 256, H/32, W/32)
        return self.deconv_layers(x)  # (B, 64, H/4, W/4)
