"""Loss terms: minimal at the target, larger away from it, masks, weights."""

from __future__ import annotations

import math

import pytest
import torch

from romp_ros.core.body.joint_names import joint_index
from romp_ros.core.geometry.rotation import axis_angle_to_matrix
from romp_ros.train import losses
from romp_ros.train.losses import LossWeights, LossWeightsError

GEN = torch.Generator().manual_seed(0)


def _rand(*shape, scale=1.0):
    return torch.randn(*shape, generator=GEN) * scale


def _rotation(angle: float, axis: int = 1) -> torch.Tensor:
    vec = torch.zeros(3)
    vec[axis] = angle
    return axis_angle_to_matrix(vec)


# -- weights ----------------------------------------------------------------------------------
def test_weights_defaults_and_per_model_values():
    romp = LossWeights()
    assert (romp.center, romp.keypoints_2d, romp.pose, romp.shape) == (160.0, 400.0, 80.0, 6.0)
    bev = LossWeights.for_model('bev')
    assert (bev.center, bev.center_3d, bev.shape, bev.relative_depth) == (100.0, 1000.0, 60.0,
                                                                           400.0)
    assert LossWeights.for_model('romp', pose=3.0).pose == 3.0
    assert set(romp.as_dict()) == {
        'center', 'center_3d', 'pose', 'shape', 'keypoints_2d', 'joints_3d', 'pa_joints_3d',
        'cam', 'prior_pose', 'prior_shape', 'age', 'relative_depth'}


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, 'x', True])
def test_weights_reject_bad_values_naming_the_term(bad):
    with pytest.raises(LossWeightsError, match='pose'):
        LossWeights(pose=bad)
    with pytest.raises(LossWeightsError, match='unknown model'):
        LossWeights.for_model('hmr')


# -- center focal loss --------------------------------------------------------------------------
def _gaussian_target(size=16, row=7, col=9):
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    heat = torch.exp(-((ys - row) ** 2 + (xs - col) ** 2) / (2 * 1.5 ** 2))
    heat[(ys - row).abs().maximum((xs - col).abs()) > 4] = 0
    return heat[None, None].float()  # (1, 1, H, W), exactly 1 at (row, col)


def test_focal_loss_is_minimal_at_the_peak_map_and_positive_elsewhere():
    target = _gaussian_target()
    ideal = (target == 1).float()
    best = losses.center_focal_loss(ideal, target)
    assert best.item() == pytest.approx(0.0, abs=1e-3)
    for worse in (ideal * 0.5,  # weak peak
                  ideal.roll(3, dims=-1),  # displaced peak
                  ideal + 0.2 * (target == 0),  # background noise
                  torch.rand(1, 1, 16, 16, generator=GEN)):
        assert losses.center_focal_loss(worse, target) > best + 1e-3
    # the same background score costs less next to the peak than far from it
    near, far = ideal.clone(), ideal.clone()
    near[0, 0, 7, 10] = 0.3
    far[0, 0, 0, 0] = 0.3
    assert losses.center_focal_loss(near, target) < losses.center_focal_loss(far, target)


def test_focal_loss_pulls_raw_scores_back_into_range():
    target = _gaussian_target()
    pred = torch.where(target == 1, torch.tensor(1.6), torch.tensor(-0.4)).requires_grad_()
    losses.center_focal_loss(pred, target).backward()
    peak = target == 1
    assert (pred.grad[peak] > 0).all()  # descent lowers a score above 1
    assert (pred.grad[~peak] < 0).all()  # and raises a negative background score to 0


def test_focal_loss_empty_images_and_masks():
    target = torch.zeros(2, 1, 8, 8)
    pred = torch.full((2, 1, 8, 8), 0.3, requires_grad=True)
    empty = losses.center_focal_loss(pred, target)
    assert empty > 0  # background alone, unnormalised
    masked = losses.center_focal_loss(pred, target, torch.zeros(2, dtype=torch.bool))
    masked.backward()
    assert masked.item() == 0.0 and (pred.grad == 0).all()


def test_focal_loss_3d_averages_over_depth():
    target = torch.zeros(1, 4, 8, 8)
    target[0, 2, 3, 3] = 1.0
    pred = torch.full((1, 4, 8, 8), 0.1)
    pred[0, 2, 3, 3] = 0.6
    summed = losses.center_focal_loss(pred, target)
    averaged = losses.center_focal_loss(pred, target, average_depth=True)
    assert averaged.item() == pytest.approx(summed.item() / 4, rel=1e-6)


# -- SMPL parameters ----------------------------------------------------------------------------
def test_pose_loss_zero_at_target_and_split_global_body():
    pose = _rand(3, 72, scale=0.3)
    rot = axis_angle_to_matrix(pose[:, :66].reshape(3, 22, 3))
    mask = torch.ones(3, dtype=torch.bool)
    assert losses.pose_loss(rot, pose, mask).item() == pytest.approx(0.0, abs=1e-5)
    turned = rot.clone()
    turned[:, 0] = _rotation(0.5) @ rot[:, 0]  # global orientation off by 0.5 rad
    bent = rot.clone()
    bent[:, 5] = _rotation(0.5) @ rot[:, 5]  # one body joint off by 0.5 rad
    frob = 2 * math.sqrt(2) * math.sin(0.25)  # |R(a) - I|_F = 2 sqrt(2) sin(a / 2)
    assert losses.pose_loss(turned, pose, mask).item() == pytest.approx(frob, rel=1e-4)
    assert losses.pose_loss(bent, pose, mask).item() == pytest.approx(frob / 21, rel=1e-4)


def test_shape_losses():
    betas = _rand(4, 10)
    mask = torch.tensor([True, True, False, False])
    assert losses.shape_loss(betas, betas, mask).item() == 0.0
    off = betas.clone()
    off[:, 0] += 2.0
    assert losses.shape_loss(off, betas, mask).item() == pytest.approx(2.0 / 20, rel=1e-5)
    weights = torch.tensor([0.5] + [1.0] * 9)
    assert losses.shape_loss(off, betas, mask, weights).item() == pytest.approx(1.0 / 20,
                                                                                rel=1e-5)
    # the prior sees only the people in its mask
    prior = losses.shape_prior_loss(betas, ~mask)
    assert prior.item() == pytest.approx((betas[2:] ** 2).mean().item(), rel=1e-5)


def test_pose_prior_penalises_joints_bending_the_wrong_way():
    rest = torch.zeros(1, 72)
    mask = torch.ones(1, dtype=torch.bool)
    assert losses.pose_prior_loss(rest, mask).item() == pytest.approx(4 / 5, rel=1e-6)
    knee = joint_index('l_knee') * 3  # x component: natural bend is positive
    natural, wrong = rest.clone(), rest.clone()
    natural[0, knee] = 1.0
    wrong[0, knee] = -1.0
    assert losses.pose_prior_loss(natural, mask) < losses.pose_prior_loss(rest, mask) \
        < losses.pose_prior_loss(wrong, mask)
    twisted = rest.clone()
    twisted[0, joint_index('spine2') * 3 + 1] = 1.0  # no bend prior: the Gaussian part
    gain = 0.5 * (1.0 / 0.5) ** 2 / 100
    assert (losses.pose_prior_loss(twisted, mask) - losses.pose_prior_loss(rest, mask)).item() \
        == pytest.approx(gain, rel=1e-5)


# -- keypoints and joints -------------------------------------------------------------------------
def test_keypoints_2d_loss_uses_weights_and_ignores_unlabelled():
    pred = _rand(2, 71, 2, scale=0.3)
    target = torch.cat([pred, torch.ones(2, 71, 1)], dim=-1)
    mask = torch.ones(2, dtype=torch.bool)
    assert losses.keypoints_2d_loss(pred, target, mask).item() == 0.0
    target[0, :10, :2] += torch.tensor([0.3, 0.4])  # 0.5 away on 10 joints
    target[0, 10:, 2] = 0.0  # only those 10 labelled
    target[1, :, :2] = math.nan  # person 1: garbage coordinates, weight 1
    value = losses.keypoints_2d_loss(pred.requires_grad_(), target, mask)
    assert value.item() == pytest.approx(0.5, rel=1e-5)  # mean over person 0 only
    value.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[1] == 0).all()


def test_mpjpe_is_root_relative_and_masks_unknown_joints():
    target = _rand(3, 71, 3, scale=0.3)
    mask = torch.ones(3, dtype=torch.bool)
    shifted = target + torch.tensor([1.0, -2.0, 5.0])  # another frame origin
    assert losses.joints_3d_loss(shifted, target, mask).item() == pytest.approx(0, abs=1e-6)
    wrong = shifted.clone()
    wrong[:, 30] += torch.tensor([0.0, 0.71, 0.0])
    target_nan = target.clone()
    target_nan[0, 40:] = math.nan
    error = losses.joints_3d_loss(wrong, target_nan, mask).item()
    assert error == pytest.approx((0.71 / 71 + 0.71 / 71 + 0.71 / 40) / 3, rel=1e-4)
    # the root falls back to SMPL's hips when the LSP hips are unknown
    target_nan[1, [joint_index('lsp_l_hip'), joint_index('lsp_r_hip')]] = math.nan
    assert losses.joints_3d_loss(shifted, target_nan, mask).item() == pytest.approx(0, abs=1e-6)


def test_pa_mpjpe_ignores_similarity_transforms_only():
    target = _rand(2, 71, 3, scale=0.3)
    mask = torch.ones(2, dtype=torch.bool)
    rot = _rotation(1.1, axis=2) @ _rotation(0.4, axis=0)
    moved = 1.3 * target @ rot.T + torch.tensor([0.2, 0.1, 3.0])
    assert losses.pa_joints_3d_loss(moved, target, mask).item() == pytest.approx(0, abs=1e-5)
    bent = moved.clone().requires_grad_()
    with torch.no_grad():
        bent[:, 20] += 0.5
    value = losses.pa_joints_3d_loss(bent, target, mask)
    assert value.item() > 1e-3
    value.backward()
    assert torch.isfinite(bent.grad).all() and bent.grad.abs().sum() > 0
    # too few labelled joints: no Procrustes, no contribution
    sparse = target.clone()
    sparse[:, 3:] = math.nan
    assert losses.pa_joints_3d_loss(bent, sparse, mask).item() == 0.0


def test_camera_and_age_losses():
    cams = _rand(3, 3)
    mask = torch.tensor([True, False, True])
    target = cams.clone()
    target[1] = math.nan
    assert losses.camera_loss(cams, target, mask).item() == 0.0
    target[0] += torch.tensor([0.3, 0.0, 0.4])
    assert losses.camera_loss(cams, target, mask).item() == pytest.approx(0.25, rel=1e-5)
    ages = torch.tensor([0.1, 0.9, 0.0])
    assert losses.age_loss(ages, torch.tensor([0.3, 0.0, 0.0]), mask).item() \
        == pytest.approx(0.02, rel=1e-5)


# -- relative depth ------------------------------------------------------------------------------
def test_relative_depth_orders_pairs_within_images():
    true = torch.tensor([[2.0, 4.0, 4.0, 0.0]])  # person 0 in front; 1 and 2 side by side
    mask = torch.tensor([[True, True, True, False]])
    exact = torch.tensor([[2.0, 4.0, 4.0, -5.0]])
    assert losses.relative_depth_loss(exact, true, mask).item() == pytest.approx(0.0, abs=1e-7)
    short = torch.tensor([[2.0, 3.0, 3.0, 0.0]])  # right order, separation not reached
    swapped = torch.tensor([[4.0, 2.0, 2.0, 0.0]])
    short_value = losses.relative_depth_loss(short, true, mask).item()
    # two active ordered pairs at softplus(-1), plus the equal pair at zero cost
    assert short_value == pytest.approx(2 * math.log1p(math.exp(-1.0)) / 3, rel=1e-5)
    assert losses.relative_depth_loss(swapped, true, mask).item() > short_value
    # the masked person (slot 3) never matters
    assert losses.relative_depth_loss(exact + torch.tensor([[0, 0, 0, 50.0]]), true, mask) \
        .item() == pytest.approx(0.0, abs=1e-7)
    # over-separating is not penalised; a same-layer pair costs its squared predicted gap
    apart = torch.tensor([[1.0, 4.0, 4.6, 0.0]])
    assert losses.relative_depth_loss(apart, true, mask).item() == pytest.approx(0.36,
                                                                                 rel=1e-5)


def test_relative_depth_needs_two_people_in_one_image():
    pred = torch.tensor([[1.0, 0.0], [2.0, 0.0]], requires_grad=True)
    true = torch.tensor([[3.0, 0.0], [5.0, 0.0]])
    mask = torch.tensor([[True, False], [True, False]])  # one person per image
    value = losses.relative_depth_loss(pred, true, mask)
    value.backward()
    assert value.item() == 0.0 and (pred.grad == 0).all()


# -- empty masks ----------------------------------------------------------------------------------
@pytest.mark.parametrize('term', ['pose', 'shape', 'shape_prior', 'keypoints_2d', 'joints_3d',
                                  'pa_joints_3d', 'camera', 'pose_prior', 'age'])
def test_every_person_term_is_exactly_zero_with_zero_gradient_when_nobody_is_labelled(term):
    n = 3
    none = torch.zeros(n, dtype=torch.bool)
    nan3 = torch.full((n, 71, 3), math.nan)
    pred = {
        'pose': _rand(n, 22, 3, 3), 'shape': _rand(n, 10), 'shape_prior': _rand(n, 10),
        'keypoints_2d': _rand(n, 71, 2), 'joints_3d': _rand(n, 71, 3),
        'pa_joints_3d': _rand(n, 71, 3), 'camera': _rand(n, 3), 'pose_prior': _rand(n, 72),
        'age': _rand(n)}[term].requires_grad_()
    call = {
        'pose': lambda: losses.pose_loss(pred, torch.full((n, 72), math.nan), none),
        'shape': lambda: losses.shape_loss(pred, torch.full((n, 10), math.nan), none),
        'shape_prior': lambda: losses.shape_prior_loss(pred, none),
        'keypoints_2d': lambda: losses.keypoints_2d_loss(pred, nan3, torch.ones(n, dtype=bool)),
        'joints_3d': lambda: losses.joints_3d_loss(pred, nan3, none),
        'pa_joints_3d': lambda: losses.pa_joints_3d_loss(pred, nan3, none),
        'camera': lambda: losses.camera_loss(pred, torch.full((n, 3), math.nan), none),
        'pose_prior': lambda: losses.pose_prior_loss(pred, none),
        'age': lambda: losses.age_loss(pred, torch.full((n,), math.nan), none)}[term]
    value = call()
    assert value.dtype == torch.float32 and value.item() == 0.0
    value.backward()
    assert (pred.grad == 0).all()


def test_losses_compute_in_float32_from_bfloat16_inputs():
    pred = _rand(2, 71, 3).bfloat16()
    value = losses.joints_3d_loss(pred, pred.float(), torch.ones(2, dtype=torch.bool))
    assert value.dtype == torch.float32 and value.item() == pytest.approx(0.0, abs=1e-6)
