"""BEV duplicate suppression and outlier removal: same kept sets as the reference."""

from __future__ import annotations

import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.postprocess import (
    bev_keep_mask,
    bev_keep_slots,
    duplicate_suppression_mask,
    outlier_mask,
)


def _reference_kept(func, outputs: dict, **kwargs) -> set[int]:
    """Run a reference filter on an outputs dict that carries person ids; return kept ids."""
    num = outputs['cam'].shape[0]
    outputs = {key: value.clone() for key, value in outputs.items()}
    outputs['params_pred'] = torch.zeros(num, 1)  # the reference counts people with this key
    outputs['person_id'] = torch.arange(num)
    return set(func(outputs, **kwargs)['person_id'].tolist())


def _crowd(num: int, image_hw: tuple[int, int], seed: int, dup_fraction: float = 0.4):
    """Projected 2D poses (pixels), scales and confidences with exact and near duplicates."""
    gen = torch.Generator().manual_seed(seed)
    height, width = image_hw
    joints = 71
    base = torch.randn(joints, 2, generator=gen) * torch.tensor([0.15, 0.4])
    scale = 0.15 + 0.6 * torch.rand(num, generator=gen)
    centre = torch.rand(num, 2, generator=gen) * torch.tensor([width, height])
    side = max(height, width)
    pj2d = centre[:, None] + base[None] * scale[:, None, None] * side / 2
    pj2d = pj2d + 3.0 * torch.randn(num, joints, 2, generator=gen)
    confs = 0.1 + 0.9 * torch.rand(num, generator=gen)
    # Duplicates of earlier people: exact copies or slightly moved, with other scales.
    for i in range(1, num):
        if torch.rand(1, generator=gen).item() < dup_fraction:
            src = int(torch.randint(0, i, (1,), generator=gen))
            jitter = torch.rand(1, generator=gen).item() < 0.5
            pj2d[i] = pj2d[src] + (2.0 * torch.randn(joints, 2, generator=gen) if jitter else 0)
            scale[i] = scale[src] * (0.7 + 0.6 * torch.rand(1, generator=gen).item())
    cam = torch.stack((scale, torch.zeros(num), torch.zeros(num)), dim=1)
    return pj2d, cam, confs


@pytest.mark.oracle
@pytest.mark.parametrize('image_hw', [(480, 640), (1080, 1920), (1280, 720)])
@pytest.mark.parametrize('conf_based', [False, True])
def test_duplicate_suppression_matches_reference(image_hw, conf_based):
    post = reference_module('bev.post_parser')
    removed_any = False
    for seed in range(12):
        pj2d, cam, confs = _crowd(9, image_hw, seed)
        outputs = {'pj2d': pj2d, 'cam': cam, 'center_confs': confs}
        expected = _reference_kept(post.suppressing_redundant_prediction_via_projection,
                                   outputs, img_shape=(*image_hw, 3), thresh=20,
                                   conf_based=conf_based)
        keep = duplicate_suppression_mask(pj2d, cam[:, 0], image_hw, thresh=20,
                                          center_confs=confs, conf_based=conf_based)
        assert keep.dtype == torch.bool and keep.shape == (9,)
        assert set(torch.nonzero(keep).flatten().tolist()) == expected, f'seed {seed}'
        removed_any |= not bool(keep.all())
    assert removed_any  # the inputs exercise removals


def test_duplicate_suppression_removes_the_smaller_or_less_confident_copy():
    pose = torch.randn(24, 2) * 40 + 300
    far_pose = pose + 400.0
    pj2d = torch.stack((pose, pose.clone(), far_pose))
    scale = torch.tensor([0.5, 0.3, 0.4])
    confs = torch.tensor([0.2, 0.9, 0.5])
    keep = duplicate_suppression_mask(pj2d, scale, (480, 640))
    assert keep.tolist() == [True, False, True]  # person 1 is the smaller copy
    keep = duplicate_suppression_mask(pj2d, scale, (480, 640), center_confs=confs,
                                      conf_based=True)
    assert keep.tolist() == [False, True, True]  # person 0 is the less confident copy
    with pytest.raises(ValueError):
        duplicate_suppression_mask(pj2d, scale, (480, 640), conf_based=True)
    assert duplicate_suppression_mask(pj2d[:1], scale[:1], (480, 640)).tolist() == [True]
    assert duplicate_suppression_mask(pj2d[:0], scale[:0], (480, 640)).shape == (0,)


def _scene(num: int, seed: int, outliers: int):
    gen = torch.Generator().manual_seed(seed)
    trans = torch.randn(num, 3, generator=gen) * torch.tensor([1.5, 0.3, 1.0])
    trans[:, 2] += 6.0
    scale = 0.2 + 0.5 * torch.rand(num, generator=gen)
    for k in range(outliers):
        trans[k] = torch.tensor([0.0, 0.0, 40.0 + 20 * k]) + torch.randn(3, generator=gen)
        scale[k] = 0.05 + 0.3 * torch.rand(1, generator=gen).item()
    return trans, torch.stack((scale, torch.zeros(num), torch.zeros(num)), dim=1)


@pytest.mark.oracle
@pytest.mark.parametrize('num', [2, 3, 4, 8])
@pytest.mark.parametrize('relative_scale_thresh,scale_thresh', [(1.6, 0.25), (2.0, 0.5)])
def test_outlier_removal_matches_reference(num, relative_scale_thresh, scale_thresh):
    post = reference_module('bev.post_parser')
    removed_any = False
    for seed in range(15):
        trans, cam = _scene(num, seed, outliers=seed % 3)
        expected = _reference_kept(post.remove_outlier, {'cam_trans': trans, 'cam': cam},
                                   relative_scale_thresh=relative_scale_thresh,
                                   scale_thresh=scale_thresh)
        keep = outlier_mask(trans, cam[:, 0], relative_scale_thresh, scale_thresh)
        assert set(torch.nonzero(keep).flatten().tolist()) == expected, f'seed {seed}'
        removed_any |= not bool(keep.all())
    assert removed_any == (num >= 3)


def test_outlier_removal_needs_a_small_far_isolated_person():
    trans = torch.tensor([[0.0, 0, 5], [1.0, 0, 5], [-1.0, 0, 6], [0.5, 0, 50]])
    small = torch.tensor([0.4, 0.4, 0.4, 0.1])
    assert outlier_mask(trans, small).tolist() == [True, True, True, False]
    big = torch.tensor([0.4, 0.4, 0.4, 0.3])  # isolated but not small: kept
    assert outlier_mask(trans, big).all()
    assert outlier_mask(trans[:2], small[:2]).all()  # fewer than 3 people: never


@pytest.mark.oracle
def test_bev_keep_mask_equals_the_reference_filters_applied_image_by_image():
    post = reference_module('bev.post_parser')
    sizes = [(480, 640), (1080, 1920), (720, 1280), (1280, 720), (480, 640)]
    counts = [9, 1, 0, 6, 4]
    parts = {'pj2d': [], 'cam': [], 'confs': [], 'trans': [], 'ids': []}
    expected = set()
    offset = 0
    for image, (size, num) in enumerate(zip(sizes, counts, strict=True)):
        pj2d, cam, confs = _crowd(num, size, seed=20 + image)
        trans, _ = _scene(num, seed=30 + image, outliers=0)
        if num >= 3:
            # The last person: far away, small, elsewhere on screen (not a duplicate).
            trans[-1] = torch.tensor([1.0, -1.0, 45.0])
            cam[-1, 0] = 0.1
            pj2d[-1] = pj2d[-1] - pj2d[-1].mean(0) + torch.tensor([-500.0, -500.0])
        outputs = {'pj2d': pj2d, 'cam': cam, 'center_confs': confs, 'cam_trans': trans,
                   'params_pred': torch.zeros(num, 1), 'person_id': torch.arange(num) + offset}
        if num:
            if num > 1:
                outputs = post.suppressing_redundant_prediction_via_projection(
                    outputs, (*size, 3), thresh=20)
            outputs = post.remove_outlier(outputs, relative_scale_thresh=1.6)
            expected |= set(outputs['person_id'].tolist())
        for key, value in zip(('pj2d', 'cam', 'confs', 'trans'), (pj2d, cam, confs, trans),
                              strict=True):
            parts[key].append(value)
        parts['ids'].append(torch.full((num,), image))
        offset += num
    batch = {key: torch.cat(value) for key, value in parts.items()}
    keep = bev_keep_mask(batch['pj2d'], batch['cam'], batch['trans'], batch['confs'],
                         batch['ids'], sizes, nms_thresh=20, relative_scale_thresh=1.6)
    assert set(torch.nonzero(keep).flatten().tolist()) == expected
    assert 0 < int(keep.sum()) < offset
    # the padded layout: the same people in 10 slots per image, the empty slots filled with
    # garbage (NaN, a copy of someone) that must neither remove nor count for anyone
    slots = 10
    shapes = {'pj2d': (slots, *batch['pj2d'].shape[1:]), 'cam': (slots, 3),
              'trans': (slots, 3), 'confs': (slots,)}
    padded = {key: torch.full((len(sizes), *shape), float('nan'))
              for key, shape in shapes.items()}
    valid = torch.zeros(len(sizes), slots, dtype=torch.bool)
    rows = []
    for image, num in enumerate(counts):
        start = sum(counts[:image])
        for key in shapes:
            padded[key][image, :num] = batch[key][start:start + num]
            if num:  # an exact duplicate of the first person in an empty slot
                padded[key][image, slots - 1] = batch[key][start]
        valid[image, :num] = True
        rows += [image * slots + slot for slot in range(num)]
    kept = bev_keep_slots(padded['pj2d'], padded['cam'], padded['trans'], padded['confs'],
                          valid, torch.tensor([float(max(size)) for size in sizes]),
                          nms_thresh=20, relative_scale_thresh=1.6)
    assert kept.shape == (len(sizes), slots) and not kept[~valid].any()
    assert torch.equal(kept.flatten()[rows], keep)
