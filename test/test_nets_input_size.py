"""Networks at input sizes other than 512 (training on a CPU at 256, ...)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from romp_ros.core.config import ConfigError, EstimatorConfig
from romp_ros.core.nets.checkpoint import CheckpointError, load_into
from romp_ros.core.nets.coordmaps import coord_maps_2d
from romp_ros.core.nets.factory import build_model


@pytest.mark.parametrize('backbone', ['hrnet32', 'resnet50', 'efficientnet_v2_s'])
def test_romp_maps_follow_the_input_size(backbone):
    torch.manual_seed(0)
    model = build_model('romp', backbone).eval()
    with torch.no_grad():
        for size in (256, 384):
            maps = model(torch.rand(2, size, size, 3) * 255)
            assert maps.center_maps.shape == (2, 1, size // 8, size // 8)
            assert maps.params_maps.shape == (2, 145, size // 8, size // 8)
            assert torch.isfinite(maps.params_maps).all()


def test_romp_coord_maps_span_minus_one_to_one_at_every_size():
    for height, width in ((32, 32), (48, 64), (128, 128)):
        maps = coord_maps_2d(height, width)
        assert maps.shape == (1, 2, height, width)
        assert maps[0, 0, 0, 0] == -1 and maps[0, 0, 0, -1] == 1  # x along the width
        assert maps[0, 1, 0, 0] == -1 and maps[0, 1, -1, 0] == 1  # y along the height
    # the official 128 x 128 maps are unchanged
    assert torch.equal(coord_maps_2d(128), coord_maps_2d(128, 128))


def test_romp_at_512_uses_the_stored_coord_maps(seeded_checkpoint):
    """Same weights, same 512 input: the generalised forward equals the official layout's."""
    model = build_model('romp', 'resnet50').eval()
    load_into(model, seeded_checkpoint('romp', 'resnet50'))
    images = torch.rand(1, 512, 512, 3) * 255
    with torch.no_grad():
        first = model(images).center_maps
        model.coordmaps = coord_maps_2d(128)  # rebuilt explicitly: identical values
        second = model(images).center_maps
    assert torch.equal(first, second)


def test_bev_is_built_for_its_input_size():
    torch.manual_seed(0)
    model = build_model('bev', 'hrnet32', input_size=256).eval()
    assert (model.map_size, model.depth_bins) == (64, 32)
    with torch.no_grad():
        maps = model.forward_maps(torch.rand(1, 256, 256, 3) * 255)
        assert maps.center_maps_3d.shape == (1, 32, 64, 64)
        assert maps.cam_maps_3d.shape == (1, 32, 64, 64, 3)
        cams = maps.cam_maps_3d[0, 5, 10:12, 20].float()  # (2, 3)
        params = model.regress_params(maps.param_features, cams, torch.zeros(2, dtype=torch.long))
        assert params.shape == (2, 146)
        with pytest.raises(ValueError, match='built for 256x256'):
            model.forward_maps(torch.rand(1, 512, 512, 3) * 255)


def test_official_size_bev_weights_do_not_load_into_a_smaller_bev(seeded_checkpoint):
    model = build_model('bev', 'hrnet32', input_size=256)
    with pytest.raises(CheckpointError, match='shape mismatches'):
        load_into(model, seeded_checkpoint('bev', 'hrnet32'))


@pytest.mark.parametrize('size', [100, 96, 2048, 500])
def test_invalid_input_sizes_are_refused(size):
    with pytest.raises(ValueError, match='multiple of 32'):
        build_model('romp', 'resnet50', input_size=size)
    with pytest.raises(ConfigError, match='multiple of 32'):
        EstimatorConfig(input_size=size)


def test_estimator_runs_at_256(models_dir, seeded_checkpoint):
    """Keypoints and translations stay consistent at a reduced input size."""
    from skimage import data

    from romp_ros.core.estimator import Estimator
    astronaut = data.astronaut()
    config = EstimatorConfig(model='romp', backbone='hrnet32', models_dir=str(models_dir),
                             checkpoint=str(seeded_checkpoint('romp', 'hrnet32')), device='cpu',
                             input_size=256)
    result = Estimator(config).predict([astronaut], intrinsics=[(500.0, 500.0, 256.0, 256.0)])[0]
    assert result.num_people > 0
    k = np.array([[500.0, 0, 256.0], [0, 500.0, 256.0], [0, 0, 1]])
    cam = result.joints_camera()[:, :24]  # (N, 24, 3)
    uv = cam @ k.T
    uv = uv[..., :2] / uv[..., 2:]
    err = np.linalg.norm(uv - result.pj2d_org[:, :24], axis=-1)  # (N, 24) px
    assert np.median(err) < 5.0, 'the translation solve must explain the keypoints at 256 too'
