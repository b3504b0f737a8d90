"""Augmentation: keypoints stay on the body, flips, the camera of the input, SMPL labels."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES
from romp_ros.core.body.smpl import BodyModel
from romp_ros.data.augment import (
    AugmentConfig,
    AugmentParams,
    LabelError,
    Occluder,
    apply_params,
    augment,
    labels_from_frame,
    sample_params,
    transform_labels,
    warp_image,
)
from romp_ros.data.dataset_format import CameraLabel, FrameLabel, PersonLabel
from romp_ros.data.joint_sets import COCO_17, SMPL_24, TRAINING_71

SIZE = 128
K = np.array([[300.0, 0.0, 170.0], [0.0, 300.0, 115.0], [0.0, 0.0, 1.0]])
HEIGHT, WIDTH = 240, 320
BODY_COLOUR = (200, 60, 60)


@dataclasses.dataclass
class Scene:
    image: np.ndarray  # the body's silhouette on black
    frame: FrameLabel  # 71 training joints, camera, SMPL labels
    body: BodyModel


def _pose_body(body, betas, pose):
    out = body(torch.tensor(betas, dtype=torch.float32), torch.tensor(pose, dtype=torch.float32))
    return out.verts.numpy().astype(np.float64), out.joints.numpy().astype(np.float64)


def _project(points, k_mat=K):
    uvw = points @ k_mat.T
    return uvw[..., :2] / uvw[..., 2:]


@pytest.fixture(scope='module')
def scene(models_dir) -> Scene:
    body = BodyModel.from_models_dir(models_dir)
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.15, (1, 72))
    pose[0, :3] = [np.pi, 0.0, 0.0]  # y up -> the camera's y down, facing the camera
    pose[0, 50:53] = [0.0, 0.0, -1.0]  # raise an arm to make it asymmetric
    betas = np.zeros((1, 10))
    translation = np.array([0.35, 0.05, 3.2])
    verts, joints = _pose_body(body, betas, pose)
    verts, joints = verts[0] + translation, joints[0] + translation
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels = np.round(_project(verts) * 16).astype(np.int32)  # 4 fractional bits
    for face in body.faces.numpy():
        cv2.fillConvexPoly(image, pixels[face], BODY_COLOUR, lineType=cv2.LINE_8, shift=4)
    keypoints = np.concatenate([_project(joints), np.full((71, 1), 2.0)], axis=1)
    person = PersonLabel(track_id=3, keypoints_2d=keypoints, joints_3d=joints,
                         smpl_pose=pose[0], smpl_shape=betas[0], translation=translation)
    camera = CameraLabel(WIDTH, HEIGHT, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    return Scene(image, FrameLabel(0, 'scene.png', (person,), camera=camera), body)


def _on_silhouette(sample, check=range(24)) -> tuple[int, int]:
    """(keypoints checked, keypoints on the body) among the SMPL joints with weight 1."""
    body = sample.image.max(axis=2) > 40
    size = sample.input_size
    checked = hits = 0
    for j in check:
        u, v, weight = sample.keypoints_2d[0, j]
        if weight == 0:
            continue
        col, row = int((u + 1) / 2 * size), int((v + 1) / 2 * size)
        window = body[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
        checked += 1
        hits += bool(window.any())
    return checked, hits


GEOMETRIES = {
    'identity': AugmentParams(),
    'zoom_in': AugmentParams(scale=1.8),
    'zoom_out': AugmentParams(scale=0.45),
    'rotate': AugmentParams(rotation_deg=35.0),
    'shift': AugmentParams(shift=(20.0, -15.0)),
    'flip': AugmentParams(flip=True),
    'all': AugmentParams(scale=1.3, rotation_deg=-25.0, shift=(-10.0, 8.0), flip=True),
}


@pytest.mark.parametrize('name', sorted(GEOMETRIES))
def test_keypoints_stay_on_the_body(scene, name):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    sample = apply_params(scene.image, labels, GEOMETRIES[name], SIZE)
    sample.check()
    checked, hits = _on_silhouette(sample)
    assert checked >= 12, f'{name}: only {checked} keypoints inside the input'
    assert hits == checked, f'{name}: {checked - hits} keypoints off the body'


def test_photometric_changes_keep_labels_and_the_body(scene):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    geometry = AugmentParams(scale=1.2, rotation_deg=10.0)
    plain = apply_params(scene.image, labels, geometry, SIZE)
    occluders = (Occluder((40, 40, 70, 90), 'colour', (0, 0, 0)),
                 Occluder((10, 10, 30, 30), 'noise', seed=3),
                 Occluder((80, 20, 100, 60), 'texture', source=(0, 0)))
    for params in (dataclasses.replace(geometry, brightness=0.8, contrast=1.2, saturation=0.7),
                   dataclasses.replace(geometry, blur_sigma=1.5),
                   dataclasses.replace(geometry, occluders=occluders)):
        changed = apply_params(scene.image, labels, params, SIZE)
        assert np.array_equal(changed.keypoints_2d, plain.keypoints_2d)
        assert not np.array_equal(changed.image, plain.image)
        if not params.occluders:
            checked, hits = _on_silhouette(changed)
            assert hits == checked > 10
    occluded = apply_params(scene.image, labels, dataclasses.replace(
        geometry, occluders=occluders), SIZE)
    assert (occluded.image[40:90, 40:70] == 0).all()


def test_random_augmentation_keeps_keypoints_on_the_body(scene):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    config = AugmentConfig(input_size=SIZE, rotation_prob=0.7, occlusion_prob=1.0)
    checked_total = 0
    for seed in range(12):
        params = sample_params(config, np.random.default_rng(seed), scene.image.shape[:2],
                               labels)
        geometry = AugmentParams(scale=params.scale, rotation_deg=params.rotation_deg,
                                 shift=params.shift, flip=params.flip)
        sample = apply_params(scene.image, labels, geometry, SIZE)
        checked, hits = _on_silhouette(sample)
        assert hits == checked, f'seed {seed}: {params}'
        checked_total += checked
    assert checked_total > 100


def test_flip_swaps_left_and_right(scene):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    plain = apply_params(scene.image, labels, AugmentParams(), SIZE)
    flipped = apply_params(scene.image, labels, AugmentParams(flip=True), SIZE)
    left, right = ALL_JOINT_NAMES.index('l_wrist'), ALL_JOINT_NAMES.index('r_wrist')
    # the flipped sample's left wrist is the mirror image of the original right wrist
    assert np.allclose(flipped.keypoints_2d[0, left, :2],
                       plain.keypoints_2d[0, right, :2] * [-1.0, 1.0], atol=1e-5)
    assert np.allclose(flipped.joints_3d[0, left], plain.joints_3d[0, right] * [-1, 1, 1],
                       atol=1e-5)
    assert np.array_equal(flipped.image, plain.image[:, ::-1])


def test_flip_twice_is_identity(scene):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    hw = scene.image.shape[:2]
    once = transform_labels(labels, hw, AugmentParams(flip=True), SIZE)
    twice = transform_labels(once, (SIZE, SIZE), AugmentParams(flip=True), SIZE)
    plain = transform_labels(labels, hw, AugmentParams(), SIZE)
    for field in ('keypoints_2d', 'joints_3d', 'smpl_pose', 'translation', 'camera_k'):
        assert np.allclose(getattr(twice, field), getattr(plain, field), atol=1e-9), field
    image = warp_image(scene.image, AugmentParams(), SIZE)
    again = warp_image(warp_image(scene.image, AugmentParams(flip=True), SIZE),
                       AugmentParams(flip=True), SIZE)
    assert np.array_equal(again, image)


@pytest.mark.parametrize('seed', range(6))
def test_camera_of_the_input_projects_3d_onto_2d(scene, seed):
    config = AugmentConfig(input_size=SIZE, rotation_prob=1.0, rotation_deg=60.0,
                           scale_range=(0.5, 2.0), translate=0.2)
    sample = augment(scene.image, scene.frame, TRAINING_71.mapping(), config,
                     np.random.default_rng(seed))
    keep = sample.keypoints_2d[0, :, 2] > 0
    assert keep.sum() >= 5
    projected = _project(sample.joints_3d[0].astype(np.float64), sample.camera_k.astype(float))
    normalised = projected / SIZE * 2.0 - 1.0
    assert np.abs(normalised[keep] - sample.keypoints_2d[0, keep, :2]).max() < 1e-4
    # and the weights are exactly "inside the input"
    inside = (np.abs(normalised) <= 1.0).all(1)
    assert np.array_equal(keep, inside)


@pytest.mark.parametrize('params', [AugmentParams(rotation_deg=40.0),
                                    AugmentParams(flip=True),
                                    AugmentParams(rotation_deg=-70.0, flip=True, scale=1.5)])
def test_smpl_labels_follow_the_image(scene, params):
    """The body posed with the augmented pose, shape and translation has the augmented
    3D joints: orientation, translation (about the root joint) and mirror are consistent."""
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    sample = apply_params(scene.image, labels, params, SIZE)
    assert sample.has_translation[0] and sample.has_pose[0]
    _, joints = _pose_body(scene.body, sample.smpl_shape[:, :10], sample.smpl_pose)
    posed = joints[0] + sample.translation[0]
    assert np.abs(posed[:24] - sample.joints_3d[0, :24]).max() < 1e-4
    assert np.abs(posed - sample.joints_3d[0]).max() < 0.03  # synthetic vertex picks


def test_rotation_without_a_root_joint_drops_the_translation(scene):
    person = scene.frame.people[0]
    no_pelvis = dataclasses.replace(person, joints_3d=None)
    frame = dataclasses.replace(scene.frame, people=(no_pelvis,))
    labels = labels_from_frame(frame, TRAINING_71.mapping())
    rotated = apply_params(scene.image, labels, AugmentParams(rotation_deg=20.0), SIZE)
    assert not rotated.has_translation[0] and rotated.has_pose[0]
    assert (rotated.translation == 0).all()
    flipped = apply_params(scene.image, labels, AugmentParams(flip=True), SIZE)
    assert flipped.has_translation[0]


def test_people_outside_the_input_are_dropped_and_cropped_joints_weigh_zero(scene):
    labels = labels_from_frame(scene.frame, TRAINING_71.mapping())
    zoomed = apply_params(scene.image, labels, AugmentParams(scale=4.0), SIZE)
    weights = zoomed.keypoints_2d[0, :, 2]
    outside = (np.abs(zoomed.keypoints_2d[0, :, :2]) > 1).any(1)
    assert outside.any() and (weights[outside] == 0).all() and (weights[~outside] == 1).all()
    gone = apply_params(scene.image, labels, AugmentParams(shift=(SIZE * 2.0, 0.0)), SIZE)
    assert gone.num_people == 0
    gone.check()


def test_2d_only_source_without_camera(scene):
    keypoints = np.zeros((17, 3))
    keypoints[:, :2] = [[100 + 3 * k, 80 + 4 * k] for k in range(17)]
    keypoints[:, 2] = 2
    keypoints[4] = 0  # an unlabelled ear
    frame = FrameLabel(0, 'x.png', (PersonLabel(keypoints_2d=keypoints,
                                                bbox=np.array([90, 70, 160, 160])),))
    sample = augment(scene.image, frame, COCO_17.mapping(),
                     AugmentConfig(input_size=SIZE), np.random.default_rng(0))
    sample.check()
    assert np.isnan(sample.camera_k).all()
    assert not (sample.has_pose | sample.has_translation | sample.has_joints_3d).any()
    assert np.isnan(sample.joints_3d).all()
    assert sample.keypoints_2d[0, :, 2].sum() <= 16
    hip = ALL_JOINT_NAMES.index('lsp_l_hip')
    assert sample.keypoints_2d[0, ALL_JOINT_NAMES.index('l_hip'), 2] == 0
    assert sample.keypoints_2d[0, hip, 2] in (0.0, 1.0)


def test_3d_without_2d_is_projected_with_the_camera(scene):
    person = dataclasses.replace(scene.frame.people[0], keypoints_2d=None)
    frame = dataclasses.replace(scene.frame, people=(person,))
    labels = labels_from_frame(frame, TRAINING_71.mapping())
    reference = labels_from_frame(scene.frame, TRAINING_71.mapping())
    assert np.allclose(labels.keypoints_2d[..., :2], reference.keypoints_2d[..., :2])


def test_bad_labels_raise_label_errors(scene):
    person = scene.frame.people[0]
    bad_kp = person.keypoints_2d.copy()
    bad_kp[3, 0] = np.nan
    cases = {
        'non-finite label': dataclasses.replace(person, keypoints_2d=bad_kp),
        'wrong keypoint count': dataclasses.replace(person, keypoints_2d=bad_kp[:70]),
        'bad label shape': dataclasses.replace(person, translation=np.zeros(2)),
    }
    for reason, broken in cases.items():
        frame = dataclasses.replace(scene.frame, people=(broken,))
        with pytest.raises(LabelError, match=reason):
            labels_from_frame(frame, TRAINING_71.mapping())
    # NaN in an unlabelled keypoint is fine
    unlabelled = bad_kp.copy()
    unlabelled[3, 2] = 0
    frame = dataclasses.replace(scene.frame, people=(dataclasses.replace(
        person, keypoints_2d=unlabelled),))
    assert labels_from_frame(frame, TRAINING_71.mapping()).keypoints_2d[0, 3, 2] == 0
    with pytest.raises(LabelError, match='wrong keypoint count'):
        labels_from_frame(scene.frame, SMPL_24.mapping())


def test_augment_is_deterministic_per_generator(scene):
    config = AugmentConfig(input_size=SIZE, occlusion_prob=1.0, blur_prob=0.5)
    mapping = TRAINING_71.mapping()
    first = augment(scene.image, scene.frame, mapping, config, np.random.default_rng(7))
    second = augment(scene.image, scene.frame, mapping, config, np.random.default_rng(7))
    other = augment(scene.image, scene.frame, mapping, config, np.random.default_rng(8))
    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.keypoints_2d, second.keypoints_2d)
    assert not np.array_equal(first.image, other.image)


def test_identity_config_reproduces_the_inference_geometry(scene):
    """No augmentation: the image padded to a centred square and resized, as at inference
    (bilinear here; the inference resize is bicubic, so compare with bilinear)."""
    size = 256  # a downscale above 1/2: no pre-filtering
    sample = augment(scene.image, scene.frame, TRAINING_71.mapping(),
                     AugmentConfig.identity(size), np.random.default_rng(0))
    padded = np.zeros((WIDTH, WIDTH, 3), np.uint8)
    top = (WIDTH - HEIGHT) // 2
    padded[top:top + HEIGHT] = scene.image
    expected = cv2.resize(padded, (size, size), interpolation=cv2.INTER_LINEAR)
    assert np.abs(sample.image.astype(int) - expected).max() <= 1
    fit = size / WIDTH
    assert np.allclose(sample.camera_k, [[K[0, 0] * fit, 0, K[0, 2] * fit],
                                         [0, K[1, 1] * fit, (K[1, 2] + top) * fit], [0, 0, 1]])


def test_config_is_validated():
    with pytest.raises(ValueError, match='input_size'):
        AugmentConfig(input_size=8)
    with pytest.raises(ValueError, match='scale_range'):
        AugmentConfig(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match='flip_prob'):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match='unknown augmentation keys'):
        AugmentConfig.from_mapping({'rotaton_deg': 3})
    assert AugmentConfig.from_mapping({'scale_range': [0.5, 2]}).scale_range == (0.5, 2.0)
