"""ROMP network, HRNet-32 backbone and the model factory: layout, counts, numerics, oracle."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib

import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.nets.checkpoint import load_checkpoint
from romp_ros.core.nets.coordmaps import coord_maps_2d
from romp_ros.core.nets.factory import (
    BACKBONE_NAMES,
    MODEL_SPECS,
    ParameterCount,
    build_model,
    count_parameters,
    model_spec,
)
from romp_ros.core.nets.hrnet import HRNet32
from romp_ros.core.nets.romp_net import ROMPMaps, ROMPNet

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ROMP_TOTAL = 29_048_274
HRNET_PARAMS = 28_535_552


def _image(seed: int, batch: int = 1) -> torch.Tensor:
    """(B, 512, 512, 3) float 0..255: smooth colour fields with edges, not white noise."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 8, 8, generator=gen) * 255
    img = torch.nn.functional.interpolate(low, size=(512, 512), mode='bilinear',
                                          align_corners=False)
    img[:, :, 100:300, 200:260] = torch.rand(batch, 3, 1, 1, generator=gen) * 255
    img = img + torch.randn(img.shape, generator=gen) * 8
    return img.clamp(0, 255).permute(0, 2, 3, 1).contiguous()


@pytest.fixture(scope='module')
def seeded_romp_state(seeded_checkpoint):
    """The session's seeded ROMP weights (generated once, shared with other test files)."""
    return load_checkpoint(seeded_checkpoint('romp', 'hrnet32'))


@pytest.fixture(scope='module')
def romp_model(seeded_romp_state):
    model = build_model('romp').eval()
    model.load_state_dict(seeded_romp_state)
    return model


def test_parameter_counts_match_the_official_model():
    counts = count_parameters(build_model('romp'))
    assert counts == ParameterCount(backbone=HRNET_PARAMS, heads=ROMP_TOTAL - HRNET_PARAMS,
                                    total=ROMP_TOTAL)
    assert sum(p.numel() for p in HRNet32().parameters()) == HRNET_PARAMS


def test_forward_shapes_and_typed_output(romp_model):
    with torch.no_grad():
        maps = romp_model(_image(0, batch=2))
    assert isinstance(maps, ROMPMaps)
    assert maps.center_maps.shape == (2, 1, 64, 64)
    assert maps.params_maps.shape == (2, 145, 64, 64)
    assert torch.isfinite(maps.params_maps).all()
    with pytest.raises(dataclasses.FrozenInstanceError):
        maps.center_maps = maps.params_maps  # type: ignore[misc]
    # The two images differ, so must the maps (no batch mixing, no constant output).
    assert not torch.allclose(maps.center_maps[0], maps.center_maps[1])


def test_batch_items_are_independent(romp_model):
    images = _image(1, batch=2)
    with torch.no_grad():
        both = romp_model(images)
        second = romp_model(images[1:])
    assert torch.allclose(both.params_maps[1:], second.params_maps, atol=1e-4)


def test_coordmaps_are_a_buffer_outside_the_state_dict(romp_model):
    assert 'coordmaps' not in romp_model.state_dict()
    assert 'coordmaps' in dict(romp_model.named_buffers())
    coords = romp_model.coordmaps
    assert coords.shape == (1, 2, 128, 128)
    # Channel 0 is x (varies along the width), channel 1 is y; both span [-1, 1].
    ramp = torch.linspace(-1, 1, 128)
    assert torch.allclose(coords[0, 0, 5], ramp, atol=1e-6)
    assert torch.allclose(coords[0, 1, :, 7], ramp, atol=1e-6)
    assert coords[0, 0, :, 0].eq(-1).all() and coords[0, 1, -1].eq(1).all()


def test_rejects_channels_first_input(romp_model):
    with pytest.raises(ValueError, match=r'\(B, H, W, 3\)'):
        romp_model(torch.zeros(1, 3, 512, 512))


def test_channels_last_model_gives_the_same_maps(seeded_romp_state):
    model = build_model('romp').eval()
    model.load_state_dict(seeded_romp_state)
    image = _image(2)
    with torch.no_grad():
        plain = model(image)
        model.to(memory_format=torch.channels_last)
        fast = model(image)
    # Different convolution kernels: equal up to float32 rounding (relative to magnitude).
    assert torch.allclose(plain.center_maps, fast.center_maps, rtol=1e-4, atol=1e-4)
    assert torch.allclose(plain.params_maps, fast.params_maps, rtol=1e-4, atol=1e-4)


# -- factory --------------------------------------------------------------------------------------
def test_unknown_names_raise_with_the_valid_choices():
    with pytest.raises(ValueError, match='valid models: romp, bev'):
        build_model('hmr')
    with pytest.raises(ValueError, match='hrnet32, resnet50, efficientnet_v2_s'):
        build_model('romp', 'vit')
    with pytest.raises(ValueError, match="valid backbones for 'bev': hrnet32"):
        build_model('bev', 'resnet50')


def test_model_specs():
    assert model_spec('romp').checkpoint_file == 'ROMP.pkl'
    assert model_spec('romp', 'resnet50').checkpoint_file == 'ROMP_ResNet50_V1.pkl'
    assert model_spec('romp', 'efficientnet_v2_s').checkpoint_file == 'ROMP_EfficientNetV2S.pth'
    bev = model_spec('bev')
    assert (bev.checkpoint_file, bev.params_dim, bev.betas_dim, bev.map_size) == (
        'BEV.pth', 146, 11, 128)
    for backbone in BACKBONE_NAMES:
        spec = MODEL_SPECS[('romp', backbone)]
        assert (spec.params_dim, spec.betas_dim, spec.map_size) == (145, 10, 64)
    with pytest.raises(TypeError):
        MODEL_SPECS[('bev', 'resnet50')] = bev  # read-only mapping


@pytest.mark.parametrize('backbone', ['resnet50', 'efficientnet_v2_s'])
def test_romp_with_other_backbones(backbone):
    module = {'resnet50': 'romp_ros.core.nets.resnet',
              'efficientnet_v2_s': 'romp_ros.core.nets.efficientnet'}[backbone]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f'{module} is not written yet')
    model = build_model('romp', backbone).eval()
    assert isinstance(model, ROMPNet)
    assert model.backbone.out_channels == 64
    # Head input = backbone channels + the 2 CoordConv channels.
    assert model.final_layers[1][0][0].in_channels == 66
    with torch.no_grad():
        maps = model(_image(3))
    assert maps.center_maps.shape == (1, 1, 64, 64)
    assert maps.params_maps.shape == (1, 145, 64, 64)


def test_parameter_table_in_docs_is_current():
    text = (REPO_ROOT / 'docs' / 'models.md').read_text()
    assert f'{ROMP_TOTAL:,}' in text and f'{HRNET_PARAMS:,}' in text
    for backbone in ('resnet50', 'efficientnet_v2_s'):
        total = count_parameters(build_model('romp', backbone)).total
        assert f'{total:,}' in text, f'docs/models.md is stale for {backbone}: re-run ' \
                                     'bench/param_counts.py'


# -- reference (simple-romp) ----------------------------------------------------------------------
@pytest.mark.oracle
def test_state_dict_keys_and_shapes_equal_the_reference():
    reference = reference_module('romp.model').ROMPv1()
    ours = build_model('romp').state_dict()
    theirs = reference.state_dict()
    assert list(ours) == list(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.oracle
def test_coordinate_maps_equal_the_reference():
    assert torch.equal(coord_maps_2d(128), reference_module('romp.model').get_coord_maps(128))


@pytest.mark.oracle
def test_maps_equal_the_reference_with_the_same_seeded_weights(seeded_romp_state):
    reference = reference_module('romp.model').ROMPv1().eval()
    reference.load_state_dict(seeded_romp_state)
    ours = build_model('romp').eval()
    ours.load_state_dict(seeded_romp_state)
    image = _image(4)
    with torch.no_grad():
        ref_center, ref_params = reference(image.clone())
        maps = ours(image)
    # A meaningful comparison: the maps vary over the image.
    assert ref_center.std() > 0.01 and ref_params.std() > 0.01
    assert (maps.center_maps - ref_center).abs().max() < 1e-4
    assert (maps.params_maps - ref_params).abs().max() < 1e-4
