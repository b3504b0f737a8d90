"""Subprocess peer for test_ros_pubsub: publishes a known PersonMeshArray until heard.

Runs in its own process (and its own DDS participant) so the test exercises real inter-process
transport. Exits 0 after the subscriber has been matched and messages were sent (20, or fewer
when the subscriber leaves first), 2 on timeout.
"""

import argparse
import logging
import time

import rclpy
from rclpy.node import Node

from romp_ros.msg import PersonMesh, PersonMeshArray

LOG = logging.getLogger('publish_person_mesh')


def build_message(count: int) -> PersonMeshArray:
    msg = PersonMeshArray(model='romp', backbone='hrnet32',
                          joint_names=[f'joint_{i}' for i in range(24)])
    msg.header.frame_id = 'camera_optical_frame'
    msg.header.stamp.sec = 1234
    msg.header.stamp.nanosec = 5678
    for pid in range(count):
        person = PersonMesh(id=pid, confidence=0.5 + 0.1 * pid)
        person.smpl_pose = [0.01 * (pid + 1) * k for k in range(72)]
        person.smpl_shape = [float(pid)] * 10
        person.vertices = [float(k) for k in range(6890 * 3)]  # a realistic payload size
        msg.people.append(person)
    return msg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--people', type=int, default=3)
    parser.add_argument('--timeout', type=float, default=60.0)
    args = parser.parse_args()
    rclpy.init()
    node = Node('person_mesh_publisher')
    pub = node.create_publisher(PersonMeshArray, 'people', 10)
    msg = build_message(args.people)
    deadline = time.monotonic() + args.timeout
    sent_after_match = 0
    try:
        while time.monotonic() < deadline and sent_after_match < 20:
            if pub.get_subscription_count() > 0:
                pub.publish(msg)
                sent_after_match += 1
            elif sent_after_match:
                break  # the subscriber heard it and left: nobody to send to any more
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    LOG.info('sent %d messages after match', sent_after_match)
    return 0 if sent_after_match else 2


if __name__ == '__main__':
    raise SystemExit(main())
