"""The launch files through the real ROS 2 tooling: `ros2 launch`, `ros2 param`,
`ros2 lifecycle`, each a process of its own, the nodes driven over DDS by this process.

The perception node runs the small configuration of test_ros_node.py (ROMP, ResNet-50, seeded
weights, the synthetic body model, CPU). The ``ros2`` command, ``launch`` and ``launch_ros``
come with ROS 2; `make setup` installs them from ../shared/ros2-cli where ROS 2 comes from
wheels. Where neither is present the module is skipped (the package does not need them).
"""

from __future__ import annotations

from collections import defaultdict
import importlib.util
import json
import logging
import os
from pathlib import Path
import shutil
import signal
import subprocess
import time

from conftest import REPO_ROOT, require_ros
import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROMP_CONFIG = REPO_ROOT / 'config' / 'romp.yaml'
OFFLINE_CONFIG = REPO_ROOT / 'config' / 'offline.yaml'
LAUNCH_DIR = REPO_ROOT / 'launch'
BACKBONE = 'resnet50'
START_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 60.0


@pytest.fixture(autouse=True)
def sigint_reaches_children():
    """`ros2 launch` stops on SIGINT. A test run started in the background (`cmd &`) ignores
    SIGINT, and children inherit an ignored signal: give them the default disposition."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)


def require_ros2_cli() -> None:
    require_ros()
    if shutil.which('ros2') is None or importlib.util.find_spec('launch_ros') is None:
        pytest.skip('needs the ros2 command, launch and launch_ros: a ROS 2 install, or '
                    '`make setup` with ../shared/ros2-cli next to the checkout')


@pytest.fixture
def model_files(models_dir, seeded_checkpoint):
    """(models_dir, checkpoint): the session's prepared synthetic body model, seeded weights."""
    require_ros2_cli()
    return models_dir, seeded_checkpoint('romp', BACKBONE)


@pytest.fixture(scope='module')
def image():
    """A 640x480 photo-like RGB image on which the seeded weights find people."""
    from romp_ros.testing.seeded_weights import calibration_images
    pic = calibration_images(seed=11, count=1).numpy().astype(np.uint8)[0]
    return np.ascontiguousarray(pic[16:496, :, :].repeat(2, axis=1)[:, 64:704])


def installed_layout(config: Path, node: str, values: dict, path: Path) -> Path:
    """A parameter file laid out like the installed one (keyed by the bare node name)."""
    data = yaml.safe_load(config.read_text())
    assert list(data) == [node], f'{config} is no longer keyed {node}: update this test'
    data[node]['ros__parameters'].update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Launch:
    """`ros2 launch romp_ros <file> name:=value ...` as a process group; output to a file."""

    def __init__(self, log_dir: Path, launch_file: str, arguments: dict) -> None:
        cmd = ['ros2', 'launch', 'romp_ros', launch_file,
               *(f'{name}:={value}' for name, value in arguments.items())]
        self.log_path = log_dir / f'{launch_file}.log'
        self._log = open(self.log_path, 'w', encoding='utf-8')
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=cli_env(log_dir), cwd=log_dir, start_new_session=True)

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
        """SIGINT to `ros2 launch` (it stops its nodes); the whole group is killed if stuck."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._log.close()
        return code


def cli_env(log_dir: Path) -> dict:
    return dict(os.environ, RCUTILS_COLORIZED_OUTPUT='0', PYTHONUNBUFFERED='1',
                ROS_LOG_DIR=str(log_dir / 'ros_log'))


def ros2(log_dir: Path, *args: str) -> str:
    """Run `ros2 <args>` (through the test's daemon), retried while discovery has not seen the
    node yet. Returns stdout + stderr."""
    out = ''
    for _ in range(10):
        done = subprocess.run(['ros2', *args], capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, env=cli_env(log_dir), check=False)
        out = done.stdout + done.stderr
        if 'node not found' not in out.lower():
            return out
        time.sleep(0.5)
    return out


@pytest.fixture
def ros2_daemon(ros_domain_id, tmp_path):
    """The ros2 daemon of this test's domain (the CLI discovers through it), stopped after."""
    require_ros2_cli()
    assert 'started' in ros2(tmp_path, 'daemon', 'start')
    try:
        yield
    finally:
        ros2(tmp_path, 'daemon', 'stop')


class Peer:
    """A node in this process: publishes images / PersonMeshArrays, collects what comes back."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('launch_test_peer', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pubs: dict = {}
        self.received = defaultdict(list)
        self.clock = None

    def publisher(self, topic: str, msg_type):
        if topic not in self.pubs:
            self.pubs[topic] = self.node.create_publisher(msg_type, topic, self.reliable)
        return self.pubs[topic]

    def subscribe(self, topic: str, msg_type, latched: bool = False) -> None:
        self.node.create_subscription(msg_type, topic, self.received[topic].append,
                                      self.latched if latched else self.reliable)

    def start_clock(self) -> None:
        """Publish /clock while spinning, as `ros2 bag play --clock` does (use_sim_time)."""
        from rosgraph_msgs.msg import Clock
        self.clock = self.node.create_publisher(Clock, '/clock', 10)

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.clock is not None:
                from rosgraph_msgs.msg import Clock
                now = Clock()
                now.clock.sec, now.clock.nanosec = divmod(time.monotonic_ns(), 10**9)
                self.clock.publish(now)
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def stamps(self, topic: str) -> list[int]:
        return [msg.header.stamp.sec for msg in self.received[topic]]

    def close(self) -> None:
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def image_msg(pixels: np.ndarray, stamp_sec: int, encoding: str = 'rgb8'):
    """sensor_msgs/Image of an RGB image, converted to ``encoding`` (rgb8 / yuv422_yuy2)."""
    import cv2
    from sensor_msgs.msg import Image
    height, width = pixels.shape[:2]
    if encoding == 'yuv422_yuy2':  # what usb_cam publishes by default
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_YUY2)  # (H, W, 2)
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    msg = Image(height=height, width=width, encoding=encoding, step=rows.shape[1])
    msg.header.frame_id = 'front_camera_optical_frame'
    msg.header.stamp.sec = stamp_sec
    msg.data = rows.tobytes()
    return msg


def camera_info_msg(stamp_sec: int):
    from sensor_msgs.msg import CameraInfo
    msg = CameraInfo(width=640, height=480)
    msg.header.frame_id = 'front_camera_optical_frame'
    msg.header.stamp.sec = stamp_sec
    msg.k = [520.0, 0.0, 322.0, 0.0, 515.0, 236.0, 0.0, 0.0, 1.0]
    return msg


def send_until_answered(peer: Peer, topic: str, msg, answer_topic: str,
                        timeout: float = START_TIMEOUT_S) -> None:
    """Publish ``msg`` until an answer with its stamp arrives (discovery, first inference)."""
    stamp = msg.header.stamp.sec
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peer.pubs[topic].publish(msg)
        if peer.spin_until(lambda: stamp in peer.stamps(answer_topic), 3.0):
            return
    pytest.fail(f'nothing on {answer_topic} for stamp {stamp} within {timeout} s')


def param_value(out: str) -> str:
    """The value of `ros2 param get` output ('Integer value is: 7' -> '7')."""
    lines = [line for line in out.splitlines() if ' value is: ' in line]
    assert lines, out
    return lines[-1].split(' value is: ', 1)[1].strip()


# -- the parameter-file rule of the launch files (imported from the sources) ----------------------
def _launch_module(name: str):
    require_ros2_cli()
    # Importing `launch` makes every logger created afterwards a LaunchLogger, which does not
    # propagate to the root logger: the tests that run later in this process (pytest-xdist
    # runs several files per worker) would no longer see romp_ros's log records. So our own
    # module is imported first, and the logger class is restored after.
    importlib.import_module('romp_ros.ros.launch_files')
    logger_class = logging.getLoggerClass()
    try:
        spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH_DIR / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        logging.setLoggerClass(logger_class)
    return module


@pytest.mark.parametrize('launch_file, node', [('romp.launch.py', 'romp_node'),
                                               ('offline.launch.py', 'offline_node')])
def test_parameter_files_are_keyed_for_the_namespace(launch_file, node, tmp_path):
    module = _launch_module(launch_file)
    params = {'ros__parameters': {'max_people': 7}}
    cases = {  # file keys -> keys the node is given, with namespace 'front'
        (node,): (f'/front/{node}',),
        (f'/{node}',): (f'/front/{node}',),
        ('/**',): ('/**',),
        (f'/front/{node}',): (f'/front/{node}',),
        (node, f'/front/{node}'): (node, f'/front/{node}'),  # explicit key: unchanged
        ('other_node', node): ('other_node', f'/front/{node}'),
    }
    for keys, expected in cases.items():
        path = tmp_path / f'{len(keys)}_{abs(hash(keys))}.yaml'
        path.write_text(yaml.safe_dump(dict.fromkeys(keys, params), sort_keys=False))
        given = module.node_parameter_file(str(path), node, 'front', 'installed.yaml')
        assert list(yaml.safe_load(Path(given).read_text())) == list(expected), keys
        assert module.node_parameter_file(str(path), node, '', 'x') == str(path)  # no ns


# -- romp.launch.py ------------------------------------------------------------------------------
def test_romp_launch_end_to_end(ros2_daemon, model_files, image, tmp_path):
    """Remapped camera topics in, PersonMeshArray out in the namespace; every launch argument
    reaches the node; the installed-layout file applies in the namespace; lifecycle and
    parameter validation through the ros2 command."""
    from sensor_msgs.msg import CameraInfo, Image

    from romp_ros.msg import PersonMeshArray
    models, checkpoint = model_files
    # the file says bev / hrnet32 / auto: the launch arguments must win
    config = installed_layout(ROMP_CONFIG, 'romp_node', {
        'model': 'bev', 'backbone': 'hrnet32', 'device': 'auto', 'max_people': 7,
        'checkpoint': str(checkpoint), 'models_dir': str(models),
        'qos_reliability': 'reliable', 'publish_overlay': False, 'publish_markers': False,
        'tracking': False,  # every frame's people at once (no confirmation delay)
    }, tmp_path / 'my_romp.yaml')
    launch = Launch(tmp_path, 'romp.launch.py', {
        'namespace': 'front', 'config_file': config, 'model': 'romp', 'backbone': BACKBONE,
        'device': 'cpu', 'use_sim_time': 'true', 'image': '/cam/front/image_raw',
        'camera_info': '/cam/front/camera_info'})
    peer = Peer()
    try:
        peer.subscribe('/front/people', PersonMeshArray)
        peer.publisher('/cam/front/image_raw', Image)
        peer.publisher('/cam/front/camera_info', CameraInfo)
        assert launch.wait_for_log('active: listening on /cam/front/image_raw', START_TIMEOUT_S), \
            launch.log()[-3000:]
        peer.pubs['/cam/front/camera_info'].publish(camera_info_msg(1))
        # usb_cam's default encoding, through the remapped topic, back in the namespace
        send_until_answered(peer, '/cam/front/image_raw', image_msg(image, 1, 'yuv422_yuy2'),
                            '/front/people')
        first = peer.received['/front/people'][0]
        assert (first.model, first.backbone) == ('romp', BACKBONE)
        assert first.header.frame_id == 'front_camera_optical_frame'
        assert 0 < len(first.people) <= 7  # max_people of the namespaced installed-layout file

        node = '/front/romp_node'
        got = {name: param_value(ros2(tmp_path, 'param', 'get', node, name))
               for name in ('model', 'backbone', 'device', 'use_sim_time', 'max_people',
                            'models_dir')}
        assert got == {'model': 'romp', 'backbone': BACKBONE, 'device': 'cpu',
                       'use_sim_time': 'True', 'max_people': '7', 'models_dir': str(models)}

        # parameter validation: refused with the reason, then an accepted change
        out = ros2(tmp_path, 'param', 'set', node, 'device', 'gpu')
        assert 'Setting parameter failed' in out and "use 'auto', 'cpu' or 'cuda:N'" in out, out
        out = ros2(tmp_path, 'param', 'set', node, 'max_people', '500')
        assert 'Setting parameter failed' in out and '500' in out, out
        out = ros2(tmp_path, 'param', 'set', node, 'model', 'bev')
        assert 'Setting parameter failed' in out and 'read-only' in out.lower(), out
        assert 'Set parameter successful' in ros2(tmp_path, 'param', 'set', node,
                                                  'max_people', '5')
        assert param_value(ros2(tmp_path, 'param', 'get', node, 'max_people')) == '5'

        # lifecycle: inactive -> images are not processed; active again -> they are
        assert 'Transitioning successful' in ros2(tmp_path, 'lifecycle', 'set', node,
                                                  'deactivate')
        assert 'inactive' in ros2(tmp_path, 'lifecycle', 'get', node)
        peer.pubs['/cam/front/image_raw'].publish(image_msg(image, 2))
        peer.spin_until(lambda: False, 3.0)
        assert 2 not in peer.stamps('/front/people')
        assert 'Transitioning successful' in ros2(tmp_path, 'lifecycle', 'set', node,
                                                  'activate')
        assert 'active' in ros2(tmp_path, 'lifecycle', 'get', node)
        send_until_answered(peer, '/cam/front/image_raw', image_msg(image, 3), '/front/people',
                            timeout=90.0)
        # cleanup + configure: the accepted max_people applies (a configure-time parameter)
        for transition in ('deactivate', 'cleanup', 'configure', 'activate'):
            assert 'Transitioning successful' in ros2(tmp_path, 'lifecycle', 'set', node,
                                                      transition), transition
        send_until_answered(peer, '/cam/front/image_raw', image_msg(image, 4), '/front/people',
                            timeout=90.0)
        answer = [m for m in peer.received['/front/people'] if m.header.stamp.sec == 4][0]
        assert 0 < len(answer.people) <= 5
    finally:
        peer.close()
        code = launch.stop()
    assert code == 0, launch.log()[-3000:]
    assert 'Traceback' not in launch.log(), launch.log()[-3000:]


BAD_ARGUMENTS = [
    ('romp.launch.py', {'use_sim_time': 'maybe'}, "use_sim_time:='maybe' is not a boolean"),
    ('romp.launch.py', {'use_rviz': 'perhaps'}, "use_rviz:='perhaps' is not a boolean"),
    ('romp.launch.py', {'model': 'romp2'}, "model='romp2' is invalid; choose one of"),
    ('romp.launch.py', {'backbone': 'vgg16'}, "backbone='vgg16' is invalid; choose one of"),
    ('romp.launch.py', {'device': 'gpu'}, "device='gpu' is invalid; use 'auto'"),
    ('romp.launch.py', {'config_file': '/nowhere/romp.yaml'},
     "config_file:='/nowhere/romp.yaml' does not exist"),
    ('offline.launch.py', {'job': 'dance'}, "job='dance' is invalid; choose one of"),
    ('offline.launch.py', {'use_sim_time': 'maybe'}, "use_sim_time:='maybe' is not a boolean"),
    ('offline.launch.py', {'config_file': '/nowhere/offline.yaml'},
     "config_file:='/nowhere/offline.yaml' does not exist"),
]


@pytest.mark.parametrize('launch_file, arguments, fragment', BAD_ARGUMENTS)
def test_a_bad_launch_argument_is_one_clear_error(launch_file, arguments, fragment,
                                                  ros_domain_id, tmp_path):
    require_ros2_cli()
    launch = Launch(tmp_path, launch_file, arguments)
    code = launch.wait(CLI_TIMEOUT_S)
    log = launch.log()
    errors = [line for line in log.splitlines() if '[ERROR]' in line]
    assert code != 0, log
    assert len(errors) == 1 and fragment in errors[0], log
    assert 'process started' not in log and 'Traceback' not in log, log


def test_a_bad_config_file_is_one_clear_error(ros_domain_id, tmp_path):
    require_ros2_cli()
    bad = tmp_path / 'bad.yaml'
    bad.write_text('romp_node: [ros__parameters\n')
    launch = Launch(tmp_path, 'romp.launch.py', {'config_file': bad})
    assert launch.wait(CLI_TIMEOUT_S) != 0
    errors = [line for line in launch.log().splitlines() if '[ERROR]' in line]
    assert len(errors) == 1 and 'cannot be read as YAML' in errors[0], launch.log()


# -- offline.launch.py ---------------------------------------------------------------------------
def test_offline_launch_end_to_end(ros2_daemon, tmp_path):
    """Live evaluation in a namespace: the installed-layout file applies, the arguments reach
    the node, the remapped topics are scored, deactivate writes the report, parameters are
    validated."""
    require_ros2_cli()
    from romp_ros.core.body.joint_names import ALL_JOINT_NAMES
    from romp_ros.msg import JobProgress, PersonMeshArray
    out_dir = tmp_path / 'eval_out'
    config = installed_layout(OFFLINE_CONFIG, 'offline_node', {
        'job': 'train', 'output_dir': 'not_this_one', 'protocol': '3dpw_14',
        'max_wait_s': 0.5}, tmp_path / 'my_offline.yaml')
    launch = Launch(tmp_path, 'offline.launch.py', {
        'namespace': 'eval', 'config_file': config, 'job': 'evaluate_live',
        'output_dir': out_dir, 'people': '/front/people', 'ground_truth': '/gt/people',
        'use_sim_time': 'true'})
    peer = Peer()
    peer.start_clock()  # use_sim_time: the progress timer runs on /clock
    try:
        peer.subscribe('/eval/progress', JobProgress, latched=True)
        gt = peer.publisher('/gt/people', PersonMeshArray)
        pred = peer.publisher('/front/people', PersonMeshArray)
        assert launch.wait_for_log('live evaluation: /front/people against /gt/people', 90), \
            launch.log()[-3000:]
        node = '/eval/offline_node'
        got = {name: param_value(ros2(tmp_path, 'param', 'get', node, name))
               for name in ('job', 'output_dir', 'protocol', 'use_sim_time')}
        assert got == {'job': 'evaluate_live', 'output_dir': str(out_dir),
                       'protocol': '3dpw_14', 'use_sim_time': 'True'}
        out = ros2(tmp_path, 'param', 'set', node, 'protocol', 'h36m_99')
        assert 'Setting parameter failed' in out and 'choose one of' in out, out
        out = ros2(tmp_path, 'param', 'set', node, 'iou_threshold', '3.0')
        assert 'Setting parameter failed' in out, out

        assert peer.spin_until(lambda: gt.get_subscription_count() > 0
                               and pred.get_subscription_count() > 0, 30)
        # two frames with nobody in them, ground truth and prediction. The two topics may be
        # delivered in any order, so the stamps sit closer together than max_wait_s: a
        # prediction that arrives before its ground truth is still waiting for it.
        for nanosec in (0, 100_000_000):
            for pub in (gt, pred):
                msg = PersonMeshArray(joint_names=list(ALL_JOINT_NAMES))
                msg.header.stamp.sec = 1
                msg.header.stamp.nanosec = nanosec
                msg.header.frame_id = 'front_camera_optical_frame'
                pub.publish(msg)
        assert peer.spin_until(lambda: any(p.done >= 2 for p in
                                           peer.received['/eval/progress']), 30), \
            ([(p.state, p.done) for p in peer.received['/eval/progress']], launch.log()[-3000:])
        assert 'Transitioning successful' in ros2(tmp_path, 'lifecycle', 'set', node,
                                                  'deactivate')
        # deactivate finishes the live report: both frames scored, in the launch's output_dir
        report = json.loads((out_dir / 'report.json').read_text())
        assert report['frames']['total'] == 2 and report['frames']['scored'] == 2, report
        assert 'inactive' in ros2(tmp_path, 'lifecycle', 'get', node)
        assert 'Transitioning successful' in ros2(tmp_path, 'lifecycle', 'set', node,
                                                  'activate')
        assert 'active' in ros2(tmp_path, 'lifecycle', 'get', node)
    finally:
        peer.close()
        code = launch.stop()
    assert code == 0, launch.log()[-3000:]
    assert 'Traceback' not in launch.log(), launch.log()[-3000:]
