"""HRNet-W32 backbone of ROMP and BEV (the "HigherResolutionNet" of simple-romp).

Input: (B, 3, 512, 512) float RGB already normalised to [-1, 1] (the model wrappers do the
normalisation). Output: the highest-resolution branch, (B, 32, 128, 128).

Attribute names (conv1, bn1, conv2, bn2, layer1, transition1..3, stage2..4 with
branches / fuse_layers) form the official checkpoint format and must not change.
"""

from __future__ import annotations

from torch import Tensor, nn

from romp_ros.core.nets.blocks import BN_MOMENTUM, BasicBlock, Bottleneck, conv3x3

# Per stage: (number of HR modules, channels of each parallel branch). Every branch of
# every module has 4 BasicBlocks; the stem's layer1 has 4 Bottlenecks.
_STAGE_SPECS = (
    (1, (32, 64)),
    (4, (32, 64, 128)),
    (3, (32, 64, 128, 256)),
)
_BLOCKS_PER_BRANCH = 4
_STEM_CHANNELS = 64
_LAYER1_BLOCKS = 4


def _conv_bn(in_channels: int, out_channels: int, stride: int, relu: bool) -> nn.Sequential:
    """3x3 conv + BN (+ ReLU); the unit of the transition and downsampling fuse layers."""
    layers: list[nn.Module] = [conv3x3(in_channels, out_channels, stride),
                               nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _fuse_path(src: int, dst: int, channels: tuple[int, ...]) -> nn.Module | None:
    """Layers that bring branch ``src`` to the resolution and width of branch ``dst``.

    Lower-resolution sources (src > dst) use a 1x1 conv + BN then nearest upsampling;
    higher-resolution sources use (dst - src) stride-2 3x3 convs, the last one without ReLU
    (the sum is activated once, after fusion). None means identity (src == dst).
    """
    if src == dst:
        return None
    if src > dst:
        return nn.Sequential(
            nn.Conv2d(channels[src], channels[dst], 1, bias=False),
            nn.BatchNorm2d(channels[dst]),
            nn.Upsample(scale_factor=2 ** (src - dst), mode='nearest'))
    steps = dst - src
    return nn.Sequential(*[
        _conv_bn(channels[src], channels[dst] if k == steps - 1 else channels[src], 2,
                 relu=k < steps - 1)
        for k in range(steps)])


class HRModule(nn.Module):
    """Parallel multi-resolution branches followed by all-to-all fusion.

    With ``multi_scale_output=False`` only the highest-resolution fused output is built
    (the last module of the network).
    """

    def __init__(self, channels: tuple[int, ...], multi_scale_output: bool = True) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(*[BasicBlock(c, c) for _ in range(_BLOCKS_PER_BRANCH)])
            for c in channels])
        n_out = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList([
            nn.ModuleList([_fuse_path(src, dst, channels) for src in range(len(channels))])
            for dst in range(n_out)])
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        fused = []
        for paths in self.fuse_layers:
            # Summed in source order (0, 1, ...) so results match the reference bit for bit.
            total = None
            for path, x in zip(paths, xs, strict=True):
                y = x if path is None else path(x)
                total = y if total is None else total + y
            fused.append(self.relu(total))
        return fused


def _transition(pre: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Adapt the branches of one stage to the next: re-width kept ones, spawn a new one.

    A kept branch whose width is unchanged passes through (None). A new branch is created
    from the previous stage's lowest-resolution output by stride-2 convs.
    """
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(None if pre[i] == c else _conv_bn(pre[i], c, 1, relu=True))
        else:
            steps = i + 1 - len(pre)
            layers.append(nn.Sequential(*[
                _conv_bn(pre[-1], c if k == steps - 1 else pre[-1], 2, relu=True)
                for k in range(steps)]))
    return nn.ModuleList(layers)


def _apply_transition(transition: nn.ModuleList, ys: list[Tensor]) -> list[Tensor]:
    """Run a transition; new branches read the previous stage's last (coarsest) output."""
    out = []
    for i, layer in enumerate(transition):
        x = ys[i] if i < len(ys) else ys[-1]
        out.append(x if layer is None else layer(x))
    return out


class HRNet32(nn.Module):
    """HRNet-W32: stride-4 stem, Bottleneck layer1, then stages of 2, 3 and 4 branches."""

    out_channels = 32

    def __init__(self) -> None:
        super().__init__()
        # Stem: two stride-2 convs take 512 px to 128 px.
        self.conv1 = nn.Conv2d(3, _STEM_CHANNELS, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(_STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(_STEM_CHANNELS, _STEM_CHANNELS, 3, stride=2, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(_STEM_CHANNELS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        layer1_out = _STEM_CHANNELS * Bottleneck.expansion
        projection = nn.Sequential(
            nn.Conv2d(_STEM_CHANNELS, layer1_out, 1, bias=False),
            nn.BatchNorm2d(layer1_out, momentum=BN_MOMENTUM))
        self.layer1 = nn.Sequential(
            Bottleneck(_STEM_CHANNELS, _STEM_CHANNELS, downsample=projection),
            *[Bottleneck(layer1_out, _STEM_CHANNELS) for _ in range(_LAYER1_BLOCKS - 1)])

        pre: tuple[int, ...] = (layer1_out,)
        for index, (n_modules, channels) in enumerate(_STAGE_SPECS):
            last_stage = index == len(_STAGE_SPECS) - 1
            setattr(self, f'transition{index + 1}', _transition(pre, channels))
            setattr(self, f'stage{index + 2}', nn.Sequential(*[
                HRModule(channels, multi_scale_output=not (last_stage and m == n_modules - 1))
                for m in range(n_modules)]))
            pre = channels

    def forward(self, x: Tensor) -> Tensor:
        """Map (B, 3, H, W) normalised RGB to (B, 32, H / 4, W / 4) features."""
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/2, W/2)
        x = self.relu(self.bn2(self.conv2(x)))  # (B, 64, H/4, W/4)
        ys = [self.layer1(x)]  # [(B, 256, H/4, W/4)]
        for index in range(len(_STAGE_SPECS)):
            transition = getattr(self, f'transition{index + 1}')
            stage = getattr(self, f'stage{index + 2}')
            ys = stage(_apply_transition(transition, ys))
        return ys[0]  # (B, 32, H/4, W/4): the last module fuses into the finest branch only
