"""The installed romp_node in its own process, driven over real DDS by this test process.

The node runs the small fast configuration (ROMP with a ResNet-50 backbone, seeded weights,
the synthetic body model, CPU). Each test gets its own ROS domain (``ros_domain_id``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
import logging
import math
import os
from pathlib import Path
import re
import signal
import subprocess
import time

from conftest import REPO_ROOT, require_ros
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
LOG = logging.getLogger(__name__)

INSTALLED_NODE = REPO_ROOT / 'install' / 'romp_ros' / 'lib' / 'romp_ros' / 'romp_node'
CONFIG = REPO_ROOT / 'config' / 'romp.yaml'
BACKBONE = 'resnet50'  # the fastest backbone on CPU (measured: ~0.3 s per frame, 2 cores)
START_TIMEOUT_S = 120.0
FRAME_TIMEOUT_S = 90.0
CAM_A = 'cam_a_optical_frame'
CAM_B = 'cam_b_optical_frame'
K_A = (520.0, 515.0, 322.0, 236.0)  # fx, fy, cx, cy of cam_a (640x480)


@dataclass(frozen=True)
class ModelFiles:
    models_dir: Path
    checkpoint: Path


@pytest.fixture(scope='module')
def model_files(tmp_path_factory) -> ModelFiles:
    """A models dir prepared from the synthetic SMPL files and a seeded ROMP checkpoint."""
    require_ros()
    from romp_ros.core.body.prepare import prepare_models
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files
    from romp_ros.testing.seeded_weights import write_seeded_checkpoint

    root = tmp_path_factory.mktemp('romp_node_models')
    src = write_synthetic_smpl_files(root / 'src', seed=0)
    models = root / 'models'
    prepare_models(smpl=src.smpl_pkl, models_dir=models, extra=src.source_dir, progress=False)
    checkpoint = write_seeded_checkpoint(models / f'romp_{BACKBONE}_seeded.pth', 'romp',
                                         BACKBONE, seed=0)
    return ModelFiles(models, checkpoint)


@pytest.fixture(scope='module')
def images():
    """Natural-looking test images (640x480 crops of the seeded calibration images)."""
    require_ros()
    from romp_ros.testing.seeded_weights import calibration_images
    pics = calibration_images(seed=11, count=4).numpy().astype(np.uint8)
    return [np.ascontiguousarray(p[16:496, :, :]).repeat(2, axis=1)[:, 64:704] for p in pics]


def node_params(files: ModelFiles, **extra) -> dict:
    params = {'model': 'romp', 'backbone': BACKBONE, 'checkpoint': str(files.checkpoint),
              'models_dir': str(files.models_dir), 'device': 'cpu',
              'qos_reliability': 'reliable'}
    params.update(extra)
    return params


# -- the node process ---------------------------------------------------------------------------


class NodeProcess:
    """The installed romp_node as a subprocess; its log (stderr) goes to a file."""

    def __init__(self, log_dir: Path, params: dict, ros_args=()) -> None:
        assert INSTALLED_NODE.is_file(), f'{INSTALLED_NODE} missing: run `make setup`'
        args = [str(INSTALLED_NODE), '--ros-args', '--params-file', str(CONFIG)]
        for key, value in params.items():
            text = ('true' if value else 'false') if isinstance(value, bool) else str(value)
            args += ['-p', f'{key}:={text}']
        args += list(ros_args)
        self.log_path = log_dir / 'romp_node.log'
        env = dict(os.environ, RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1',
                   RCUTILS_LOGGING_BUFFERED_STREAM='0')
        self._log = open(self.log_path, 'w', encoding='utf-8')
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=log_dir)

    def log(self) -> str:
        return self.log_path.read_text(encoding='utf-8', errors='replace')

    def wait_for_log(self, fragment: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fragment in self.log():
                return True
            if self.proc.poll() is not None:
                return fragment in self.log()
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 60.0) -> int:
        """SIGINT, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code


# -- the test peer ------------------------------------------------------------------------------


class Peer:
    """A node in this process (own rclpy Context) publishing images and collecting outputs."""

    def __init__(self, namespace: str = '', image_topic: str = 'image',
                 compressed: bool = False, outputs=('people', 'tf', 'markers', 'overlay',
                                                    'diagnostics', 'body_model',
                                                    'birds_eye')) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from romp_ros.ros.romp_node import OUTPUT_TOPICS

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('romp_test_peer', namespace=namespace or None,
                                      context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.received = defaultdict(list)  # output name -> [(monotonic time, msg)]
        names = {'people': 'people', 'tf': '/tf', 'markers': 'markers', 'overlay': 'overlay',
                 'diagnostics': '/diagnostics', 'body_model': 'body_model',
                 'birds_eye': 'birds_eye'}
        for name in outputs:
            topic = names[name]
            qos = reliable
            if name == 'body_model':
                qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.node.create_subscription(OUTPUT_TOPICS[topic], topic, self._collector(name),
                                          qos)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(CompressedImage if compressed else Image,
                                                    image_topic, qos)
        self.info_pub = self.node.create_publisher(CameraInfo, 'camera_info', qos)

    def _collector(self, name):
        def store(msg):
            self.received[name].append((time.monotonic(), msg))
        return store

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def messages(self, name):
        return [msg for _, msg in self.received[name]]

    def by_stamp(self, name, stamp_sec: int):
        if name == 'tf':
            return [m for m in self.messages(name)
                    if m.transforms and m.transforms[0].header.stamp.sec == stamp_sec]
        if name == 'markers':
            return [m for m in self.messages(name)
                    if m.markers and m.markers[0].header.stamp.sec == stamp_sec]
        return [m for m in self.messages(name) if m.header.stamp.sec == stamp_sec]

    def close(self) -> None:
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def image_msg(pixels: np.ndarray, stamp_sec: int, frame_id: str, encoding: str = 'rgb8',
              pad: int = 0):
    """sensor_msgs/Image of an (H, W, C) uint8 array, rows padded by ``pad`` bytes."""
    from sensor_msgs.msg import Image
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    if pad:
        rows = np.concatenate([rows, np.zeros((height, pad), np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=rows.shape[1])
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = stamp_sec
    msg.data = rows.tobytes()
    return msg


def raw_image(encoding: str, height: int, width: int, step: int, size: int, stamp_sec: int,
              frame_id: str = CAM_A):
    from sensor_msgs.msg import Image
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.header.frame_id, msg.header.stamp.sec = frame_id, stamp_sec
    msg.data = bytes(size)
    return msg


def camera_info(frame_id: str, k, width: int = 640, height: int = 480):
    from sensor_msgs.msg import CameraInfo
    fx, fy, cx, cy = k
    msg = CameraInfo(width=width, height=height)
    msg.header.frame_id = frame_id
    msg.k = [float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0]
    return msg


def warm_up(peer: Peer, msg, outputs=('people',), timeout: float = START_TIMEOUT_S):
    """Publish ``msg`` until every output for its stamp arrived (discovery, first inference)."""
    stamp = msg.header.stamp.sec
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peer.image_pub.publish(msg)
        if peer.spin_until(lambda: all(peer.by_stamp(o, stamp) for o in outputs), 3.0):
            return
    pytest.fail(f'no {outputs} for the warm-up frame within {timeout} s')


def send_and_wait(peer: Peer, msg, outputs=('people',), with_people=(),
                  timeout: float = FRAME_TIMEOUT_S):
    """Publish and wait for ``outputs``, and for ``with_people`` when someone was found."""
    stamp = msg.header.stamp.sec
    peer.image_pub.publish(msg)
    assert peer.spin_until(lambda: all(peer.by_stamp(o, stamp) for o in outputs), timeout), \
        f'no {outputs} for stamp {stamp}'
    if with_people and peer.by_stamp('people', stamp)[0].people:
        assert peer.spin_until(lambda: all(peer.by_stamp(o, stamp) for o in with_people),
                               timeout), f'no {with_people} for stamp {stamp}'


def write_bag(path: Path, frames) -> Path:
    """A rosbag2 (sqlite3) of sensor_msgs/Image frames: (stamp_sec, frame_id, bgr pixels, pad)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    image_t, header_t = store.types['sensor_msgs/msg/Image'], store.types['std_msgs/msg/Header']
    time_t = store.types['builtin_interfaces/msg/Time']
    with Writer(path, version=8) as writer:
        conn = writer.add_connection('/camera/image_raw', image_t.__msgtype__, typestore=store)
        for stamp, frame_id, pixels, pad in frames:
            height, width = pixels.shape[:2]
            rows = np.concatenate([pixels.reshape(height, -1),
                                   np.zeros((height, pad), np.uint8)], axis=1)
            msg = image_t(header=header_t(stamp=time_t(sec=stamp, nanosec=0), frame_id=frame_id),
                          height=height, width=width, encoding='bgr8', is_bigendian=0,
                          step=rows.shape[1], data=rows.reshape(-1))
            writer.write(conn, stamp * 10**9, store.serialize_cdr(msg, image_t.__msgtype__))
    return path


def read_bag(path: Path):
    """The bag's images as rclpy sensor_msgs/Image messages (CDR bytes are shared)."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image

    with Reader(path) as reader:
        return [deserialize_message(bytes(raw), Image)
                for _, _, raw in reader.messages()]


# -- tests --------------------------------------------------------------------------------------


def test_node_outputs_match_the_estimator(ros_domain_id, model_files, images, tmp_path):
    """Frames from a topic and from a bag: headers, people, TF names, markers, body model."""
    from visualization_msgs.msg import Marker

    from romp_ros.core.body.joint_names import ROS4HRI_JOINTS
    from romp_ros.ros.romp_node import OUTPUT_TOPICS

    bag = write_bag(tmp_path / 'camera_bag', [
        (21, CAM_B, np.ascontiguousarray(images[2][:, :, ::-1]), 16),
        (22, CAM_B, np.ascontiguousarray(images[3][:, :, ::-1]), 8),
    ])
    bag_frames = read_bag(bag)
    node = NodeProcess(tmp_path, node_params(model_files, publish_vertices=True,
                                             tracking=False))
    peer = Peer()
    sent = []  # (msg, rgb pixels, K or None)
    try:
        # warm up until the node has cam_a's camera_info, and all outputs are matched
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(m.intrinsics_from_camera_info for m in peer.by_stamp('people', 1)):
            assert time.monotonic() < deadline, 'the node never used the camera_info K'
            peer.info_pub.publish(camera_info(CAM_A, K_A))
            peer.spin_for(0.2)
            peer.image_pub.publish(image_msg(images[0], 1, CAM_A))
            peer.spin_until(lambda: peer.by_stamp('people', 1), 3.0)
        warm_up(peer, image_msg(images[0], 2, CAM_A),
                outputs=('people', 'tf', 'markers', 'overlay', 'birds_eye'))
        # the bird's-eye view: the configured square image, with the input's header
        view = peer.by_stamp('birds_eye', 2)[0]
        assert (view.height, view.width, view.encoding) == (480, 480, 'rgb8')
        assert view.header.frame_id == CAM_A
        pixels = np.frombuffer(bytes(view.data), np.uint8).reshape(480, 480, 3)
        assert pixels.std() > 5, 'a drawn view (grid, field of view, people), not a blank'
        assert peer.spin_until(lambda: peer.messages('body_model'), 10.0), 'no body_model'
        # the node's publications are exactly OUTPUT_TOPICS, with their types
        names = dict(peer.node.get_publisher_names_and_types_by_node('romp_node', '/'))
        for topic, msg_type in OUTPUT_TOPICS.items():
            full = '/' + topic.lstrip('/')
            assert full in names, f'romp_node does not publish {full}'
            assert f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}" in names[full]
        for stamp, pixels in ((11, images[0]), (12, images[1])):
            msg = image_msg(pixels, stamp, CAM_A)
            send_and_wait(peer, msg, outputs=('people', 'overlay'), with_people=('tf', 'markers'))
            sent.append((msg, pixels, K_A))
        for msg in bag_frames:  # bgr8, padded rows, a frame without camera_info
            send_and_wait(peer, msg, with_people=('tf', 'markers'))
            sent.append((msg, np.ascontiguousarray(_bag_pixels(msg)[:, :, ::-1]), None))
        # a black frame: (almost) everybody vanishes; their markers must be deleted
        black = image_msg(np.zeros((480, 640, 3), np.uint8), 31, CAM_A)
        send_and_wait(peer, black)
        assert peer.spin_until(lambda: peer.by_stamp('markers', 31), FRAME_TIMEOUT_S)
        sent.append((black, np.zeros((480, 640, 3), np.uint8), K_A))
    finally:
        peer.close()
        code = node.stop()
    log = node.log()
    assert code == 0, log
    assert 'Traceback' not in log
    assert f"no valid camera_info for frame '{CAM_B}'" in log
    assert log.count(f"no valid camera_info for frame '{CAM_B}'") == 1

    # the node's people against Estimator.predict on the same frames with the same config
    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.estimator import Estimator
    from romp_ros.ros.params import node_config

    config = node_config(node_params(model_files)).estimator
    assert config == EstimatorConfig(model='romp', backbone=BACKBONE,
                                     checkpoint=str(model_files.checkpoint),
                                     models_dir=str(model_files.models_dir), device='cpu')
    estimator = Estimator(config)
    body_model = peer.messages('body_model')[0]
    assert body_model.num_vertices * 3 > len(body_model.faces) / 3 > 0
    assert len(body_model.faces) == estimator.faces.size
    assert list(body_model.joint_names) == list(estimator.joint_names)
    total_people = 0
    for msg, pixels, k in sent:
        stamp = msg.header.stamp.sec
        [people] = peer.by_stamp('people', stamp)
        expected = estimator.predict([pixels], intrinsics=[k])[0]
        assert people.header.frame_id == msg.header.frame_id
        assert (people.header.stamp.sec, people.header.stamp.nanosec) == (stamp, 0)
        assert people.intrinsics_from_camera_info == (k is not None)
        assert list(people.joint_names) == list(expected.joint_names)
        assert len(people.people) == expected.num_people, stamp
        assert [p.id for p in people.people] == list(range(expected.num_people))
        np.testing.assert_allclose([p.confidence for p in people.people],
                                   expected.center_confs, rtol=1e-4, atol=1e-5)
        roots = np.array([(p.root_pose.position.x, p.root_pose.position.y,
                           p.root_pose.position.z) for p in people.people]).reshape(-1, 3)
        np.testing.assert_allclose(roots, expected.joints_camera()[:, 0], atol=2e-3)
        for person in people.people:
            assert len(person.vertices) == 3 * body_model.num_vertices
            q = person.root_pose.orientation
            assert math.isclose(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2, 1.0, rel_tol=1e-5)
        total_people += expected.num_people
        if not msg.header.frame_id or expected.num_people == 0:
            continue
        [tf] = peer.by_stamp('tf', stamp)
        children = {t.child_frame_id for t in tf.transforms}
        for pid in range(expected.num_people):
            assert f'body_{pid}' in children
            assert {f'{part}_{pid}' for part in ROS4HRI_JOINTS} <= children
        assert {t.header.frame_id for t in tf.transforms} == {msg.header.frame_id}
        assert all(re.fullmatch(r'[A-Za-z0-9_]+', name) for name in children)
    assert total_people >= 4, 'the seeded weights should find people in natural images'

    # markers: the black frame deletes what the frame before showed and it does not (no ghosts)
    [before] = peer.by_stamp('markers', sent[-2][0].header.stamp.sec)
    [after] = peer.by_stamp('markers', 31)
    shown = {(m.ns, m.id) for m in before.markers if m.action == Marker.ADD}
    still = {(m.ns, m.id) for m in after.markers if m.action == Marker.ADD}
    deleted = {(m.ns, m.id) for m in after.markers if m.action == Marker.DELETE}
    assert {m.ns for m in before.markers} == {'mesh', 'skeleton', 'label'}
    black_people = len(peer.by_stamp('people', 31)[0].people)
    assert len(peer.by_stamp('people', sent[-2][0].header.stamp.sec)[0].people) > black_people
    assert still == {(ns, i) for ns in ('mesh', 'skeleton', 'label') for i in range(black_people)}
    assert deleted and deleted == shown - still
    assert all(m.header.frame_id == CAM_A for m in after.markers)
    [overlay] = peer.by_stamp('overlay', 11)
    assert (overlay.encoding, overlay.width, overlay.height) == ('rgb8', 640, 480)
    assert overlay.header.frame_id == CAM_A


def test_tracking_gives_stable_ids(ros_domain_id, model_files, images, tmp_path):
    """With tracking (default), people appear once confirmed and keep their ids and TF names;
    another camera's people get other ids (one id counter per node: body_<id> has one parent)."""
    from visualization_msgs.msg import Marker

    from romp_ros.msg import PersonMesh

    # low thresholds: every seeded person (scores ~0.6-0.8) starts a track at once
    node = NodeProcess(tmp_path, node_params(model_files, publish_overlay=False,
                                             marker_mesh=False, tf_prefix='front',
                                             track_low_conf=0.1, track_high_conf=0.2,
                                             track_new_conf=0.2))
    peer = Peer(outputs=('people', 'tf', 'markers'))
    stamps = list(range(50, 56))
    try:
        warm_up(peer, image_msg(images[0], 1, 'warm_up_frame'))  # another camera's tracker
        for stamp in stamps:
            send_and_wait(peer, image_msg(images[1], stamp, CAM_A), with_people=('tf', 'markers'))
        counts = [len(peer.by_stamp('people', stamp)[0].people) for stamp in stamps]
        assert counts[:2] == [0, 0] and min(counts[2:]) > 0, counts
        send_and_wait(peer, image_msg(np.zeros((480, 640, 3), np.uint8), 60, CAM_A))
        assert peer.spin_until(lambda: peer.by_stamp('markers', 60), FRAME_TIMEOUT_S)
        other = list(range(70, 74))  # the same image from a second camera
        for stamp in other:
            send_and_wait(peer, image_msg(images[1], stamp, CAM_B), with_people=('tf',))
    finally:
        peer.close()
        code = node.stop()
    assert code == 0, node.log()
    frames = [peer.by_stamp('people', stamp)[0] for stamp in stamps]
    assert [len(f.people) for f in frames[:2]] == [0, 0], 'tracks must be confirmed first'
    confirmed = frames[2:]
    ids = [sorted(p.id for p in f.people) for f in confirmed]
    assert ids[0] and all(i == ids[0] for i in ids), f'ids changed: {ids}'
    assert min(ids[0]) >= 1
    for f in confirmed:
        assert all(p.track_state == PersonMesh.STATE_CONFIRMED and p.has_velocity
                   for p in f.people)
        confs = [p.confidence for p in f.people]
        assert confs == sorted(confs, reverse=True)
    assert [f.people[0].track_age for f in confirmed] == [2, 3, 4, 5]
    [tf] = peer.by_stamp('tf', stamps[-1])
    assert {f'front_body_{i}' for i in ids[0]} <= {t.child_frame_id for t in tf.transforms}
    [gone] = peer.by_stamp('markers', 60)
    assert {(m.ns, m.id) for m in gone.markers} == {
        (ns, i) for ns in ('skeleton', 'label') for i in ids[0]}
    assert all(m.action == Marker.DELETE for m in gone.markers)
    other_ids = {p.id for p in peer.by_stamp('people', other[-1])[0].people}
    assert other_ids and not other_ids & set(ids[0]), (other_ids, ids[0])
    [tf_b] = peer.by_stamp('tf', other[-1])
    assert {t.header.frame_id for t in tf_b.transforms} == {CAM_B}


def _bag_pixels(msg) -> np.ndarray:
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    return rows[:, :msg.width * 3].reshape(msg.height, msg.width, 3)


BAD_IMAGES = [
    # (encoding, height, width, step, data bytes, expected log fragment)
    ('16UC1', 48, 64, 128, 48 * 128, "unsupported image encoding '16UC1'"),
    ('32FC1', 48, 64, 256, 48 * 256, "unsupported image encoding '32FC1': a depth image"),
    ('yuv422', 48, 63, 126, 48 * 126, 'its width must be even (got 63)'),
    ('rgb8', 0, 0, 0, 0, 'empty image (0x0 pixels)'),
    ('rgb8', 48, 64, 100, 48 * 100, 'step 100 is smaller than width*channels = 192'),
    ('rgb8', 48, 64, 192, 1000, 'data holds 1000 bytes but height*step'),
    ('rgb8', 10, 20000, 60000, 600, 'image 20000x10 exceeds'),
]


def test_node_survives_bad_input(ros_domain_id, model_files, images, tmp_path):
    """Each bad input gives one warning; a good frame after them is still processed."""
    node = NodeProcess(tmp_path, node_params(model_files, publish_overlay=False,
                                             publish_markers=False))
    peer = Peer(outputs=('people', 'diagnostics'))
    try:
        warm_up(peer, image_msg(images[0], 1, CAM_A))
        for stamp, (encoding, h, w, step, size, fragment) in enumerate(BAD_IMAGES, start=100):
            peer.image_pub.publish(raw_image(encoding, h, w, step, size, stamp))
            assert node.wait_for_log(fragment), f'no warning for {encoding} {w}x{h}: {fragment}'
            if stamp == 100:  # repeats of a bad encoding stay quiet (throttled per encoding)
                for repeat in (200, 201):
                    peer.image_pub.publish(raw_image(encoding, h, w, step, size, repeat))
                    peer.spin_for(0.3)
        for k, fragment in (([0.0] * 4, 'not calibrated'),
                            ([float('nan'), 500.0, 320.0, 240.0], 'NaN')):
            peer.info_pub.publish(camera_info('cam_bad', k))
            assert node.wait_for_log(fragment), f'no warning for camera_info K={k}'
        # a frame of a camera whose camera_info was refused, then an uncalibrated camera
        send_and_wait(peer, image_msg(images[1], 300, 'cam_bad'))
        send_and_wait(peer, image_msg(images[2], 301, 'cam_nocal'))
        assert node.proc.poll() is None, 'the node died'
        assert peer.spin_until(lambda: _diag_value(peer, 'frames_skipped') >= len(BAD_IMAGES),
                               10.0)
    finally:
        peer.close()
        code = node.stop()
    log = node.log()
    assert code == 0 and 'Traceback' not in log, log
    assert log.count("unsupported image encoding '16UC1'") == 1
    assert "no valid camera_info for frame 'cam_bad'" in log
    assert "no valid camera_info for frame 'cam_nocal'" in log
    [people] = peer.by_stamp('people', 300)
    assert people.intrinsics_from_camera_info is False


def test_several_cameras_share_one_network_call(ros_domain_id, model_files, images, tmp_path):
    """camera_namespaces: each camera's images come back on its own namespace's outputs, with
    its header; frames of the two cameras waiting together go through one network call."""
    node = NodeProcess(tmp_path, node_params(model_files, camera_namespaces="['front', 'rear']",
                                             tracking=False, publish_overlay=False))
    front = Peer(namespace='front', outputs=('people', 'diagnostics'))
    rear = Peer(namespace='rear', outputs=('people',))
    try:
        assert node.wait_for_log('active: listening on /front/image, /rear/image', 60), \
            node.log()[-2000:]
        warm_up(front, image_msg(images[0], 3, 'front_optical'))
        warm_up(rear, image_msg(images[1], 2, 'rear_optical'))
        # one frame keeps the worker busy; the next two (one per camera) wait for it together
        deadline, stamp = time.monotonic() + 120, 10
        while _diag_value(front, 'largest_network_batch') < 2:
            assert time.monotonic() < deadline, 'the two cameras never shared a network call'
            front.image_pub.publish(image_msg(images[2], stamp, 'front_optical'))
            front.spin_for(0.05)
            rear.image_pub.publish(image_msg(images[3], stamp + 1, 'rear_optical'))
            front.image_pub.publish(image_msg(images[0], stamp + 2, 'front_optical'))
            assert rear.spin_until(lambda s=stamp + 1: rear.by_stamp('people', s),
                                   FRAME_TIMEOUT_S)
            assert front.spin_until(lambda s=stamp + 2: front.by_stamp('people', s),
                                    FRAME_TIMEOUT_S)
            front.spin_until(lambda: False, 1.5)  # the next diagnostics
            stamp += 10
    finally:
        front.close()
        rear.close()
        code = node.stop()
    assert code == 0, node.log()
    assert _diag_value(front, 'cameras') == 2
    # each camera's people on its own topic only, with its own header
    front_people, rear_people = front.messages('people'), rear.messages('people')
    assert {m.header.frame_id for m in front_people} == {'front_optical'}
    assert {m.header.frame_id for m in rear_people} == {'rear_optical'}
    assert all(m.header.stamp.sec % 10 != 1 for m in front_people)
    assert all(m.header.stamp.sec % 10 == 1 or m.header.stamp.sec == 2 for m in rear_people)
    assert any(m.people for m in front_people) and any(m.people for m in rear_people)


def _diag_value(peer: Peer, key: str, default: float = -1.0) -> float:
    for msg in reversed(peer.messages('diagnostics')):
        for kv in msg.status[0].values:
            if kv.key == key:
                return float(kv.value)
    return default


@pytest.mark.parametrize('overlap', [False, True], ids=['sequential', 'overlap_frames'])
def test_node_keeps_up_under_overload(ros_domain_id, model_files, images, tmp_path, overlap):
    """Frames at several times the inference rate: the newest is processed, drops reported.

    With overlap_frames each batch is published after the next one started (frames are always
    waiting here); the last one, with none after it, is still published, and in order.
    """
    frames, rate_hz = 100, 15.0  # ~7 s; inference runs at 1-3 Hz on 2 CPU cores
    node = NodeProcess(tmp_path, node_params(model_files, publish_overlay=False,
                                             overlap_frames=overlap))
    peer = Peer(outputs=('people', 'diagnostics'))
    small = [np.ascontiguousarray(img[::2, ::2]) for img in images]  # 320x240: cheap transport
    publish_times = {}
    try:
        warm_up(peer, image_msg(small[0], 1, CAM_A))
        start = time.monotonic()
        for i in range(frames):
            stamp = 1000 + i
            msg = image_msg(small[i % len(small)], stamp, CAM_A)
            publish_times[stamp] = time.monotonic()
            peer.image_pub.publish(msg)
            peer.spin_until(lambda: False, max(0.0, start + (i + 1) / rate_hz - time.monotonic()))
        last = 1000 + frames - 1
        assert peer.spin_until(lambda: peer.by_stamp('people', last), FRAME_TIMEOUT_S), \
            'the last published frame was never processed'
        # diagnostics are periodic: wait until they account for the frames not processed
        # (up to a few lost in the DDS queue, which the node cannot see)
        def accounted() -> bool:
            processed = sum(1 for _, m in peer.received['people']
                            if m.header.stamp.sec in publish_times)
            return _diag_value(peer, 'frames_dropped') >= frames - processed - 10
        assert peer.spin_until(accounted, 10.0)
    finally:
        peer.close()
        code = node.stop()
    assert code == 0, node.log()
    done = [(t, m.header.stamp.sec) for t, m in peer.received['people']
            if m.header.stamp.sec in publish_times]
    latencies = [t - publish_times[s] for t, s in done]
    processed = len(done)
    dropped = _diag_value(peer, 'frames_dropped')
    period = (done[-1][0] - done[0][0]) / max(1, processed - 1)
    assert processed >= 6, 'too few frames processed to compare latencies'
    early, late = latencies[:3], latencies[-3:]
    LOG.info(f'overload: published {frames} at {rate_hz} Hz, processed {processed}, '
          f'dropped {dropped:.0f}, inference period {period:.2f} s, latency early '
          f'{np.round(early, 2).tolist()} late {np.round(late, 2).tolist()} s')
    assert processed < frames and dropped >= frames - processed - 10
    stamps = [s for _, s in done]
    assert stamps == sorted(set(stamps)), 'each frame once, in order'
    # latest-wins: a frame waits at most about one inference period for the worker (and,
    # overlapped, one more for the frame started before it is published)
    assert max(late) < max(early) + 2 * period + 1.0
    assert max(latencies) < 4 * period + 2.0


def test_lifecycle_compressed_transport_and_remapping(ros_domain_id, model_files, images,
                                                      tmp_path):
    """autostart off: configure/activate over the lifecycle services; JPEG input; remaps."""
    cv2 = pytest.importorskip('cv2')
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from sensor_msgs.msg import CompressedImage
    from visualization_msgs.msg import Marker

    node = NodeProcess(tmp_path, node_params(model_files, autostart=False, tracking=False,
                                             image_transport='compressed'),
                       ros_args=['-r', '__ns:=/front', '-r', 'image:=/cam/image_raw'])
    peer = Peer(namespace='/front', image_topic='/cam/image_raw/compressed', compressed=True,
                outputs=('people', 'markers'))
    ok, jpeg = cv2.imencode('.jpg', images[0][:, :, ::-1])
    assert ok
    frame = CompressedImage(format='jpeg', data=jpeg.tobytes())
    frame.header.frame_id, frame.header.stamp.sec = CAM_A, 5
    try:
        change = peer.node.create_client(ChangeState, '/front/romp_node/change_state')
        get_state = peer.node.create_client(GetState, '/front/romp_node/get_state')
        assert peer.spin_until(lambda: change.service_is_ready(), START_TIMEOUT_S)

        def state() -> str:
            # a request sent before the reply path is matched can be lost: ask again
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                future = get_state.call_async(GetState.Request())
                if peer.spin_until(future.done, 5.0):
                    return future.result().current_state.label
            pytest.fail('get_state never answered')

        def transition(transition_id: int, expected: str) -> None:
            request = ChangeState.Request(transition=Transition(id=transition_id))
            for _ in range(5):
                future = change.call_async(request)
                if peer.spin_until(future.done, 60.0):
                    assert future.result().success, node.log()
                    return
                if state() == expected:  # done, only the reply was lost
                    return
            pytest.fail(f'transition {transition_id} never completed:\n{node.log()}')

        assert state() == 'unconfigured'
        assert peer.node.count_publishers('/front/people') == 0
        transition(Transition.TRANSITION_CONFIGURE, 'inactive')
        # lifecycle publishers: the topics exist from configure on, silent until activated
        assert peer.spin_until(lambda: peer.node.count_publishers('/front/people') == 1, 10.0)
        transition(Transition.TRANSITION_ACTIVATE, 'active')
        assert state() == 'active'
        assert peer.spin_until(
            lambda: peer.node.count_subscribers('/cam/image_raw/compressed') > 0, 10.0)
        warm_up(peer, frame, outputs=('people', 'markers'))
        broken = CompressedImage(format='jpeg', data=b'not a jpeg at all')
        broken.header.frame_id = CAM_A
        peer.image_pub.publish(broken)
        assert node.wait_for_log('could not decode compressed image')
        transition(Transition.TRANSITION_DEACTIVATE, 'inactive')
        assert peer.spin_until(lambda: any(
            m.markers and m.markers[0].action == Marker.DELETEALL
            for m in peer.messages('markers')), 10.0), 'no DELETEALL on deactivate'
        assert peer.node.count_publishers('/front/people') == 1, 'topics stay while inactive'
        transition(Transition.TRANSITION_CLEANUP, 'unconfigured')
        assert peer.spin_until(lambda: peer.node.count_publishers('/front/people') == 0, 10.0)
    finally:
        peer.close()
        code = node.stop()
    log = node.log()
    assert code == 0 and 'Traceback' not in log, log
    people = peer.by_stamp('people', 5)[0]  # the warm-up may have sent the frame twice
    assert people.header.frame_id == CAM_A and len(people.people) > 0


def test_node_solves_through_the_camera_info_lens(ros_domain_id, model_files, images, tmp_path):
    """A distorted CameraInfo (the issue's 90 deg lens): the published joints, projected through
    that lens by OpenCV, land on the published keypoints, at the edges too."""
    import cv2

    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.estimator import Estimator
    from romp_ros.core.geometry.camera_model import CameraModel

    k, lens = (320.0, 320.0, 320.0, 240.0), (-0.3, 0.1, 0.0, 0.0, 0.0)
    info = camera_info(CAM_A, k)
    info.distortion_model, info.d = 'plumb_bob', list(lens)
    node = NodeProcess(tmp_path, node_params(model_files, tracking=False, publish_markers=False,
                                             publish_overlay=False))
    peer = Peer(outputs=('people',))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(m.intrinsics_from_camera_info for m in peer.by_stamp('people', 1)):
            assert time.monotonic() < deadline, 'the node never used the camera_info'
            peer.info_pub.publish(info)
            peer.spin_for(0.2)
            peer.image_pub.publish(image_msg(images[0], 1, CAM_A))
            peer.spin_until(lambda: peer.by_stamp('people', 1), 3.0)
        send_and_wait(peer, image_msg(images[1], 2, CAM_A))
    finally:
        peer.close()
        code = node.stop()
    log = node.log()
    assert code == 0 and 'Traceback' not in log, log
    assert f"using camera_info of frame '{CAM_A}' (raw images: K and the plumb_bob lens)" in log
    [people] = peer.by_stamp('people', 2)
    estimator = Estimator(EstimatorConfig(model='romp', backbone=BACKBONE, device='cpu',
                                          checkpoint=str(model_files.checkpoint),
                                          models_dir=str(model_files.models_dir)))
    camera = CameraModel(640, 480, k, 'plumb_bob', lens)
    expected = estimator.predict([images[1]], intrinsics=camera)[0]
    k_only = estimator.predict([images[1]], intrinsics=k)[0]
    assert len(people.people) == expected.num_people >= 3
    joints = np.array([[(j.x, j.y, j.z) for j in p.joints_3d[:24]] for p in people.people])
    keypoints = np.array([np.asarray(p.keypoints_2d).reshape(-1, 2)[:24] for p in people.people])
    np.testing.assert_allclose(joints, expected.joints_camera()[:, :24], atol=2e-3)
    np.testing.assert_allclose(keypoints, expected.pj2d_org[:, :24], atol=1e-3)

    def miss(points):  # (N,) median distance to the keypoints, in body heights
        projected, _ = cv2.projectPoints(points.reshape(-1, 1, 3).astype(np.float64),
                                         np.zeros(3), np.zeros(3), camera.matrix(),
                                         np.asarray(lens))
        dist = np.linalg.norm(projected.reshape(keypoints.shape) - keypoints, axis=-1)
        return np.median(dist, axis=1) / np.ptp(keypoints[..., 1], axis=1)

    ours, ignored = miss(joints), miss(k_only.joints_camera()[:, :24])
    edge = np.abs(keypoints[:, 0, 0] - 320.0) > 160.0
    assert edge.any() and ours.max() < 0.1, ours
    assert ours[edge].mean() < 0.5 * ignored[edge].mean(), (ours, ignored)


@pytest.mark.parametrize('case', ['missing_checkpoint', 'missing_models_dir', 'bad_parameter'])
def test_startup_errors_give_one_clear_message(case, ros_domain_id, model_files, tmp_path):
    """Configure failures exit 1 with one message naming the file and the fix; no traceback."""
    params = node_params(model_files)
    if case == 'missing_checkpoint':
        params['checkpoint'] = str(tmp_path / 'nowhere' / 'ROMP_ResNet50_V1.pkl')
        expected, fix, code_expected = params['checkpoint'], 'romp-ros download', 1
    elif case == 'missing_models_dir':
        params['models_dir'] = str(tmp_path / 'no_models')
        expected, fix, code_expected = 'smpl_neutral.npz', 'romp-ros prepare-models', 1
    else:
        params['device'] = 'gpu0'
        expected, fix, code_expected = "device='gpu0' is invalid", 'cuda:N', 2
    node = NodeProcess(tmp_path, params)
    try:
        code = node.wait(START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = node.stop()
    log = node.log()
    assert code == code_expected, log
    assert 'Traceback' not in log, log
    errors = [line for line in log.splitlines() if line.startswith('[ERROR]')]
    assert len(errors) == 1, log
    assert expected in errors[0] and fix in errors[0], errors[0]


def test_parameters_are_validated_at_set_time(ros_domain_id):
    """In-process: descriptors, rejected values with reasons, live options applied."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from romp_ros.ros.romp_node import RompNode

    context = Context()
    rclpy.init(context=context)
    try:
        node = RompNode(context=context)
        assert node.describe_parameter('models_dir').read_only
        assert node.describe_parameter('checkpoint').read_only
        assert not node.describe_parameter('publish_markers').read_only
        rejected = {
            'device': Parameter('device', value='gpu'),
            'center_thresh': Parameter('center_thresh', value=2.0),
            'model': Parameter('model', value='bev'),
            'qos_reliability': Parameter('qos_reliability', value='sometimes'),
            'latency_warn_ms': Parameter('latency_warn_ms', value='fast'),
        }
        for name, param in rejected.items():
            result = node.set_parameters([param])[0]
            assert not result.successful and result.reason, name
        reason = node.set_parameters([rejected['device']])[0].reason
        assert "'auto', 'cpu' or 'cuda:N'" in reason
        assert node.set_parameters([Parameter('publish_markers', value=False),
                                    Parameter('tf_prefix', value='/rear cam')])[0].successful
        assert node._live.publish_markers is False and node._live.tf_prefix == 'rear_cam_'
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


# -- in one process: lifecycle conventions, two nodes ------------------------------------------


class InProcess:
    """RompNodes and a peer node in this process, one rclpy Context and one executor."""

    def __init__(self, files: ModelFiles, namespaces, **params) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from romp_ros.msg import PersonMeshArray
        from romp_ros.ros.romp_node import RompNode

        self.context = Context()
        rclpy.init(context=self.context)
        overrides = [Parameter(name, value=value)
                     for name, value in node_params(files, autostart=False, tracking=False,
                                                    publish_markers=False,
                                                    publish_overlay=False, **params).items()]
        self.nodes = {ns: RompNode(context=self.context, namespace=ns,
                                   parameter_overrides=overrides) for ns in namespaces}
        self.peer = rclpy.create_node('in_process_peer', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        for node in (*self.nodes.values(), self.peer):
            self.executor.add_node(node)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.images = {ns: self.peer.create_publisher(Image, f'/{ns}/image', qos)
                       for ns in namespaces}
        self.infos = {ns: self.peer.create_publisher(CameraInfo, f'/{ns}/camera_info', qos)
                      for ns in namespaces}
        self.people = defaultdict(list)
        for ns in namespaces:
            self.peer.create_subscription(PersonMeshArray, f'/{ns}/people',
                                          lambda msg, ns=ns: self.people[ns].append(msg), qos)

    def spin_until(self, predicate, timeout: float = FRAME_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def stamped(self, ns: str, stamp: int):
        return [m for m in self.people[ns] if m.header.stamp.sec == stamp]

    def send_until_answered(self, ns: str, msg, timeout: float = START_TIMEOUT_S) -> bool:
        """Publish ``msg`` until its people come back (discovery may lose the first ones)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.images[ns].publish(msg)
            if self.spin_until(lambda: self.stamped(ns, msg.header.stamp.sec), 5.0):
                return True
        return False

    def close(self) -> None:
        import rclpy
        for node in self.nodes.values():
            node.trigger_shutdown()
        self.executor.shutdown()
        for node in (*self.nodes.values(), self.peer):
            node.destroy_node()
        rclpy.shutdown(context=self.context)


def test_two_nodes_in_one_process_and_no_global_logger_change(ros_domain_id, model_files,
                                                              images, capfd):
    """Two nodes, own namespaces, one executor: each works, logs its own core warnings once."""
    from rclpy.lifecycle import TransitionCallbackReturn

    success = TransitionCallbackReturn.SUCCESS
    core_logger = logging.getLogger('romp_ros')
    before = (core_logger.level, core_logger.propagate, list(core_logger.handlers))
    run = InProcess(model_files, ('front', 'rear'), camera_model='raw')
    try:
        assert (core_logger.level, core_logger.propagate) == before[:2]
        for node in run.nodes.values():
            assert node.trigger_configure() == success
            assert node.trigger_activate() == success
        assert (core_logger.level, core_logger.propagate) == before[:2]
        # front's camera has its principal point far outside the image: the core warns
        far = camera_info('front_cam', (500.0, 500.0, 2000.0, 240.0))
        for _ in range(20):
            run.infos['front'].publish(far)
            run.spin_until(lambda: False, 0.1)
        assert run.send_until_answered('front', image_msg(images[0], 7, 'front_cam'))
        assert run.send_until_answered('rear', image_msg(images[1], 8, 'rear_cam'))
        front, rear = run.stamped('front', 7)[0], run.stamped('rear', 8)[0]
        assert front.header.frame_id == 'front_cam' and rear.header.frame_id == 'rear_cam'
        assert front.intrinsics_from_camera_info and not rear.intrinsics_from_camera_info
        assert not run.stamped('front', 8) and not run.stamped('rear', 7)
    finally:
        run.close()
    after = (core_logger.level, core_logger.propagate, list(core_logger.handlers))
    assert after == before, 'the nodes must leave the Python loggers as they found them'
    log = capfd.readouterr().err
    warnings = [line for line in log.splitlines() if 'lies far outside' in line]
    assert warnings, log
    assert all('front.romp_node' in line for line in warnings), warnings
    assert len(warnings) == 1, 'each core record reaches its own node once (throttled)'


def test_deactivate_returns_while_a_frame_is_in_flight(ros_domain_id, model_files, images):
    """Lifecycle publishers exist from configure on; deactivate does not wait for inference."""
    import threading

    from rclpy.lifecycle import TransitionCallbackReturn

    success = TransitionCallbackReturn.SUCCESS
    run = InProcess(model_files, ('front',))
    node = run.nodes['front']
    try:
        count = run.peer.count_publishers
        assert count('/front/people') == 0
        assert node.trigger_configure() == success
        assert count('/front/people') == 1 and count('/front/body_model') == 1
        assert node.trigger_activate() == success
        assert run.send_until_answered('front', image_msg(images[0], 1, 'cam'))
        # hold the next inference inside the estimator (the real one, entered and gated)
        entered, gate = threading.Event(), threading.Event()
        submit = node._estimator.submit

        def held(*args, **kwargs):
            entered.set()
            gate.wait(FRAME_TIMEOUT_S)
            return submit(*args, **kwargs)

        node._estimator.submit = held
        run.images['front'].publish(image_msg(images[1], 2, 'cam'))
        assert run.spin_until(entered.is_set), 'the frame never reached the estimator'
        worker = node._worker.thread
        assert node.trigger_deactivate() == success
        assert worker.is_alive(), 'deactivate must not wait for the frame in flight'
        assert count('/front/people') == 1, 'topics stay while the node is inactive'
        gate.set()
        worker.join(FRAME_TIMEOUT_S)
        assert not worker.is_alive()
        run.spin_until(lambda: False, 1.0)
        assert not run.stamped('front', 2), 'the frame in flight is dropped, not published'
        node._estimator.submit = submit
        # an activation that fails half-way undoes itself: the worker it started is stopped
        subscribe = node._subscribe

        def broken_subscribe(config):
            raise ValueError('an invalid remapped topic')

        node._subscribe = broken_subscribe
        assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
        assert node._worker is None and not node._subs and node._retired
        node._subscribe = subscribe
        assert node.trigger_activate() == success
        assert run.send_until_answered('front', image_msg(images[2], 3, 'cam'))
        assert node.trigger_deactivate() == success
        assert node.trigger_cleanup() == success
        assert run.spin_until(lambda: count('/front/people') == 0, 10.0)
    finally:
        gate.set()
        run.close()


def test_rectified_camera_model_uses_p(ros_domain_id, model_files, images):
    """camera_model=rectified: the CameraInfo's P explains the keypoints, not K and D."""
    from rclpy.lifecycle import TransitionCallbackReturn

    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.estimator import Estimator

    run = InProcess(model_files, ('front',), camera_model='rectified')
    node = run.nodes['front']
    info = camera_info('cam', (520.0, 515.0, 322.0, 236.0))
    info.distortion_model, info.d = 'plumb_bob', [-0.3, 0.1, 0.0, 0.0, 0.0]
    info.p = [480.0, 0.0, 330.0, 0.0, 0.0, 481.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        for _ in range(20):
            run.infos['front'].publish(info)
            run.spin_until(lambda: False, 0.1)
        assert run.send_until_answered('front', image_msg(images[0], 4, 'cam'))
    finally:
        run.close()
    [people] = run.stamped('front', 4)
    assert people.intrinsics_from_camera_info and people.people
    estimator = Estimator(EstimatorConfig(model='romp', backbone=BACKBONE, device='cpu',
                                          checkpoint=str(model_files.checkpoint),
                                          models_dir=str(model_files.models_dir)))
    expected = estimator.predict([images[0]], intrinsics=(480.0, 481.0, 330.0, 230.0))[0]
    got = np.array([(p.translation.x, p.translation.y, p.translation.z) for p in people.people])
    np.testing.assert_allclose(got, expected.cam_trans, atol=2e-3)
