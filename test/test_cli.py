"""`romp-ros` end to end: images, a video and a bag in, one .npz out; clear errors."""

from __future__ import annotations

import subprocess
import sys

from cli_in_process import run_in_process
import cv2
import numpy as np
import pytest
import skimage.data

pytestmark = pytest.mark.slow


def _run(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, '-m', 'romp_ros.cli', '--quiet', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _run_here(*args):
    """What :func:`_run` gives, from a run in this process (cli_in_process)."""
    code, err = run_in_process(*args)
    return subprocess.CompletedProcess(args, code, '', err)


def _write_bag(path, frames, k):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    image_t = store.types['sensor_msgs/msg/Image']
    info_t = store.types['sensor_msgs/msg/CameraInfo']
    header_t = store.types['std_msgs/msg/Header']
    time_t = store.types['builtin_interfaces/msg/Time']
    roi_t = store.types['sensor_msgs/msg/RegionOfInterest']
    with Writer(path, version=8) as writer:
        img_conn = writer.add_connection('/cam/image_raw', image_t.__msgtype__, typestore=store)
        info_conn = writer.add_connection('/cam/camera_info', info_t.__msgtype__,
                                          typestore=store)
        for i, frame in enumerate(frames):
            stamp = time_t(sec=100 + i, nanosec=0)
            header = header_t(stamp=stamp, frame_id='cam_optical')
            h, w = frame.shape[:2]
            info = info_t(header=header, height=h, width=w, distortion_model='plumb_bob',
                          d=np.zeros(5), k=np.array([k[0], 0, k[2], 0, k[1], k[3], 0, 0, 1.0]),
                          r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
                          roi=roi_t(x_offset=0, y_offset=0, height=0, width=0,
                                    do_rectify=False))
            t_ns = (100 + i) * 10**9
            writer.write(info_conn, t_ns, store.serialize_cdr(info, info_t.__msgtype__))
            msg = image_t(header=header, height=h, width=w, encoding='rgb8', is_bigendian=0,
                          step=w * 3, data=np.ascontiguousarray(frame).reshape(-1))
            writer.write(img_conn, t_ns + 1, store.serialize_cdr(msg, image_t.__msgtype__))


def test_infer_on_images_video_and_bag(tmp_path, models_dir, seeded_checkpoint):
    astro = skimage.data.astronaut()
    coffee = skimage.data.coffee()
    img1, img2 = tmp_path / 'astronaut.jpg', tmp_path / 'coffee.png'
    cv2.imwrite(str(img1), astro[:, :, ::-1])
    cv2.imwrite(str(img2), coffee[:, :, ::-1])
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10, (512, 512))
    for shift in range(3):
        writer.write(np.roll(astro[:, :, ::-1], 8 * shift, axis=1).copy())
    writer.release()
    bag = tmp_path / 'bag'
    k = (700.0, 700.0, 300.0, 200.0)
    _write_bag(bag, [coffee, coffee], k)
    out = tmp_path / 'res.npz'
    result = _run('infer', img1, img2, video, bag, '--models-dir', models_dir,
                  '--checkpoint', seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu',
                  '--batch-size', '2', '--out', out)
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    inputs = list(data['inputs'])
    assert len(inputs) == 2 + 3 + 2
    assert inputs[0].endswith('astronaut.jpg') and inputs[2].endswith('clip.avi#0')
    assert inputs[-1] == 'bag:/cam/image_raw#1'
    n = len(data['frame_index'])
    assert n > 0 and np.all(np.diff(data['frame_index']) >= 0)
    j = len(data['joint_names'])
    assert data['joints'].shape == (n, j, 3) and data['verts'].shape == (n, 6890, 3)
    assert data['pj2d_org'].shape == (n, j, 2) and data['smpl_thetas'].shape == (n, 72)
    for key in ('cam', 'cam_trans', 'center_confs', 'smpl_betas'):
        assert len(data[key]) == n
    # within a frame, people are ordered by descending confidence
    for f in np.unique(data['frame_index']):
        confs = data['center_confs'][data['frame_index'] == f]
        assert np.all(np.diff(confs) <= 0)
    # bag frames use the bag's camera_info; files use the default field of view
    assert list(data['intrinsics_source']) == ['fov'] * 5 + ['camera'] * 2
    np.testing.assert_allclose(data['intrinsics'][-1], k)
    assert data['stamps_ns'][-1] == 101 * 10**9 and data['stamps_ns'][0] == -1
    assert list(data['stamps_ns'][2:5]) == [0, 10**8, 2 * 10**8]  # the video's 10 fps
    assert 'track_ids' not in data
    # the same image gives the same people whether it came from a file or the bag's raw bytes
    coffee_people = data['frame_index'] == 1
    bag_people = data['frame_index'] == 5
    assert coffee_people.sum() == bag_people.sum()


def test_infer_track_gives_stable_ids_per_stream(tmp_path, models_dir, seeded_checkpoint):
    astro = skimage.data.astronaut()[:, :, ::-1]
    images = []
    for i in range(2):
        images.append(tmp_path / f'still_{i}.png')
        cv2.imwrite(str(images[-1]), astro)
    # A still scene: random weights are far less shift-stable than trained ones, so moving
    # content would test the fixture, not the CLI (tracking quality: test_tracking_eval.py).
    video = tmp_path / 'still.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10, (512, 512))
    for _ in range(5):
        writer.write(astro)
    writer.release()
    out = tmp_path / 'tracked.npz'
    # low thresholds: every seeded person (scores ~0.6-0.8) starts a track at once
    result = _run('infer', *images, video, '--models-dir', models_dir,
                  '--checkpoint', seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu',
                  '--track', '--track-high-conf', '0.2', '--track-new-conf', '0.2',
                  '--track-low-conf', '0.1', '--track-min-hits', '2', '--no-verts',
                  '--out', out)
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    n = len(data['frame_index'])
    assert data['track_ids'].shape == data['track_ages'].shape == (n,)
    assert data['root_velocity'].shape == (n, 3) and 'verts' not in data
    assert set(data['track_states']) == {'confirmed'}

    def ids(frame):
        return sorted(data['track_ids'][data['frame_index'] == frame])

    # frames 0-1: the two images (one stream); 2-6: the video (a new stream, new ids)
    assert ids(0) == [] and len(ids(1)) >= 3, 'tracks are confirmed on their 2nd hit'
    assert ids(2) == [], 'a new stream restarts the tracks'
    video_ids = [ids(f) for f in range(3, 7)]
    assert video_ids[0] and all(v == video_ids[0] for v in video_ids), video_ids
    assert min(video_ids[0]) > max(ids(1)), 'ids are never reused within a file'
    first = data['track_ids'] == video_ids[0][0]
    assert list(data['track_ages'][first]) == [1, 2, 3, 4]
    assert np.all(np.isfinite(data['root_velocity']))

    bad = _run('infer', *images, '--models-dir', models_dir, '--checkpoint',
               seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu', '--track',
               '--track-low-conf', '0.9', '--out', tmp_path / 'x.npz')
    assert bad.returncode == 2 and 'Traceback' not in bad.stderr
    assert 'invalid tracking flags' in bad.stderr and 'low_conf' in bad.stderr


def test_infer_errors_are_one_line_without_traceback(tmp_path, models_dir):
    missing = _run('infer', tmp_path / 'nothing.png', '--models-dir', models_dir, '--device',
                   'cpu', '--out', tmp_path / 'x.npz')  # a real process; the rest in this one
    assert missing.returncode == 2
    assert 'Traceback' not in missing.stderr and 'no such file' in missing.stderr
    no_ckpt = tmp_path / 'photo.png'
    cv2.imwrite(str(no_ckpt), np.zeros((8, 8, 3), np.uint8))
    code, err = run_in_process('infer', no_ckpt, '--models-dir', models_dir, '--device', 'cpu',
                               '--out', tmp_path / 'x.npz')
    assert code == 2 and 'Traceback' not in err
    assert 'romp-ros download ROMP.pkl' in err
    code, err = run_in_process('infer', no_ckpt, '--models-dir', models_dir, '--intrinsics',
                               '0,0,1,1', '--device', 'cpu', '--out', tmp_path / 'x.npz')
    assert code == 2 and 'Traceback' not in err and 'ERROR' in err
    code, err = run_in_process('infer', no_ckpt, '--models-dir', models_dir, '--wide-tiling',
                               '--wide-overlap', '0.9', '--device', 'cpu', '--out',
                               tmp_path / 'x.npz')
    assert code == 2 and 'Traceback' not in err
    assert 'wide_overlap' in err
    assert not (tmp_path / 'x.npz').exists()


def test_prepare_models_cli_writes_a_loadable_models_dir(tmp_path, synthetic_body_files):
    from romp_ros.core.body.model_files import available_kinds
    out = tmp_path / 'models'
    res = _run('prepare-models', '--smpl', synthetic_body_files.smpl_pkl, '--extra',
               synthetic_body_files.source_dir, '--models-dir', out)
    assert res.returncode == 0, res.stderr
    assert {'smpl', 'smpla'} <= set(available_kinds(out))
    missing = _run('prepare-models', '--smpl', tmp_path / 'SMPL_NEUTRAL.pkl', '--models-dir',
                   out)
    assert missing.returncode == 2 and 'Traceback' not in missing.stderr
    assert 'SMPL_NEUTRAL.pkl' in missing.stderr


def test_help_of_every_subcommand_explains_every_flag():
    from romp_ros.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    for name, subparser in sub.choices.items():
        for action in subparser._actions:
            if action.dest == 'help':
                continue
            assert action.help, f'{name}: flag {action.option_strings or action.dest} ' \
                                'has no help text'


CAMERA_YAML = """image_width: 640
image_height: 480
camera_name: front
camera_matrix: {rows: 3, cols: 3, data: [320.0, 0.0, 320.0, 0.0, 320.0, 240.0, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [-0.3, 0.1, 0.0, 0.0, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [300, 0, 330, 0, 0, 300, 235, 0, 0, 0, 1, 0]}
"""


def test_infer_with_a_ros_camera_calibration(tmp_path, models_dir, seeded_checkpoint):
    """--camera-info: raw images use K and D (resized images a scaled K), rectified ones P."""
    from romp_ros.core import Estimator, EstimatorConfig
    from romp_ros.core.geometry.camera_model import CameraModel
    calibration = tmp_path / 'front.yaml'
    calibration.write_text(CAMERA_YAML)
    rgb = cv2.resize(skimage.data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    full, half = tmp_path / 'full.png', tmp_path / 'half.png'
    cv2.imwrite(str(full), rgb[:, :, ::-1])
    cv2.imwrite(str(half), cv2.resize(rgb, (320, 240), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    checkpoint = seeded_checkpoint('romp', 'hrnet32')
    common = ('--models-dir', models_dir, '--checkpoint', checkpoint, '--device', 'cpu')
    # the first run as a real process, the others in this one (the same parser and main)
    raw = _run('infer', full, half, *common, '--camera-info', calibration, '--no-verts',
               '--out', tmp_path / 'raw.npz')
    assert raw.returncode == 0, raw.stderr
    assert 'K is scaled' in raw.stderr  # said once, for the half-size image
    data = np.load(tmp_path / 'raw.npz')
    np.testing.assert_allclose(data['intrinsics'], [[320, 320, 320, 240], [160, 160, 160, 120]])
    assert list(data['distortion_model']) == ['plumb_bob'] * 2
    np.testing.assert_allclose(data['distortion'][:, :5], [[-0.3, 0.1, 0, 0, 0]] * 2)
    assert list(data['intrinsics_source']) == ['camera'] * 2
    assert data['translation_solved'].all() and len(data['frame_index']) > 0
    # the same as the library with the same camera
    estimator = Estimator(EstimatorConfig(model='romp', models_dir=str(models_dir),
                                          checkpoint=str(checkpoint), device='cpu',
                                          compute_verts=False))
    lens = CameraModel(640, 480, (320.0, 320.0, 320.0, 240.0), 'plumb_bob',
                       (-0.3, 0.1, 0.0, 0.0, 0.0))
    expected = estimator.predict([cv2.imread(str(full))[:, :, ::-1].copy()], intrinsics=lens)[0]
    np.testing.assert_allclose(data['cam_trans'][data['frame_index'] == 0], expected.cam_trans,
                               rtol=1e-4, atol=1e-4)

    rect = _run_here('infer', full, *common, '--camera-info', calibration, '--camera-model',
                'rectified', '--no-verts', '--out', tmp_path / 'rect.npz')
    assert rect.returncode == 0, rect.stderr
    rect_data = np.load(tmp_path / 'rect.npz')
    np.testing.assert_allclose(rect_data['intrinsics'], [[300, 300, 330, 235]])
    assert list(rect_data['distortion_model']) == ['none']

    both = _run_here('infer', full, *common, '--camera-info', calibration, '--intrinsics',
                '300,300,320,240', '--out', tmp_path / 'x.npz')
    assert both.returncode == 2 and 'not allowed with argument' in both.stderr
    square = tmp_path / 'square.png'
    cv2.imwrite(str(square), skimage.data.astronaut())
    crop = _run_here('infer', square, *common, '--camera-info', calibration, '--out',
                tmp_path / 'x.npz')
    assert crop.returncode == 2 and 'Traceback' not in crop.stderr
    assert 'another aspect ratio' in crop.stderr
    for text, fragment in (('%YAML:1.0\n', 'OpenCV FileStorage'),
                           ('image_width: 640\n', 'missing key(s)')):
        calibration.write_text(text)
        bad = _run_here('infer', full, *common, '--camera-info', calibration, '--out',
                   tmp_path / 'x.npz')
        assert bad.returncode == 2 and 'Traceback' not in bad.stderr, bad.stderr
        assert fragment in bad.stderr and 'front.yaml' in bad.stderr
    missing = _run_here('infer', full, *common, '--camera-info', tmp_path / 'nope.yaml', '--out',
                   tmp_path / 'x.npz')
    assert missing.returncode == 2 and 'no such camera calibration file' in missing.stderr
    assert not (tmp_path / 'x.npz').exists()


def test_infer_streams_a_long_video(tmp_path, models_dir, seeded_checkpoint):
    """A long synthetic video goes to the .npz as it is processed (test_infer_output.py bounds
    the writer's memory); the output is complete and no spool file stays behind."""
    frames = 60
    rgb = cv2.resize(skimage.data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA)
    video = tmp_path / 'long.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 15, (96, 96))
    for i in range(frames):
        writer.write(np.roll(rgb[:, :, ::-1], 2 * i, axis=1).copy())
    writer.release()
    out_dir = tmp_path / 'out'
    result = _run('infer', video, '--models-dir', models_dir, '--checkpoint',
                  seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu', '--input-size', '128',
                  '--batch-size', '10', '--out', out_dir / 'long.npz')
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out_dir.iterdir()] == ['long.npz']
    data = np.load(out_dir / 'long.npz')
    assert len(data['inputs']) == frames and data['inputs'][-1].endswith(f'#{frames - 1}')
    n = len(data['frame_index'])
    assert n >= frames, 'the seeded weights find people in most frames'
    assert data['verts'].shape == (n, 6890, 3) and data['joints'].shape[0] == n
    assert np.all(np.diff(data['frame_index']) >= 0) and data['frame_index'][-1] <= frames - 1
    np.testing.assert_array_equal(data['stamps_ns'], np.round(np.arange(frames) * 1e9 / 15))


def test_evaluate_accepts_a_camera_calibration(tmp_path, models_dir, seeded_checkpoint):
    from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
    from romp_ros.data.dataset_format import CameraLabel, DatasetInfo, DatasetWriter, PersonLabel
    root = tmp_path / 'ds'
    image = cv2.resize(skimage.data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    joints = np.zeros((24, 3)) + np.array([0.0, 0.0, 3.0])
    joints[:, 1] = np.linspace(-0.8, 0.8, 24)
    uv = joints[:, :2] / joints[:, 2:] * 320.0 + np.array([320.0, 240.0])
    label = PersonLabel(track_id=1, keypoints_2d=np.column_stack([uv, np.full(24, 2.0)]),
                        joints_3d=joints)
    camera = CameraLabel(width=640, height=480, k=(320.0, 320.0, 320.0, 240.0),
                         distortion_model='plumb_bob', d=(-0.3, 0.1, 0.0, 0.0, 0.0))
    with DatasetWriter(root, DatasetInfo('astro', SMPL_JOINT_NAMES)) as writer:
        writer.add(image, [label], camera=camera, stamp_ns=0)
    calibration = tmp_path / 'front.yaml'
    calibration.write_text(CAMERA_YAML)
    common = ('evaluate', '--dataset', root, '--models-dir', models_dir, '--checkpoint',
              seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu', '--no-verts',
              '--no-plots')
    for number, extra in enumerate(((), ('--camera-info', calibration),
                                    ('--camera-info', calibration, '--camera-model',
                                     'rectified'))):
        # the first as a real process, the others in this one (the same parser and main)
        done = (_run if number == 0 else _run_here)(*common, *extra, '--out', tmp_path / 'out')
        assert done.returncode == 0, done.stderr
    both = _run_here(*common, '--camera-info', calibration, '--intrinsics', '300,300,320,240',
                '--out', tmp_path / 'out')
    assert both.returncode == 2 and 'not allowed with argument' in both.stderr


def test_camera_mode_choices_agree_with_the_core():
    """The CLI spells the choices out (its --help must not need numpy); they are the core's."""
    from romp_ros.cli.camera_flags import CAMERA_MODES
    from romp_ros.core.geometry.calibration import CAMERA_MODES as CORE_MODES
    assert CAMERA_MODES == CORE_MODES


HELP_WITHOUT_HEAVY_PACKAGES = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('numpy', 'torch', 'cv2', 'scipy', 'rosbags', 'smplx'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
from romp_ros.cli.main import build_parser
parser = build_parser()
names = sorted(parser._subparsers._group_actions[0].choices)
for name in names:
    try:
        parser.parse_args([name, '--help'])
    except SystemExit:
        pass
print('SUBCOMMANDS=' + ','.join(names))
"""


def test_every_help_works_without_the_heavy_packages():
    """`romp-ros --help` and each sub-command's help import neither numpy nor torch."""
    result = subprocess.run([sys.executable, '-c', HELP_WITHOUT_HEAVY_PACKAGES],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    names = result.stdout.strip().splitlines()[-1].removeprefix('SUBCOMMANDS=').split(',')
    assert {'infer', 'synth', 'make-bag', 'train', 'evaluate', 'export-motion'} <= set(names)
