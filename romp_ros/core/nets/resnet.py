"""ResNet-50 + deconvolution backbone of ROMP (the ``ROMP_ResNet50_V1.pkl`` design).

The layout reproduces the reference's ``ResNet_50`` module: a torchvision-style ResNet-50 body
(``conv1``, ``bn1``, ``layer1`` .. ``layer4``; Bottleneck blocks with the stride on the 3x3
convolution) followed by three 4x4 stride-2 transposed convolutions (2048 -> 256 -> 128 -> 64),
each with BatchNorm and ReLU, in one ``deconv_layers`` Sequential. Module names are part of
the checkpoint contract: with the ROMP wrapper's ``backbone.`` prefix they equal the official
keys after the ``module.`` (DataParallel) prefix is removed. See docs/backbones.md.

The official ResNet-50 was trained on ImageNet-standardised input, unlike ROMP's HRNet which
takes [-1, 1]. Callers hand every backbone the same [-1, 1] tensor, so the conversion lives
here (:class:`ImageNetNormalize`) and carries no state-dict entries.
"""

from __future__ import annotations

import torch
from torch import nn

# ImageNet statistics (RGB, for pixels scaled to [0, 1]) used by the reference ResNet-50.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The reference uses PyTorch's default BatchNorm momentum; spelled out because it is part of
# what "faithful" means for fine-tuning from the official weights.
_BN_MOMENTUM = 0.1

# Total down-sampling of the body; inputs must be a multiple of it for the H/4 output.
_STRIDE = 32


class ImageNetNormalize(nn.Module):
    """Map RGB input in [-1, 1] to ImageNet-standardised input.

    The ROMP wrapper produces ``y = x / 255 * 2 - 1`` from 8-bit pixels ``x``; ImageNet
    backbones expect ``(x / 255 - mean) / std``. Since ``x / 255 = (y + 1) / 2``, that is the
    affine map ``y * 0.5 / std + (0.5 - mean) / std`` per channel. The two constants are
    non-persistent buffers: they follow ``.to(device/dtype)`` but stay out of the state dict,
    so checkpoint keys are unaffected.
    """

    def __init__(self) -> None:
        super().__init__()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)  # (1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)  # (1, 3, 1, 1)
        self.register_buffer('scale', 0.5 / std, persistent=False)
        self.register_buffer('shift', (0.5 - mean) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x`` (B, 3, H, W) in [-1, 1]; returns (B, 3, H, W)."""
        return x * self.scale + self.shift


def check_backbone_input(x: torch.Tensor) -> None:
    """Raise ValueError unless ``x`` is (B, 3, H, W) with H and W multiples of 32.

    Both backbones reduce by 32 before up-sampling by 8; other sizes would silently give
    maps that are not H/4 x W/4 (padding rounds up), misaligning the centre maps.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f'expected a (B, 3, H, W) tensor, got shape {tuple(x.shape)}')
    height, width = int(x.shape[2]), int(x.shape[3])
    if height % _STRIDE or width % _STRIDE:
        raise ValueError(
            f'input height and width must be multiples of {_STRIDE}, got {height}x{width}')


class ResNetBottleneck(nn.Module):
    """ResNet v1.5 bottleneck (1x1 -> 3x3 with stride -> 1x1 x4), names as in the reference."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        width_out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=_BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, width_out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width_out, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        # None keeps the key set identical to the checkpoint (no 'downsample.*' entries).
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, 4 * planes, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet stage; the first block projects the shortcut when the shape changes."""
    width_out = planes * ResNetBottleneck.expansion
    downsample = None
    if stride != 1 or inplanes != width_out:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, width_out, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(width_out, momentum=_BN_MOMENTUM),
        )
    layers = [ResNetBottleneck(inplanes, planes, stride, downsample)]
    layers += [ResNetBottleneck(width_out, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def make_deconv_stack(in_channels: int, channels: tuple[int, ...]) -> nn.Sequential:
    """ROMP's up-sampler: per entry a 4x4 stride-2 ConvTranspose (no bias), BN and ReLU.

    Kernel 4 with stride 2 and padding 1 doubles the size exactly and every output pixel gets
    the same number of kernel taps (no uneven-overlap checkerboard). The bias is omitted
    because the following BatchNorm cancels it. Indices in the Sequential are 3k (conv) and
    3k+1 (BN), which is the reference's key layout.
    """
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [
            nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size=4, stride=2, padding=1,
                output_padding=0, bias=False),
            nn.BatchNorm2d(out_channels, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        in_channels = out_channels
    return nn.Sequential(*layers)


class ResNet50Backbone(nn.Module):
    """ROMP's ResNet-50 backbone: (B, 3, H, W) in [-1, 1] -> (B, 64, H/4, W/4).

    State-dict keys: ``conv1.*``, ``bn1.*``, ``layer{1..4}.*`` and
    ``deconv_layers.{0,1,3,4,6,7}.*`` (336 entries, 32,552,896 parameters), identical to
    the official checkpoint's ``module.backbone.*`` entries with that prefix removed.
    """

    out_channels: int = 64

    def __init__(self) -> None:
        super().__init__()
        self.input_norm = ImageNetNormalize()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=_BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # ResNet-50: (blocks, bottleneck width, stride) per stage; outputs 256..2048 channels.
        self.layer1 = _make_layer(64, 64, 3, stride=1)
        self.layer2 = _make_layer(256, 128, 4, stride=2)
        self.layer3 = _make_layer(512, 256, 6, stride=2)
        self.layer4 = _make_layer(1024, 512, 3, stride=2)
        self.deconv_layers = make_deconv_stack(2048, (256, 128, self.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, 64, H/4, W/4) of RGB images (B, 3, H, W) normalised to [-1, 1]."""
        check_backbone_input(x)
        x = self.input_norm(x)  # (B, 3, H, W), ImageNet-standardised
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer1(x)  # (B, 256, H/4, W/4)
        x = self.layer2(x)  # (B, 512, H/8, W/8)
        x = self.layer3(x)  # (B, 1024, H/16, W/16)
        x = self.layer4(x)  # (B, 2048, H/32, W/32)
        return self.deconv_layers(x)  # (B, 64, H/4, W/4)
