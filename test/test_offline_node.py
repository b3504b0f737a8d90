"""The offline node, for real: installed executables in their own processes, DDS in between.

* live evaluation: a synthetic bag (images, camera_info, ground truth) is replayed by a
  publisher into the perception node; the offline node scores its ``people`` against the
  ground truth by stamp and writes the report, every frame accounted for;
* a training job started from parameters writes a checkpoint and reports its progress;
* bad parameters fail configure with one clear line.
"""

from __future__ import annotations

from collections import defaultdict
import json
import os
from pathlib import Path
import signal
import subprocess
import time

from conftest import REPO_ROOT, require_ros
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

INSTALL_LIB = REPO_ROOT / 'install' / 'romp_ros' / 'lib' / 'romp_ros'
OFFLINE_CONFIG = REPO_ROOT / 'config' / 'offline.yaml'
ROMP_CONFIG = REPO_ROOT / 'config' / 'romp.yaml'
CPU_TRAIN_CONFIG = REPO_ROOT / 'config' / 'train' / 'synthetic_cpu.yaml'
FRAMES = 6


def test_offline_yaml_matches_the_declarations():
    from romp_ros.ros.offline_params import OFFLINE_PARAMETERS_BY_NAME, offline_job
    values = yaml.safe_load(OFFLINE_CONFIG.read_text())['offline_node']['ros__parameters']
    assert set(values) <= set(OFFLINE_PARAMETERS_BY_NAME)
    for name, value in values.items():
        spec = OFFLINE_PARAMETERS_BY_NAME[name]
        assert value == spec.default, f'{name}: the YAML documents the default'
    job = offline_job(values)
    assert job.kind == 'evaluate_live' and job.evaluation.max_wait_s == 2.0


class Process:
    """An installed executable with a parameter file; its output goes to a log file."""

    def __init__(self, name: str, log_dir: Path, param_files: list[Path], ros_args=()) -> None:
        executable = INSTALL_LIB / name
        assert executable.is_file(), f'{executable} missing: run `make setup`'
        args = [str(executable), '--ros-args']
        for path in param_files:
            args += ['--params-file', str(path)]
        args += list(ros_args)
        self.log_path = log_dir / f'{name}.log'
        self._log = open(self.log_path, 'w', encoding='utf-8')
        env = dict(os.environ, RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=log_dir)

    def log(self) -> str:
        return self.log_path.read_text(encoding='utf-8', errors='replace')

    def wait_for_log(self, fragment: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fragment in self.log() or self.proc.poll() is not None:
                return fragment in self.log()
            time.sleep(0.1)
        return False

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._log.close()


def params_file(path: Path, node: str, values: dict) -> Path:
    path.write_text(yaml.safe_dump({node: {'ros__parameters': values}}))
    return path


class Peer:
    """A node in this process that replays bag messages and collects JobProgress."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        from romp_ros.msg import JobProgress

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('offline_test_peer', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.progress: list = []
        latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(JobProgress, 'progress', self.progress.append, latched)
        self.pubs: dict = {}
        self.received = defaultdict(list)

    def publisher(self, topic: str, msg_type):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        if topic not in self.pubs:
            self.pubs[topic] = self.node.create_publisher(
                msg_type, topic, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        return self.pubs[topic]

    def subscribe(self, topic: str, msg_type) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        self.node.create_subscription(msg_type, topic, self.received[topic].append,
                                      QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def close(self) -> None:
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """A synthetic sequence dataset and its bag (raw images, camera_info, ground truth)."""
    require_ros()
    from romp_ros.data.bag_writer import write_dataset_bag
    from romp_ros.data.dataset_format import GenericDataset
    from romp_ros.synthetic.dataset import write_synthetic_dataset
    from romp_ros.synthetic.scene_spec import SceneSpec
    root = tmp_path_factory.mktemp('offline')
    spec = SceneSpec(width=320, height=240, people=(1, 2), distance_m=(2.5, 6.0),
                     distortion_prob=0.0, supersample=1, sequence=True, fps=5.0)
    write_synthetic_dataset(root / 'data', spec, frames=FRAMES, seed=5, progress=False)
    bag = root / 'data.mcap'
    write_dataset_bag(GenericDataset(root / 'data'), bag, compressed=False, progress=False)
    return root / 'data', bag


@pytest.fixture(scope='module')
def seeded(tmp_path_factory):
    from romp_ros.testing.seeded_weights import write_seeded_checkpoint
    return write_seeded_checkpoint(tmp_path_factory.mktemp('ckpt') / 'romp_resnet50.pth',
                                   'romp', 'resnet50', seed=0)


def _replay(peer: Peer, bag: Path, period_s: float) -> dict[str, int]:
    """Publish every message of the bag (serialised bytes, in order), per topic counts."""
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import CameraInfo, Image

    from romp_ros.data.bag_types import typestore
    from romp_ros.msg import PersonMeshArray
    types = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
             'romp_ros/msg/PersonMeshArray': PersonMeshArray}
    counts: dict[str, int] = defaultdict(int)
    with AnyReader([bag], default_typestore=typestore()) as reader:
        messages = list(reader.messages())
    last_stamp = None
    for conn, stamp, raw in messages:
        if last_stamp is not None and stamp != last_stamp:
            peer.spin_until(lambda: False, period_s)  # keep the replay's frame period
        last_stamp = stamp
        peer.publisher(conn.topic, types[conn.msgtype]).publish(bytes(raw))
        counts[conn.topic] += 1
    return counts


def test_live_evaluation_scores_the_perception_node(ros_domain_id, synthetic, seeded, tmp_path):
    _, bag = synthetic
    dataset_dir, _ = synthetic
    out = tmp_path / 'report'
    romp = Process('romp_node', tmp_path, [ROMP_CONFIG, params_file(
        tmp_path / 'romp.yaml', 'romp_node',
        {'model': 'romp', 'backbone': 'resnet50', 'checkpoint': str(seeded),
         'models_dir': str(dataset_dir / 'body_model'), 'device': 'cpu',
         'qos_reliability': 'reliable', 'tracking': False})],
        ['-r', 'image:=/camera/image', '-r', 'camera_info:=/camera/camera_info'])
    offline = Process('offline_node', tmp_path, [OFFLINE_CONFIG, params_file(
        tmp_path / 'offline.yaml', 'offline_node',
        {'job': 'evaluate_live', 'output_dir': str(out), 'idle_timeout_s': 8.0,
         'max_wait_s': 1.0})],
        ['-r', 'ground_truth:=/ground_truth/people'])
    from sensor_msgs.msg import Image

    from romp_ros.msg import PersonMeshArray
    peer = Peer()
    peer.subscribe('/people', PersonMeshArray)
    try:
        assert romp.wait_for_log('active: listening', 180), romp.log()[-3000:]
        assert offline.wait_for_log('live evaluation:', 60), offline.log()[-3000:]
        # discovery: wait until both nodes see the replaying publishers
        peer.publisher('/camera/image', Image)
        peer.publisher('/ground_truth/people', PersonMeshArray)
        peer.spin_until(lambda: peer.pubs['/camera/image'].get_subscription_count() > 0
                        and peer.pubs['/ground_truth/people'].get_subscription_count() > 0, 30)
        counts = _replay(peer, bag, period_s=0.2)
        assert counts['/ground_truth/people'] == FRAMES
        assert offline.wait(240) == 0, offline.log()[-3000:]
        peer.spin_until(lambda: any(p.state == 'finished' for p in peer.progress), 10)
    finally:
        romp.stop()
        if offline.proc.poll() is None:
            offline.stop()
        peer.close()
    report = json.loads((out / 'report.json').read_text())
    frames = report['frames']
    # every ground-truth frame is accounted for: scored, or missed because romp_node dropped it
    assert frames['total'] == FRAMES
    assert frames['scored'] + sum(frames['skipped'].values()) == FRAMES
    assert set(frames['skipped']) <= {'no_prediction'}
    published = len(peer.received['/people'])
    assert frames['scored'] >= 1 and frames['scored'] <= published
    people = report['people']
    assert people['ground_truth'] == people['matched'] + people['missed']
    rows = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert len(rows) >= FRAMES
    final = [p for p in peer.progress if p.state == 'finished']
    assert final and final[-1].job == 'evaluate_live' and final[-1].done == FRAMES


def test_training_job_from_parameters(ros_domain_id, synthetic, tmp_path):
    dataset_dir, _ = synthetic
    run = tmp_path / 'run'
    offline = Process('offline_node', tmp_path, [OFFLINE_CONFIG, params_file(
        tmp_path / 'train.yaml', 'offline_node',
        {'job': 'train', 'output_dir': str(run), 'train_config': str(CPU_TRAIN_CONFIG),
         'train_data': [str(dataset_dir)], 'max_steps': 2, 'device': 'cpu',
         'train_overrides': ['data.num_workers=0', 'logging.image_every=0',
                             'model.input_size=128']})])
    peer = Peer()
    try:
        assert offline.wait(600) == 0, offline.log()[-3000:]
        peer.spin_until(lambda: any(p.state == 'finished' for p in peer.progress), 20)
    finally:
        if offline.proc.poll() is None:
            offline.stop()
        peer.close()
    from romp_ros.train.checkpoints import read_training_checkpoint
    assert read_training_checkpoint(run / 'checkpoints' / 'last.pth')['step'] == 2
    finished = [p for p in peer.progress if p.state == 'finished']
    assert finished, f'progress seen: {[(p.state, p.done) for p in peer.progress]}'
    last = finished[-1]
    assert (last.job, last.done, last.total) == ('train', 2, 2)
    assert 'loss' in list(last.names)

    # the trained checkpoint runs in the perception node like an official file, at the input
    # size it was trained at
    from sensor_msgs.msg import Image

    from romp_ros.msg import PersonMeshArray
    romp = Process('romp_node', tmp_path, [ROMP_CONFIG, params_file(
        tmp_path / 'romp.yaml', 'romp_node',
        {'model': 'romp', 'backbone': 'efficientnet_v2_s',
         'checkpoint': str(run / 'checkpoints' / 'last.pth'),
         'models_dir': str(dataset_dir / 'body_model'), 'device': 'cpu',
         'qos_reliability': 'reliable'})])
    peer = Peer()
    peer.subscribe('people', PersonMeshArray)
    try:
        assert romp.wait_for_log('active: listening', 180), romp.log()[-3000:]
        assert 'input 128 px' in romp.log()
        image = Image(height=96, width=128, encoding='rgb8', step=128 * 3,
                      data=bytes(range(256)) * 144)
        image.header.stamp.sec, image.header.frame_id = 7, 'cam'
        pub = peer.publisher('image', Image)
        assert peer.spin_until(lambda: pub.get_subscription_count() > 0, 30)
        assert peer.spin_until(lambda: pub.publish(image) or peer.received['people'], 60), \
            romp.log()[-3000:]
        assert peer.received['people'][0].header.stamp.sec == 7
        assert peer.received['people'][0].backbone == 'efficientnet_v2_s'
    finally:
        romp.stop()
        peer.close()


@pytest.mark.parametrize('values, fragment', [
    ({'job': 'train', 'output_dir': 'x'}, 'train_data'),
    ({'job': 'evaluate_bags', 'output_dir': 'x'}, 'bags parameter'),
    ({'job': 'evaluate_dataset', 'output_dir': 'x', 'dataset': '/nowhere'}, 'models_dir'),
])
def test_bad_parameters_fail_configure_with_one_line(values, fragment, ros_domain_id, tmp_path):
    offline = Process('offline_node', tmp_path, [OFFLINE_CONFIG, params_file(
        tmp_path / 'bad.yaml', 'offline_node', values)])
    code = offline.wait(120)
    log = offline.log()
    assert code == 1, log
    assert fragment in log and 'Traceback' not in log, log
