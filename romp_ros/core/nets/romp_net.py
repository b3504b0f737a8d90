"""ROMP network: a backbone plus three 64x64 heads (body center, camera, SMPL parameters)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from romp_ros.core.nets.blocks import BN_MOMENTUM, BasicBlock
from romp_ros.core.nets.coordmaps import coord_maps_2d

# 22 joints (global orientation + 21 body joints) in the 6D rotation representation,
# followed by 10 SMPL shape coefficients; the 3 camera channels come from their own head.
ROMP_POSE_DIM = 22 * 6
ROMP_BETAS_DIM = 10
ROMP_CAM_DIM = 3
ROMP_PARAMS_DIM = ROMP_CAM_DIM + ROMP_POSE_DIM + ROMP_BETAS_DIM  # 145
_HEAD_CHANNELS = 64
_HEAD_BLOCKS = 2
# Backbone features are 128x128 at the official 512 input; the coordinate channels are kept
# for that size and rebuilt for other input sizes (any multiple of 32, e.g. 256 for CPU training).
_FEATURE_SIZE = 128


@dataclass(frozen=True)
class ROMPMaps:
    """Raw output maps of :class:`ROMPNet` (before any parsing).

    Attributes:
        center_maps: (B, 1, M, M) body-center score, no sigmoid; the reference detects a
            person where a 5x5 local maximum exceeds 0.25. M = S / 8 for an S x S input
            (64 at the official 512).
        params_maps: (B, 145, M, M) per cell: camera [s_raw, tx, ty], 22 x 6D rotations
            (global orientation first), 10 betas. The scale channel is RAW: the camera
            scale is ``1.1 ** s_raw``, which the caller applies after sampling (the
            reference keeps the power outside the graph for TensorRT export).
    """

    center_maps: Tensor
    params_maps: Tensor


def images_to_input(images: Tensor, like: Tensor) -> Tensor:
    """Turn (B, H, W, 3) RGB 0..255 images into (B, 3, H, W) network input in [-1, 1].

    ``like`` (a 4D weight of the first convolution) gives the dtype and the memory format:
    the permuted view of a channels-last batch already has channels_last strides, so a model
    converted with ``model.to(memory_format=torch.channels_last)`` avoids a copy here.
    """
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(
            f'expected images of shape (B, H, W, 3) (RGB, 0..255), got {tuple(images.shape)}')
    x = images.permute(0, 3, 1, 2).to(like.dtype)  # (B, 3, H, W)
    x = x / 255.0 * 2.0 - 1.0
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def first_conv_weight(module: nn.Module) -> Tensor:
    """Return the first 4D parameter of ``module`` (the stem convolution's weight)."""
    for param in module.parameters():
        if param.dim() == 4:
            return param
    raise ValueError(f'{type(module).__name__} has no 2D convolution weight')


def _romp_head(in_channels: int, out_channels: int) -> nn.Sequential:
    """Stride-2 conv-BN-ReLU to 64 channels, two BasicBlocks, then a 1x1 output conv.

    The nesting (Sequential inside Sequential) reproduces the official key names, e.g.
    ``final_layers.1.1.0.0.conv1.weight``.
    """
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(in_channels, _HEAD_CHANNELS, 3, stride=2, padding=1),
            nn.BatchNorm2d(_HEAD_CHANNELS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True)),
        nn.Sequential(*[nn.Sequential(BasicBlock(_HEAD_CHANNELS, _HEAD_CHANNELS))
                        for _ in range(_HEAD_BLOCKS)]),
        nn.Conv2d(_HEAD_CHANNELS, out_channels, 1))


class ROMPNet(nn.Module):
    """ROMP: backbone features + CoordConv channels -> center, camera and parameter maps.

    ``final_layers`` holds [None, params head (142), center head (1), camera head (3)]; the
    empty slot 0 keeps the official indices (and therefore key names).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        in_channels = int(backbone.out_channels) + 2  # + CoordConv x, y
        self.final_layers = nn.ModuleList([
            None,
            _romp_head(in_channels, ROMP_POSE_DIM + ROMP_BETAS_DIM),
            _romp_head(in_channels, 1),
            _romp_head(in_channels, ROMP_CAM_DIM)])
        # Constant, rebuilt at construction: not part of checkpoints (the reference keeps it
        # as a plain attribute), but a buffer so .to(device / dtype) moves it.
        self.register_buffer('coordmaps', coord_maps_2d(_FEATURE_SIZE), persistent=False)

    def forward(self, images: Tensor) -> ROMPMaps:
        """Run on (B, S, S, 3) float RGB 0..255 images; return the raw (B, *, S/8, S/8) maps.

        S is 512 for the official weights; any multiple of 32 works (e.g. 256 for training on
        a CPU).
        """
        x = images_to_input(images, first_conv_weight(self.backbone))  # (B, 3, S, S)
        features = self.backbone(x)  # (B, C, S/4, S/4)
        coords = self._coord_maps(features).expand(features.shape[0], -1, -1, -1)
        x = torch.cat([features, coords], dim=1)  # (B, C + 2, S/4, S/4)
        params = self.final_layers[1](x)  # (B, 142, S/8, S/8)
        center = self.final_layers[2](x)  # (B, 1, S/8, S/8)
        cam = self.final_layers[3](x)  # (B, 3, S/8, S/8), scale channel raw
        return ROMPMaps(center_maps=center, params_maps=torch.cat([cam, params], dim=1))

    def _coord_maps(self, features: Tensor) -> Tensor:
        """(1, 2, h, w) CoordConv channels for features of size h x w, in their dtype."""
        height, width = int(features.shape[-2]), int(features.shape[-1])
        if tuple(self.coordmaps.shape[-2:]) == (height, width):
            return self.coordmaps.to(features.dtype)
        return coord_maps_2d(height, width).to(device=features.device, dtype=features.dtype)
