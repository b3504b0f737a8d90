"""The generated messages import, serialise and round-trip; rosbags reads the same bytes."""

from __future__ import annotations

import math

from conftest import REPO_ROOT, require_ros
import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _example_array():
    from geometry_msgs.msg import Point

    from romp_ros.msg import PersonMesh, PersonMeshArray

    msg = PersonMeshArray()
    msg.header.stamp.sec = 1700000000
    msg.header.stamp.nanosec = 123456789
    msg.header.frame_id = 'front_camera_optical_frame'
    msg.model = 'bev'
    msg.backbone = 'hrnet32'
    msg.joint_names = ['pelvis', 'l_hip', 'r_hip']
    msg.intrinsics_from_camera_info = True
    rng = np.random.default_rng(0)
    for pid in range(3):
        person = PersonMesh()
        person.id = 10 + pid
        person.track_state = PersonMesh.STATE_CONFIRMED
        person.track_age = 42
        person.confidence = 0.9 - 0.1 * pid
        person.root_pose.position.x = 0.5 * pid
        person.root_pose.position.z = 4.0
        person.root_pose.orientation.w = 1.0
        person.has_velocity = True
        person.root_velocity.x = -0.3
        person.smpl_pose = rng.normal(size=72).astype(np.float32)
        person.smpl_shape = rng.normal(size=11).astype(np.float32).tolist()
        person.weak_perspective_camera = [0.8, 0.1, -0.2]
        person.translation.z = 4.0
        person.translation_from_camera_info = pid != 1
        person.joints_3d = [Point(x=float(i), y=0.0, z=4.0) for i in range(3)]
        person.keypoints_2d = rng.uniform(0, 640, size=6).astype(np.float32).tolist()
        person.bbox = [10.0, 20.0, 110.0, 320.0]
        person.vertices = rng.normal(size=30).astype(np.float32).tolist()
        msg.people.append(person)
    return msg


def _assert_same(a, b):
    assert a.header.stamp.sec == b.header.stamp.sec
    assert a.header.stamp.nanosec == b.header.stamp.nanosec
    assert a.header.frame_id == b.header.frame_id
    assert (a.model, a.backbone) == (b.model, b.backbone)
    assert list(a.joint_names) == list(b.joint_names)
    assert len(a.people) == len(b.people) == 3
    for p, q in zip(a.people, b.people, strict=True):
        assert (p.id, p.track_state, p.track_age) == (q.id, q.track_state, q.track_age)
        assert math.isclose(p.confidence, q.confidence, rel_tol=1e-6)
        np.testing.assert_array_equal(np.asarray(p.smpl_pose), np.asarray(q.smpl_pose))
        np.testing.assert_array_equal(np.asarray(p.smpl_shape), np.asarray(q.smpl_shape))
        np.testing.assert_array_equal(np.asarray(p.vertices), np.asarray(q.vertices))
        np.testing.assert_array_equal(np.asarray(p.keypoints_2d), np.asarray(q.keypoints_2d))
        np.testing.assert_array_equal(np.asarray(p.bbox), np.asarray(q.bbox))
        assert [(j.x, j.y, j.z) for j in p.joints_3d] == [(j.x, j.y, j.z) for j in q.joints_3d]
        assert p.root_pose == q.root_pose and p.root_velocity == q.root_velocity
        assert p.translation_from_camera_info == q.translation_from_camera_info


def test_messages_round_trip_through_rclpy_serialization():
    require_ros()
    from rclpy.serialization import deserialize_message, serialize_message

    from romp_ros.msg import BodyModel, PersonMeshArray

    msg = _example_array()
    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 500
    _assert_same(msg, deserialize_message(data, PersonMeshArray))

    body = BodyModel(model_type='smpl', num_vertices=6890, faces=[0, 1, 2, 2, 1, 3],
                     joint_names=['pelvis'], joint_parents=[-1])
    back = deserialize_message(serialize_message(body), BodyModel)
    assert list(back.faces) == [0, 1, 2, 2, 1, 3] and back.num_vertices == 6890
    assert list(back.joint_parents) == [-1]


@pytest.mark.parametrize('name', ['PersonMesh', 'PersonMeshArray', 'BodyModel'])
def test_every_message_field_is_documented(name):
    """Each field line carries a comment (unit / frame / meaning) for consumers of the topic."""
    lines = (REPO_ROOT / 'msg' / f'{name}.msg').read_text().splitlines()
    fields = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith('#')]
    assert fields, f'{name}.msg has no fields'
    undocumented = [ln for ln in fields if '#' not in ln]
    assert not undocumented, f'fields without a comment in {name}.msg: {undocumented}'


def test_rosbags_reads_rclpy_bytes_with_types_from_msg_files():
    """A bag tool without ROS (rosbags) decodes what rclpy wrote, from our .msg text alone."""
    require_ros()
    from rclpy.serialization import serialize_message
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = {}
    for name in ('PersonMesh', 'PersonMeshArray', 'BodyModel'):
        text = (REPO_ROOT / 'msg' / f'{name}.msg').read_text()
        types.update(get_types_from_msg(text, f'romp_ros/msg/{name}'))
    store.register(types)
    msg = _example_array()
    decoded = store.deserialize_cdr(serialize_message(msg), 'romp_ros/msg/PersonMeshArray')
    assert decoded.header.frame_id == 'front_camera_optical_frame'
    assert decoded.people[2].id == 12
    assert [p.translation_from_camera_info for p in decoded.people] == [True, False, True]
    np.testing.assert_array_equal(decoded.people[1].smpl_pose,
                                  np.asarray(msg.people[1].smpl_pose))
    # and back: rosbags bytes decode in rclpy
    from rclpy.serialization import deserialize_message

    from romp_ros.msg import PersonMeshArray
    raw = bytes(store.serialize_cdr(decoded, 'romp_ros/msg/PersonMeshArray'))
    again = deserialize_message(raw, PersonMeshArray)
    _assert_same(msg, again)
