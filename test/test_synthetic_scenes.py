"""Rendered synthetic scenes: the ground truth agrees with the body model, OpenCV's camera
models and the rendered pixels; people stand on the ground in view; runs are reproducible."""

from __future__ import annotations

import math
import shutil

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import torch

from romp_ros.core.body.model_files import MANIFEST_NAME, MODEL_FILE_NAMES
from romp_ros.synthetic import backgrounds, poses
from romp_ros.synthetic.scene_spec import SceneSpec, SceneSpecError
from romp_ros.synthetic.scenes import MAX_AGE_OFFSET, SceneGenerator, body_model_for_scenes

W, H = 128, 96


@pytest.fixture(scope='module')
def body(models_dir):
    return body_model_for_scenes(models_dir)


def _spec(**overrides) -> SceneSpec:
    base = {'width': W, 'height': H, 'people': (2, 4), 'supersample': 1}
    base.update(overrides)
    return SceneSpec(**base)


@pytest.fixture(scope='module')
def lens_frames(body):
    """Frames of pinhole, plumb_bob / rational and fisheye cameras (2 frames each)."""
    frames = []
    for seed, extra in ((0, {'distortion_prob': 0.0}),
                        (1, {'distortion_prob': 1.0, 'fisheye_share': 0.0}),
                        (2, {'distortion_prob': 1.0, 'fisheye_share': 1.0,
                             'hfov_deg': (90.0, 125.0)})):
        frames += list(SceneGenerator(_spec(**extra), body).frames(2, seed=seed))
    return frames


def _opencv_project(camera, points: np.ndarray) -> np.ndarray:
    zero = np.zeros(3)
    if camera.distortion_model == 'equidistant':
        out, _ = cv2.fisheye.projectPoints(points.reshape(1, -1, 3), zero, zero,
                                           camera.matrix(), np.array(camera.d))
    else:
        out, _ = cv2.projectPoints(points.reshape(-1, 1, 3), zero, zero, camera.matrix(),
                                   np.array(camera.d) if camera.d else None)
    return out.reshape(-1, 2)


def test_lens_variety(lens_frames):
    models = {f.camera.distortion_model for f in lens_frames}
    assert {'none', 'equidistant'} <= models
    assert models & {'plumb_bob', 'rational_polynomial'}
    assert sum(len(f.people) for f in lens_frames) >= 10


def test_joints_are_the_body_model_output_plus_translation(lens_frames, body):
    people = [p for f in lens_frames for p in f.people]
    betas = torch.tensor(np.stack([p.smpl_shape for p in people]), dtype=torch.float32)
    thetas = torch.tensor(np.stack([p.smpl_pose for p in people]), dtype=torch.float32)
    with torch.no_grad():
        out = body(betas, thetas)
    for k, person in enumerate(people):
        expected = out.joints[k].double().numpy() + person.translation
        np.testing.assert_allclose(person.joints_3d, expected, atol=1e-5)
        assert person.joints_3d.shape == (71, 3) and person.smpl_shape.shape == (11,)


def test_keypoints_are_opencv_projections_with_visibility(lens_frames):
    checked = 0
    for frame in lens_frames:
        cam = frame.camera
        for person in frame.people:
            kp = person.keypoints_2d
            vis = kp[:, 2]
            assert set(np.unique(vis)) <= {0.0, 1.0, 2.0}
            labelled = vis > 0
            ref = _opencv_project(cam, person.joints_3d[labelled])
            np.testing.assert_allclose(kp[labelled, :2], ref, atol=1e-4)
            inside = ((kp[:, 0] >= 0) & (kp[:, 0] < cam.width) & (kp[:, 1] >= 0)
                      & (kp[:, 1] < cam.height))
            # labelled exactly when the projection lands inside the image
            assert np.array_equal(labelled, inside & labelled)
            front = person.joints_3d[:, 2] > 0.2
            in_image = front & ~labelled
            if in_image.any() and cam.distortion_model != 'equidistant':
                outside = _opencv_project(cam, person.joints_3d[in_image])
                lies_inside = ((outside[:, 0] >= 0) & (outside[:, 0] < cam.width)
                               & (outside[:, 1] >= 0) & (outside[:, 1] < cam.height))
                # an unlabelled joint in front of the camera projects outside the image
                # (or beyond the lens's valid field, where its model folds back)
                assert not (lies_inside & (np.abs(outside - kp[in_image, :2]).max(1) < 1e-3)
                            ).any()
            checked += int(labelled.sum())
    assert checked > 200


def test_visible_keypoints_lie_on_their_own_silhouette(lens_frames):
    """Visible body joints (SMPL's first 22: inside the body, not the thin extremities) of
    people at least 30 px tall land on their own rendered pixels."""
    hits = total = 0
    for frame in lens_frames:
        for index, person in enumerate(frame.people):
            if person.bbox[3] - person.bbox[1] < 30:
                continue
            kp = person.keypoints_2d[:22]
            visible = kp[:, 2] == 2
            cols = np.clip(kp[visible, 0].astype(int), 0, frame.camera.width - 1)
            rows = np.clip(kp[visible, 1].astype(int), 0, frame.camera.height - 1)
            hits += int((frame.person_index[rows, cols] == index).sum())
            total += int(visible.sum())
    assert total > 50
    assert hits / total > 0.9, hits / total


def test_occluded_keypoints_exist_and_boxes_hold_the_visible_body(lens_frames):
    vis = np.concatenate([p.keypoints_2d[:, 2] for f in lens_frames for p in f.people])
    assert (vis == 1).any() and (vis == 2).any()
    for frame in lens_frames:
        for index, person in enumerate(frame.people):
            rows, cols = np.nonzero(frame.person_index == index)
            assert len(rows) == person.visible_pixels >= 8
            u0, v0, u1, v1 = person.bbox
            assert 0 <= u0 < u1 <= frame.camera.width and 0 <= v0 < v1 <= frame.camera.height
            # the box of the projected body holds the person's rendered pixels
            assert np.mean((cols + 0.5 >= u0 - 1) & (cols + 0.5 <= u1 + 1)
                           & (rows + 0.5 >= v0 - 1) & (rows + 0.5 <= v1 + 1)) > 0.97


def test_people_stand_upright_on_the_ground_in_range(lens_frames, body):
    spec = _spec()
    for frame in lens_frames:
        level_from_cam = frame.mount.cam_from_level()  # rows: v_level = v_cam @ R
        for person in frame.people:
            with torch.no_grad():
                out = body(torch.tensor(person.smpl_shape[None], dtype=torch.float32),
                           torch.tensor(person.smpl_pose[None], dtype=torch.float32))
            verts = out.verts[0].double().numpy() + person.translation
            verts_level = verts @ level_from_cam
            # the lowest vertex (largest y: y points down) touches the ground
            assert verts_level[:, 1].max() == pytest.approx(frame.mount.height_m, abs=1e-3)
            pelvis = person.joints_3d[0] @ level_from_cam
            assert spec.distance_m[0] - 1e-6 <= math.hypot(pelvis[0], pelvis[2]) <= (
                spec.distance_m[1] + 1e-6)
            # upright: the body's up axis (SMPL +y) points up (-y) in the level frame
            up_cam = Rotation.from_rotvec(person.smpl_pose[:3]).apply([0.0, 1.0, 0.0])
            tilt = math.degrees(math.acos(-(up_cam @ level_from_cam)[1]))
            assert tilt < 20.0


def test_same_seed_same_frames_other_seed_other_frames(body):
    spec = _spec(distortion_prob=0.5)
    first = list(SceneGenerator(spec, body).frames(2, seed=7))
    again = list(SceneGenerator(spec, body).frames(2, seed=7))
    other = list(SceneGenerator(spec, body).frames(2, seed=8))
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.image, b.image) and a.camera == b.camera
        assert len(a.people) == len(b.people)
        for p, q in zip(a.people, b.people, strict=True):
            assert np.array_equal(p.keypoints_2d, q.keypoints_2d)
            assert np.array_equal(p.smpl_pose, q.smpl_pose)
    assert not np.array_equal(first[0].image, other[0].image)


def test_children_are_smaller_through_the_age_offset(body):
    frames = list(SceneGenerator(_spec(child_prob=1.0, people=(3, 3)), body).frames(2, seed=3))
    kids = [p for f in frames for p in f.people]
    assert kids
    for kid in kids:
        assert 0.3 <= kid.age_offset <= MAX_AGE_OFFSET
        assert kid.smpl_shape[10] == pytest.approx(kid.age_offset)
        adult_shape = kid.smpl_shape.copy()
        adult_shape[10] = 0.0
        with torch.no_grad():
            rest = body(torch.tensor(np.stack([kid.smpl_shape, adult_shape]),
                                     dtype=torch.float32), torch.zeros(2, 72))
        heights = np.ptp(rest.verts[:, :, 1].numpy(), axis=1)
        assert heights[0] < 0.9 * heights[1]


def test_plain_smpl_has_no_children_and_ten_betas(models_dir, tmp_path):
    for name in (MODEL_FILE_NAMES['smpl'], MANIFEST_NAME):
        shutil.copy2(models_dir / name, tmp_path / name)
    smpl = body_model_for_scenes(tmp_path)
    assert smpl.kind == 'smpl'
    frames = list(SceneGenerator(_spec(child_prob=1.0), smpl).frames(1, seed=0))
    people = frames[0].people
    assert people and all(p.smpl_shape.shape == (10,) and p.age_offset == 0.0 for p in people)


def test_sequences_keep_identities_and_move_smoothly(body):
    spec = _spec(sequence=True, fps=10.0, people=(3, 3), walking_prob=1.0,
                 speed_m_s=(1.0, 1.5), distortion_prob=0.0)
    frames = list(SceneGenerator(spec, body).frames(4, seed=4))
    assert [f.stamp_ns for f in frames] == [0, 100_000_000, 200_000_000, 300_000_000]
    assert {f.sequence for f in frames} == {'seq00000'}
    assert len({f.camera for f in frames}) == 1
    by_id: dict[int, list] = {}
    for f in frames:
        ids = [p.track_id for p in f.people]
        assert len(ids) == len(set(ids))
        for p in f.people:
            by_id.setdefault(p.track_id, []).append((f.index, p.joints_3d[0]))
    tracked = [v for v in by_id.values() if len(v) >= 3]
    assert tracked
    for track in tracked:
        for (i, a), (j, b) in zip(track[:-1], track[1:], strict=True):
            # at most 1.5 m/s (plus the push-apart of close people) between frames
            assert np.linalg.norm(b - a) / ((j - i) / spec.fps) < 2.5


def test_sequences_let_people_leave_and_enter(body):
    spec = SceneSpec(width=48, height=32, people=(2, 2), hfov_deg=(30.0, 30.0),
                     distance_m=(2.0, 4.0), walking_prob=1.0, speed_m_s=(1.5, 1.8),
                     sequence=True, fps=2.0, supersample=1, distortion_prob=0.0,
                     min_visible_pixels=1)
    frames = list(SceneGenerator(spec, body).frames(16, seed=0))
    seen = [{p.track_id for p in f.people} for f in frames]
    first, last = seen[0], set().union(*seen[-3:])
    assert first - last, 'nobody left the view'
    assert max(set().union(*seen)) >= 2, 'nobody new entered the view'


def test_several_sequences_restart_the_scene(body):
    spec = _spec(sequence=True, sequence_length=2, distortion_prob=0.0)
    frames = list(SceneGenerator(spec, body).frames(4, seed=1))
    assert [f.sequence for f in frames] == ['seq00000', 'seq00000', 'seq00001', 'seq00001']
    assert frames[0].camera == frames[1].camera != frames[2].camera
    assert [f.stamp_ns for f in frames] == sorted(f.stamp_ns for f in frames)


@pytest.mark.parametrize('overrides, field', [
    ({'people': (5, 2)}, 'people'),
    ({'width': 0}, 'size'),
    ({'distance_m': (3.0, 1.0)}, 'distance_m'),
    ({'distortion_prob': 1.5}, 'distortion_prob'),
    ({'hfov_deg': (60.0, 140.0)}, 'fisheye'),
    ({'fps': 0.0}, 'fps'),
])
def test_bad_specs_are_refused_with_the_field_named(overrides, field):
    with pytest.raises(SceneSpecError, match=field):
        SceneSpec(**overrides)


# ------------------------------------------------------------------------------------ poses

def test_body_poses_stay_within_the_joint_limits():
    rng = np.random.default_rng(0)
    noise = poses.sample_pose_noise(rng, 200, 1.0)
    pose = poses.body_pose(rng.uniform(0, 2 * np.pi, 200), rng.uniform(0, 2, 200),
                           noise.at(0.3))
    euler = Rotation.from_rotvec(pose.reshape(-1, 3)).as_euler('XYZ').reshape(200, 23, 3)
    # the other Euler triple of the same rotation: (a + pi, pi - b, c + pi), wrapped
    other = np.stack([euler[..., 0] + np.pi, np.pi - euler[..., 1], euler[..., 2] + np.pi], -1)
    other = (other + np.pi) % (2 * np.pi) - np.pi
    limits = poses.JOINT_LIMITS

    def within(angles):
        return np.all((angles >= limits[..., 0] - 1e-6) & (angles <= limits[..., 1] + 1e-6),
                      axis=-1)

    assert np.all(within(euler) | within(other))
    # the noise really explores the ranges: most joint axes cover half their span
    span = (euler.max(0) - euler.min(0)) / (limits[..., 1] - limits[..., 0])
    assert np.median(span) > 0.5


def test_joint_limits_mirror_left_and_right():
    from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
    names = SMPL_JOINT_NAMES[1:]
    for i, name in enumerate(names):
        if name.startswith('l_'):
            left, right = poses.JOINT_LIMITS[i], poses.JOINT_LIMITS[names.index('r_' + name[2:])]
            np.testing.assert_allclose(right[0], left[0])
            np.testing.assert_allclose(right[1:], -left[1:, ::-1])


def test_gait_swings_legs_and_arms_in_opposition(body):
    # phase pi/2: the left leg is forward, so the right arm is forward
    thetas = np.zeros((1, 72))
    thetas[0, 3:] = poses.body_pose(np.array([np.pi / 2]), np.array([1.4]))
    with torch.no_grad():
        joints = body(torch.zeros(1, 11), torch.tensor(thetas, dtype=torch.float32)).joints[0]
    z = joints[:, 2].numpy()  # SMPL body frame: z forward
    assert z[7] > z[8] + 0.1  # l_ankle ahead of r_ankle
    assert z[21] > z[20] + 0.05  # r_wrist ahead of l_wrist
    assert joints[20, 1] < joints[17, 1] - 0.3 and joints[21, 1] < joints[16, 1] - 0.3


def test_upright_people_face_their_heading():
    rot = poses.upright_rotation(np.array([0.0, np.pi / 2]))
    # SMPL up (+y) -> level up (-y); forward (+z) -> towards the camera (-z) at heading 0
    np.testing.assert_allclose(rot[0] @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rot[0] @ [0, 0, 1], [0, 0, -1], atol=1e-12)
    vx, vz = -1.0, 0.0  # walking to the left of the image
    heading = poses.heading_from_velocity(vx, vz)
    facing = poses.upright_rotation(np.array([heading]))[0] @ [0, 0, 1]
    np.testing.assert_allclose(facing, [vx, 0, vz], atol=1e-12)
    # a camera pitched down sees the level frame's forward axis tilted upwards in its image
    cam = poses.camera_from_level(math.radians(10))
    assert (cam @ [0, 0, 1])[1] < 0


# ------------------------------------------------------------------------------ backgrounds

def test_procedural_textures_and_photos():
    rng = np.random.default_rng(0)
    for kind in backgrounds.TEXTURE_KINDS:
        image = backgrounds.procedural_texture(rng, 40, 60, kind)
        assert image.shape == (40, 60, 3) and image.dtype == np.uint8
        assert image.std() > 1.0, kind
    photos = backgrounds.PhotoLibrary()
    assert photos.available  # scikit-image is a test dependency
    image = backgrounds.photo_background(rng, photos, 50, 70)
    assert image.shape == (50, 70, 3) and image.std() > 1.0


def test_ground_plane_fills_below_the_horizon():
    rng = np.random.default_rng(0)
    vv, uu = np.mgrid[0:40, 0:60] + 0.5
    rays = np.stack([(uu - 30) / 50, (vv - 20) / 50, np.ones_like(uu)], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    colours, mask = backgrounds.ground_plane(rng, rays, 1.5, 1 / 50)
    assert mask[:20].sum() == 0 and mask[21:].all()
    assert colours.shape == (40, 60, 3)
