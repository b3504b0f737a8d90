"""Deterministic, well-conditioned random weights for tests and the demo.

Official checkpoints cannot be downloaded everywhere (CI, sandboxes), yet the whole pipeline
(center parsing, SMPL, projection, tracking, ROS messages) needs network outputs that look
like real ones. :func:`seeded_state_dict` builds such weights from a seed:

1. seeded Kaiming initialisation (a local ``torch.Generator``; the global RNG is untouched),
   with small residual / fusion gains and, for HRNet, a brightness-invariant saturating
   stem, so that outputs depend on image structure more than on exposure;
2. BatchNorm statistics calibrated on procedurally generated photo-like images (one pass
   with only the BatchNorm layers in training mode), so activations stay normalised;
3. output layers refitted on those images: camera scale ``1.1 ** s`` about 0.4..1.0
   (ROMP), translations inside [-1, 1], 6D rotations near the rest pose (the root near
   upright and facing the camera), betas inside [-1.5, 1.5] on the calibration images.
   ROMP's parameter and camera heads blur (exact binomial residual blocks) and read
   smooth feature directions, so neighbouring cells give similar people, as a trained
   network's do (random features stay far less shift-stable than trained ones);
4. center maps. ROMP's center head is hand-wired (:mod:`seeded_romp_center`): a layout
   prior on the CoordConv channels (8 seeded places), moved by a cell or two by a bounded
   image score and vetoed where the features have no texture, so every seed finds about 8
   people on any textured image and nobody on a blank one. BEV's heads have no CoordConv
   input to anchor a layout; its front-view score is a smooth image readout (blob-scale,
   chosen for a stable detection count) whose TARGET_PEOPLE-th 3D local maximum sits at
   the threshold on a median calibration image: a few to a few tens of people per scene.
   Transposed convolutions are bilinear up-samplers with random channel mixing, so flat
   images give flat features on every backbone.

Everything is a function of (model, backbone, seed); nothing is cached at module level.
The stem and residual shaping target HRNet-32 (ROMP and BEV); the other backbones get
initialisation, smooth up-sampling, calibration, the output refits and ROMP's wired center
head.
"""

from __future__ import annotations

from contextlib import contextmanager
import logging
import math
import os
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import Tensor, nn
import torch.nn.functional as F  # noqa: N812

from romp_ros.core.nets.factory import build_model
from romp_ros.testing.seeded_romp_center import (
    set_exact_affine,
    set_exact_filter,
    wire_blocks,
    wire_first_layer,
)

logger = logging.getLogger(__name__)

# Bumped whenever the generated weights change, so caches keyed on it (the demo's) refresh.
SEEDED_VERSION = 2
CALIBRATION_IMAGES = 10
IMAGE_SIZE = 512
# Detection thresholds of the reference for the official weights.
ROMP_CENTER_THRESH = 0.25
BEV_CENTER_THRESH = 0.1
# BEV: median number of detections per calibration image its center maps are tuned for.
TARGET_PEOPLE = 5
# 6D rotation of the rest pose (identity) and of an upright body facing the camera
# (180 degrees about x: SMPL is y-up, the camera frame is y-down). Layout: the 3x2 matrix
# [[a0, a1], [a2, a3], [a4, a5]] whose columns are the first two rotation columns.
_IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_UPRIGHT_6D = (1.0, 0.0, 0.0, -1.0, 0.0, 0.0)
# Output means and the largest deviations allowed on the calibration images.
_POSE_LIMIT = 0.5  # per 6D component: typical rotations ~0.15 rad, extremes < ~1 rad
_BETAS_LIMIT = 1.5
_AGE_LIMIT = 0.3  # BEV's 11th beta; > 0.8 means an infant (SMIL): keep adults
_ROMP_SCALE_MEAN = math.log(0.6) / math.log(1.1)  # raw s with 1.1 ** s = 0.6
_ROMP_SCALE_LIMIT = 5.0  # 1.1 ** s within 0.37..0.97
_TRANS_LIMIT = 0.1  # image-dependent part of tx, ty; the cell's position gives the rest
# BEV depth bins people are placed in: anchors ~1.5 m (bin 16) to ~5 m (bin 48); the
# typical depth of a seed is drawn in there, people spread around it.
_BEV_DEPTH_BINS = (16, 48)
_BEV_DEPTH_WIDTH = 10  # bins
_BEV_DEPTH_JITTER = 1.0  # image-dependent part of the depth profile
_BEV_OFFSET_LIMIT = 0.05  # image-plane camera offsets added to the anchor grid
_BEV_LEVEL = 0.5  # 3D center score of the TARGET_PEOPLE-th person before the final shift
_REFINER_GAIN = 0.02  # residual gain of BEV's 3D refiners: near-identity
# Center maps.
_NMS_KERNEL = 5
_SMOOTH_SIGMA = 2.0  # blob scale, in cells of a 64x64 map (16 input pixels)
_BLOB_DIRECTIONS = 8  # smoothest feature directions considered
_SMOOTH_DIRECTIONS = 16  # smooth feature directions the ROMP parameter readouts blend
_PARAM_SIGMA = 4.0  # scale, in cells of a 64x64 map, over which parameters vary little
_SMOOTH_CANDIDATES = 24  # random blends of them tried, besides the directions themselves
_BORDER_CELLS = 3
_BORDER_PENALTY = 10.0
_BLUR_SHIFT = 100.0  # keeps the inner ReLU of an exact blur block linear
_QUIET_GAIN = 0.02  # residual gain of near-identity blocks in the center heads
_BLUR_GAIN = 1.0  # smooth branch vs 1x1 shortcut in BEV's det_head
# Conditioning of the network.
_RESIDUAL_GAIN = 0.2
_FUSE_GAIN = 0.5
_STEM_SATURATION = 0.2  # in standard deviations of the stem responses


def seeded_state_dict(name: str, backbone: str = 'hrnet32', seed: int = 0) -> dict[str, Tensor]:
    """Return a calibrated random state dict for ``build_model(name, backbone)``.

    Same arguments give identical tensors (on the same machine and torch build); takes a
    few seconds on CPU.
    """
    model = seeded_model(name, backbone, seed)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def seeded_model(name: str, backbone: str = 'hrnet32', seed: int = 0) -> nn.Module:
    """Build ``name`` / ``backbone`` with calibrated seeded weights, in eval mode, on CPU."""
    generator = torch.Generator().manual_seed(seed)
    # Module constructors draw their default init from the global RNG; every weight is
    # overwritten below, so construct under a forked RNG and leave the caller's untouched.
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, backbone)
    _init_weights(model, generator)
    _smooth_upsampling(model, generator)
    _damp_residuals(model)
    _saturate_stem(model.backbone)
    images = calibration_images(seed, CALIBRATION_IMAGES)
    model.eval()
    with torch.no_grad():
        if name == 'romp':
            _calibrate_romp(model, images, generator)
        else:
            _calibrate_bev(model, images, generator)
    return model.eval()


def write_seeded_checkpoint(path: str | os.PathLike, name: str, backbone: str = 'hrnet32',
                            seed: int = 0, layout: str = 'inference', *,
                            state: Mapping[str, Tensor] | None = None) -> Path:
    """Write seeded weights as a checkpoint file and return its path.

    ``layout='inference'`` writes a flat state dict like the official files; ``'training'``
    nests it under 'model_state_dict' with DataParallel's ``module.`` prefix and adds a few
    training-only ``_result_parser.*`` / ``_calc_loss.*`` tensors and an epoch counter, like
    the files written by the training code. ``state``, when given, is written instead of a
    fresh :func:`seeded_state_dict` (to write several layouts of one generation).
    """
    if layout not in ('inference', 'training'):
        raise ValueError(f"unknown layout {layout!r}; valid layouts: 'inference', 'training'")
    state = dict(state) if state is not None else seeded_state_dict(name, backbone, seed)
    if layout == 'training':
        nested = {f'module.{k}': v for k, v in state.items()}
        nested['module._result_parser.params_map_parser.smpl_model.faces'] = torch.zeros(
            4, 3, dtype=torch.int64)
        nested['module._result_parser.centermap_parser.coordmap_3d'] = torch.zeros(2, 3)
        nested['module._calc_loss.joint_weights'] = torch.ones(24)
        payload: dict = {'model_state_dict': nested, 'epoch': 3, 'best_mpjpe': 71.5}
    else:
        payload = state
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    logger.info('wrote seeded %s/%s weights (seed %d, %s layout) to %s',
                name, backbone, seed, layout, path)
    return path


def calibration_images(seed: int, count: int = CALIBRATION_IMAGES,
                       size: int = IMAGE_SIZE) -> Tensor:
    """Return (count, size, size, 3) float RGB 0..255 procedural photo-like images.

    A smooth multi-scale colour background plus sharp-edged, shaded ellipses and boxes
    (people- and object-like regions) and sensor noise: statistics close enough to natural
    photographs for BatchNorm calibration. Deterministic in ``seed``.
    """
    g = torch.Generator().manual_seed(seed + 7919)
    images = []
    for index in range(count):
        image = _photo_like(g, size)  # (S, S, 3)
        # Like the estimator's input, some images are letterboxed: a 16:9 landscape or a 3:4
        # portrait frame centred in a black square.
        if index % 3 == 1:
            band = (size - size * 9 // 16) // 2
            image[:band] = 0.0
            image[size - band:] = 0.0
        elif index % 3 == 2:
            band = (size - size * 3 // 4) // 2
            image[:, :band] = 0.0
            image[:, size - band:] = 0.0
        images.append(image)
    return torch.stack(images)  # (N, S, S, 3)


# --------------------------------------------------------------------------- images


def _photo_like(g: torch.Generator, size: int) -> Tensor:
    """One procedural image (size, size, 3), float 0..255.

    Scene statistics vary per image (texture strength, contrast, clutter, smoothness) so
    that calibration sees both busy and plain scenes.
    """
    texture = float(torch.rand(1, generator=g)) * 0.25  # fine-scale share of the background
    img = torch.zeros(3, size, size)
    for cells, weight in ((2, 1.0), (6, 0.6), (24, 0.2 + texture), (96, texture)):
        noise = torch.randn(1, 3, cells, cells, generator=g)
        img += weight * F.interpolate(noise, size=(size, size), mode='bicubic',
                                      align_corners=False)[0]
    # Correlate the channels like natural colours: a shared luminance plus a tint.
    luminance = img.mean(0, keepdim=True)
    tint = torch.rand(3, 1, 1, generator=g) * 0.6 + 0.7
    img = 0.7 * luminance * tint + 0.3 * img  # (3, S, S)
    contrast = float(torch.rand(1, generator=g)) * 40 + 20
    brightness = float(torch.rand(1, generator=g)) * 80 + 88
    img = brightness + contrast * img / img.std().clamp_min(1e-6)

    ys = torch.linspace(-1, 1, size).view(size, 1)
    xs = torch.linspace(-1, 1, size).view(1, size)
    n_shapes = int(torch.randint(2, 10, (1,), generator=g))
    for _ in range(n_shapes):
        cy, cx = (torch.rand(2, generator=g) * 1.8 - 0.9).tolist()
        ry, rx = (torch.rand(2, generator=g) * 0.35 + 0.05).tolist()
        if float(torch.rand(1, generator=g)) < 0.6:  # upright ellipse (body-like)
            ry *= 2.0
            inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1.0
        else:  # box (furniture, doors, windows)
            inside = ((ys - cy).abs() <= ry) & ((xs - cx).abs() <= rx)
        colour = torch.rand(3, 1, 1, generator=g) * 220 + 15
        shading = 1.0 + 0.25 * (ys - cy) / max(ry, 1e-3)  # lit from above
        img = torch.where(inside, colour * shading.clamp(0.6, 1.4), img)
    noise_std = float(torch.rand(1, generator=g)) * 3 + 0.5
    img += torch.randn(3, size, size, generator=g) * noise_std  # sensor noise
    return img.clamp(0, 255).permute(1, 2, 0).contiguous()  # (S, S, 3)


# --------------------------------------------------------------------------- init


def _init_weights(model: nn.Module, g: torch.Generator) -> None:
    """Seeded Kaiming init of every layer; random BatchNorm affine, statistics reset."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g)
                                    * math.sqrt(2.0 / fan_in))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.01)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=g) * 0.6 + 0.7)
                module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
                module.reset_running_stats()
            elif isinstance(module, nn.Embedding):
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * 0.5)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()


def _smooth_upsampling(model: nn.Module, g: torch.Generator) -> None:
    """Make every 4x4 stride-2 transposed conv a bilinear up-sampler with random mixing.

    Random transposed-conv kernels print a fixed periodic pattern on their output (each
    output phase gets different taps), so even a blank image yields textured features and
    the center head's activity measure could not tell it from a photograph.
    """
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4.0  # 2 taps per output phase, summing to 1
    kernel = torch.outer(taps, taps)  # (4, 4)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.ConvTranspose2d) and module.kernel_size == (4, 4) \
                    and module.stride == (2, 2):
                mix = torch.randn(module.in_channels, module.out_channels, generator=g)
                scale = math.sqrt(2.0 / module.in_channels)
                module.weight.copy_((mix * scale)[:, :, None, None] * kernel)


def _damp_residuals(model: nn.Module) -> None:
    """Shrink what residual branches and HRNet fusions add to their streams.

    With unit gains the streams' variance grows with depth and, worse, their extremes grow
    faster than their spread, so outputs on unseen images leave the calibrated ranges.
    Small gains (as in "zero-init residual" training recipes) keep the network shallow-like.
    """
    from romp_ros.core.nets.blocks import BasicBlock, Bottleneck
    from romp_ros.core.nets.hrnet import HRModule
    from romp_ros.core.nets.resnet import ResNetBottleneck

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BasicBlock):
                module.bn2.weight.mul_(_RESIDUAL_GAIN)
            elif isinstance(module, (Bottleneck, ResNetBottleneck)):
                module.bn3.weight.mul_(_RESIDUAL_GAIN)
            elif isinstance(module, HRModule):
                for norm in module.fuse_layers.modules():
                    if isinstance(norm, nn.BatchNorm2d):
                        norm.weight.mul_(_FUSE_GAIN)
            elif getattr(module, 'use_res_connect', False):
                # torchvision's (Fused)MBConv: the branch ends with conv + BN, no activation
                norms = [m for m in module.block.modules() if isinstance(m, nn.BatchNorm2d)]
                norms[-1].weight.mul_(_RESIDUAL_GAIN)


def _saturate_stem(backbone: nn.Module) -> None:
    """Make HRNet's stem a bank of brightness-invariant, saturating edge detectors.

    Random ReLU networks respond roughly in proportion to image contrast, so detection
    counts would swing with exposure. Here the first conv's filters are zero-mean (a uniform
    brightness change does nothing) and its 64 channels are 32 filters in pairs whose BN
    biases differ by ``_STEM_SATURATION``; the second conv takes each pair with opposite
    signs, i.e. it sees ``relu(a) - relu(a - c) = clamp(a, 0, c)``: strong and moderate
    edges look alike. Other backbones are left as initialised.
    """
    from romp_ros.core.nets.hrnet import HRNet32

    if not isinstance(backbone, HRNet32):
        return
    with torch.no_grad():
        half = backbone.conv1.out_channels // 2
        w1 = backbone.conv1.weight  # (64, 3, 3, 3)
        w1[:half] -= w1[:half].mean(dim=(1, 2, 3), keepdim=True)
        w1[half:] = w1[:half]
        backbone.bn1.weight[half:] = backbone.bn1.weight[:half]
        backbone.bn1.bias[half:] = backbone.bn1.bias[:half] - _STEM_SATURATION
        w2 = backbone.conv2.weight  # (64, 64, 3, 3)
        w2[:, half:] = -w2[:, :half]


@contextmanager
def _calibrating_batchnorm(*modules: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers of ``modules`` use and store batch statistics.

    Statistics are reset and averaged cumulatively, so after one batch they are exactly
    that batch's statistics; layers must therefore see a single batch each.

    Only BatchNorm layers switch to training mode, so dropout / stochastic depth stay off
    and the global RNG is never used.
    """
    norms = [m for module in modules for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        yield
    finally:
        for m, (momentum, training) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.train(training)


# --------------------------------------------------------------------------- fitting


def _fit_output(layer: nn.Module, features: Tensor, means: Tensor, limits: Tensor,
                g: torch.Generator, basis: Tensor | None = None) -> None:
    """Refit a 1x1 conv or linear layer so output o stays within mean[o] +- limit[o].

    ``features``: (M, C) samples of the layer input. Each output keeps a random direction
    (so it still depends on the input), rescaled so that its largest deviation from the
    mean on these samples equals ``limits[o]``. Features of random ReLU networks are
    heavy-tailed, so bounding the extremes (where people tend to be detected) rather than
    the spread is what keeps the outputs plausible. With ``basis`` (C, K), directions are
    random blends of its columns (e.g. :func:`_smooth_directions`).
    """
    out_channels = means.numel()
    if basis is None:
        directions = torch.randn(out_channels, features.shape[1], generator=g)  # (O, C)
    else:
        directions = torch.randn(out_channels, basis.shape[1], generator=g) @ basis.T
    projected = (features - features.mean(0, keepdim=True)) @ directions.T  # (M, O)
    spread = projected.abs().amax(0)  # (O,)
    weight = directions * (limits / spread.clamp_min(1e-6)).unsqueeze(1)  # (O, C)
    bias = means - weight @ features.mean(0)  # (O,)
    layer.weight.copy_(weight.view(layer.weight.shape))
    layer.bias.copy_(bias)


def _smooth_over_depth(conv: nn.Conv1d, depth_bins: int, g: torch.Generator) -> None:
    """Make the first ``depth_bins`` output channels (depth bins) vary smoothly with depth.

    Each bin's filter is a blend of a few random filters with Gaussian weights centred at
    evenly spaced depths, so neighbouring bins respond alike: a column's depth profile is
    then a smooth curve (one clear maximum near the prior's peak) instead of white noise.
    """
    basis_count = 6
    bins = torch.arange(depth_bins, dtype=torch.float32).view(-1, 1)  # (D, 1)
    centres = torch.linspace(0, depth_bins - 1, basis_count).view(1, -1)  # (1, K)
    spacing = (depth_bins - 1) / (basis_count - 1)
    blend = torch.exp(-((bins - centres) / spacing) ** 2 / 2)  # (D, K)
    blend = blend / blend.norm(dim=1, keepdim=True)
    basis = torch.randn(basis_count, *conv.weight.shape[1:], generator=g)  # (K, C, 3)
    fan_in = conv.weight[0].numel()
    weight = torch.einsum('dk,kct->dct', blend, basis) * math.sqrt(2.0 / fan_in)
    conv.weight[:depth_bins] = weight


def _blur_downsampling(conv: nn.Conv2d, g: torch.Generator) -> None:
    """Make a stride-2 3x3 conv an anti-aliased downsampler.

    Random channel mixing times a fixed binomial kernel, so that the center map does not
    alias the fine texture of the features into isolated peaks.
    """
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = torch.outer(taps, taps) / 16.0  # (3, 3), sums to 1
    mix = torch.randn(conv.out_channels, conv.in_channels, generator=g)
    conv.weight.copy_((mix * math.sqrt(2.0 / conv.in_channels))[:, :, None, None] * kernel)


def _blur_block(block: nn.Module, g: torch.Generator) -> None:
    """Make a BasicBlock ``shortcut(x) + gain * blur(mix(x))``: a smooth, image-dependent map.

    conv1 mixes channels through a binomial kernel, conv2 blurs each channel again; the first
    BN's bias keeps the inner ReLU linear and the second BN's gain makes the smooth branch
    dominate the (unblurred) 1x1 shortcut.
    """
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = torch.outer(taps, taps) / 16.0  # (3, 3)
    channels = block.conv1.out_channels
    mix = torch.randn(channels, block.conv1.in_channels, generator=g)
    block.conv1.weight.copy_((mix * math.sqrt(2.0 / mix.shape[1]))[:, :, None, None] * kernel)
    block.conv2.weight.zero_()
    block.conv2.weight[torch.arange(channels), torch.arange(channels)] = kernel
    block.bn1.weight.fill_(1.0)
    block.bn1.bias.fill_(3.0)
    block.bn2.weight.fill_(_BLUR_GAIN)
    block.bn2.bias.zero_()


def _wire_cam_coordinates(first: nn.Sequential, coord_channels: int) -> list[int]:
    """Let the last two channels of the camera head's conv-BN-ReLU carry x + 1 and y + 1.

    ``coord_channels``: index of the CoordConv x channel in the head's input (y follows).
    Returns the two channel indices. Call after calibrating (the BatchNorm is set exactly).
    """
    conv, norm = first[0], first[1]
    channels = [conv.out_channels - 2, conv.out_channels - 1]
    for axis, channel in enumerate(channels):
        kernel = torch.zeros(conv.in_channels, *conv.kernel_size)
        kernel[coord_channels + axis, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1
        set_exact_filter(conv, norm, channel, kernel, scale=1.0, shift=1.0)
    return channels


def _exact_blur_block(block: nn.Module) -> None:
    """Make a BasicBlock (C -> C, identity shortcut) compute ``blur(x)`` for its input x >= 0.

    conv1 is the identity and bn1 adds a large constant (so the inner ReLU is linear); conv2
    applies ``binomial - delta`` per channel (the constant cancels: the kernel sums to 0), so
    ``relu(x + blur(x) - x) = blur(x)``. The BatchNorms are exact affine maps; a later
    calibration would overwrite them, so call this after calibrating.
    """
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = torch.outer(taps, taps) / 16.0  # (3, 3)
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1.0
    channels = torch.arange(block.conv1.out_channels)
    for conv, tap in ((block.conv1, delta), (block.conv2, kernel - delta)):
        conv.weight.zero_()
        conv.weight[channels, channels] = tap
        if conv.bias is not None:
            conv.bias.zero_()
    for norm, shift in ((block.bn1, _BLUR_SHIFT), (block.bn2, 0.0)):
        set_exact_affine(norm, slice(None), scale=1.0, shift=shift)


def _quiet(block: nn.Module) -> None:
    """Shrink a residual block's branch further: the block becomes nearly its shortcut."""
    block.bn2.weight.mul_(_QUIET_GAIN / _RESIDUAL_GAIN)


def _set_smooth_score(layer: nn.Module, index: int, maps: Tensor, g: torch.Generator) -> None:
    """Make output ``index`` of a 1x1 conv a smooth, standardised center score of ``maps``.

    Random readouts of random features vary from cell to cell, giving a local maximum every
    few cells and a detection count that swings with image busyness. Candidates are drawn
    from the directions whose response is mostly person-scale blobs (a generalised
    eigenproblem, see :func:`_blob_directions`) and the one whose detection count varies
    least between the calibration images is kept.
    """
    centred = maps - maps.mean(dim=(0, 2, 3), keepdim=True)  # (B, C, H, W)
    basis = _blob_directions(centred)  # (C, K), best last
    mixes = torch.randn(_SMOOTH_CANDIDATES, basis.shape[1], generator=g)  # (N, K)
    candidates = torch.cat([basis.T, mixes @ basis.T])  # (K + N, C)
    candidates = torch.cat([candidates, -candidates])  # both signs
    scores = torch.einsum('bchw,nc->bnhw', centred, candidates)  # (B, N, H, W)
    scores = scores / scores.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    spreads = torch.stack([_count_spread(scores[:, n]) for n in range(scores.shape[1])])
    best = int(spreads.argmin())
    direction = candidates[best] / (_pixels(centred) @ candidates[best]).std().clamp_min(1e-6)
    weight = layer.weight.view(layer.weight.shape[0], -1)  # (O, C)
    weight[index] = direction
    layer.bias[index] = -(direction @ _pixels(maps).mean(0))


def _blob_directions(centred: Tensor) -> Tensor:
    """Feature directions whose response is richest in person-scale blobs, (C, K).

    Maximises the variance of the band-passed response (difference of Gaussians of
    ``_SMOOTH_SIGMA`` and 4x that, in cells: blobs, not cell noise nor the image-wide
    layout such as letterbox bars) relative to the raw variance, with the outer cells'
    variance penalised: zero padding makes them respond alike in every image.
    """
    channels = centred.shape[1]
    m = _BORDER_CELLS
    sigma = _SMOOTH_SIGMA * centred.shape[-1] / 64  # the same image scale on any map size
    band = _gaussian_blur(centred, sigma) - _gaussian_blur(centred, 4 * sigma)
    interior = _pixels(band[:, :, m:-m, m:-m])  # (M', C)
    cov_band = interior.T @ interior / interior.shape[0]
    samples = _pixels(centred)  # (M, C)
    ring = torch.ones(centred.shape[-2:], dtype=torch.bool)
    ring[m:-m, m:-m] = False
    border = centred[:, :, ring].transpose(0, 1).reshape(channels, -1).T  # (M'', C)
    cov = samples.T @ samples / samples.shape[0]
    cov += _BORDER_PENALTY * border.T @ border / border.shape[0]
    return _top_directions(cov_band, cov, _BLOB_DIRECTIONS)


def _smooth_directions(centred: Tensor, count: int = _SMOOTH_DIRECTIONS) -> Tensor:
    """Feature directions whose response varies least from cell to cell, (C, count).

    A trained network's parameter maps change little between neighbouring cells (a person
    one cell to the side is the same person); random readouts of random features do not,
    so a person's depth would jump by tens of percent when the image moves by a few pixels.
    Maximises the variance of the response blurred at ``_PARAM_SIGMA`` cells relative to
    its raw variance (a generalised eigenproblem), on (B, C, H, W) centred maps.
    """
    sigma = _PARAM_SIGMA * centred.shape[-1] / 64
    smooth = _pixels(_gaussian_blur(centred, sigma))  # (M, C)
    samples = _pixels(centred)
    return _top_directions(smooth.T @ smooth / smooth.shape[0],
                           samples.T @ samples / samples.shape[0], count)


def _top_directions(cov_wanted: Tensor, cov_total: Tensor, count: int) -> Tensor:
    """(C, count) directions v maximising v' cov_wanted v / v' cov_total v, best last.

    The generalised symmetric eigenproblem, through the Cholesky factor of ``cov_total``
    (lightly regularised: feature channels can be constant).
    """
    channels = cov_total.shape[0]
    cov = cov_total + torch.eye(channels) * (1e-4 * cov_total.diagonal().mean())
    chol = torch.linalg.cholesky(cov)  # cov = L L^T
    inv_chol = torch.linalg.solve_triangular(chol, torch.eye(channels), upper=False)
    _, vectors = torch.linalg.eigh(inv_chol @ cov_wanted @ inv_chol.T)  # ascending
    return inv_chol.T @ vectors[:, -count:]


def _count_spread(scores: Tensor) -> Tensor:
    """How much the detection count of (B, H, W) score maps varies between images.

    The threshold is the median level of the TARGET_PEOPLE-th local maximum; the result is
    the mean absolute log-ratio of each image's count to the target.
    """
    peaks = _nms_peaks(scores.unsqueeze(1)).flatten(1)  # (B, H * W)
    levels = peaks.topk(TARGET_PEOPLE, dim=1).values[:, -1]  # (B,)
    counts = (peaks > levels.median()).sum(1).float()  # (B,)
    return ((counts + 1) / (TARGET_PEOPLE + 1)).log().abs().mean()


def _gaussian_blur(maps: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) maps, replicate padding."""
    radius = int(3 * sigma)
    taps = torch.exp(-torch.arange(-radius, radius + 1).float() ** 2 / (2 * sigma ** 2))
    taps = taps / taps.sum()
    channels = maps.shape[1]
    padded = F.pad(maps, (radius, radius, radius, radius), mode='replicate')
    out = F.conv2d(padded, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _pixels(maps: Tensor) -> Tensor:
    """(B, C, ...) maps -> (B * prod(...), C) samples."""
    return maps.transpose(0, 1).reshape(maps.shape[1], -1).T


def _nms_peaks(maps: Tensor) -> Tensor:
    """Values of the 5x5 (2D) or 5x5x5 (3D, (B, D, H, W)) local maxima, else -inf."""
    pad = _NMS_KERNEL // 2
    if maps.dim() == 4 and maps.shape[1] > 1:  # 3D center map (B, D, H, W)
        pooled = F.max_pool3d(maps.unsqueeze(1), _NMS_KERNEL, 1, pad).squeeze(1)
    else:
        pooled = F.max_pool2d(maps, _NMS_KERNEL, 1, pad)
    return torch.where(pooled == maps, maps, torch.full_like(maps, -math.inf))


def _detection_level(maps: Tensor, people: int) -> float:
    """Median over images of the ``people``-th highest local-maximum value."""
    peaks = _nms_peaks(maps).flatten(1)  # (B, M)
    kth = peaks.topk(people, dim=1).values[:, -1]  # (B,)
    return float(kth.median())


def _pose_betas_targets(betas: int) -> tuple[Tensor, Tensor]:
    """Means and limits of [22 x 6D rotations, betas]: upright root, near-rest joints."""
    rotations = torch.tensor(_UPRIGHT_6D + _IDENTITY_6D * 21)
    means = torch.cat([rotations, torch.zeros(betas)])
    limits = torch.cat([torch.full((132,), _POSE_LIMIT), torch.full((betas,), _BETAS_LIMIT)])
    if betas == 11:
        limits[-1] = _AGE_LIMIT
    return means, limits


# --------------------------------------------------------------------------- ROMP


def _calibrate_romp(model: nn.Module, images: Tensor, g: torch.Generator) -> None:
    from romp_ros.core.nets.romp_net import first_conv_weight, images_to_input

    x = images_to_input(images, first_conv_weight(model.backbone))
    # A smooth center head: blurred downsampling and near-identity residual blocks (each
    # random nonlinear layer makes the detection count depend more on image statistics).
    center_head = model.final_layers[2]
    _blur_downsampling(center_head[0][0], g)
    for block in center_head[1]:
        _quiet(block[0])
    for head in (model.final_layers[1], model.final_layers[3]):
        _blur_downsampling(head[0][0], g)
    with _calibrating_batchnorm(model):
        features = model.backbone(x)  # (B, C, 128, 128)
        coords = model.coordmaps.expand(features.shape[0], -1, -1, -1)
        x = torch.cat([features, coords], dim=1)
        penultimate = [model.final_layers[i][:-1](x) for i in (1, 2, 3)]  # (B, 64, 64, 64)
    # Parameter heads: smooth maps (a person one cell to the side is the same person).
    coords = _wire_cam_coordinates(model.final_layers[3][0], coord_channels=x.shape[1] - 2)
    for i in (1, 3):
        for block in model.final_layers[i][1]:
            _exact_blur_block(block[0])
        penultimate[i - 1] = model.final_layers[i][:-1](x)

    params_head, center_output, cam_head = (model.final_layers[i][-1] for i in (1, 2, 3))
    means, stds = _pose_betas_targets(10)
    cam_features = penultimate[2].clone()
    cam_features[:, coords] = 0.0  # the image part of the camera ignores the position
    smooth = [_smooth_directions(maps - maps.mean(dim=(0, 2, 3), keepdim=True))
              for maps in (penultimate[0], cam_features)]
    _fit_output(params_head, _pixels(penultimate[0]), means, stds, g, basis=smooth[0])
    _fit_output(cam_head, _pixels(cam_features),
                torch.tensor([_ROMP_SCALE_MEAN, 0.0, 0.0]),
                torch.tensor([_ROMP_SCALE_LIMIT, _TRANS_LIMIT, _TRANS_LIMIT]), g,
                basis=smooth[1])
    # A trained ROMP puts each person's body where its center cell is: tx, ty follow the
    # cell's x, y (the wired channels hold u + 1 for u in [-1, 1]).
    weight = cam_head.weight.view(cam_head.out_channels, -1)  # (3, C)
    weight[:, coords] = 0.0
    for out, channel in ((1, coords[0]), (2, coords[1])):
        weight[out, channel] = 1.0
        cam_head.bias[out] -= 1.0

    # Center: hand-wired for a stable number of people (see seeded_romp_center).
    wired = wire_first_layer(center_head, x, ROMP_CENTER_THRESH, g)
    with _calibrating_batchnorm(center_head[1]):  # the blocks now see the wired channels
        center_head[:-1](x)
    wire_blocks(center_head, x, wired)


# --------------------------------------------------------------------------- BEV


def _calibrate_bev(model: nn.Module, images: Tensor, g: torch.Generator) -> None:
    from romp_ros.core.nets.bev_net import DEPTH_BINS, MAP_SIZE
    from romp_ros.core.nets.romp_net import first_conv_weight, images_to_input

    x = images_to_input(images, first_conv_weight(model.backbone))
    batch = x.shape[0]
    _blur_block(model.det_head[0][0], g)
    _smooth_over_depth(model.bv_out_layers[-1].conv2, DEPTH_BINS, g)
    with _calibrating_batchnorm(model.backbone, model.det_head, model.param_head):
        features = model.backbone(x)  # (B, 32, 128, 128)
        det_penultimate = model.det_head[0](features)  # (B, 128, 128, 128)
        param_features = model.param_head(features)  # (B, 128, 128, 128)

    # Front view: a smooth standardised center score (as ROMP's) and small camera offsets.
    det_out = model.det_head[1]
    _fit_output(det_out, _pixels(det_penultimate), torch.zeros(4),
                torch.tensor([1.0, _BEV_OFFSET_LIMIT, _BEV_OFFSET_LIMIT, _BEV_OFFSET_LIMIT]), g)
    _set_smooth_score(det_out, 0, det_penultimate, g)
    maps_fv = det_out(det_penultimate)  # (B, 4, 128, 128)
    center_fv, cam_offsets = maps_fv[:, :1], maps_fv[:, 1:]

    # Bird's-eye view: calibrate, then shape the last BatchNorm: each column's depth
    # profile is a bump around a seeded typical depth, shifted and reshaped by the image
    # (so a front-view peak becomes one 3D peak, mostly), plus tiny depth offsets.
    with _calibrating_batchnorm(model.bv_pre_layers, model.bv_out_layers):
        img_feats = model.bv_pre_layers(features)
        columns = torch.cat([center_fv, cam_offsets, img_feats], 1).reshape(batch, -1, MAP_SIZE)
        model.bv_out_layers(columns)
    last_bn = model.bv_out_layers[-1].bn2
    lo, hi = _BEV_DEPTH_BINS
    typical = float(torch.randint(lo + _BEV_DEPTH_WIDTH, hi - _BEV_DEPTH_WIDTH + 1, (1,),
                                  generator=g))
    bins = torch.arange(DEPTH_BINS, dtype=torch.float32)
    bump = torch.exp(-((bins - typical) / _BEV_DEPTH_WIDTH) ** 2 / 2)
    last_bn.weight[:DEPTH_BINS] = _BEV_DEPTH_JITTER
    inside = (bins >= lo) & (bins < hi)
    # > 0 within ~1.2 widths of `typical`; bins outside the plausible range stay off.
    last_bn.bias[:DEPTH_BINS] = torch.where(inside, 2.0 * bump - 1.0, torch.tensor(-8.0))
    last_bn.weight[DEPTH_BINS:] = _BEV_OFFSET_LIMIT / 3
    last_bn.bias[DEPTH_BINS:] = 0.0
    bv = model.bv_out_layers(columns)  # (B, 128, 128)
    center_bv, depth_offsets = bv[:, :DEPTH_BINS], bv[:, DEPTH_BINS:]
    # The depth scores only enter the product below and ReLU is positively homogeneous:
    # scaling their BN affine scales the 3D map, which puts the detection level at
    # _BEV_LEVEL (scores of a few tenths, like the official model's).
    raw_3d = center_fv * center_bv.unsqueeze(2)  # (B, D, H, W)
    gain = _BEV_LEVEL / max(_detection_level(raw_3d, TARGET_PEOPLE), 1e-6)
    last_bn.weight[:DEPTH_BINS] *= gain
    last_bn.bias[:DEPTH_BINS] *= gain
    raw_3d = raw_3d * gain

    # 3D refiners: calibrated, then made near-identity (small residual branch).
    cam_3d = model.coordmap_3d + cam_offsets.permute(0, 2, 3, 1).unsqueeze(1)
    cam_3d[..., 2] += depth_offsets.unsqueeze(2)
    cam_3d = cam_3d.permute(0, 4, 1, 2, 3)  # (B, 3, D, H, W)
    with _calibrating_batchnorm(model.center_map_refiner, model.cam_map_refiner):
        model.center_map_refiner(raw_3d.unsqueeze(1))
        model.cam_map_refiner(cam_3d)
    for refiner in (model.center_map_refiner[0], model.cam_map_refiner[0]):
        refiner.bn2.weight.fill_(_REFINER_GAIN)
        refiner.bn2.bias.zero_()
    # The residual branch's bias shifts the whole 3D map: put the level reached by
    # TARGET_PEOPLE 3D local maxima per image at the detection threshold.
    center_3d = model.center_map_refiner(raw_3d.unsqueeze(1)).squeeze(1)  # (B, D, H, W)
    level = _detection_level(center_3d, TARGET_PEOPLE)
    model.center_map_refiner[0].bn2.bias.fill_(BEV_CENTER_THRESH - level)
    logger.debug('BEV 3D center level %.3f', level)

    # Parameter regressor: tokens at random cells and depth bins of the calibration images.
    n_tokens = 4096
    b = torch.randint(0, batch, (n_tokens,), generator=g)
    yx = torch.randint(0, MAP_SIZE, (2, n_tokens), generator=g)
    z = torch.randint(lo, hi, (n_tokens,), generator=g)  # depth bins people get
    tokens = param_features[b, :, yx[0], yx[1]] + model.position_embeddings(z)  # (T, 128)
    hidden = model.transformer[:-1](tokens)  # (T, 512)
    means, stds = _pose_betas_targets(11)
    _fit_output(model.transformer[-1], hidden, means, stds, g)
