"""Hand-wired center head for seeded ROMP weights: a stable number of people per image.

A random readout of random features finds one person in one scene and thirty in the next:
its level and spread drift with image statistics that no calibration set covers. A trained
ROMP knows where bodies are; seeded weights cannot, so the center head is wired instead
(``final_layers.2``: conv-BN-ReLU, two BasicBlocks, 1x1 conv) to compute

    score = thresh + gain * (layout - 0.75) + image_gain * clamp(z, -1, 1) - veto * blank

* ``layout``: hats of the CoordConv x and y channels (``relu(u - t)`` ramps of the first
  layer): 1 at ``COLUMNS x ROWS`` seeded places, 0.5 on the ridges between them, 0 far away.
  Peaks end ``MARGIN`` above the threshold, ridges as far below.
* ``z``: a smooth, standardised image score, clamped by two ReLUs to +-1, whose gain is
  below the margin: it moves people by a cell or two but never adds or removes one.
* ``blank``: ``relu(c - activity)``, activity being the local high-pass energy of the
  backbone features (``|hp|`` as ``relu(hp) + relu(-hp)`` in the first layer, averaged in
  the first block). Flat regions (a black frame, letterbox bars, a clear sky) have none:
  nobody is found there, and nobody at all in an empty image.

Every wired channel gets an exact affine BatchNorm (running mean / variance overridden), so
the arithmetic above holds whatever the calibration measured; the residual blocks pass the
wired channels through unchanged (their branch adds exactly zero there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
import torch.nn.functional as F  # noqa: N812

# Layout peaks in the [-1, 1] CoordConv frame (jittered per seed) and hat half-width.
COLUMNS = (-0.6, -0.2, 0.2, 0.6)
ROWS = (-0.3, 0.3)
JITTER = 0.1
HALF_WIDTH = 0.2
MARGIN = 0.45  # score of a peak above the threshold (and of a ridge below it)
IMAGE_GAIN = 0.08  # score per unit of the clamped image score; < MARGIN
ACTIVITY_CHANNELS = 16  # feature channels whose high-pass energy measures activity
BLANK_LEVEL = 0.25  # activity below this share of the calibration median counts as blank
BLANK_VETO = 1.0  # score removed from a fully blank cell: nobody survives it

_BINOMIAL = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])) / 16.0


@dataclass(frozen=True)
class WiredChannels:
    """Channels of the first layer that :func:`wire_first_layer` took over.

    Attributes:
        readout: (C,) output-layer weights on the wired channels (0 elsewhere).
        bias: output-layer bias.
        activity: indices of the |high-pass| halves.
        blank: index of the blankness channel (0 out of the first layer).
    """

    readout: Tensor
    bias: float
    activity: list[int]
    blank: int

    @property
    def mask(self) -> Tensor:
        """(C,) bool: every wired channel."""
        wired = self.readout != 0
        wired[self.activity] = True
        wired[self.blank] = True
        return wired


def wire_first_layer(head: nn.Sequential, x: Tensor, thresh: float,
                     g: torch.Generator) -> WiredChannels:
    """Wire the conv-BN-ReLU ``head[0]`` (calibrated) in place.

    ``x``: (B, C + 2, 128, 128), what the head sees on the calibration images (backbone
    features, then the CoordConv x and y channels); the image score is standardised on it.
    The residual blocks must be recalibrated before :func:`wire_blocks`.
    """
    conv, norm = head[0][0], head[0][1]
    feature_channels = x.shape[1] - 2
    free = list(range(conv.out_channels - 1, -1, -1))  # pop() takes channels 0, 1, ...
    readout = torch.zeros(conv.out_channels)  # (C,) output weights on the wired channels
    bias = thresh

    # Layout hats.
    gain = 4 * MARGIN  # peak (1) and ridge (0.5) a margin away from the level 0.75
    jitter = (torch.rand(2, generator=g) * 2 - 1) * JITTER
    for axis, peaks in ((0, COLUMNS), (1, ROWS)):
        for peak in peaks:
            for offset, weight in ((-HALF_WIDTH, 1.0), (0.0, -2.0), (HALF_WIDTH, 1.0)):
                channel = free.pop()
                kernel = torch.zeros(conv.in_channels, 3, 3)
                kernel[feature_channels + axis, 1, 1] = 1.0
                set_exact_filter(conv, norm, channel, kernel, scale=1.0,
                                 shift=-(peak + float(jitter[axis]) + offset))
                # / 2: the x and y hats of a peak add up to 1
                readout[channel] = gain * weight / HALF_WIDTH / 2
    bias -= gain * 0.75

    # Clamped image score: relu(z + 1) - relu(z - 1) - 1 = clamp(z, -1, 1).
    direction = torch.randn(feature_channels, generator=g)
    kernel = torch.zeros(conv.in_channels, 3, 3)
    kernel[:feature_channels] = direction.view(-1, 1, 1) * _BINOMIAL
    z = _response(conv, x, kernel)  # (B, 64, 64)
    mean, std = float(z.mean()), float(z.std())
    for shift, weight in ((1.0, 1.0), (-1.0, -1.0)):
        channel = free.pop()
        set_exact_filter(conv, norm, channel, kernel, scale=1.0 / std, shift=shift,
                         mean=mean)
        readout[channel] = IMAGE_GAIN * weight
    bias -= IMAGE_GAIN

    # Activity: |high-pass| of the first feature channels, as two ReLU halves each.
    high_pass = -torch.full((3, 3), 1.0 / 9.0)
    high_pass[1, 1] += 1.0
    activity_channels = []
    for feature in range(ACTIVITY_CHANNELS):
        kernel = torch.zeros(conv.in_channels, 3, 3)
        kernel[feature] = high_pass
        for sign in (1.0, -1.0):
            channel = free.pop()
            set_exact_filter(conv, norm, channel, sign * kernel, scale=1.0, shift=0.0)
            activity_channels.append(channel)
    # The blankness channel: zero out of the first layer, filled in by the first block.
    blank = free.pop()
    set_exact_filter(conv, norm, blank, torch.zeros(conv.in_channels, 3, 3), scale=0.0,
                     shift=0.0)
    return WiredChannels(readout, bias, activity_channels, blank)


def wire_blocks(head: nn.Sequential, x: Tensor, wired: WiredChannels) -> None:
    """Wire the residual blocks (calibrated after :func:`wire_first_layer`) and the output."""
    first, blocks, output = head[0], head[1], head[2]
    first_block, second_block = blocks[0][0], blocks[1][0]
    for block in (first_block, second_block):
        _pass_through(block, wired.mask)
    readout, blank, activity_channels = wired.readout.clone(), wired.blank, wired.activity

    # First block: hidden unit `blank` = relu(c - mean blurred activity), routed to the
    # output channel `blank` (whose input is 0): relu(0 + relu(c - a)) = relu(c - a).
    layer_out = first(x)  # (B, 64, 64, 64)
    activity = F.conv2d(layer_out[:, activity_channels].mean(1, keepdim=True),
                        _BINOMIAL.view(1, 1, 3, 3), padding=1)  # (B, 1, 64, 64)
    level = BLANK_LEVEL * float(activity.median())
    kernel = torch.zeros(first_block.conv1.in_channels, 3, 3)
    kernel[activity_channels] = _BINOMIAL / len(activity_channels)
    set_exact_filter(first_block.conv1, first_block.bn1, blank, kernel, scale=-1.0, shift=level)
    route = torch.zeros(first_block.conv2.in_channels, 3, 3)
    route[blank, 1, 1] = 1.0
    first_block.conv2.weight[:, blank] = 0.0  # no other unit reads the new hidden unit
    set_exact_filter(first_block.conv2, first_block.bn2, blank, route, scale=1.0, shift=0.0)
    second_block.conv1.weight[:, blank] = 0.0  # nor does the second block's branch
    readout[blank] = -BLANK_VETO / level

    output.weight.zero_()
    output.weight.view(output.out_channels, -1)[0] = readout
    output.bias[0] = wired.bias


def set_exact_filter(conv: nn.Conv2d, norm: nn.BatchNorm2d, channel: int, kernel: Tensor,
                     scale: float, shift: float, mean: float = 0.0) -> None:
    """Output ``channel`` of conv + BN = ``scale * (conv_kernel(x) - mean) + shift``, exactly.

    ``kernel``: (C_in, 3, 3). The running statistics are overridden (mean, variance 1) so
    the BatchNorm is the stated affine map whatever was measured.
    """
    conv.weight[channel] = kernel
    if conv.bias is not None:
        conv.bias[channel] = 0.0
    set_exact_affine(norm, channel, scale, shift, mean)


def set_exact_affine(norm: nn.modules.batchnorm._BatchNorm, channels, scale: float,
                     shift: float, mean: float = 0.0) -> None:
    """Make ``norm`` (eval mode) map x -> ``scale * (x - mean) + shift`` on ``channels``.

    ``channels``: an index, a mask or ``slice(None)``. The running statistics are
    overridden (mean, variance 1) whatever a calibration measured.
    """
    norm.running_mean[channels] = mean
    norm.running_var[channels] = 1.0 - norm.eps
    norm.weight[channels] = scale
    norm.bias[channels] = shift


def _response(conv: nn.Conv2d, x: Tensor, kernel: Tensor) -> Tensor:
    """(B, H', W') response of one ``kernel`` (C_in, 3, 3) with ``conv``'s geometry."""
    return F.conv2d(x, kernel.unsqueeze(0), stride=conv.stride, padding=conv.padding)[:, 0]


def _pass_through(block: nn.Module, channels: Tensor) -> None:
    """Make the residual ``block`` leave ``channels`` ((C,) mask) unchanged.

    They are >= 0 and the branch's last BatchNorm outputs exactly 0 there: relu(x + 0) = x.
    """
    set_exact_affine(block.bn2, channels, scale=0.0, shift=0.0)
