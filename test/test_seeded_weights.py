"""Seeded weights: deterministic, and outputs that look like a trained model's on images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from romp_ros.core.nets.checkpoint import load_checkpoint
from romp_ros.core.nets.factory import build_model
from romp_ros.testing.seeded_weights import calibration_images, seeded_state_dict

# ROMP: 1.1 ** raw scale; translations; body joints' rotation angle; betas.
SCALE_RANGE = (0.3, 2.0)
BETAS_LIMIT = 2.0
MAX_BODY_ANGLE = 1.0  # rad, for (almost) every body joint
ROMP_THRESH, BEV_THRESH = 0.25, 0.1
PEOPLE_RANGE = (3, 15)  # ROMP: ~8 (the wired layout), a few more or fewer


def scene(seed: int) -> torch.Tensor:
    """A (512, 512, 3) float 0..255 test scene, independent of the calibration generator.

    A vertical lighting gradient, smooth random colour blobs, a few textured upright
    ellipses (people-sized) and a floor with stripes, plus noise.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    ys = torch.linspace(0, 1, 512).view(512, 1, 1)
    xs = torch.linspace(0, 1, 512).view(1, 512, 1)
    top, bottom = torch.rand(2, 1, 1, 3, generator=gen) * 200 + 30
    img = top * (1 - ys) + bottom * ys + 0 * xs  # (512, 512, 3)
    for _ in range(10):  # soft blobs
        cy, cx, radius = torch.rand(3, generator=gen).tolist()
        weight = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * (0.03 + 0.15 * radius) ** 2))
        img = img * (1 - weight) + torch.rand(1, 1, 3, generator=gen) * 255 * weight
    img = torch.where((ys > 0.8) & (torch.sin(xs * 90) > 0), img * 0.7, img)  # striped floor
    for _ in range(int(torch.randint(3, 7, (1,), generator=gen))):  # people-like ellipses
        cy, cx = (torch.rand(2, generator=gen) * 0.6 + 0.2).tolist()
        ry, rx = 0.12 + 0.1 * float(torch.rand(1, generator=gen)), 0.05
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 < 1
        colour = torch.rand(1, 1, 3, generator=gen) * 255
        cloth = colour * (1 + 0.15 * torch.sin(ys * 300 + xs * 40))  # fabric texture
        img = torch.where(inside, cloth, img)
    img = img + torch.randn(img.shape, generator=gen) * 5
    return img.clamp(0, 255)


def local_maxima(maps: torch.Tensor, thresh: float) -> torch.Tensor:
    """(K, dims) indices of 5x5 (or 5x5x5 for (D, H, W) input) local maxima above thresh."""
    pool = F.max_pool3d if maps.dim() == 3 else F.max_pool2d
    pooled = pool(maps[None, None], 5, 1, 2)[0, 0]
    return ((pooled == maps) & (maps > thresh)).nonzero()


def rotation_angles(rot6d: torch.Tensor) -> torch.Tensor:
    """Angles (rad) of (..., 6) rotations (columns interleaved as in ROMP's 3x2 layout)."""
    pairs = rot6d.reshape(-1, 3, 2)
    b1 = F.normalize(pairs[..., 0], dim=-1)
    b2 = F.normalize(pairs[..., 1] - (b1 * pairs[..., 1]).sum(-1, keepdim=True) * b1, dim=-1)
    matrix = torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)
    cos = (matrix.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.arccos(cos.clamp(-1, 1)).reshape(rot6d.shape[:-1])


@pytest.fixture(scope='module')
def images() -> torch.Tensor:
    return torch.stack([scene(i) for i in range(3)])


@pytest.fixture(scope='module')
def romp_state(seeded_checkpoint) -> dict:
    """Seed 0, as generated (and cached) for the whole session."""
    return load_checkpoint(seeded_checkpoint('romp', 'hrnet32'))


@pytest.fixture(scope='module')
def romp_maps(romp_state, images):
    model = build_model('romp').eval()
    model.load_state_dict(romp_state)
    with torch.no_grad():
        return model(images)


@pytest.fixture(scope='module')
def bev_model(seeded_checkpoint):
    model = build_model('bev').eval()
    model.load_state_dict(load_checkpoint(seeded_checkpoint('bev', 'hrnet32')))
    return model


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(romp_state):
    rng_before = torch.get_rng_state()
    again = seeded_state_dict('romp', 'hrnet32', seed=0)
    other = seeded_state_dict('romp', 'hrnet32', seed=1)
    assert torch.equal(torch.get_rng_state(), rng_before), 'the global RNG must be untouched'
    assert again.keys() == romp_state.keys()
    assert all(torch.equal(again[k], romp_state[k]) for k in romp_state)
    differing = [k for k in romp_state
                 if romp_state[k].is_floating_point() and not torch.equal(other[k], romp_state[k])]
    floating = [k for k in romp_state if romp_state[k].is_floating_point()]
    assert len(differing) > 0.95 * len(floating)


def test_weights_are_finite_and_batchnorm_is_calibrated(romp_state):
    assert all(torch.isfinite(v).all() for v in romp_state.values() if v.is_floating_point())
    # Calibrated statistics: not the constructor's (0, 1), and positive variances.
    running_vars = [v for k, v in romp_state.items() if k.endswith('running_var')]
    assert all((v > 0).all() for v in running_vars)
    assert sum(not torch.allclose(v, torch.ones_like(v)) for v in running_vars) \
        > 0.9 * len(running_vars)


def test_calibration_images_are_deterministic_photo_like():
    first = calibration_images(seed=3, count=2)
    assert first.shape == (2, 512, 512, 3) and first.dtype == torch.float32
    assert torch.equal(first, calibration_images(seed=3, count=2))
    assert not torch.equal(first, calibration_images(seed=4, count=2))
    assert 0 <= float(first.min()) and float(first.max()) <= 255
    assert float(first.std()) > 20  # contrast, not a flat image


def test_romp_detects_several_people_at_image_dependent_places(romp_maps):
    found = [local_maxima(romp_maps.center_maps[i, 0], ROMP_THRESH) for i in range(3)]
    for people in found:
        assert PEOPLE_RANGE[0] <= len(people) <= PEOPLE_RANGE[1], [len(p) for p in found]
    places = [{tuple(p) for p in people.tolist()} for people in found]
    assert places[0] != places[1] and places[1] != places[2]
    assert not torch.allclose(romp_maps.center_maps[0], romp_maps.center_maps[1], atol=0.05)


def test_romp_finds_nobody_in_blank_images(romp_state):
    model = build_model('romp').eval()
    model.load_state_dict(romp_state)
    blank = torch.stack([torch.zeros(512, 512, 3), torch.full((512, 512, 3), 140.0)])
    with torch.no_grad():
        centers = model(blank).center_maps[:, 0]  # (2, 64, 64)
    assert [len(local_maxima(c, ROMP_THRESH)) for c in centers] == [0, 0]


@pytest.mark.slow
@pytest.mark.parametrize('backbone', ['resnet50', 'efficientnet_v2_s'])
def test_other_romp_backbones_find_people_in_scenes_and_hardly_any_in_blank_frames(
        backbone, seeded_checkpoint, images):
    model = build_model('romp', backbone).eval()
    model.load_state_dict(load_checkpoint(seeded_checkpoint('romp', backbone)))
    with torch.no_grad():
        centers = model(torch.cat([images, torch.zeros(1, 512, 512, 3)])).center_maps[:, 0]
    counts = [len(local_maxima(c, ROMP_THRESH)) for c in centers]
    assert all(PEOPLE_RANGE[0] <= n <= PEOPLE_RANGE[1] for n in counts[:3]), counts
    # ResNet-50's deep low-resolution stages leave some texture near a blank frame's borders
    assert counts[3] <= 2, counts


def test_romp_parameters_at_detections_are_plausible(romp_maps):
    people = []
    for i in range(3):
        yx = local_maxima(romp_maps.center_maps[i, 0], ROMP_THRESH)
        people.append(romp_maps.params_maps[i, :, yx[:, 0], yx[:, 1]].T)  # (N, 145)
    params = torch.cat(people)
    scale = 1.1 ** params[:, 0]
    assert SCALE_RANGE[0] <= float(scale.min()) and float(scale.max()) <= SCALE_RANGE[1]
    assert params[:, 1:3].abs().max() <= 1.0
    angles = rotation_angles(params[:, 3:135].reshape(-1, 22, 6))  # (N, 22)
    body = angles[:, 1:]
    assert (body < MAX_BODY_ANGLE).float().mean() > 0.98
    assert body.median() > 0.02, 'poses must vary, not be the exact rest pose'
    # The root is near upright facing the camera: 180 degrees about x.
    assert (angles[:, 0] - math.pi).abs().max() < 1.0
    assert params[:, 135:].abs().max() <= BETAS_LIMIT
    # Parameters depend on where and what: two people never share all parameters.
    assert torch.pdist(params[:, 3:]).min() > 1e-3


def test_bev_detects_several_3d_centers_with_plausible_parameters(bev_model, images):
    params, counts = [], []
    with torch.no_grad():
        maps = bev_model.forward_maps(images[:2])
        for i in range(2):
            czyx = local_maxima(maps.center_maps_3d[i], BEV_THRESH)
            counts.append(len(czyx))
            cams = maps.cam_maps_3d[i, czyx[:, 0], czyx[:, 1], czyx[:, 2]]  # (N, 3)
            ids = torch.full((len(czyx),), i, dtype=torch.long)
            params.append(bev_model.regress_params(maps.param_features, cams, ids))
    # BEV's heads have no CoordConv input, so its seeded center maps follow the image alone
    # (see seeded.py): the count varies more than ROMP's; the bound rejects noise maps.
    assert all(3 <= n <= 30 for n in counts), counts
    params = torch.cat(params)
    # Camera: absolute scale of people roughly 0.9 - 6 m away, position inside the image.
    assert 0.3 <= float(params[:, 0].min()) and float(params[:, 0].max()) <= 2.0
    assert params[:, 1:3].abs().max() <= 1.05
    angles = rotation_angles(params[:, 3:135].reshape(-1, 22, 6))
    assert (angles[:, 1:] < MAX_BODY_ANGLE).float().mean() > 0.98
    assert params[:, 135:145].abs().max() <= BETAS_LIMIT
    assert params[:, 145].max() < 0.8, 'age offsets stay adult (no SMIL infants)'
