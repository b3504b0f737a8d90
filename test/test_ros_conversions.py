"""Unit tests of the ROS layer without processes: conversions, overlay, buffers, parameters."""

from __future__ import annotations

import math

from conftest import require_ros
import numpy as np
import pytest

pytestmark = pytest.mark.ros

STAMP = (1700000123, 456000000)
FRAME = 'front_camera_optical_frame'


@pytest.fixture(autouse=True)
def _needs_ros():
    require_ros()


def _header():
    from std_msgs.msg import Header
    header = Header(frame_id=FRAME)
    header.stamp.sec, header.stamp.nanosec = STAMP
    return header


def _result(count=2, num_joints=71, with_verts=True, source='camera'):
    """A hand-made FrameResult: person k stands at x = k - 0.5, 3 m ahead, rotated about x."""
    from romp_ros.core.body.joint_names import joint_names
    from romp_ros.core.results import CameraIntrinsics, FrameResult

    rng = np.random.default_rng(1)
    thetas = np.zeros((count, 72), np.float32)
    thetas[:, 0] = math.pi  # upright in the camera frame (y down)
    joints = rng.normal(0.0, 0.3, (count, num_joints, 3)).astype(np.float32)
    joints[:, 0] = 0.0  # pelvis at the body origin
    verts = rng.normal(0.0, 0.3, (count, 12, 3)).astype(np.float32) if with_verts else None
    trans = np.array([[k - 0.5, 0.2, 3.0] for k in range(count)], np.float32).reshape(count, 3)
    pj2d = rng.uniform(10, 300, (count, num_joints, 2)).astype(np.float32)
    return FrameResult(
        cam=np.tile(np.array([[0.5, 0.1, -0.1]], np.float32), (count, 1)), smpl_thetas=thetas,
        smpl_betas=rng.normal(size=(count, 10)).astype(np.float32), cam_trans=trans,
        joints=joints, verts=verts, pj2d_org=pj2d,
        center_confs=np.linspace(0.9, 0.5, count).astype(np.float32),
        joint_names=joint_names(num_joints), image_size=(480, 640),
        intrinsics=CameraIntrinsics(500.0, 500.0, 320.0, 240.0, source=source))


def _ids(count, first=0):
    from romp_ros.ros.person_ids import STATE_CONFIRMED, Identities
    return Identities(ids=tuple(range(first, first + count)), states=(STATE_CONFIRMED,) * count,
                      ages=(0,) * count)


FACES = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7], [8, 9, 10], [9, 10, 11]], np.int64)


# -- PersonMeshArray ----------------------------------------------------------------------------


def test_person_mesh_array_fields_in_camera_frame():
    from rclpy.serialization import deserialize_message, serialize_message

    from romp_ros.msg import PersonMeshArray
    from romp_ros.ros.conversions import person_mesh_array

    result = _result()
    msg = person_mesh_array(result, _header(), _ids(2), 'romp', 'resnet50', publish_vertices=True)
    msg = deserialize_message(serialize_message(msg), PersonMeshArray)  # types are right
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == STAMP
    assert msg.header.frame_id == FRAME
    assert (msg.model, msg.backbone) == ('romp', 'resnet50')
    assert list(msg.joint_names) == list(result.joint_names)
    assert msg.intrinsics_from_camera_info is True
    assert [p.id for p in msg.people] == [0, 1]
    assert [p.confidence for p in msg.people] == pytest.approx([0.9, 0.5])
    joints_cam = result.joints_camera()
    for k, person in enumerate(msg.people):
        pos = person.root_pose.position
        assert (pos.x, pos.y, pos.z) == pytest.approx(tuple(joints_cam[k, 0]), abs=1e-6)
        q = person.root_pose.orientation  # pi about x
        assert (abs(q.x), q.y, q.z, q.w) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-6)
        got = np.array([(j.x, j.y, j.z) for j in person.joints_3d])
        np.testing.assert_allclose(got, joints_cam[k], atol=1e-6)
        np.testing.assert_allclose(person.keypoints_2d, result.pj2d_org[k].reshape(-1))
        np.testing.assert_allclose(person.bbox, [*result.pj2d_org[k].min(0),
                                                 *result.pj2d_org[k].max(0)], rtol=1e-6)
        np.testing.assert_allclose(person.smpl_pose, result.smpl_thetas[k])
        np.testing.assert_allclose(person.smpl_shape, result.smpl_betas[k])
        t = person.translation
        assert (t.x, t.y, t.z) == pytest.approx(tuple(result.cam_trans[k]), abs=1e-6)
        np.testing.assert_allclose(np.reshape(person.vertices, (-1, 3)),
                                   result.verts_camera()[k], atol=1e-6)
        assert not person.has_velocity
        assert person.translation_from_camera_info is True


def test_translation_from_camera_info_is_reported_per_person():
    """A person whose solve failed keeps the 60 deg translation: said per person."""
    from romp_ros.ros.conversions import person_mesh_array

    solved = _replace(_result(count=3), translation_solved=np.array([True, False, True]))
    msg = person_mesh_array(solved, _header(), _ids(3), 'romp', 'resnet50', False)
    assert msg.intrinsics_from_camera_info is True
    assert [p.translation_from_camera_info for p in msg.people] == [True, False, True]
    fov = _replace(_result(count=2, source='fov'), translation_solved=np.array([True, True]))
    msg = person_mesh_array(fov, _header(), _ids(2), 'romp', 'resnet50', False)
    assert not msg.intrinsics_from_camera_info
    assert [p.translation_from_camera_info for p in msg.people] == [False, False]


def test_person_mesh_array_vertices_only_on_request_and_empty_frames():
    from romp_ros.ros.conversions import person_mesh_array

    msg = person_mesh_array(_result(source='fov'), _header(), _ids(2), 'bev', 'hrnet32', False)
    assert all(len(p.vertices) == 0 for p in msg.people)
    assert msg.intrinsics_from_camera_info is False
    empty = person_mesh_array(_result(count=0), _header(), _ids(0), 'romp', 'hrnet32', True)
    assert empty.people == [] and empty.header.frame_id == FRAME


def test_frame_index_ids_and_tracker_ids():
    from romp_ros.ros.params import node_config
    from romp_ros.ros.person_ids import (
        STATE_CONFIRMED,
        STATE_TENTATIVE,
        FrameIndexIds,
        TrackerIds,
        make_id_source,
    )

    result = _replace(_result(3), center_confs=np.array([0.95, 0.9, 0.8], np.float32))
    same, ids = FrameIndexIds().update(result, 0.0)
    assert same is result and ids.ids == (0, 1, 2) and ids.velocities is None
    assert isinstance(make_id_source(node_config({'tracking': False})), FrameIndexIds)

    tracker = make_id_source(node_config({'smoothing': 'off'}))
    assert isinstance(tracker, TrackerIds)
    published = [tracker.update(result, 0.1 * k) for k in range(4)]
    assert [p.num_people for p, _ in published] == [0, 0, 3, 3]  # confirmed after 3 hits
    people, ids = published[-1]
    assert ids.ids == published[2][1].ids and min(ids.ids) >= 1
    assert set(ids.states) == {STATE_CONFIRMED} and ids.ages == (3, 3, 3)
    np.testing.assert_allclose(people.center_confs, result.center_confs)
    np.testing.assert_allclose(people.cam_trans, result.cam_trans)  # smoothing off: untouched
    assert ids.velocities.shape == (3, 3)
    tentative = make_id_source(node_config({'track_publish_tentative': True}))
    first, first_ids = tentative.update(result, 0.0)
    assert first.num_people == 3 and set(first_ids.states) == {STATE_TENTATIVE}
    # smoothing on: people are moved rigidly onto the smoothed root (here: a still scene)
    smoothed = make_id_source(node_config({}))
    for k in range(3):
        smoothed.update(result, 0.1 * k)
    people, ids = smoothed.update(result, 0.3)
    np.testing.assert_allclose(people.joints_camera()[:, 0], result.joints_camera()[:, 0],
                               atol=0.05)
    np.testing.assert_allclose(people.joints, result.joints)  # the pose is the frame's own


# -- TF -----------------------------------------------------------------------------------------


def test_tf_frames_follow_ros4hri_naming_and_camera_parent():
    from romp_ros.core.body.joint_names import ROS4HRI_JOINTS
    from romp_ros.ros.conversions import tf_message

    result = _result()
    msg = tf_message(result, _header(), _ids(2, first=7), prefix='', joint_frames=True)
    names = [t.child_frame_id for t in msg.transforms]
    expected = set()
    for pid in (7, 8):
        expected |= {f'body_{pid}'} | {f'{part}_{pid}' for part in ROS4HRI_JOINTS}
    assert set(names) == expected and len(names) == len(expected)
    assert {'head_7', 'l_wrist_8', 'r_ankle_7'} <= set(names)
    assert all(t.header.frame_id == FRAME for t in msg.transforms)
    assert all((t.header.stamp.sec, t.header.stamp.nanosec) == STAMP for t in msg.transforms)
    joints_cam = result.joints_camera()
    body = {t.child_frame_id: t.transform for t in msg.transforms}
    tr = body['body_8'].translation
    assert (tr.x, tr.y, tr.z) == pytest.approx(tuple(joints_cam[1, 0]), abs=1e-6)
    head = result.joint_names.index('head')
    tr = body['head_7'].translation
    assert (tr.x, tr.y, tr.z) == pytest.approx(tuple(joints_cam[0, head]), abs=1e-6)
    only_bodies = tf_message(result, _header(), _ids(2), prefix='cam1/', joint_frames=False)
    assert [t.child_frame_id for t in only_bodies.transforms] == ['cam1/body_0', 'cam1/body_1']


def test_joint_orientations_chain_the_kinematic_tree():
    from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
    from romp_ros.ros.conversions import joint_orientations

    thetas = np.zeros((1, 72))
    thetas[0, 0:3] = (math.pi / 2, 0, 0)  # global: 90 deg about x
    hip = SMPL_JOINT_NAMES.index('l_hip')
    thetas[0, 3 * hip:3 * hip + 3] = (math.pi / 2, 0, 0)  # l_hip: another 90 deg about x
    quats = joint_orientations(thetas)
    knee = SMPL_JOINT_NAMES.index('l_knee')
    half = math.sqrt(0.5)
    assert np.abs(quats[0, 0]) == pytest.approx([half, 0, 0, half], abs=1e-6)
    assert np.abs(quats[0, knee]) == pytest.approx([1, 0, 0, 0], abs=1e-6)  # 180 deg total
    assert np.abs(quats[0, SMPL_JOINT_NAMES.index('r_knee')]) == pytest.approx(
        [half, 0, 0, half], abs=1e-6)


def test_orientations_equal_the_chained_rotation_matrices():
    """The quaternion chain (by kinematic level) against the matrix chain joint by joint."""
    import torch

    from romp_ros.core.body.joint_names import SMPL_PARENTS
    from romp_ros.core.geometry.rotation import axis_angle_to_matrix, matrix_to_quaternion
    from romp_ros.ros.conversions import global_orientations, joint_orientations

    thetas = np.random.default_rng(5).normal(scale=0.8, size=(6, 72))
    local = axis_angle_to_matrix(torch.as_tensor(thetas.reshape(6, 24, 3)))
    chain = [local[:, 0]]
    for joint in range(1, 24):
        chain.append(chain[SMPL_PARENTS[joint]] @ local[:, joint])
    expected = matrix_to_quaternion(torch.stack(chain, dim=1)).numpy()  # w >= 0
    quats = joint_orientations(thetas)
    assert quats.shape == (6, 24, 4) and np.all(quats[..., 3] >= 0)
    np.testing.assert_allclose(quats, expected, atol=1e-9)
    np.testing.assert_allclose(global_orientations(thetas), expected[:, 0], atol=1e-9)


@pytest.mark.parametrize('raw, clean', [
    ('', ''), ('front', 'front_'), ('front_', 'front_'), ('/robot//cam/', 'robot/cam/'),
    ('my cam-1', 'my_cam_1_'), ('  ', ''),
])
def test_tf_prefix_is_sanitised(raw, clean):
    from romp_ros.ros.params import sanitize_frame_prefix
    assert sanitize_frame_prefix(raw) == clean


# -- markers ------------------------------------------------------------------------------------


def test_markers_per_person_and_delete_of_vanished_people():
    from visualization_msgs.msg import Marker

    from romp_ros.ros.conversions import MarkerPublisherState

    state = MarkerPublisherState()
    first = state.markers(_result(2), _header(), _ids(2), FACES)
    kinds = {(m.ns, m.id): m for m in first.markers}
    assert set(kinds) == {(ns, pid) for ns in ('mesh', 'skeleton', 'label') for pid in (0, 1)}
    assert all(m.action == Marker.ADD and m.header.frame_id == FRAME for m in first.markers)
    assert kinds[('mesh', 0)].type == Marker.TRIANGLE_LIST
    assert len(kinds[('mesh', 0)].points) == FACES.size
    assert kinds[('skeleton', 1)].type == Marker.LINE_LIST
    assert len(kinds[('skeleton', 1)].points) == 2 * 23
    assert kinds[('label', 0)].type == Marker.TEXT_VIEW_FACING
    assert kinds[('label', 0)].text == '0 (0.90)'
    assert kinds[('mesh', 0)].color != kinds[('mesh', 1)].color  # coloured by id

    second = state.markers(_result(1), _header(), _ids(1), None)  # person 1 gone, mesh off
    deletes = {(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE}
    adds = {(m.ns, m.id) for m in second.markers if m.action == Marker.ADD}
    assert deletes == {('mesh', 0), ('mesh', 1), ('skeleton', 1), ('label', 1)}
    assert adds == {('skeleton', 0), ('label', 0)}

    empty = state.markers(_result(0), _header(), _ids(0), FACES)
    assert {(m.ns, m.id) for m in empty.markers} == {('skeleton', 0), ('label', 0)}
    assert all(m.action == Marker.DELETE for m in empty.markers)
    assert state.markers(_result(0), _header(), _ids(0), FACES).markers == []
    clear = state.clear(_header())
    assert [m.action for m in clear.markers] == [Marker.DELETEALL]


def test_body_model_message():
    from builtin_interfaces.msg import Time

    from romp_ros.core.body.joint_names import ALL_JOINT_NAMES, SMPL_PARENTS
    from romp_ros.ros.conversions import body_model_message

    msg = body_model_message('romp', FACES, 12, ALL_JOINT_NAMES, Time(sec=5))
    assert msg.model_type == 'smpl' and msg.num_vertices == 12
    assert list(msg.faces) == FACES.reshape(-1).tolist()
    assert list(msg.joint_parents[:24]) == list(SMPL_PARENTS)
    assert set(msg.joint_parents[24:]) == {-1} and len(msg.joint_parents) == 71
    assert body_model_message('bev', FACES, 12, ALL_JOINT_NAMES, Time()).model_type == 'smpla'


# -- overlay ------------------------------------------------------------------------------------


def test_overlay_draws_mesh_and_skeleton_without_touching_the_input():
    pytest.importorskip('cv2')
    from romp_ros.core.results import CameraIntrinsics
    from romp_ros.ros.overlay import draw_overlay

    # one person: a square facing the camera 2 m ahead and a 2D skeleton inside it
    result = _result(1)
    square = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]],
                      np.float32)
    faces = np.array([[0, 2, 1], [0, 3, 2]])  # counter-clockwise seen from the camera
    result = _replace(result, verts=square[None], cam_trans=np.array([[0, 0, 2.0]], np.float32),
                      pj2d_org=np.full((1, 71, 2), 320.0, np.float32),
                      intrinsics=CameraIntrinsics(400.0, 400.0, 320.0, 240.0))
    image = np.full((480, 640, 3), 10, np.uint8)
    out = draw_overlay(image, result, [0], faces, 'rgb')
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (image == 10).all()
    assert (out[240, 320] != 10).any()  # inside the projected square (u 220..420)
    assert (out[240, 250] != 10).any() and (out[240, 100] == 10).all()
    skeleton_only = draw_overlay(image, result, [0], None, 'bgr')
    assert (skeleton_only[240, 250] == 10).all()


def _replace(result, **changes):
    import dataclasses
    return dataclasses.replace(result, **changes)


# -- frame buffer, diagnostics, camera_info -----------------------------------------------------


def test_latest_slot_keeps_the_newest_and_counts_drops():
    from romp_ros.ros.frame_buffer import LatestSlot

    slot = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.take(timeout=0.01) == 3
    assert slot.take(timeout=0.01) is None
    counters = slot.counters()
    assert (counters.put, counters.taken, counters.dropped) == (3, 1, 2)
    slot.put(4)
    slot.close()
    assert slot.take(timeout=0.01) is None and slot.put(5) is False
    slot.reopen()
    slot.put(6)
    assert slot.take(timeout=0.01) == 6


def test_latest_per_stream_batches_the_newest_of_every_camera():
    import threading

    from romp_ros.ros.frame_buffer import LatestPerStream

    slots = LatestPerStream()
    assert slots.take_all(timeout=0.01) == []
    assert slots.put('rear', 'r1') is False
    assert slots.put('front', 'f1') is False
    assert slots.put('front', 'f2') is True  # only front's stale frame is dropped
    assert slots.take_all(timeout=0.01) == ['r1', 'f2']  # first-put order of the streams
    assert slots.take_all(timeout=0.01) == []
    slots.put('front', 'f3')
    assert slots.take_all(timeout=0.01) == ['f3']  # a camera alone is not held back
    counters = slots.counters()
    assert (counters.put, counters.taken, counters.dropped) == (4, 3, 1)
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.take_all(timeout=5.0)))
    waiter.start()
    slots.close()  # wakes the waiting worker
    waiter.join(2.0)
    assert got == [[]] and slots.put('front', 'f4') is False


def test_warn_limiter_throttles_per_key():
    from romp_ros.ros.diagnostics import WarnLimiter

    now = [0.0]
    limiter = WarnLimiter(period_s=10.0, clock=lambda: now[0])
    assert limiter.check('a') == (True, 0)
    assert limiter.check('a') == (False, 0)
    assert limiter.check('b') == (True, 0)
    now[0] = 11.0
    assert limiter.check('a') == (True, 1)


def test_node_stats_and_diagnostic_status():
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticStatus

    from romp_ros.ros.diagnostics import NodeStats, diagnostic_array

    now = [100.0]
    stats = NodeStats(window_s=5.0, clock=lambda: now[0])
    for i in range(10):
        now[0] += 0.1
        stats.frame_received(dropped_stale=i % 2 == 1)
    stats.frame_done(0.3, 0.4, 3, 'camera_info')
    stats.frame_done(0.3, 0.9, 2, 'default_fov')
    stats.frame_skipped()
    snap = stats.snapshot()
    assert (snap.frames_received, snap.frames_dropped, snap.frames_processed) == (10, 5, 2)
    assert snap.latency_ms_max == pytest.approx(900.0)
    assert snap.people == 2 and snap.frames_skipped == 1 and snap.intrinsics == 'default_fov'
    msg = diagnostic_array(snap, Time(sec=1), latency_warn_ms=500.0, active=True,
                           hardware_id='romp/resnet50 on cpu')
    status = msg.status[0]
    assert status.level == DiagnosticStatus.WARN and 'latency' in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert values['frames_dropped'] == '5' and values['people'] == '2'
    ok = diagnostic_array(snap, Time(sec=1), latency_warn_ms=2000.0, active=True, hardware_id='')
    assert ok.status[0].level == DiagnosticStatus.OK
    now[0] += 10.0  # the window forgets, the totals stay
    later = stats.snapshot()
    assert later.rate_hz == 0.0 and later.frames_dropped == 5 and later.frames_dropped_window == 0


def _camera_info(k, width=640, height=480, frame='cam', model='plumb_bob', d=(0.0,) * 5,
                 p=(0.0,) * 12, binning=(0, 0), roi=(0, 0, 0, 0)):
    from sensor_msgs.msg import CameraInfo, RegionOfInterest
    msg = CameraInfo(width=width, height=height, distortion_model=model, d=list(d),
                     k=[float(v) for v in k], p=[float(v) for v in p], binning_x=binning[0],
                     binning_y=binning[1],
                     roi=RegionOfInterest(x_offset=roi[0], y_offset=roi[1], width=roi[2],
                                          height=roi[3]))
    msg.header.frame_id = frame
    return msg


@pytest.mark.parametrize('k, problem', [
    ([0.0] * 9, 'positive'),
    ([500, 0, 320, 0, 500, 240, 0, 0, 1], ''),
    ([float('nan'), 0, 320, 0, 500, 240, 0, 0, 1], 'NaN'),
    ([500, 0, 320, 0, -5, 240, 0, 0, 1], 'positive'),
])
def test_camera_info_validation(k, problem):
    from romp_ros.ros.camera_info import CameraInfoStore

    store = CameraInfoStore()
    reason = store.update(_camera_info(k))
    assert (problem in reason) if problem else reason == ''
    assert (store.get('cam') is None) == bool(problem)


def test_camera_info_keeps_the_whole_camera_the_last_valid_one_and_rescales():
    from romp_ros.ros.camera_info import CameraInfoStore

    k = [500, 0, 320, 0, 500, 240, 0, 0, 1]
    p = [450, 0, 330, 0, 0, 451, 235, 0, 0, 0, 1, 0]
    lens = (-0.2, 0.05, 0.0, 0.0, 0.0)
    store = CameraInfoStore()
    assert store.update(_camera_info(k, d=lens, p=p)) == ''
    assert store.update(_camera_info([0.0] * 9)) != ''
    raw = store.camera_for_image('cam', 480, 640, 'raw')
    assert raw.camera.k == (500, 500, 320, 240) and raw.camera.d == lens and not raw.rescaled
    rect = store.camera_for_image('cam', 480, 640, 'rectified')
    assert rect.camera.k == (450, 451, 330, 235) and not rect.camera.is_distorted
    half = store.camera_for_image('cam', 240, 320, 'raw')
    assert half.rescaled and half.camera.k == (250, 250, 160, 120) and half.camera.d == lens
    assert store.camera_for_image('other', 480, 640) is None
    # binning and ROI: the delivered image is the ROI, binned
    store.update(_camera_info(k, frame='binned', binning=(2, 2), roi=(100, 40, 400, 300)))
    binned = store.camera_for_image('binned', 150, 200, 'raw')
    assert binned.camera.k == (250.0, 250.0, 110.0, 100.0) and not binned.rescaled
    # an unknown lens: the pinhole part, and a warning for the node to log
    store.update(_camera_info(k, frame='odd', model='kannala_brandt', d=(0.1, 0.2, 0.0, 0.0)))
    odd = store.camera_for_image('odd', 480, 640, 'raw')
    assert not odd.camera.is_distorted and 'kannala_brandt' in odd.warnings[0]


# -- parameters ---------------------------------------------------------------------------------


def test_node_config_defaults_map_onto_the_estimator_config():
    from romp_ros.ros.params import node_config

    cfg = node_config({})
    assert cfg.estimator.model == 'romp' and cfg.estimator.center_thresh is None
    assert cfg.estimator.fov_deg == 60.0 and cfg.estimator.color_order == 'rgb'
    assert cfg.camera_model == 'raw'
    cfg = node_config({'center_thresh': 0.3, 'tf_prefix': 'front', 'max_people': 5,
                       'camera_model': 'rectified'})
    assert cfg.estimator.center_thresh == 0.3 and cfg.estimator.max_people == 5
    assert cfg.tf_prefix == 'front_' and cfg.camera_model == 'rectified'
    assert cfg.camera_namespaces == ()
    assert node_config({'camera_namespaces': ['front', 'rig/left']}).camera_namespaces == (
        'front', 'rig/left')


@pytest.mark.parametrize('name, value, fragment', [
    ('device', 'gpu', "'auto', 'cpu' or 'cuda:N'"),
    ('model', 'yolo', 'choose one of'),
    ('center_thresh', 2.0, 'maximum'),
    ('max_people', 0, 'minimum'),
    ('qos_depth', True, 'type int'),
    ('image_transport', 'theora', 'choose one of'),
    ('camera_model', 'fisheye', "choose one of ['raw', 'rectified']"),
    ('latency_warn_ms', float('nan'), 'finite'),
    ('camera_namespaces', ['front', '/rear'], 'not relative topic namespaces'),
    ('camera_namespaces', ['front', '2nd'], 'each part starting with a letter'),
    ('camera_namespaces', ['front', 'front'], 'lists a camera twice'),
    ('camera_namespaces', [f'cam{i}' for i in range(17)], 'at most 16'),
    ('camera_namespaces', 'front', 'list of strings'),
])
def test_invalid_parameter_values_have_a_reason(name, value, fragment):
    from romp_ros.core.config import ConfigError
    from romp_ros.ros.params import node_config, validate_value

    assert fragment in validate_value(name, value)
    with pytest.raises(ConfigError):
        node_config({name: value})


def test_tracking_thresholds_must_be_ordered():
    from romp_ros.core.config import ConfigError
    from romp_ros.ros.params import node_config

    with pytest.raises(ConfigError, match='track_low_conf <= track_high_conf'):
        node_config({'track_high_conf': 0.7, 'track_new_conf': 0.6})


def test_bev_with_resnet_is_rejected():
    from romp_ros.core.config import ConfigError
    from romp_ros.ros.params import node_config

    with pytest.raises(ConfigError, match='BEV'):
        node_config({'model': 'bev', 'backbone': 'resnet50'})
