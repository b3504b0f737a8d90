"""Center-map parsing, parameter sampling and unpacking against the reference."""

from __future__ import annotations

import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.postprocess import (
    apply_cam_scale,
    parse_center_map_2d,
    parse_center_map_3d,
    sample_params,
    unpack_params,
)


def _blob_maps(batch: int, shape: tuple[int, ...], people: list[int], seed: int) -> torch.Tensor:
    """Heatmaps like the network's: Gaussian bumps of random height on low noise."""
    gen = torch.Generator().manual_seed(seed)
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing='ij')
    maps = 0.05 * torch.rand(batch, *shape, generator=gen)
    for b in range(batch):
        for _ in range(people[b]):
            centre = [torch.randint(0, s, (1,), generator=gen).item() for s in shape]
            sigma = 1.0 + 2.0 * torch.rand(1, generator=gen).item()
            height = 0.15 + 0.85 * torch.rand(1, generator=gen).item()
            dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
            maps[b] = torch.maximum(maps[b], height * torch.exp(-dist2 / (2 * sigma ** 2)))
    return maps


@pytest.mark.oracle
@pytest.mark.parametrize('thresh', [0.25, 0.1, 0.02])
def test_parse_center_map_2d_matches_reference(thresh):
    post = reference_module('romp.post_parser')
    # Image 0: a crowd, 1: nobody, 2: a few, 3: pure noise (hundreds of maxima -> top-64 cut).
    maps = _blob_maps(4, (64, 64), [30, 0, 5, 0], seed=0)
    gen = torch.Generator().manual_seed(1)
    maps[3] = 0.5 * torch.rand(64, 64, generator=gen)
    maps = maps[:, None]  # (B, 1, H, W)
    ref_b, ref_inds, ref_yx, ref_conf = post.CenterMap(conf_thresh=thresh).parse_centermap(maps)
    ours = parse_center_map_2d(maps, thresh)
    assert torch.equal(ours.batch_ids, ref_b)
    assert torch.equal(ours.flat_inds, ref_inds)
    assert torch.equal(ours.yx, ref_yx.long())
    assert torch.equal(ours.confs, ref_conf)
    # The noise image hits the 64-per-image cap; the empty one (background < 0.05) is empty
    # unless the threshold is below the background.
    assert int((ours.batch_ids == 3).sum()) == 64
    assert int((ours.batch_ids == 1).sum()) == (0 if thresh > 0.05 else 64)
    # Ordered by image, then by descending confidence.
    assert (ours.batch_ids[1:] >= ours.batch_ids[:-1]).all()
    same = ours.batch_ids[1:] == ours.batch_ids[:-1]
    assert (ours.confs[1:][same] <= ours.confs[:-1][same]).all()


def test_parse_center_map_2d_nms_keeps_plateaus_and_drops_shoulders():
    maps = torch.zeros(1, 1, 16, 16)
    maps[0, 0, 4, 4] = 0.9
    maps[0, 0, 4, 6] = 0.8  # within 2 cells of a higher peak: suppressed
    maps[0, 0, 10, 10] = 0.7
    maps[0, 0, 10, 11] = 0.7  # exact tie in one window: both survive (equality mask)
    centers = parse_center_map_2d(maps, thresh=0.1)
    assert centers.yx.tolist() == [[4, 4], [10, 10], [10, 11]] or \
        centers.yx.tolist() == [[4, 4], [10, 11], [10, 10]]
    assert centers.flat_inds[0].item() == 4 * 16 + 4
    assert torch.allclose(centers.confs, torch.tensor([0.9, 0.7, 0.7]))


def test_parse_center_map_2d_max_people_keeps_the_best_prefix():
    maps = _blob_maps(2, (64, 64), [20, 12], seed=2)[:, None]
    full = parse_center_map_2d(maps, 0.1)
    few = parse_center_map_2d(maps, 0.1, max_people=5)
    for b in range(2):
        best = full.flat_inds[full.batch_ids == b][:5]
        assert torch.equal(few.flat_inds[few.batch_ids == b], best)
    with pytest.raises(ValueError):
        parse_center_map_2d(maps, 0.1, max_people=0)
    with pytest.raises(ValueError):
        parse_center_map_2d(maps[:, 0], 0.1)


@pytest.mark.oracle
@pytest.mark.parametrize('thresh', [0.1, 0.03])
def test_parse_center_map_3d_matches_reference(thresh):
    post = reference_module('bev.post_parser')
    maps = _blob_maps(3, (16, 32, 32), [25, 0, 4], seed=3)  # (B, D, H, W)
    ref_b, ref_czyx, ref_conf = post.CenterMap3D(conf_thresh=thresh).parse_3dcentermap(maps)
    ours = parse_center_map_3d(maps, thresh)
    assert torch.equal(ours.batch_ids, ref_b)
    assert torch.equal(ours.czyx, ref_czyx)
    assert torch.equal(ours.confs, ref_conf)
    assert ours.num_people > 5
    # Centers are local maxima in 3D: the value equals the 5x5x5 neighbourhood maximum.
    pooled = torch.nn.functional.max_pool3d(maps[:, None], 5, 1, 2)[:, 0]
    z, y, x = ours.czyx.unbind(1)
    assert torch.equal(pooled[ours.batch_ids, z, y, x], maps[ours.batch_ids, z, y, x])


@pytest.mark.oracle
def test_sample_params_matches_reference_parameter_sampling():
    post = reference_module('romp.post_parser')
    gen = torch.Generator().manual_seed(4)
    params_maps = torch.randn(3, 145, 64, 64, generator=gen)
    maps = _blob_maps(3, (64, 64), [6, 2, 9], seed=5)[:, None]
    centers = parse_center_map_2d(maps, 0.2)
    ours = sample_params(params_maps, centers.batch_ids, centers.flat_inds)
    ref = post.parameter_sampling(params_maps, centers.batch_ids, centers.flat_inds)
    assert ours.shape == (centers.num_people, 145)
    assert torch.equal(ours, ref)
    y, x = centers.yx.unbind(1)
    assert torch.equal(ours[:, 7], params_maps[centers.batch_ids, 7, y, x])


def _network_like_params(num: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    params = 0.3 * torch.randn(num, dim, generator=gen)
    identity_6d = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(22)
    params[:, 3:135] += identity_6d
    params[:, 0] = 0.5 + torch.rand(num, generator=gen)
    return params


@pytest.mark.oracle
def test_unpack_params_matches_reference_for_romp():
    post = reference_module('romp.post_parser')
    params = _network_like_params(20, 145, seed=6)
    ref = post.pack_params_dict(params.clone())
    ours = unpack_params(params)
    assert torch.equal(ours.cam, ref['cam'])
    assert torch.equal(ours.smpl_betas, ref['smpl_betas'])
    assert ours.smpl_thetas.shape == (20, 72)
    assert torch.allclose(ours.smpl_thetas, ref['smpl_thetas'], atol=1e-5)
    assert torch.equal(ours.smpl_thetas[:, 66:], torch.zeros(20, 6))  # hands


@pytest.mark.oracle
def test_unpack_params_matches_reference_for_bev():
    post = reference_module('bev.post_parser')
    params = _network_like_params(7, 146, seed=7)
    ref = post.pack_params_dict(params.clone())
    ours = unpack_params(params)
    assert ours.smpl_betas.shape == (7, 11)
    assert torch.equal(ours.smpl_betas, ref['smpl_betas'])
    assert torch.equal(ours.cam, ref['cam'])
    assert torch.allclose(ours.smpl_thetas, ref['smpl_thetas'], atol=1e-5)


def test_unpack_params_rejects_other_layouts_and_handles_nobody():
    with pytest.raises(ValueError):
        unpack_params(torch.zeros(3, 144))
    with pytest.raises(ValueError):
        unpack_params(torch.zeros(145))
    empty = unpack_params(torch.zeros(0, 145))
    assert empty.smpl_thetas.shape == (0, 72) and empty.num_people == 0


def test_apply_cam_scale_is_elementwise_and_out_of_place():
    gen = torch.Generator().manual_seed(8)
    maps = torch.randn(2, 145, 8, 8, generator=gen)
    before = maps.clone()
    scaled = apply_cam_scale(maps)
    assert torch.equal(maps, before)  # input untouched
    assert torch.allclose(scaled[:, 0], torch.pow(1.1, maps[:, 0]))
    assert torch.equal(scaled[:, 1:], maps[:, 1:])
    # Applying it to the sampled people equals sampling the scaled maps.
    b = torch.tensor([0, 1, 1])
    f = torch.tensor([5, 0, 63])
    assert torch.allclose(apply_cam_scale(sample_params(maps, b, f)),
                          sample_params(scaled, b, f))


@pytest.mark.parametrize('dims', ['2d', '3d'])
def test_padded_layout_holds_the_compact_people_in_fixed_slots(dims):
    """max_people slots per image, best first; the valid ones are exactly the compact rows."""
    if dims == '2d':
        maps = _blob_maps(3, (64, 64), [20, 0, 3], seed=4)[:, None]
        parse = parse_center_map_2d
    else:
        maps = _blob_maps(3, (8, 32, 32), [12, 0, 3], seed=5)
        parse = parse_center_map_3d
    compact = parse(maps, 0.1, max_people=5)
    padded = parse(maps, 0.1, max_people=5, padded=True)
    assert compact.valid is None
    assert padded.batch_ids.tolist() == [b for b in range(3) for _ in range(5)]
    assert padded.valid.shape == (15,) and padded.num_people == compact.num_people
    counts = [int(padded.valid[b * 5:(b + 1) * 5].sum()) for b in range(3)]
    assert counts == torch.bincount(compact.batch_ids, minlength=3).tolist()
    assert counts[0] == 5 and counts[1] == 0 and 0 < counts[2] < 5  # capped, empty, partial
    for name in ('batch_ids', 'confs', 'yx' if dims == '2d' else 'czyx'):
        assert torch.equal(getattr(padded, name)[padded.valid], getattr(compact, name))
    # the empty slots hold the next-best cells, below the threshold
    assert (padded.confs[~padded.valid] <= 0.1).all()
