"""FrameTracker: stable ids on FrameResults, and meshes rebuilt from smoothed parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from romp_ros.core.results import CameraIntrinsics, FrameResult

K = CameraIntrinsics(fx=800.0, fy=800.0, cx=640.0, cy=360.0)


@pytest.fixture(scope='module')
def body(models_dir):
    from romp_ros.core.body.joint_poser import JointPoser
    from romp_ros.core.body.model_files import load_body_model_arrays
    from romp_ros.core.body.smpl import BodyModel
    arrays = load_body_model_arrays(models_dir, 'smpl')
    model = BodyModel(arrays).eval()
    model.joints_only = JointPoser(arrays)  # what Estimator.pose_bodies uses without meshes
    return model


def _repose(body, calls=None):
    def run(betas, thetas, with_verts=True):
        if calls is not None:
            calls.append(with_verts)
        with torch.no_grad():
            if not with_verts:
                return body.joints_only(betas, thetas), None
            out = body(torch.as_tensor(betas), torch.as_tensor(thetas))
        return out.joints.numpy(), out.verts.numpy()
    return run


def _frame(body, thetas, betas, trans, confs):
    joints, verts = _repose(body)(betas, thetas)
    cam_pts = joints + trans[:, None]
    pj2d = cam_pts[..., :2] / cam_pts[..., 2:3] * [K.fx, K.fy] + [K.cx, K.cy]
    n = len(confs)
    return FrameResult(cam=np.tile([0.5, 0.0, 0.0], (n, 1)).astype(np.float32),
                       smpl_thetas=thetas, smpl_betas=betas, cam_trans=trans.astype(np.float32),
                       joints=joints, verts=verts, pj2d_org=pj2d.astype(np.float32),
                       center_confs=np.asarray(confs, np.float32),
                       joint_names=tuple(body.joint_names), image_size=(720, 1280),
                       intrinsics=K)


def _noisy_sequence(body, frames=40, seed=0):
    """Two still people with per-frame estimation noise on pose, shape and translation."""
    rng = np.random.default_rng(seed)
    base_thetas = rng.normal(scale=0.2, size=(2, 72)).astype(np.float32)
    base_thetas[:, 66:] = 0
    base_betas = rng.normal(scale=0.5, size=(2, 10)).astype(np.float32)
    base_trans = np.array([[-1.0, 0.2, 5.0], [1.2, 0.1, 7.0]])
    out = []
    for _ in range(frames):
        thetas = base_thetas + rng.normal(scale=0.05, size=(2, 72)).astype(np.float32)
        thetas[:, 66:] = 0
        betas = base_betas + rng.normal(scale=0.1, size=(2, 10)).astype(np.float32)
        trans = base_trans + rng.normal(scale=[0.02, 0.02, 0.15], size=(2, 3))
        out.append(_frame(body, thetas, betas, trans, [0.9, 0.8]))
    return out


def _config(smoothing: bool):
    from romp_ros.core.tracking import SmoothingConfig, TrackerConfig
    return TrackerConfig(min_hits=1, smoothing=SmoothingConfig.from_mode(
        'default' if smoothing else 'off'))


def _jitter(frames_verts):
    stack = np.stack(frames_verts)  # (T, V, 3)
    return np.linalg.norm(np.diff(stack, axis=0), axis=-1).mean()


def test_ids_are_stable_and_smoothing_off_is_the_raw_frame(body):
    from romp_ros.core.tracking import FrameTracker
    tracker = FrameTracker(_config(smoothing=False), repose=_repose(body))
    seen = []
    for t, frame in enumerate(_noisy_sequence(body, frames=10)):
        tracked = tracker.update(frame, stamp_s=t / 10)
        seen.append(tuple(tracked.ids))
        np.testing.assert_array_equal(tracked.result.verts, frame.verts)
        np.testing.assert_array_equal(tracked.result.cam_trans, frame.cam_trans)
    assert len(set(seen)) == 1 and len(seen[0]) == 2


def test_cameras_sharing_an_id_counter_never_share_an_id(body):
    """The node's trackers (one per camera frame_id) draw from one counter: the same people seen
    by two cameras get different ids, stable in each; a tracker of its own counts from 1."""
    import itertools

    from romp_ros.core.tracking import FrameTracker
    counter = itertools.count(1)
    front, rear = (FrameTracker(_config(smoothing=False), ids=counter) for _ in range(2))
    alone = FrameTracker(_config(smoothing=False))
    seen = {'front': set(), 'rear': set(), 'alone': set()}
    for t, frame in enumerate(_noisy_sequence(body, frames=6)):
        for name, tracker in (('front', front), ('rear', rear), ('alone', alone)):
            seen[name].update(tracker.update(frame, stamp_s=t / 10).ids.tolist())
    assert len(seen['front']) == len(seen['rear']) == 2  # stable within each camera
    assert not seen['front'] & seen['rear']
    assert seen['front'] | seen['rear'] == {1, 2, 3, 4}
    assert seen['alone'] == {1, 2}


def test_smoothed_meshes_are_steadier_and_self_consistent(body):
    from romp_ros.core.tracking import FrameTracker
    frames = _noisy_sequence(body)
    tracker = FrameTracker(_config(smoothing=True), repose=_repose(body))
    raw, smooth = {0: [], 1: []}, {0: [], 1: []}
    for t, frame in enumerate(frames):
        tracked = tracker.update(frame, stamp_s=t / 15)
        res = tracked.result
        assert res.num_people == 2
        # the rebuilt body sits on the camera: pelvis + translation, keypoints re-projected
        cam_pts = res.joints + res.cam_trans[:, None]
        proj = cam_pts[..., :2] / cam_pts[..., 2:3] * [K.fx, K.fy] + [K.cx, K.cy]
        np.testing.assert_allclose(res.pj2d_org, proj, atol=1e-2)
        for slot, track_id in enumerate(sorted(tracked.ids)):
            row = list(tracked.ids).index(track_id)
            smooth[slot].append(res.verts[row] + res.cam_trans[row])
            raw_row = int(np.argmin(np.linalg.norm(frame.cam_trans - res.cam_trans[row], axis=1)))
            raw[slot].append(frame.verts[raw_row] + frame.cam_trans[raw_row])
    for slot in (0, 1):
        factor = _jitter(raw[slot][5:]) / _jitter(smooth[slot][5:])
        assert factor > 2.0, f'mesh jitter only reduced {factor:.2f}x'


def test_frames_without_meshes_are_reposed_joints_only(body):
    """The node drops the meshes nobody reads; smoothing then poses only the joints."""
    from dataclasses import replace

    from romp_ros.core.tracking import FrameTracker
    calls_mesh, calls_joints = [], []
    with_mesh = FrameTracker(_config(smoothing=True), repose=_repose(body, calls_mesh))
    joints_only = FrameTracker(_config(smoothing=True), repose=_repose(body, calls_joints))
    for t, frame in enumerate(_noisy_sequence(body, frames=6)):
        full = with_mesh.update(frame, stamp_s=t / 10).result
        lean = joints_only.update(replace(frame, verts=None), stamp_s=t / 10).result
        assert lean.verts is None and full.verts is not None
        np.testing.assert_allclose(lean.joints, full.joints, atol=1e-5)
        np.testing.assert_allclose(lean.cam_trans, full.cam_trans, atol=1e-5)
    assert set(calls_mesh) == {True} and set(calls_joints) == {False}


def test_without_a_body_model_people_move_rigidly_onto_the_smoothed_root(body):
    from romp_ros.core.tracking import FrameTracker
    tracker = FrameTracker(_config(smoothing=True), repose=None)
    for t, frame in enumerate(_noisy_sequence(body, frames=5)):
        res = tracker.update(frame, stamp_s=t / 10).result
        np.testing.assert_array_equal(res.joints, frame.select(
            np.argsort(-frame.center_confs, kind='stable')).joints)


def test_an_occluded_person_coasts_with_a_predicted_root(body):
    """A confirmed person who vanishes is reported as coasting (for TF), not as a person."""
    from romp_ros.core.tracking import FrameTracker
    frames = _noisy_sequence(body, frames=8)
    tracker = FrameTracker(_config(smoothing=True), repose=_repose(body))
    for t, frame in enumerate(frames[:6]):
        before = tracker.update(frame, stamp_s=t / 10)
    hidden_id = int(before.ids[list(before.result.center_confs).index(
        min(before.result.center_confs))])
    alone = frames[6].select(np.array([0]))  # the second person is occluded
    after = tracker.update(alone, stamp_s=0.6)
    assert after.result.num_people == 1 and hidden_id not in after.ids
    assert list(after.coasting_ids) == [hidden_id]
    assert after.coasting_roots.shape == (1, 3) and after.coasting_thetas.shape == (1, 72)
    assert abs(after.coasting_roots[0, 2] - 7.0) < 1.0  # still where the person was


def test_coasting_tracks_become_body_tf_frames_only():
    pytest.importorskip('rclpy')
    from std_msgs.msg import Header

    from romp_ros.ros.conversions import coasting_transforms
    from romp_ros.ros.person_ids import Identities
    ids = Identities(ids=(), states=(), ages=(), coasting_ids=(4, 9),
                     coasting_roots=np.array([[0.0, 0.1, 3.0], [1.0, 0.0, 6.0]]),
                     coasting_thetas=np.zeros((2, 72)))
    header = Header(frame_id='cam_optical')
    tfs = coasting_transforms(header, ids, 'front_')
    assert [t.child_frame_id for t in tfs] == ['front_body_4', 'front_body_9']
    assert all(t.header.frame_id == 'cam_optical' for t in tfs)
    assert tfs[1].transform.translation.z == 6.0 and tfs[0].transform.rotation.w == 1.0
    assert coasting_transforms(header, Identities(ids=(), states=(), ages=()), '') == []
