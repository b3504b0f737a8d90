"""A PersonMeshArray published by one process arrives intact in another (real rclpy, DDS)."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import REPO_ROOT
import pytest

pytestmark = pytest.mark.ros


def test_person_mesh_array_crosses_processes(ros_domain_id):
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from romp_ros.msg import PersonMeshArray

    peer = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / 'test' / 'ros_peers' / 'publish_person_mesh.py'),
         '--people', '3'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = Context()
    rclpy.init(context=context)
    received = []
    try:
        node = rclpy.create_node('person_mesh_listener', context=context)
        node.create_subscription(PersonMeshArray, 'people', received.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline and peer.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        try:
            out, _ = peer.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            peer.kill()
            out, _ = peer.communicate()
    assert received, f'no message received across processes; publisher said:\n{out}'
    msg = received[0]
    assert msg.header.frame_id == 'camera_optical_frame'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1234, 5678)
    assert msg.model == 'romp' and len(msg.joint_names) == 24
    assert [p.id for p in msg.people] == [0, 1, 2]
    assert list(msg.people[2].smpl_pose)[71] == pytest.approx(0.03 * 71, rel=1e-6)
    assert list(msg.people[1].smpl_shape) == [1.0] * 10
    assert len(msg.people[0].vertices) == 6890 * 3
    assert msg.people[0].vertices[-1] == 6890 * 3 - 1
