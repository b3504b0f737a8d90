"""BatchNorm folding + channels-last: same maps as the plain network, every model."""

from __future__ import annotations

import copy

import pytest
import torch

from romp_ros.core.nets.checkpoint import load_into
from romp_ros.core.nets.factory import build_model
from romp_ros.core.nets.inference_opt import optimize_for_inference

pytestmark = pytest.mark.slow


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 512, 512, 3, generator=g) * 255


@pytest.mark.parametrize('name, backbone', [('romp', 'hrnet32'), ('romp', 'resnet50'),
                                            ('romp', 'efficientnet_v2_s'), ('bev', 'hrnet32')])
def test_optimized_network_gives_the_same_maps(name, backbone, seeded_checkpoint):
    model = build_model(name, backbone)
    load_into(model, seeded_checkpoint(name, backbone))
    model.eval()
    fast = optimize_for_inference(copy.deepcopy(model))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert left < n_bn / 4
    x = _images()
    with torch.inference_mode():
        if name == 'romp':
            a, b = model(x), fast(x)
            pairs = [(a.center_maps, b.center_maps), (a.params_maps, b.params_maps)]
        else:
            a, b = model.forward_maps(x), fast.forward_maps(x)
            pairs = [(a.center_maps_3d, b.center_maps_3d), (a.cam_maps_3d, b.cam_maps_3d),
                     (a.param_features, b.param_features)]
    # Folding changes float rounding only: ~1e-5 of the maps' scale here. A wrong fold gives
    # errors of the order of the maps themselves. The bound leaves room for the seeded
    # EfficientNetV2-S center head, whose blank veto multiplies a small difference of large
    # features by ~1e3 (1.5e-4 measured).
    for ref, got in pairs:
        scale = max(1.0, float(ref.abs().max()))
        assert float((ref - got).abs().max()) < 3e-4 * scale


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match='eval'):
        optimize_for_inference(build_model('romp', 'resnet50').train())
