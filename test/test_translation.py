"""Translations, projections and intrinsics: synthetic people at known 3D positions."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.geometry import (
    IntrinsicsError,
    axis_angle_to_matrix,
    bev_translation,
    default_intrinsics,
    intrinsics_matrix,
    normalised_to_original,
    original_to_normalised,
    parse_intrinsics_arg,
    project_perspective,
    project_weak,
    romp_reference_translation,
    solve_translation_with_intrinsics,
    validate_intrinsics,
)

# SMPL's 24 joints in a T-pose (metres, pelvis at the origin), camera axes: y down.
T_POSE = torch.tensor([
    [0.0, 0.0, 0.0], [0.06, 0.09, 0.0], [-0.06, 0.09, 0.0], [0.0, -0.11, -0.02],
    [0.1, 0.47, 0.0], [-0.1, 0.47, 0.0], [0.0, -0.25, 0.0], [0.09, 0.87, -0.04],
    [-0.09, 0.87, -0.04], [0.0, -0.3, 0.02], [0.11, 0.93, 0.08], [-0.11, 0.93, 0.08],
    [0.0, -0.51, -0.01], [0.07, -0.42, 0.0], [-0.07, -0.42, 0.0], [0.0, -0.6, 0.05],
    [0.17, -0.44, -0.01], [-0.17, -0.44, -0.01], [0.43, -0.44, -0.03], [-0.43, -0.44, -0.03],
    [0.68, -0.44, -0.03], [-0.68, -0.44, -0.03], [0.76, -0.44, -0.03], [-0.76, -0.44, -0.03],
], dtype=torch.float64)
BODY_HEIGHT_M = 1.7  # T_POSE spans 1.53 m from heel to head joint; a 1.7 m person
IMAGE_SIZES = [(480, 640), (720, 1280), (1080, 1920), (1280, 720), (32, 32)]


def _people(num: int, gen: torch.Generator) -> torch.Tensor:
    """(N, 24, 3) T-poses of 0.9..1.1 times the size, any heading, tilted up to ~30 deg."""
    axis_angle = torch.randn(num, 3, generator=gen, dtype=torch.float64)
    axis_angle = axis_angle * torch.tensor([0.3, 1.5, 0.3], dtype=torch.float64)
    rotation = axis_angle_to_matrix(axis_angle)
    size = 0.9 + 0.2 * torch.rand(num, 1, 1, generator=gen, dtype=torch.float64)
    return (T_POSE[None] @ rotation.transpose(1, 2)) * size


def _scene(image_hw, num: int, seed: int, min_height_px: float = 0.0):
    """People at known positions seen by random cameras of one image size.

    Depths are 2..30 m, narrowed (when ``min_height_px``) so that each person is at least that
    tall on screen; every person's centre projects inside the image.
    """
    gen = torch.Generator().manual_seed(seed)
    height, width = image_hw

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(num, generator=gen, dtype=torch.float64)

    fx = width * uniform(0.6, 2.5)
    fy = fx * uniform(0.9, 1.1)  # non-square pixels
    cx, cy = width * uniform(0.4, 0.6), height * uniform(0.4, 0.6)
    k_mat = intrinsics_matrix(fx, fy, cx, cy, dtype=torch.float64)
    max_depth = torch.full_like(fx, 30.0)
    if min_height_px:
        max_depth = torch.minimum(max_depth, fy * BODY_HEIGHT_M / min_height_px)
    depth = 2.0 + (max_depth - 2.0) * torch.rand(num, generator=gen, dtype=torch.float64)
    u, v = width * uniform(0.15, 0.85), height * uniform(0.25, 0.75)
    trans = torch.stack(((u - cx) / fx * depth, (v - cy) / fy * depth, depth), dim=1)
    joints = _people(num, gen)
    keypoints = project_perspective(joints + trans[:, None], k_mat)
    return joints, keypoints, k_mat, trans, gen


def _depth_relative_error(solution, trans: torch.Tensor) -> torch.Tensor:
    return (solution.trans.double() - trans).norm(dim=1) / trans[:, 2]


@pytest.mark.parametrize('image_hw', IMAGE_SIZES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_exact_keypoints_give_the_exact_translation(image_hw, dtype):
    joints, keypoints, k_mat, trans, _ = _scene(image_hw, 64, seed=sum(image_hw))
    solution = solve_translation_with_intrinsics(joints.to(dtype), keypoints.to(dtype),
                                                 k_mat.to(dtype))
    assert solution.trans.dtype == dtype and solution.trans.shape == (64, 3)
    assert solution.valid.all()
    assert not solution.depth_clamped.any()
    assert _depth_relative_error(solution, trans).max() < 1e-4
    assert solution.reproj_rmse_px.max() < 1e-2


@pytest.mark.parametrize('image_hw', IMAGE_SIZES[:4])
def test_half_pixel_noise_stays_within_one_percent(image_hw):
    # 0.5 px of noise bounds the attainable accuracy by the person's size on screen: ~1 %
    # at 60 px tall. People here are at least 150 px tall.
    joints, keypoints, k_mat, trans, gen = _scene(image_hw, 64, seed=1, min_height_px=150)
    noisy = keypoints + 0.5 * torch.randn(keypoints.shape, generator=gen, dtype=torch.float64)
    solution = solve_translation_with_intrinsics(joints.float(), noisy.float(), k_mat)
    assert solution.valid.all()
    assert _depth_relative_error(solution, trans).max() < 0.01
    # RMSE of a 2D residual with 0.5 px per axis is about 0.7 px, a little less after fitting.
    assert 0.4 < solution.reproj_rmse_px.mean() < 0.8


@pytest.mark.parametrize('image_hw', IMAGE_SIZES[:4])
def test_outlier_keypoints_are_rejected(image_hw):
    joints, keypoints, k_mat, trans, gen = _scene(image_hw, 64, seed=2, min_height_px=150)
    noisy = keypoints + 0.5 * torch.randn(keypoints.shape, generator=gen, dtype=torch.float64)
    # Three joints per person off by 50 px in random directions.
    which = torch.stack([torch.randperm(24, generator=gen)[:3] for _ in range(64)])
    direction = torch.randn(64, 3, 2, generator=gen, dtype=torch.float64)
    offsets = 50.0 * direction / direction.norm(dim=-1, keepdim=True)
    noisy = noisy.scatter_add(1, which[..., None].expand(-1, -1, 2), offsets)
    robust = solve_translation_with_intrinsics(joints, noisy, k_mat)
    plain = solve_translation_with_intrinsics(joints, noisy, k_mat, robust=False)
    assert robust.valid.all()
    assert _depth_relative_error(robust, trans).max() < 0.01
    # Without the robust loss the same outliers cost far more than 1 %.
    assert _depth_relative_error(plain, trans).max() > 0.03
    # The residual stays large on the outliers (the RMSE reports them).
    assert (robust.reproj_rmse_px > 10).all()


def test_batched_solution_equals_per_person_solutions():
    joints, keypoints, k_mat, _, gen = _scene((720, 1280), 64, seed=3, min_height_px=100)
    noisy = keypoints + torch.randn(keypoints.shape, generator=gen, dtype=torch.float64)
    batch = solve_translation_with_intrinsics(joints, noisy, k_mat)
    for i in (0, 17, 63):
        single = solve_translation_with_intrinsics(joints[i:i + 1], noisy[i:i + 1], k_mat[i])
        assert torch.allclose(single.trans[0], batch.trans[i], rtol=1e-9, atol=1e-9)


def test_degenerate_rows_are_flagged_without_disturbing_the_others():
    joints, keypoints, k_mat, trans, _ = _scene((480, 640), 9, seed=4)
    joints, keypoints, k_mat = joints.clone(), keypoints.clone(), k_mat.clone()
    weights = torch.ones(9, 24, dtype=torch.float64)
    joints[0] = math.nan  # no usable joint
    joints[1] = joints[1, :1]  # all joints at one point: depth unobservable
    keypoints[2] = keypoints[2, :1]  # all keypoints at one pixel: singular system
    k_mat[3, 0, 0] = math.inf  # broken camera
    weights[4, 2:] = 0  # only two usable joints
    keypoints[5, 7] = math.nan  # one missing keypoint: still solvable
    joints[6, 3] = math.inf  # one broken joint: still solvable
    solution = solve_translation_with_intrinsics(joints, keypoints, k_mat, weights)
    assert solution.valid.tolist() == [False] * 5 + [True] * 4
    assert torch.isnan(solution.trans[:5]).all()
    assert torch.isnan(solution.reproj_rmse_px[:5]).all()
    assert _depth_relative_error(solution, trans)[5:].max() < 1e-6
    assert not solution.depth_clamped.any()


def test_people_behind_the_camera_are_clamped_and_flagged():
    gen = torch.Generator().manual_seed(5)
    joints = _people(2, gen)
    k_mat = intrinsics_matrix(600.0, 600.0, 320.0, 240.0, dtype=torch.float64)
    trans = torch.tensor([[0.2, 0.1, -5.0], [0.2, 0.1, 5.0]], dtype=torch.float64)
    keypoints = project_perspective(joints + trans[:, None], k_mat)
    solution = solve_translation_with_intrinsics(joints, keypoints, k_mat, min_depth=0.05)
    assert solution.depth_clamped.tolist() == [True, False]
    assert solution.valid.tolist() == [False, True]
    depths = joints[0, :, 2] + solution.trans[0, 2]
    assert torch.isfinite(solution.trans).all() and depths.min() >= 0.05 - 1e-9


def test_input_shapes_are_checked():
    joints = torch.zeros(2, 24, 3)
    with pytest.raises(ValueError, match='keypoints'):
        solve_translation_with_intrinsics(joints, torch.zeros(2, 23, 2), torch.eye(3))
    with pytest.raises(ValueError, match='intrinsics'):
        solve_translation_with_intrinsics(joints, torch.zeros(2, 24, 2), torch.eye(4))
    with pytest.raises(ValueError, match='weights'):
        solve_translation_with_intrinsics(joints, torch.zeros(2, 24, 2), torch.eye(3),
                                          torch.ones(2, 5))


def _romp_like(num: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    joints = _people(num, gen).float()
    scale = 0.2 + 0.6 * torch.rand(num, generator=gen)
    offset = 0.6 * (2 * torch.rand(num, 2, generator=gen) - 1)
    return joints, torch.cat((scale[:, None], offset), dim=1)


@pytest.mark.oracle
def test_romp_reference_translation_equals_the_reference_linear_solver():
    utils = reference_module('romp.utils')
    joints, cam = _romp_like(40, seed=6)
    ours = romp_reference_translation(joints, cam)
    targets = (project_weak(joints, cam) + 1) * 256
    expected = np.stack([utils.estimate_translation_np(
        joints[i].double().numpy(), targets[i].double().numpy(), np.ones(24),
        focal_length=443.4, img_size=np.array([512.0, 512.0])) for i in range(40)])
    assert np.allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.oracle
def test_romp_reference_translation_is_close_to_the_reference_epnp():
    utils = reference_module('romp.utils')
    joints, cam = _romp_like(120, seed=7)
    ours = romp_reference_translation(joints, cam)
    targets = (project_weak(joints, cam) + 1) * 256
    epnp = utils.estimate_translation(joints.numpy(), targets.numpy(), focal_length=443.4,
                                      img_size=np.array([512, 512]))
    relative = (ours - epnp).norm(dim=1) / epnp.norm(dim=1)
    # EPnP also fits a rotation to the (non-perspective) weak-perspective targets, so the two
    # differ; measured median ~4 %, the worst cases are close people (large s).
    assert relative.median() < 0.08
    assert torch.quantile(relative, 0.9) < 0.2
    assert ((ours[:, 2] - epnp[:, 2]).abs() / epnp[:, 2]).median() < 0.08


def test_romp_reference_translation_reprojects_a_perspective_person():
    # A person seen by the reference's own camera (443.4 px over 512): the weak-perspective
    # camera fitted to that view gives back roughly the true translation.
    gen = torch.Generator().manual_seed(8)
    joints = _people(16, gen)
    trans = torch.stack((0.5 * torch.randn(16, generator=gen, dtype=torch.float64),
                         0.3 * torch.randn(16, generator=gen, dtype=torch.float64),
                         3 + 10 * torch.rand(16, generator=gen, dtype=torch.float64)), dim=1)
    k_ref = intrinsics_matrix(443.4, 443.4, 256.0, 256.0, dtype=torch.float64)
    normalised = project_perspective(joints + trans[:, None], k_ref) / 256 - 1
    # Least-squares weak-perspective camera for the view: x = X * s + t.
    centred = joints[..., :2] - joints[..., :2].mean(1, keepdim=True)
    scale = ((normalised - normalised.mean(1, keepdim=True)) * centred).sum((1, 2)) / \
        (centred ** 2).sum((1, 2))
    offset = normalised.mean(1) - joints[..., :2].mean(1) * scale[:, None]
    cam = torch.cat((scale[:, None], offset), dim=1)
    estimate = romp_reference_translation(joints, cam)
    assert ((estimate - trans).norm(dim=1) / trans[:, 2]).max() < 0.1


@pytest.mark.oracle
def test_bev_translation_matches_reference():
    post = reference_module('bev.post_parser')
    gen = torch.Generator().manual_seed(9)
    cam = torch.cat((0.05 + torch.rand(50, 1, generator=gen),
                     torch.rand(50, 2, generator=gen) * 2 - 1), dim=1)
    assert torch.allclose(bev_translation(cam), post.denormalize_cam_params_to_trans(cam),
                          atol=1e-5, rtol=1e-6)


def test_bev_translation_swaps_the_offsets():
    tan30 = math.tan(math.radians(30))
    depth = 1 / (0.5 * tan30 + 1e-3)
    out = bev_translation(torch.tensor([[0.5, 0.4, -0.2]], dtype=torch.float64))
    # cam = [s, ty, tx]: x comes from the third value, y from the second.
    expected = torch.tensor([[-0.2 * depth * tan30, 0.4 * depth * tan30, depth]],
                            dtype=torch.float64)
    assert torch.allclose(out, expected)
    assert bev_translation(torch.tensor([[-0.1, 0.0, 0.0]]), positive_only=True)[0, 2] == \
        pytest.approx(1000.0)


@pytest.mark.oracle
def test_projections_match_the_reference():
    utils = reference_module('romp.utils')
    post = reference_module('romp.post_parser')
    joints, cam = _romp_like(5, seed=10)
    assert torch.allclose(project_weak(joints, cam), utils.batch_orth_proj(joints, cam))
    pad_info = torch.tensor([80.0, 560.0, 0.0, 640.0, 480.0, 640.0])
    normalised = project_weak(joints, cam)
    expected = post.convert_proejection_from_input_to_orgimg(normalised.clone(), pad_info)
    pixels = normalised_to_original(normalised, pad_info)
    assert torch.allclose(pixels, expected, atol=1e-4)
    assert torch.allclose(original_to_normalised(pixels, pad_info), normalised, atol=1e-6)


def test_normalised_to_original_per_person_pad_info_and_corners():
    corners = torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]).repeat(2, 1, 1)
    pad_info = torch.tensor([[80.0, 560, 0, 640, 480, 640], [0.0, 1280, 280, 1000, 1280, 720]])
    pixels = normalised_to_original(corners, pad_info)
    assert pixels[0].tolist() == [[0.0, -80.0], [640.0, 560.0]]
    assert pixels[1].tolist() == [[-280.0, 0.0], [1000.0, 1280.0]]


def test_project_perspective_with_shared_and_per_person_k():
    points = torch.tensor([[[1.0, -2.0, 4.0], [0.0, 0.0, 2.0]]])
    k_mat = intrinsics_matrix(500.0, 400.0, 320.0, 240.0)
    expected = torch.tensor([[[320 + 125.0, 240 - 200.0], [320.0, 240.0]]])
    assert torch.allclose(project_perspective(points, k_mat), expected)
    assert torch.allclose(project_perspective(points, k_mat[None]), expected)


def test_default_intrinsics_reproduce_the_reference_camera():
    square = default_intrinsics(512, 512)
    assert square.fx == pytest.approx(443.4, abs=0.01) and square.fx == square.fy
    assert (square.cx, square.cy, square.source) == (256.0, 256.0, 'fov')
    landscape = default_intrinsics(480, 640)
    assert landscape.fx == pytest.approx(320 / math.tan(math.radians(30)))
    assert (landscape.cx, landscape.cy) == (320.0, 240.0)
    # Odd padding: the square's centre is half a pixel off the image centre.
    odd = default_intrinsics(480, 641)
    assert (odd.cx, odd.cy) == (320.5, 240.5)
    # The reference's 443.4 px over 512 scales to the original image: with f in original
    # pixels, K maps the same rays as the reference's K in network pixels.
    assert default_intrinsics(1080, 1920, fov_deg=90).fx == pytest.approx(960.0)


@pytest.mark.parametrize('fx,fy', [(0.0, 500.0), (-1.0, 500.0), (math.nan, 500.0),
                                   (500.0, math.inf), ('abc', 500.0)])
def test_validate_intrinsics_rejects_bad_focal_lengths(fx, fy):
    with pytest.raises(IntrinsicsError, match='fx|fy'):
        validate_intrinsics(fx, fy, 320, 240, (480, 640))


def test_validate_intrinsics_warns_on_a_far_principal_point(caplog):
    with caplog.at_level(logging.WARNING):
        k_ok = validate_intrinsics(600, 600, 330, 250, (480, 640))
    assert not caplog.records and k_ok.source == 'camera'
    with caplog.at_level(logging.WARNING):
        far = validate_intrinsics(600, 600, 1920, 250, (480, 640))
    assert far.cx == 1920.0
    assert any('principal point' in record.getMessage() for record in caplog.records)
    with pytest.raises(IntrinsicsError):
        validate_intrinsics(600, 600, math.nan, 250)
    with pytest.raises(IntrinsicsError):
        validate_intrinsics(600, 600, 320, 240, (0, 640))


def test_parse_intrinsics_arg():
    k_mat = parse_intrinsics_arg(' 615.2, 614.9 ,320.1,240.7')
    assert (k_mat.fx, k_mat.fy, k_mat.cx, k_mat.cy) == (615.2, 614.9, 320.1, 240.7)
    for bad in ('615,615,320', '615,615,320,240,1', 'a,b,c,d', '615,,320,240', '0,615,320,240'):
        with pytest.raises(IntrinsicsError):
            parse_intrinsics_arg(bad)


def test_empty_batches_pass_through():
    solution = solve_translation_with_intrinsics(torch.zeros(0, 24, 3), torch.zeros(0, 24, 2),
                                                 torch.eye(3))
    assert solution.trans.shape == (0, 3) and solution.valid.shape == (0,)
    assert romp_reference_translation(torch.zeros(0, 24, 3), torch.zeros(0, 3)).shape == (0, 3)


def test_conditioning_check_decides_as_the_eigenvalues_do():
    """The solve's conditioning check (a Cholesky that reports failure, no wait for a GPU)
    accepts exactly the normal matrices whose eigenvalues are well separated from zero."""
    from romp_ros.core.geometry import translation
    gen = torch.Generator().manual_seed(0)

    def by_eigenvalues(normal):
        finite = torch.isfinite(normal).flatten(1).all(dim=1)
        safe = torch.where(finite[:, None, None], normal, torch.eye(3, dtype=normal.dtype))
        eig = torch.linalg.eigvalsh(safe)
        return finite & (eig[:, 0] > translation._RCOND * eig[:, 2].abs()) & (eig[:, 2] > 0)

    def gram(columns, count):
        a = torch.randn(count, 3, columns, generator=gen, dtype=torch.float64)
        return a @ a.transpose(1, 2)

    cases = {
        'full rank': gram(3, 500), 'rank 2': gram(2, 200), 'rank 1': gram(1, 200),
        'nearly rank 2': gram(2, 200) + 1e-13 * torch.eye(3, dtype=torch.float64),
        'zero': torch.zeros(3, 3, 3, dtype=torch.float64), 'negative': -gram(3, 50),
        'nan': torch.full((3, 3, 3), math.nan, dtype=torch.float64),
    }
    for name, normal in cases.items():
        got = translation._well_conditioned(normal)
        assert torch.equal(got, by_eigenvalues(normal)), name
        assert bool(got.all()) == (name == 'full rank'), name
