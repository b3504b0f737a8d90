"""The estimator on real loaders and generated assets: intrinsics, image shapes, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import skimage.data
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def estimator(models_dir, seeded_checkpoint):
    from romp_ros.core import Estimator, EstimatorConfig
    return Estimator(EstimatorConfig(model='romp', models_dir=str(models_dir),
                                     checkpoint=str(seeded_checkpoint('romp', 'hrnet32')),
                                     device='cpu'))


@pytest.fixture(scope='module')
def bev_estimator(models_dir, seeded_checkpoint):
    from romp_ros.core import Estimator, EstimatorConfig
    return Estimator(EstimatorConfig(model='bev', models_dir=str(models_dir), device='cpu',
                                     checkpoint=str(seeded_checkpoint('bev', 'hrnet32'))))


@pytest.fixture(scope='module')
def astronaut():
    return skimage.data.astronaut()


def _project(points, k):
    uv = points[..., :2] / points[..., 2:3]
    return uv * np.array([k[0], k[1]]) + np.array([k[2], k[3]])


def test_people_are_ordered_by_confidence_and_fields_are_consistent(estimator, astronaut):
    result = estimator.predict([astronaut])[0]
    n, j = result.num_people, len(result.joint_names)
    assert n >= 2
    assert np.all(np.diff(result.center_confs) <= 0)
    assert result.cam.shape == (n, 3) and result.smpl_thetas.shape == (n, 72)
    assert result.smpl_betas.shape == (n, 10) and result.cam_trans.shape == (n, 3)
    assert result.joints.shape == (n, j, 3) and result.pj2d_org.shape == (n, j, 2)
    assert result.verts.shape == (n, 6890, 3)
    assert j == 71 and result.joint_names[0] == 'pelvis'
    assert np.all(result.cam_trans[:, 2] > 0), 'people must be in front of the camera'
    np.testing.assert_array_equal(result.smpl_thetas[:, 66:], 0.0)  # hands are zero-padded
    assert result.intrinsics.source == 'fov'


@pytest.mark.parametrize('size', [(480, 640), (720, 1280), (1280, 720), (32, 32), (300, 451)])
def test_any_image_size_with_a_real_k_reprojects_onto_the_keypoints(estimator, astronaut, size):
    """Non-square, portrait and tiny images: with K, joints + cam_trans project onto pj2d_org."""
    import cv2
    h, w = size
    image = cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)
    k = (0.9 * max(h, w), 0.85 * max(h, w), 0.52 * w, 0.47 * h)
    result = estimator.predict([image], intrinsics=k)[0]
    assert result.image_size == (h, w) and result.intrinsics.source == 'camera'
    if result.num_people == 0:
        pytest.skip(f'nobody detected at {w}x{h}')
    proj = _project(result.joints_camera()[:, :24], k)
    err = np.linalg.norm(proj - result.pj2d_org[:, :24], axis=-1)
    # ROMP's 2D keypoints are weak-perspective; the best perspective fit leaves a residual
    # that is small compared with the person's size on the image
    height_px = np.ptp(result.pj2d_org[:, :24, 1], axis=1)
    assert np.all(np.median(err, axis=1) < 0.1 * np.maximum(height_px, 1.0))


def test_focal_length_scales_depth(estimator, astronaut):
    """Twice the focal length explains the same keypoints with people twice as far."""
    k1 = (500.0, 500.0, 256.0, 256.0)
    k2 = (1000.0, 1000.0, 256.0, 256.0)
    r1, r2 = estimator.predict([astronaut, astronaut], intrinsics=[k1, k2])
    np.testing.assert_allclose(r2.cam_trans[:, 2] / r1.cam_trans[:, 2], 2.0, rtol=0.02)


def test_per_image_intrinsics_mix_camera_and_fov(estimator, astronaut):
    results = estimator.predict([astronaut, astronaut], intrinsics=[None, (600, 600, 256, 256)])
    assert [r.intrinsics.source for r in results] == ['fov', 'camera']
    assert results[0].intrinsics.fx == pytest.approx(443.4, abs=0.1)
    # an image without K keeps the reference's translation whatever shares its batch
    [alone] = estimator.predict([astronaut])
    np.testing.assert_allclose(results[0].cam_trans, alone.cam_trans, atol=1e-6)


@pytest.mark.parametrize('bad_k, match', [
    ((np.nan, 500.0, 256.0, 256.0), r'(?i)nan|finite'),
    ((0.0, 0.0, 0.0, 0.0), r'(?i)zero|positive'),
    ((-500.0, 500.0, 256.0, 256.0), r'(?i)positive'),
])
def test_invalid_intrinsics_are_rejected_clearly(estimator, astronaut, bad_k, match):
    from romp_ros.core.geometry.intrinsics import IntrinsicsError
    with pytest.raises(IntrinsicsError, match=match):
        estimator.predict([astronaut], intrinsics=bad_k)


@pytest.mark.parametrize('images, match', [
    ([], r'(?i)empty'),
    ([np.zeros((64, 64, 3), np.float32)], r'(?i)uint8'),
    ([np.zeros((64, 64, 2), np.uint8)], r'(?i)channel'),
    ([np.zeros((0, 64, 3), np.uint8)], r'(?i)empty|zero'),
    ([np.zeros((64, 64, 3, 1), np.uint8)], r'(?i)dim|shape'),
])
def test_bad_images_get_a_clear_error(estimator, images, match):
    from romp_ros.core.preprocess import ImageInputError
    with pytest.raises(ImageInputError, match=match):
        estimator.predict(images)


def test_a_black_image_has_nobody_and_empty_arrays_keep_their_shapes(estimator):
    result = estimator.predict([np.zeros((120, 160, 3), np.uint8)])[0]
    if result.num_people:
        pytest.skip('seeded weights detect someone on black')
    assert result.cam_trans.shape == (0, 3) and result.joints.shape == (0, 71, 3)
    assert result.verts.shape == (0, 6890, 3)


@pytest.mark.parametrize('postprocess', ['compact', 'padded'])
def test_nan_outputs_are_dropped_with_a_warning(models_dir, seeded_checkpoint, astronaut,
                                                caplog, postprocess):
    from romp_ros.core import Estimator, EstimatorConfig
    from romp_ros.core.nets.checkpoint import load_into
    from romp_ros.core.nets.factory import build_model
    model = build_model('romp', 'hrnet32')
    load_into(model, seeded_checkpoint('romp', 'hrnet32'))
    with torch.no_grad():
        last = [m for m in model.final_layers[1].modules() if isinstance(m, torch.nn.Conv2d)][-1]
        last.bias[5] = float('nan')  # poisons one pose channel of every person
    est = Estimator(EstimatorConfig(model='romp', models_dir=str(models_dir), device='cpu',
                                    postprocess=postprocess), model=model)
    with caplog.at_level(logging.WARNING):
        result = est.predict([astronaut])[0]
    assert result.num_people == 0
    warnings = [rec.getMessage() for rec in caplog.records if 'NaN' in rec.getMessage()]
    assert len(warnings) == 1
    # the people found (above the threshold) are counted, not the padded layout's empty slots
    clean = Estimator(est.config.replace(checkpoint=str(seeded_checkpoint('romp', 'hrnet32'))))
    assert f'for {clean.predict([astronaut])[0].num_people} detection(s)' in warnings[0]


def test_missing_models_dir_and_checkpoint_name_the_fix(tmp_path, models_dir):
    from romp_ros.core import Estimator, EstimatorConfig, EstimatorError
    from romp_ros.core.body.model_files import ModelFilesError
    with pytest.raises(ModelFilesError, match='prepare-models'):
        Estimator(EstimatorConfig(models_dir=str(tmp_path / 'nope'), device='cpu'))
    with pytest.raises(EstimatorError, match=r'romp-ros download ROMP\.pkl'):
        Estimator(EstimatorConfig(models_dir=str(models_dir), device='cpu'))


def test_mismatched_checkpoint_fails_with_the_keys(models_dir, seeded_checkpoint):
    from romp_ros.core import Estimator, EstimatorConfig
    from romp_ros.core.nets.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match=r'(?i)missing|unexpected'):
        Estimator(EstimatorConfig(model='romp', models_dir=str(models_dir), device='cpu',
                                  checkpoint=str(seeded_checkpoint('bev', 'hrnet32'))))


def test_cuda_request_without_cuda_is_a_clear_error(models_dir):
    from romp_ros.core import Estimator, EstimatorConfig, EstimatorError
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    with pytest.raises(EstimatorError, match='CUDA is not available'):
        Estimator(EstimatorConfig(models_dir=str(models_dir), device='cuda:0'))


# -- cameras with a lens ---------------------------------------------------------------------


def _barrel_camera(width=640, height=480):
    """The issue's lens: 90 degrees horizontal field of view, k1 = -0.3, k2 = 0.1."""
    from romp_ros.core.geometry.camera_model import CameraModel
    f = width / 2.0
    return CameraModel(width, height, (f, f, width / 2.0, height / 2.0), 'plumb_bob',
                       (-0.3, 0.1, 0.0, 0.0, 0.0))


def _opencv_residual_px(result, camera):
    """(N, 24) distance of the joints, projected by OpenCV through the lens, to pj2d_org."""
    import cv2
    points = result.joints_camera()[:, :24].reshape(-1, 3).astype(np.float64)
    projected, _ = cv2.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                     camera.matrix(), np.asarray(camera.d))
    projected = projected.reshape(result.num_people, 24, 2)
    return np.linalg.norm(projected - result.pj2d_org[:, :24], axis=-1)


def test_a_distorted_camera_solves_through_the_lens_and_keeps_raw_keypoints(estimator,
                                                                              astronaut):
    import cv2

    from romp_ros.core.geometry import solve_translation_with_camera
    image = cv2.resize(astronaut, (640, 480), interpolation=cv2.INTER_AREA)
    camera = _barrel_camera()
    lens, pinhole = estimator.predict([image, image], intrinsics=[camera, camera.k])
    assert lens.num_people >= 3
    assert lens.intrinsics.distortion_model == 'plumb_bob'
    assert lens.intrinsics.d == camera.d and lens.intrinsics.source == 'camera'
    assert pinhole.intrinsics.distortion_model == 'none'
    assert lens.translation_solved.all()
    # the keypoints are the network's, in the raw image: the camera does not move them
    np.testing.assert_array_equal(lens.pj2d_org, pinhole.pj2d_org)
    # the translation is the lens solve of those keypoints
    expected = solve_translation_with_camera(torch.as_tensor(lens.joints[:, :24]),
                                             torch.as_tensor(lens.pj2d_org[:, :24]), camera)
    np.testing.assert_allclose(lens.cam_trans, expected.trans.numpy(), rtol=1e-4, atol=1e-4)
    # through the lens (OpenCV), the joints land on the keypoints; the K-only solve (the
    # lens ignored) misses them, most at the edges
    height_px = np.ptp(lens.pj2d_org[:, :24, 1], axis=1)
    ours = np.median(_opencv_residual_px(lens, camera), axis=1) / height_px
    k_only = np.median(_opencv_residual_px(pinhole, camera), axis=1) / height_px
    assert ours.mean() < 0.5 * k_only.mean(), (ours, k_only)
    edge = np.abs(lens.pj2d_org[:, 0, 0] - 320.0) > 0.5 * 320.0
    assert edge.any()
    assert ours[edge].mean() < 0.5 * k_only[edge].mean(), (ours[edge], k_only[edge])
    assert ours.max() < 0.1


def test_camera_models_must_have_the_image_size(estimator, astronaut):
    from romp_ros.core.geometry.intrinsics import IntrinsicsError
    from romp_ros.core.results import CameraIntrinsics
    with pytest.raises(IntrinsicsError, match=r'640x480 images but the image is 512x512'):
        estimator.predict([astronaut], intrinsics=_barrel_camera())
    with pytest.raises(IntrinsicsError, match='distortion_model'):
        estimator.predict([astronaut], intrinsics=CameraIntrinsics(
            400.0, 400.0, 256.0, 256.0, distortion_model='kannala_brandt', d=(0.1,)))


def test_translation_solved_is_reported_per_person(estimator, astronaut):
    """No camera: the reference's translation, not solved; a failed solve falls back too."""
    from romp_ros.core.results import CameraIntrinsics
    results = estimator.predict([astronaut, astronaut], intrinsics=[None, (600, 600, 256, 256)])
    assert not results[0].translation_solved.any()
    assert results[1].translation_solved.all()
    assert not results[0].translation_from_camera().any()
    assert results[1].translation_from_camera().all()
    # a person whose keypoints cannot be explained keeps the reference translation, flagged
    joints = torch.as_tensor(results[1].joints)
    keypoints = torch.as_tensor(results[1].pj2d_org).clone()
    keypoints[0] = float('nan')
    trans_ref = torch.zeros(len(joints), 3)
    batch_ids = torch.zeros(len(joints), dtype=torch.long)
    k = CameraIntrinsics(600.0, 600.0, 256.0, 256.0)
    for camera in (k, CameraIntrinsics(600.0, 600.0, 256.0, 256.0, distortion_model='plumb_bob',
                                       d=(-0.2, 0.05, 0.0, 0.0, 0.0))):
        table = estimator._image_table([(512, 512)], [camera])
        trans, solved = estimator._resolve_translation(joints, keypoints, trans_ref, batch_ids,
                                                       table, [camera], [(512, 512)])
        assert solved.tolist() == [False] + [True] * (len(joints) - 1)
        assert torch.equal(trans[0], trans_ref[0])


def test_bev_cam_is_in_romps_order(bev_estimator, astronaut):
    """BEV's [s, ty, tx] is reordered: cam projects the body centre onto its keypoints."""
    import cv2

    from romp_ros.core.geometry import normalised_to_original
    est = bev_estimator
    image = cv2.resize(astronaut, (640, 400), interpolation=cv2.INTER_AREA)  # not square
    result = est.predict([image])[0]
    assert result.num_people >= 2
    # BEV's body frame is centred between the hips; with the network's own 60 degree camera
    # that centre projects exactly to (tx, ty) of the normalised square
    side, pad_top = 640, (640 - 400) // 2
    pad_info = torch.tensor([pad_top, pad_top + 400, 0, 640, 400, 640], dtype=torch.float64)
    centre = normalised_to_original(torch.as_tensor(result.cam[:, None, 1:3], dtype=torch.float64),
                                    pad_info)[:, 0].numpy()
    focal = side / 2.0 / np.tan(np.radians(30.0))
    trans = result.cam_trans.astype(np.float64)
    projected = trans[:, :2] / trans[:, 2:] * focal + np.array([320.0, 200.0])
    np.testing.assert_allclose(projected, centre, atol=0.05)


def test_wide_tiling_keeps_the_lens_and_the_per_person_flags(estimator, astronaut):
    """Each window is the full camera shifted (lens kept); the merged people stay consistent."""
    from romp_ros.core import Estimator
    from romp_ros.core.geometry import solve_translation_with_camera
    from romp_ros.core.geometry.camera_model import CameraModel
    tiled = Estimator(estimator.config.replace(wide_tiling=True, optimize=False),
                      model=estimator.model)
    panorama = np.concatenate([astronaut] * 3, axis=1)  # 1536 x 512
    camera = CameraModel(1536, 512, (700.0, 700.0, 768.0, 256.0), 'plumb_bob',
                         (-0.1, 0.01, 0.0, 0.0, 0.0))
    result = tiled.predict([panorama], intrinsics=camera)[0]
    assert result.num_people >= 3 and result.intrinsics.distortion_model == 'plumb_bob'
    assert result.translation_solved.shape == (result.num_people,)
    assert result.translation_solved.all()
    expected = solve_translation_with_camera(torch.as_tensor(result.joints[:, :24]),
                                             torch.as_tensor(result.pj2d_org[:, :24]), camera)
    np.testing.assert_allclose(result.cam_trans, expected.trans.numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('model', ['romp', 'bev'])
def test_posing_joints_only_gives_the_joints_of_the_full_body(estimator, bev_estimator, model):
    """pose_bodies without meshes (host NumPy) equals the torch body model with meshes, in
    the same body frame (BEV's centred between the hips), for a mix of adults and infants."""
    est = estimator if model == 'romp' else bev_estimator
    rng = np.random.default_rng(8)
    num_betas = 10 if model == 'romp' else 11
    betas = rng.normal(size=(4, num_betas)).astype(np.float32)
    if model == 'bev':
        betas[:, 10] = [0.0, 0.5, 1.0, 2.0]  # two of them infants (SMIL)
    thetas = rng.normal(scale=0.4, size=(4, 72)).astype(np.float32)
    joints_only, no_verts = est.pose_bodies(betas, thetas, with_verts=False)
    joints, verts = est.pose_bodies(betas, thetas, with_verts=True)
    assert no_verts is None and verts.shape == (4, 6890, 3)
    np.testing.assert_allclose(joints_only, joints, atol=1e-5, rtol=0)
    if model == 'bev':  # the body frame is the hips' midpoint
        from romp_ros.core.estimator import BEV_ROOT_JOINTS
        np.testing.assert_allclose(joints_only[:, list(BEV_ROOT_JOINTS)].mean(axis=1), 0.0,
                                   atol=1e-6)


def test_submit_then_result_is_predict(estimator, astronaut):
    """submit() starts a batch and result() finishes it (once); predict() is the two."""
    images = [astronaut, np.ascontiguousarray(astronaut[:300, 100:])]
    pending = estimator.submit(images, intrinsics=[None, (500.0, 500.0, 206.0, 150.0)])
    first = pending.result()
    assert pending.result() is first
    want = estimator.predict(images, intrinsics=[None, (500.0, 500.0, 206.0, 150.0)])
    assert [r.num_people for r in first] == [r.num_people for r in want]
    assert first[0].num_people >= 1
    for got, expected in zip(first, want, strict=True):
        np.testing.assert_array_equal(got.joints, expected.joints)
        np.testing.assert_array_equal(got.cam_trans, expected.cam_trans)
        np.testing.assert_array_equal(got.translation_solved, expected.translation_solved)
