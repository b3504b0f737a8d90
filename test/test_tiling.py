"""Wide images as overlapping square windows: plan, merge, and the estimator end to end."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from romp_ros.core.config import ConfigError, EstimatorConfig
from romp_ros.core.geometry.projection import normalised_to_original, project_weak
from romp_ros.core.results import CameraIntrinsics, FrameResult
from romp_ros.core.tiling import Window, merge_windows, plan_windows, window_intrinsics


def test_windows_cover_wide_and_tall_images_with_the_overlap_asked():
    assert plan_windows(512, 1536, 2.0, 0.0) == [Window(0, 0, 512), Window(0, 512, 512),
                                                 Window(0, 1024, 512)]
    windows = plan_windows(400, 1500, 2.0, 0.25)
    lefts = [w.left for w in windows]
    assert lefts[0] == 0 and lefts[-1] + 400 == 1500 and all(w.side == 400 for w in windows)
    assert all(b - a <= 0.75 * 400 for a, b in zip(lefts[:-1], lefts[1:], strict=True))
    tall = plan_windows(1200, 500, 2.0, 0.1)
    assert [w.left for w in tall] == [0] * len(tall) and tall[-1].top + 500 == 1200
    assert plan_windows(720, 1280, 2.0, 0.25) == []  # 16:9 is not wide enough by default
    # two 720-px windows would share 160 px (22 %): a third one is needed for 25 %
    assert len(plan_windows(720, 1280, 1.5, 0.25)) == 3


def test_window_intrinsics_move_the_principal_point():
    k = window_intrinsics(CameraIntrinsics(600.0, 610.0, 900.0, 250.0, 'fov'),
                          Window(top=10, left=700, side=500))
    assert (k.fx, k.fy, k.cx, k.cy, k.source) == (600.0, 610.0, 200.0, 240.0, 'fov')


def _person(x_px: float, conf: float, joints: int = 2) -> FrameResult:
    """A one-person result whose pelvis projects to (x_px, 100) in its window."""
    return FrameResult(
        cam=np.array([[0.5, 0.0, 0.0]], np.float32), smpl_thetas=np.zeros((1, 72), np.float32),
        smpl_betas=np.zeros((1, 10), np.float32), cam_trans=np.array([[x_px, 0, 5]], np.float32),
        joints=np.zeros((1, joints, 3), np.float32), verts=None,
        pj2d_org=np.full((1, joints, 2), [x_px, 100.0], np.float32),
        center_confs=np.array([conf], np.float32), joint_names=('pelvis', 'head')[:joints],
        image_size=(400, 400), intrinsics=CameraIntrinsics(500.0, 500.0, 200.0, 200.0),
        model_type=('smpl',))


def test_a_person_in_the_overlap_is_kept_once_by_the_nearest_window():
    windows = [Window(0, 0, 400), Window(0, 300, 400)]  # share x in [300, 400)
    full_k = CameraIntrinsics(500.0, 500.0, 350.0, 200.0)
    # pelvis at full x = 380: window 0 sees it at 380, window 1 at 80; window 1's centre
    # (500) is nearer than window 0's (200), so window 1 keeps it
    merged = merge_windows([_person(380.0, 0.9), _person(80.0, 0.7)], windows, (400, 700),
                           full_k)
    assert merged.num_people == 1 and merged.center_confs[0] == pytest.approx(0.7)
    assert merged.pj2d_org[0, 0].tolist() == [380.0, 100.0]
    assert merged.image_size == (400, 700) and merged.intrinsics == full_k
    # two different people, one per window: both kept, by descending confidence
    both = merge_windows([_person(100.0, 0.6), _person(300.0, 0.8)], windows, (400, 700),
                         full_k)
    assert both.center_confs.tolist() == pytest.approx([0.8, 0.6])
    assert both.pj2d_org[:, 0, 0].tolist() == [600.0, 100.0]
    assert both.cam_trans[:, 0].tolist() == [300.0, 100.0]  # 3D comes through untouched


def test_wide_settings_are_validated():
    with pytest.raises(ConfigError, match='wide_min_aspect'):
        EstimatorConfig(wide_min_aspect=1.0)
    with pytest.raises(ConfigError, match='wide_overlap'):
        EstimatorConfig(wide_overlap=0.9)


@pytest.fixture(scope='module')
def estimators(models_dir, seeded_checkpoint):
    from romp_ros.core.estimator import Estimator
    config = EstimatorConfig(model='romp', checkpoint=str(seeded_checkpoint('romp')),
                             models_dir=str(models_dir), device='cpu')
    return Estimator(config), Estimator(config.replace(wide_tiling=True, wide_overlap=0.0))


@pytest.fixture(scope='module')
def photos():
    return [cv2.resize(getattr(skimage.data, name)(), (512, 512))
            for name in ('astronaut', 'coffee', 'chelsea')]


@pytest.mark.slow
def test_a_panorama_gives_the_people_of_its_windows(estimators, photos):
    plain, tiled = estimators
    wide = np.concatenate(photos, axis=1)  # 512 x 1536: three windows, no overlap
    k = CameraIntrinsics(700.0, 700.0, 768.0, 256.0)
    [result] = tiled.predict([wide], intrinsics=k)
    parts = plain.predict(photos, intrinsics=[window_intrinsics(k, Window(0, 512 * i, 512))
                                              for i in range(3)])
    assert result.num_people == sum(p.num_people for p in parts) >= 6
    assert plain.predict([wide], intrinsics=k)[0].num_people < result.num_people, \
        'letterboxed whole, the people are too small: the reason for tiling'
    # the same people: 3D in the one camera frame, 2D shifted by each window's offset
    expected_trans = np.concatenate([p.cam_trans for p in parts])
    expected_pj2d = np.concatenate([p.pj2d_org + [512.0 * i, 0.0] for i, p in enumerate(parts)])
    order = np.argsort(-np.concatenate([p.center_confs for p in parts]), kind='stable')
    np.testing.assert_allclose(result.cam_trans, expected_trans[order], atol=1e-5)
    np.testing.assert_allclose(result.pj2d_org, expected_pj2d[order], atol=1e-3)
    assert result.intrinsics == k and result.image_size == (512, 1536)
    # the camera now refers to the full image's padded square: it reproduces the keypoints
    pad_info = torch.tensor([512.0, 1024.0, 0.0, 1536.0, 512.0, 1536.0])
    projected = normalised_to_original(
        project_weak(torch.from_numpy(result.joints), torch.from_numpy(result.cam)), pad_info)
    np.testing.assert_allclose(projected.numpy(), result.pj2d_org, atol=1e-2)


@pytest.mark.slow
def test_other_images_of_a_tiled_batch_are_unchanged(estimators, photos):
    plain, tiled = estimators
    wide = np.concatenate(photos, axis=1)
    mixed = tiled.predict([photos[0], wide, photos[1]])
    alone = plain.predict([photos[0], photos[1]])
    for got, want in ((mixed[0], alone[0]), (mixed[2], alone[1])):
        assert got.num_people == want.num_people
        np.testing.assert_allclose(got.cam_trans, want.cam_trans, atol=1e-5)
        np.testing.assert_allclose(got.pj2d_org, want.pj2d_org, atol=1e-3)
    # without a K, the windows share the full image's field-of-view camera
    assert mixed[1].intrinsics.source == 'fov' and mixed[1].intrinsics.cx == pytest.approx(768)
