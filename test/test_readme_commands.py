"""The README's commands, exactly as written, in the shells its routes give.

Every ``romp-ros`` line (and the ``ros2 launch`` line) of the README's ```bash blocks is either
run here, in README order, in a fresh home folder holding the user's files (the synthetic
body model under the official names, seeded weights as ``ROMP.pkl``, a photo, videos and a
bag), or listed in :data:`NOT_RUN` with the reason. A new README command that is in neither
fails the test. The quick route is ``source scripts/env.sh``; the ROS route's shell is the
ROS Python (here the venv) plus ``source install/setup.bash``.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import time

from conftest import REPO_ROOT, require_ros
import numpy as np
import pytest

pytestmark = pytest.mark.slow

README = REPO_ROOT / 'README.md'
COMMAND_TIMEOUT_S = 600
VIDEO_FRAMES = 2
BAG_FRAMES = 1
# README commands not run here, with the reason (exact text as extracted from the README)
NOT_RUN = {
    'romp-ros download ROMP.pkl --models-dir ~/romp_models':
        'downloads from GitHub (no network here); test_download.py serves the files locally',
    'romp-ros bench --model romp --models-dir ~/romp_models --device cuda:0':
        'needs a CUDA GPU',
    'romp-ros synth --out data/synth --frames 2000 --seed 0 --size 256x256 --bag':
        'renders for tens of minutes; test_synth_cli.py runs synth on a few frames',
    'romp-ros synth --out data/synth_val --frames 200 --seed 1 --size 256x256':
        'renders for about 5 minutes on 2 cores; test_synth_cli.py runs synth on a few frames',
    'romp-ros train --config config/train/synthetic_cpu.yaml --data data/synth --out runs/cpu':
        'trains for hours on the 2000-frame dataset; test_training.py trains a few steps',
    'romp-ros evaluate --dataset data/synth_val --checkpoint runs/cpu/checkpoints/best.pth '
    '--models-dir data/synth/body_model --backbone efficientnet_v2_s --out eval/':
        'needs the trained run above; test_evaluate_cli.py evaluates seeded weights',
    'romp-ros evaluate --bag recording.mcap --gt-topic /ground_truth/people '
    '--pred-topic /people --out eval/':
        'needs a bag with ground truth and recorded people; test_evaluate_cli.py has one',
    'romp-ros make-bag data/synth data/synth.mcap':
        'needs the 2000-frame dataset above; test_bag_writer.py writes bags of datasets',
}


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


def readme_commands() -> list[str]:
    """The ``romp-ros`` and ``ros2 launch`` lines of the README's bash blocks, in order:
    continuation lines joined, trailing comments and repeated spaces dropped."""
    blocks = re.findall(r'```bash\n(.*?)```', README.read_text(encoding='utf-8'), re.S)
    commands = []
    for block in blocks:
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#.*$', '', line).strip()
            line = re.sub(r'\s+', ' ', line)
            if line.startswith(('romp-ros ', 'ros2 launch ')):
                commands.append(line)
    return commands


def _write_user_files(home: Path, work: Path, body_files, checkpoint: Path) -> None:
    """What a user of the README has: official file names in the working folder, weights in
    ~/romp_models, a photo, two short videos, a bag with camera_info and a folder of frames
    from the camera (int8 calibration)."""
    import cv2
    import skimage.data

    shutil.copy(body_files.smpl_pkl, work / 'SMPL_NEUTRAL.pkl')
    shutil.copy(body_files.smil_pkl, work / 'smil_web.pkl')
    (work / 'model_data').mkdir()
    for name in ('J_regressor_extra.npy', 'J_regressor_h36m.npy', 'smpl_kid_template.npy'):
        shutil.copy(body_files.source_dir / name, work / 'model_data' / name)
    (home / 'romp_models').mkdir()
    shutil.copy(checkpoint, home / 'romp_models' / 'ROMP.pkl')
    photo = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])  # (512, 512, 3) BGR
    cv2.imwrite(str(work / 'photo.jpg'), photo)
    for name in ('clip.mp4', 'walk.mp4'):  # two frames each: enough, and HRNet is slow on CPU
        writer = cv2.VideoWriter(str(work / name), cv2.VideoWriter_fourcc(*'mp4v'), 10,
                                 (512, 512))
        for shift in range(VIDEO_FRAMES):
            writer.write(np.roll(photo, 6 * shift, axis=1).copy())
        writer.release()
        assert (work / name).stat().st_size > 0, f'OpenCV wrote no {name}'
    _write_mcap(work / 'recording.mcap', photo[:, :, ::-1], frames=BAG_FRAMES)
    (work / 'frames').mkdir()
    for index in range(8):  # the fewest calibration frames export accepts
        cv2.imwrite(str(work / 'frames' / f'{index:04d}.jpg'), np.roll(photo, 40 * index, axis=0))


def _write_mcap(out: Path, rgb: np.ndarray, frames: int) -> None:
    """A single-file mcap bag: raw rgb8 images and camera_info on /camera/*."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    image_t, info_t = types['sensor_msgs/msg/Image'], types['sensor_msgs/msg/CameraInfo']
    header_t, time_t = types['std_msgs/msg/Header'], types['builtin_interfaces/msg/Time']
    roi_t = types['sensor_msgs/msg/RegionOfInterest']
    folder = out.parent / 'recording_bag'
    height, width = rgb.shape[:2]
    with Writer(folder, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        image_c = writer.add_connection('/camera/image_raw', image_t.__msgtype__, typestore=store)
        info_c = writer.add_connection('/camera/camera_info', info_t.__msgtype__,
                                       typestore=store)
        for i in range(frames):
            header = header_t(stamp=time_t(sec=10 + i, nanosec=0), frame_id='camera_optical')
            info = info_t(header=header, height=height, width=width, distortion_model='plumb_bob',
                          d=np.zeros(5), k=np.array([450.0, 0, 256, 0, 450.0, 256, 0, 0, 1]),
                          r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
                          roi=roi_t(x_offset=0, y_offset=0, height=0, width=0,
                                    do_rectify=False))
            image = image_t(header=header, height=height, width=width, encoding='rgb8',
                            is_bigendian=0, step=width * 3, data=rgb.reshape(-1).copy())
            stamp = (10 + i) * 10**9
            writer.write(info_c, stamp, store.serialize_cdr(info, info_t.__msgtype__))
            writer.write(image_c, stamp + 1, store.serialize_cdr(image, image_t.__msgtype__))
    next(folder.glob('*.mcap')).replace(out)
    shutil.rmtree(folder)


def _quick_route(line: str) -> list[str]:
    return ['bash', '-c', f'source {REPO_ROOT}/scripts/env.sh && {line}']


def _venv() -> Path:
    """The virtual environment running this test (the one `make setup` built)."""
    return Path(os.environ.get('VIRTUAL_ENV', Path(os.__file__).parents[2]))


def _ros_route(line: str) -> list[str]:
    """The ROS route's shell: the Python that has rclpy, then the colcon install's setup."""
    return ['bash', '-c', f'source {_venv()}/bin/activate && set +u && '
            f'source {REPO_ROOT}/install/setup.bash && {line}']


def _run(argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S, check=False)


@pytest.fixture
def user(tmp_path, synthetic_body_files, seeded_checkpoint, ros_domain_id):
    """(environment, working folder): a fresh home with the user's files."""
    require_ros()
    home, work = tmp_path / 'home', tmp_path / 'work'
    home.mkdir()
    work.mkdir()
    _write_user_files(home, work, synthetic_body_files, seeded_checkpoint('romp', 'hrnet32'))
    # the home is new, so name the venv that `make setup` built under the real one
    env = dict(os.environ, HOME=str(home), ROMP_ROS_VENV=str(_venv()),
               ROS_LOG_DIR=str(tmp_path / 'ros_log'), RCUTILS_COLORIZED_OUTPUT='0',
               PYTHONUNBUFFERED='1')
    # the test's own environment must not make the commands work: only the routes may
    for name in ('AMENT_PREFIX_PATH', 'PYTHONPATH', 'VIRTUAL_ENV', 'COLCON_PREFIX_PATH'):
        env.pop(name, None)
    env['PATH'] = os.pathsep.join(p for p in env['PATH'].split(os.pathsep)
                                  if 'venv' not in p and 'install' not in p)
    return env, work


def test_every_readme_command_is_run_or_excused():
    commands = readme_commands()
    assert 'romp-ros --help' in commands and len(commands) >= 10, commands
    unknown = [c for c in commands if c not in NOT_RUN and not _runnable(c)]
    assert not unknown, f'README commands this test neither runs nor excuses: {unknown}'
    stale = [c for c in NOT_RUN if c not in commands]
    assert not stale, f'NOT_RUN lists commands the README no longer has: {stale}'


def _runnable(command: str) -> bool:
    return command.startswith(('romp-ros --help', 'romp-ros prepare-models ', 'romp-ros infer ',
                               'romp-ros export ', 'ros2 launch romp_ros romp.launch.py '))


def test_readme_commands_on_the_quick_route(user):
    env, work = user
    home = Path(env['HOME'])
    ran = []
    commands = [c for c in readme_commands() if c not in NOT_RUN]
    # README order, except the launch lines: they need the model files of a later section
    for command in sorted(commands, key=lambda c: c.startswith('ros2 launch ')):
        if command.startswith('ros2 launch '):
            _launch_until_listening(command, work, env)
        else:
            done = _run(_quick_route(command), work, env)
            assert done.returncode == 0, f'{command}\n{done.stdout[-2000:]}{done.stderr[-3000:]}'
            assert 'Traceback' not in done.stderr, f'{command}\n{done.stderr[-3000:]}'
        ran.append(command)
    assert any(c.startswith('romp-ros infer ') for c in ran) and \
        any(c.startswith('ros2 launch ') for c in ran), ran
    # what the commands said they would write
    assert (home / 'romp_models' / 'manifest.json').is_file()
    assert (home / 'romp_models' / 'smpl_neutral.npz').is_file()
    with np.load(work / 'results.npz', allow_pickle=False) as results:
        assert {'cam', 'smpl_thetas', 'verts', 'cam_trans'} <= set(results.files)
        inputs = [str(source) for source in results['inputs']]
    # the photo, the video's frames and the bag's, in that order
    assert len(inputs) == 1 + VIDEO_FRAMES + BAG_FRAMES, inputs
    for name, count in (('photo.jpg', 1), ('clip.mp4', VIDEO_FRAMES),
                        ('bag:/camera/image_raw', BAG_FRAMES)):
        assert sum(name in source for source in inputs) == count, (name, inputs)
    with np.load(work / 'tracked.npz', allow_pickle=False) as tracked:
        assert 'track_ids' in tracked.files
    # the exported graph ran in ONNX Runtime on the photo, as torch did
    assert (work / 'romp.onnx').is_file()
    with np.load(work / 'fast.npz', allow_pickle=False) as fast, \
            np.load(work / 'results.npz', allow_pickle=False) as results:
        photo = results['frame_index'] == 0  # the same people, the same pose and shape
        assert fast['smpl_thetas'].shape[0] == int(photo.sum()) > 0
        np.testing.assert_allclose(fast['smpl_thetas'], results['smpl_thetas'][photo], atol=1e-3)
    from romp_ros.core.runtime.onnx_graphs import load_graphs
    assert load_graphs(work / 'romp_int8.onnx').info.precision == 'int8'


def _launch_until_listening(command: str, work: Path, env: dict) -> None:
    """Start the README's launch line, wait until the node listens, stop it with SIGINT."""
    log_path = work / 'launch.log'
    with open(log_path, 'w', encoding='utf-8') as log:
        proc = subprocess.Popen(_quick_route(f'exec {command}'), cwd=work, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            listening = False
            while time.monotonic() < deadline and proc.poll() is None:
                text = log_path.read_text(encoding='utf-8', errors='replace')
                if 'active: listening on /camera/image_raw' in text:
                    listening = True
                    break
                time.sleep(0.2)
            assert listening, log_path.read_text(encoding='utf-8', errors='replace')[-3000:]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_the_ros_route_installs_the_command(user):
    """After `source install/setup.bash`: `romp-ros` is the colcon install's, and
    `ros2 run romp_ros romp-ros` is the same command."""
    env, work = user
    done = _run(_ros_route('command -v romp-ros && romp-ros --help'), work, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(REPO_ROOT / 'install' / 'romp_ros' / 'bin' /
                                             'romp-ros')
    assert 'usage: romp-ros' in done.stdout and 'prepare-models' in done.stdout
    if shutil.which('ros2') is None:
        pytest.skip('no ros2 command here (make setup installs it from ../shared/ros2-cli)')
    done = _run(_ros_route('ros2 run romp_ros romp-ros prepare-models --help'), work, env)
    assert done.returncode == 0 and 'usage: romp-ros prepare-models' in done.stdout, \
        done.stdout + done.stderr
