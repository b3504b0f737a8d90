"""Inference-only rewrites of a loaded network: BatchNorm folding and channels-last layout.

Both leave the outputs unchanged up to float rounding (~1e-5 of the maps' scale on every
model, EfficientNetV2-S included; test/test_inference_opt.py) and make the CPU forward pass
about 1.4x faster here (docs/performance.md): folding removes every BatchNorm pass, and
oneDNN's convolutions prefer NHWC. Applied after the checkpoint is loaded, so state-dict
names stay the official ones.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

LOG = logging.getLogger(__name__)

# Sub-modules traced and folded per model class; everything else is left as is.
FOLDABLE = {
    'ROMPNet': ('backbone', 'final_layers.1', 'final_layers.2', 'final_layers.3'),
    'BEVNet': ('backbone', 'det_head', 'param_head', 'bv_pre_layers'),
}

def optimize_for_inference(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Fold BatchNorm into the preceding convolutions and switch to channels-last.

    The model must be in eval mode with its final weights loaded; it is modified in place
    and returned. A sub-module that torch.fx cannot trace is kept unfused (logged).
    """
    if model.training:
        raise ValueError('optimize_for_inference needs model.eval(): BatchNorm must be frozen')
    for path in FOLDABLE.get(type(model).__name__, ()):
        parent_path, _, name = path.rpartition('.')
        parent = model.get_submodule(parent_path) if parent_path else model
        child = parent[int(name)] if name.isdigit() else getattr(parent, name)
        fused = _fold(child, path)
        if channels_last:  # only 2D stages: BEV's 1D/3D layers have no NHWC layout
            fused = fused.to(memory_format=torch.channels_last)
        if name.isdigit():
            parent[int(name)] = fused
        else:
            setattr(parent, name, fused)
    return model


def _fold(module: nn.Module, path: str) -> nn.Module:
    """Fold ``module`` whole, or, when torch.fx cannot trace it, each child that it can."""
    try:
        return fuse(module)
    except Exception as err:  # noqa: BLE001 - tracing failures vary by module and torch
        LOG.debug('tracing %s failed (%s); folding its children', path, err)
    for child_name, child in list(module.named_children()):
        setattr(module, child_name, _fold(child, f'{path}.{child_name}'))
    return module
