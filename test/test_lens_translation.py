"""Translations through real lenses: people at known 3D positions seen through OpenCV's models.

OpenCV (``cv2.projectPoints``, ``cv2.fisheye.projectPoints``) makes the keypoints; the package's
own lens code (torch projection, CameraModel rays) solves the translations. People stand from
the centre of the image to its edges, 2 to 8 m away.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from test_translation import _people
import torch

from romp_ros.core.geometry import solve_translation_with_camera, solve_translation_with_intrinsics
from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.core.geometry.lens_projection import lens_batch, project_through_lens

W, H = 640, 480


def _plumb_bob() -> CameraModel:
    # the issue's camera: 90 degrees horizontal field of view, k1 = -0.3, k2 = 0.1
    f = W / 2 / math.tan(math.radians(45))
    return CameraModel(W, H, (f, f * 1.01, 322.5, 238.0), 'plumb_bob',
                       (-0.3, 0.1, 0.0012, -0.0008, -0.01))


def _rational() -> CameraModel:
    return CameraModel(W, H, (300.0, 301.0, 318.0, 243.0), 'rational_polynomial',
                       (0.8, 0.12, 0.0006, -0.0004, 0.002, 1.1, 0.3, 0.01))


def _fisheye() -> CameraModel:
    # 125 degrees horizontal (about 155 degrees diagonal)
    f = (W / 2) / math.radians(62.5)
    return CameraModel(W, H, (f, f, 321.0, 239.5), 'equidistant', (0.05, -0.01, 0.003, -0.0005))


def _wide_fisheye() -> CameraModel:
    # 190 degrees horizontal: the image's sides see slightly behind the camera
    f = (W / 2) / math.radians(95)
    return CameraModel(W, H, (f, f, 320.0, 240.0), 'equidistant', (0.02, -0.005, 0.001, 0.0))


CAMERAS = {'plumb_bob': _plumb_bob, 'rational_polynomial': _rational, 'equidistant': _fisheye}


def _opencv_project(cam: CameraModel, points: np.ndarray) -> np.ndarray:
    """OpenCV's projection of (..., 3) camera-frame points -> (..., 2) pixels."""
    flat = points.reshape(-1, 3).astype(np.float64)
    zero, dist = np.zeros(3), np.asarray(cam.d, dtype=np.float64)
    if cam.distortion_model == 'equidistant':
        out, _ = cv2.fisheye.projectPoints(flat.reshape(1, -1, 3), zero, zero, cam.matrix(), dist)
    elif cam.distortion_model == 'none':
        out, _ = cv2.projectPoints(flat.reshape(-1, 1, 3), zero, zero, cam.matrix(), None)
    else:
        out, _ = cv2.projectPoints(flat.reshape(-1, 1, 3), zero, zero, cam.matrix(), dist)
    return out.reshape(points.shape[:-1] + (2,))


def _scene(cam: CameraModel, num: int, seed: int, depth=(2.0, 8.0), columns=(0.08, 0.92)):
    """People whose pelvis is seen at a random pixel (u within ``columns`` of the width).

    Returns body-frame joints (N, 24, 3), OpenCV keypoints (N, 24, 2), true translations (N, 3)
    and each pelvis's horizontal distance from the image centre, in half-widths (N,).
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    joints = _people(num, gen).numpy()
    uv = rng.uniform([columns[0] * W, 0.3 * H], [columns[1] * W, 0.7 * H], (num, 2))
    rays = cam.pixel_rays(uv)
    dist = rng.uniform(*depth, num)
    trans = rays * dist[:, None]
    keypoints = _opencv_project(cam, joints + trans[:, None])
    return joints, keypoints, trans, np.abs(uv[:, 0] - W / 2) / (W / 2)


def _relative_error(trans: torch.Tensor, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(trans.double().numpy() - truth, axis=1) / np.linalg.norm(truth, axis=1)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_torch_lens_projection_matches_opencv_and_its_jacobian(name):
    cam = CAMERAS[name]()
    joints, _, trans, _ = _scene(cam, 16, seed=3)
    points = torch.as_tensor(joints + trans[:, None])  # (N, 24, 3)
    lens = lens_batch([cam], torch.zeros(16, dtype=torch.long))
    out = project_through_lens(points, lens)
    np.testing.assert_allclose(out.pixels.numpy(), _opencv_project(cam, points.numpy()),
                               rtol=1e-10, atol=1e-7)
    # analytic Jacobian against central differences of the projection
    step = 1e-6
    for axis in range(3):
        shift = torch.zeros(3, dtype=torch.float64)
        shift[axis] = step
        plus = project_through_lens(points + shift, lens).pixels
        minus = project_through_lens(points - shift, lens).pixels
        numeric = (plus - minus) / (2 * step)
        np.testing.assert_allclose(out.jacobian[..., axis].numpy(), numeric.numpy(),
                                   rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_translation_through_the_lens_is_exact_across_the_image(name):
    """The goal: under 0.5 % of the distance for every person, centre to edge (exact data)."""
    cam = CAMERAS[name]()
    joints, keypoints, trans, off_centre = _scene(cam, 64, seed=0)
    solution = solve_translation_with_camera(torch.as_tensor(joints),
                                             torch.as_tensor(keypoints), cam)
    assert solution.valid.all()
    error = _relative_error(solution.trans, trans)
    assert error.max() < 0.005, error.max()
    assert error.max() < 1e-6  # what it really is: exact up to rounding
    assert solution.reproj_rmse_px.max() < 1e-4
    assert (off_centre > 0.7).sum() >= 10, 'the scene must reach the image edges'
    # the old behaviour (K only, the lens ignored) is far off towards the edges
    k_only = solve_translation_with_intrinsics(torch.as_tensor(joints),
                                               torch.as_tensor(keypoints),
                                               torch.as_tensor(cam.matrix()))
    k_error = _relative_error(k_only.trans, trans)
    assert np.median(k_error[off_centre > 0.7]) > 0.05


def test_the_issues_camera_at_four_metres():
    """90 deg, k1 = -0.3, k2 = 0.1, people 4 m away: K alone misplaced them by 12-20 %."""
    f = W / 2 / math.tan(math.radians(45))
    cam = CameraModel(W, H, (f, f, W / 2, H / 2), 'plumb_bob', (-0.3, 0.1, 0.0, 0.0, 0.0))
    joints = _people(3, torch.Generator().manual_seed(5)).numpy()
    rays = cam.pixel_rays(np.array([[W / 2, H / 2], [0.8 * W, H / 2], [0.95 * W, H / 2]]))
    trans = rays / rays[:, 2:] * 4.0  # 4 m deep
    keypoints = _opencv_project(cam, joints + trans[:, None])
    ours = _relative_error(solve_translation_with_camera(
        torch.as_tensor(joints), torch.as_tensor(keypoints), cam).trans, trans)
    k_only = _relative_error(solve_translation_with_intrinsics(
        torch.as_tensor(joints), torch.as_tensor(keypoints),
        torch.as_tensor(cam.matrix())).trans, trans)
    assert ours.max() < 1e-6
    assert k_only[0] < 0.02 and k_only[2] > 0.1, k_only


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_noisy_keypoints_fit_as_well_at_the_edges_as_in_the_centre_and_as_without_lens(name):
    """0.5 px noise: the reprojection residual is the noise, whatever the lens and position."""
    cam = CAMERAS[name]()
    pinhole = CameraModel(W, H, cam.k)
    rng = np.random.default_rng(7)
    residuals, errors = {}, {}
    for label, camera in (('lens', cam), ('pinhole', pinhole)):
        joints, keypoints, trans, off_centre = _scene(camera, 128, seed=1, depth=(2.0, 5.0))
        noisy = keypoints + rng.normal(0.0, 0.5, keypoints.shape)
        solution = solve_translation_with_camera(torch.as_tensor(joints),
                                                 torch.as_tensor(noisy), camera)
        assert solution.valid.all()
        rmse = solution.reproj_rmse_px.numpy()
        err = _relative_error(solution.trans, trans)
        for part, rows in (('centre', off_centre < 0.3), ('edge', off_centre > 0.7)):
            assert rows.sum() >= 15
            residuals[label, part] = np.median(rmse[rows])
            errors[label, part] = np.median(err[rows])
    # sigma = 0.5 px per coordinate: the best fit leaves an RMS distance of about
    # 0.5 * sqrt(2) * sqrt(45 / 48) = 0.68 px (3 of the 48 values are used by the fit)
    for key, value in residuals.items():
        assert 0.55 < value < 0.8, (key, value)
    assert residuals['lens', 'edge'] < 1.2 * residuals['pinhole', 'edge']
    assert residuals['lens', 'edge'] < 1.2 * residuals['lens', 'centre']
    for key, value in errors.items():
        assert value < 0.005, (key, value)


def test_fisheye_people_beyond_ninety_degrees_are_placed():
    """A 190 degree lens: joints seen slightly behind the camera plane still count.

    OpenCV's fisheye divides by z first, so it mirrors points behind the camera plane; the
    keypoints here come from CameraModel.project (tested against OpenCV in front of it).
    """
    cam = _wide_fisheye()
    behind = np.array([[1.0, 0.0, -0.1]])
    assert cam.project(behind)[0, 0] > W and _opencv_project(cam, behind)[0, 0] < W / 2
    joints, _, trans, _ = _scene(cam, 32, seed=4, depth=(1.0, 4.0), columns=(0.0, 0.06))
    keypoints = cam.project(joints + trans[:, None])
    angles = np.degrees(np.arccos(trans[:, 2] / np.linalg.norm(trans, axis=1)))
    assert angles.max() > 90.0, 'some pelvis must be beyond 90 degrees off-axis'
    solution = solve_translation_with_camera(torch.as_tensor(joints),
                                             torch.as_tensor(keypoints), cam)
    assert solution.valid.all()
    assert _relative_error(solution.trans, trans).max() < 1e-6


def test_several_cameras_in_one_batch_equal_one_by_one():
    cams = [make() for make in CAMERAS.values()]
    joints, keypoints, truths = [], [], []
    for i, cam in enumerate(cams):
        j, k, t, _ = _scene(cam, 8, seed=10 + i)
        joints.append(j)
        keypoints.append(k + np.random.default_rng(i).normal(0.0, 1.0, k.shape))
        truths.append(t)
    index = torch.arange(3).repeat_interleave(8)
    together = solve_translation_with_camera(torch.as_tensor(np.concatenate(joints)),
                                             torch.as_tensor(np.concatenate(keypoints)), cams,
                                             index)
    alone = torch.cat([solve_translation_with_camera(torch.as_tensor(j), torch.as_tensor(k),
                                                     cam).trans
                       for j, k, cam in zip(joints, keypoints, cams, strict=True)])
    torch.testing.assert_close(together.trans, alone, rtol=1e-9, atol=1e-9)


def test_a_pinhole_through_the_lens_path_equals_the_k_solve():
    cam = CameraModel(W, H, (500.0, 510.0, 330.0, 230.0))
    joints, keypoints, _, _ = _scene(cam, 32, seed=2)
    noisy = keypoints + np.random.default_rng(2).normal(0.0, 1.0, keypoints.shape)
    lens = solve_translation_with_camera(torch.as_tensor(joints), torch.as_tensor(noisy), cam)
    plain = solve_translation_with_intrinsics(torch.as_tensor(joints), torch.as_tensor(noisy),
                                              torch.as_tensor(cam.matrix()))
    torch.testing.assert_close(lens.trans, plain.trans, rtol=1e-6, atol=1e-6)


def test_degenerate_people_are_flagged_and_float32_comes_back_float32():
    cam = _plumb_bob()
    joints, keypoints, trans, _ = _scene(cam, 4, seed=6)
    keypoints[1] = np.nan  # nothing usable
    keypoints[2, 2:] = np.nan  # two joints only
    joints_t = torch.as_tensor(joints, dtype=torch.float32)
    solution = solve_translation_with_camera(joints_t, torch.as_tensor(keypoints), cam)
    assert solution.valid.tolist() == [True, False, False, True]
    assert torch.isnan(solution.trans[1:3]).all() and solution.trans.dtype == torch.float32
    assert _relative_error(solution.trans[[0, 3]], trans[[0, 3]]).max() < 1e-5
    with pytest.raises(ValueError, match='camera_index'):
        solve_translation_with_camera(joints_t, torch.as_tensor(keypoints), [cam],
                                      torch.tensor([0, 1, 0, 0]))


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_plain_loss_meets_the_least_squares_optimum_of_scipy(name):
    """robust=False: the same optimum as scipy's least squares on the OpenCV reprojection."""
    from scipy.optimize import least_squares
    cam = CAMERAS[name]()
    joints, keypoints, trans, _ = _scene(cam, 6, seed=8)
    noisy = keypoints + np.random.default_rng(8).normal(0.0, 2.0, keypoints.shape)
    ours = solve_translation_with_camera(torch.as_tensor(joints), torch.as_tensor(noisy), cam,
                                         robust=False).trans.numpy()
    for person in range(6):
        def residual(t, person=person):
            return (_opencv_project(cam, joints[person] + t) - noisy[person]).ravel()
        best = least_squares(residual, trans[person] * 1.05, method='lm', xtol=1e-14,
                             ftol=1e-14).x
        np.testing.assert_allclose(ours[person], best, atol=1e-7)
