"""BEV network: layout, counts, anchors, the split forward, and equivalence with simple-romp."""

from __future__ import annotations

import dataclasses

import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.nets.bev_net import BEVMaps, BEVNet, cams_to_czyx
from romp_ros.core.nets.checkpoint import load_checkpoint
from romp_ros.core.nets.coordmaps import cam3d_anchors, coord_maps_3d
from romp_ros.core.nets.factory import build_model, count_parameters

BEV_TOTAL = 35_878_223


def _image(seed: int, batch: int = 1) -> torch.Tensor:
    """(B, 512, 512, 3) float 0..255: smooth colour fields, a few boxes, mild noise."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 6, 6, generator=gen) * 255
    img = torch.nn.functional.interpolate(low, size=(512, 512), mode='bicubic',
                                          align_corners=False)
    for _ in range(4):
        y, x = torch.randint(0, 400, (2,), generator=gen).tolist()
        img[:, :, y:y + 110, x:x + 50] = torch.rand(batch, 3, 1, 1, generator=gen) * 255
    img = img + torch.randn(img.shape, generator=gen) * 6
    return img.clamp(0, 255).permute(0, 2, 3, 1).contiguous()


@pytest.fixture(scope='module')
def seeded_bev_state(seeded_checkpoint):
    """The session's seeded BEV weights (generated once, shared with other test files)."""
    return load_checkpoint(seeded_checkpoint('bev', 'hrnet32'))


@pytest.fixture(scope='module')
def bev_model(seeded_bev_state):
    model = build_model('bev').eval()
    model.load_state_dict(seeded_bev_state)
    return model


def test_parameter_count_matches_the_official_model():
    model = build_model('bev')
    assert isinstance(model, BEVNet)
    assert count_parameters(model).total == BEV_TOTAL


def test_coordmap_is_persistent_and_anchors_are_not(bev_model):
    state = bev_model.state_dict()
    assert state['coordmap_3d'].shape == (1, 64, 128, 128, 3)
    assert 'cam3d_anchors' not in state


def test_anchors_stay_float32_in_a_half_precision_model():
    model = build_model('bev').half()
    assert model.coordmap_3d.dtype == torch.float16
    assert model.cam3d_anchors.dtype == torch.float32
    assert torch.equal(model.cam3d_anchors, cam3d_anchors())


def test_anchors_descend_from_near_to_far():
    anchors = cam3d_anchors(60.0, 128)
    assert anchors.shape == (64,)
    assert (anchors[1:] < anchors[:-1]).all()
    # Segment ends are the scales of people at 1, 10, 20 and 100 m with a 60 degree FOV.
    focal = 1 / torch.tan(torch.deg2rad(torch.tensor(30.0)))
    for index, depth in ((3, 1.0), (53, 10.0), (59, 20.0), (63, 100.0)):
        assert anchors[index] == pytest.approx(float(focal) / depth, rel=1e-5)


def test_forward_maps_shapes(bev_model):
    with torch.no_grad():
        maps = bev_model.forward_maps(_image(0, batch=2))
    assert isinstance(maps, BEVMaps)
    assert maps.center_maps_3d.shape == (2, 64, 128, 128)
    assert maps.cam_maps_3d.shape == (2, 64, 128, 128, 3)
    assert maps.center_maps_fv.shape == (2, 1, 128, 128)
    assert maps.param_features.shape == (2, 128, 128, 128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        maps.center_maps_fv = None  # type: ignore[misc]
    # The y / x components of the camera maps follow the cell (anchor grid + small offsets).
    assert (maps.cam_maps_3d[0, 30, 10, :, 2].diff() > 0).float().mean() > 0.75
    assert (maps.cam_maps_3d[0, 30, :, 10, 1].diff() > 0).float().mean() > 0.75


def test_regress_params_handles_people_in_several_images_and_none(bev_model):
    with torch.no_grad():
        maps = bev_model.forward_maps(_image(1, batch=2))
        cams = torch.tensor([[0.9, -0.2, 0.1], [0.5, 0.4, -0.6], [1.2, 0.0, 0.0]])
        params = bev_model.regress_params(maps.param_features, cams, torch.tensor([0, 1, 1]))
        none = bev_model.regress_params(maps.param_features, cams[:0],
                                        torch.zeros(0, dtype=torch.long))
    assert params.shape == (3, 146)
    assert torch.equal(params[:, :3], cams)  # the camera is passed through first
    assert none.shape == (0, 146)
    # The same camera in another image reads other features.
    with torch.no_grad():
        other = bev_model.regress_params(maps.param_features, cams[:1], torch.tensor([1]))
    assert not torch.allclose(other[0, 3:], params[0, 3:])


def test_cams_to_czyx_picks_the_nearest_anchor_and_clamps():
    anchors = cam3d_anchors()
    cams = torch.stack([
        torch.tensor([float(anchors[20]), 0.0, 0.0]),  # exactly bin 20, image centre
        torch.tensor([100.0, -1.0, 1.0]),  # nearer than bin 0 -> clamped to 1; borders
        torch.tensor([float(anchors[40]) + 1e-4, -0.5, 0.25]),
    ])
    czyx = cams_to_czyx(cams, anchors)
    assert czyx.tolist() == [[20, 64, 64], [1, 1, 127], [40, 32, 80]]


def test_rejects_channels_first_input(bev_model):
    with pytest.raises(ValueError, match=r'\(B, H, W, 3\)'):
        bev_model.forward_maps(torch.zeros(1, 3, 512, 512))


# -- reference (simple-romp) ----------------------------------------------------------------------
@pytest.mark.oracle
def test_state_dict_keys_and_shapes_equal_the_reference():
    reference = reference_module('bev.model').BEVv1()
    ours = build_model('bev').state_dict()
    theirs = reference.state_dict()
    assert list(ours) == list(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in theirs.items()}
    assert sum(p.numel() for p in reference.parameters()) == BEV_TOTAL


@pytest.mark.oracle
def test_anchors_and_coordinate_grid_equal_the_reference():
    ref = reference_module('bev.model')
    ref_anchors = torch.from_numpy(ref.get_cam3dmap_anchor(60, 128)).float()
    assert torch.equal(cam3d_anchors(60.0, 128), ref_anchors)
    assert torch.equal(coord_maps_3d(ref_anchors, 128),
                       ref.get_3Dcoord_maps_halfz(128, z_base=ref_anchors))


@pytest.mark.oracle
def test_cams_to_czyx_equals_the_reference():
    ref = reference_module('bev.model')
    anchors = cam3d_anchors()
    gen = torch.Generator().manual_seed(0)
    cams = torch.cat([torch.rand(200, 1, generator=gen) * 9 - 0.5,
                      torch.rand(200, 2, generator=gen) * 2.4 - 1.2], dim=1)
    expected = ref.denormalize_center(
        ref.convert_cam_params_to_centermap_coords(cams.clone(), anchors), size=128)
    assert torch.equal(cams_to_czyx(cams, anchors), expected)


@pytest.mark.oracle
def test_maps_and_params_equal_the_reference_with_the_same_seeded_weights(
        seeded_bev_state, bev_model):
    reference = reference_module('bev.model').BEVv1(center_thresh=0.1).eval()
    reference.load_state_dict(seeded_bev_state)
    images = _image(2, batch=2)
    with torch.no_grad():
        features = reference.backbone(images.clone())
        ref_center_3d, ref_cam_3d, ref_center_fv = reference.coarse2fine_localization(features)
        maps = bev_model.forward_maps(images)
    assert (maps.center_maps_3d - ref_center_3d).abs().max() < 1e-4
    assert (maps.cam_maps_3d - ref_cam_3d.permute(0, 2, 3, 4, 1)).abs().max() < 1e-4
    assert (maps.center_maps_fv - ref_center_fv).abs().max() < 1e-4

    # People found by the reference's own 3D parser, regressed by both implementations.
    batch_ids, czyxs, _ = reference.centermap_parser.parse_3dcentermap(ref_center_3d)
    assert len(batch_ids) >= 2, 'the seeded weights should detect several people'
    ref_cams = ref_cam_3d[batch_ids, :, czyxs[:, 0], czyxs[:, 1], czyxs[:, 2]]
    with torch.no_grad():
        ref_params, ref_cells = reference.mesh_parameter_regression(
            reference.param_head(features), ref_cams, batch_ids)
        cams = maps.cam_maps_3d[batch_ids, czyxs[:, 0], czyxs[:, 1], czyxs[:, 2]]
        params = bev_model.regress_params(maps.param_features, cams, batch_ids)
    assert torch.equal(cams_to_czyx(cams, cam3d_anchors()), ref_cells)
    assert params.shape == ref_params.shape == (len(batch_ids), 146)
    assert (params - ref_params).abs().max() < 1e-4
