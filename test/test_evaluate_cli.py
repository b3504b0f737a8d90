"""`romp-ros evaluate` end to end: report.json / frames.jsonl / report.md / plots, and one clear
line (exit 2, no traceback) for each bad input.

Runs the real command in a subprocess; the further bad-input cases go through the same
``romp_ros.cli.main.main`` in-process (test/cli_in_process.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

from cli_in_process import run_in_process
import numpy as np
import pytest
from test_evaluation_bags import (
    GT,
    PRED,
    image_messages,
    people_messages,
    shifted,
    synthetic_people,
    write_bag,
)

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.data.bag_types import PERSON_MESH_ARRAY
from romp_ros.data.dataset_format import (
    CameraLabel,
    DatasetInfo,
    DatasetWriter,
    PersonLabel,
)

PLOTS = ('eval_per_joint.png', 'eval_error_vs_distance.png', 'eval_error_over_time.png',
         'eval_missed_false.png', 'eval_track_timeline.png', 'eval_birds_eye.png')


def _evaluate(*args):
    """(exit status, stderr) of `romp-ros --quiet evaluate ARGS`, in a new process."""
    done = subprocess.run([sys.executable, '-m', 'romp_ros.cli', '--quiet', 'evaluate',
                           *map(str, args)], capture_output=True, text=True, timeout=600)
    return done.returncode, done.stderr


@pytest.fixture(scope='module')
def truth():
    return synthetic_people(seconds=3.0, people=3)


@pytest.fixture(scope='module')
def recorded_bag(tmp_path_factory, truth):
    preds = [p for i, p in enumerate(shifted(truth, offset=np.array([0.0, 0.0, 0.02])))
             if i % 10 != 5]  # three dropped frames
    return write_bag(tmp_path_factory.mktemp('bags') / 'run', people_messages(GT, truth)
                     + people_messages(PRED, preds, delay_ns=40_000_000))


def test_report_files(tmp_path, recorded_bag, truth):
    out = tmp_path / 'out'
    code, err = _evaluate('--bag', recorded_bag, '--gt-topic', GT, '--pred-topic', PRED,
                          '--out', out)
    assert code == 0, err
    report = json.loads((out / 'report.json').read_text())
    n = len(truth)
    assert report['frames'] == {'total': n, 'scored': n - 3, 'skipped': {'no_prediction': 3},
                                'paired': n - 3, 'matched_by_box_iou': 0}
    gt_people = sum(f.num_people for f in truth)
    dropped_people = sum(truth[i].num_people for i in range(n) if i % 10 == 5)
    assert report['people'] == {'ground_truth': gt_people, 'matched': gt_people - dropped_people,
                                'missed': dropped_people, 'false_positives': 0}
    assert report['detection']['precision'] == 1.0
    assert report['detection']['recall'] == pytest.approx(1 - dropped_people / gt_people)
    for key in ('mpjpe_mm', 'pa_mpjpe_mm', 'pck3d_150_matched', 'pck3d_150_all',
                'root_error_mm'):
        assert isinstance(report[key], float), key
    assert report['pve_mm'] is None  # no vertices were recorded
    assert report['root_error_mm'] == pytest.approx(20.0, abs=1e-4)
    assert report['joint_set'] == 'smpl24' and 'hungarian' in report['matching']
    assert report['pairing'] == 'exact'
    rows = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert len(rows) == n
    assert [r['stamp_ns'] for r in rows] == [f.stamp_ns for f in truth]
    assert {r['reason'] for r in rows if r['status'] == 'skipped'} == {'no_prediction'}
    scored = next(r for r in rows if r['status'] == 'scored')
    assert scored['people'][0]['root_error_mm'] == pytest.approx(20.0, abs=1e-3)
    assert scored['people'][0]['pred_id'] == scored['people'][0]['id'] + 100
    md = (out / 'report.md').read_text()
    assert '| no_prediction | 3 |' in md and 'mpjpe_mm' in md
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert 'matplotlib' in report['plots']['skipped']
    else:
        assert report['plots'] == list(PLOTS)
        for name in PLOTS:
            assert (out / name).stat().st_size > 5000, name


def test_dataset_with_recorded_npz_predictions(tmp_path):
    """--dataset: ground truth from the generic format; an infer .npz paired by image path."""
    root = tmp_path / 'ds'
    joints = np.zeros((24, 3)) + np.array([0.0, 0.0, 4.0])
    joints[:, 1] = np.linspace(-0.8, 0.8, 24)
    joints[:, 0] = np.linspace(-0.2, 0.2, 24)
    uv = joints[:, :2] / joints[:, 2:] * 300.0 + np.array([80.0, 60.0])
    label = PersonLabel(track_id=1, keypoints_2d=np.column_stack([uv, np.full(24, 2.0)]),
                        joints_3d=joints)
    camera = CameraLabel(width=160, height=120, k=(300.0, 300.0, 80.0, 60.0))
    with DatasetWriter(root, DatasetInfo('toy', SMPL_JOINT_NAMES, fps=10.0)) as writer:
        frames = [writer.add(np.zeros((120, 160, 3), np.uint8), [label], camera=camera,
                             stamp_ns=i * 100_000_000, sequence='walk') for i in range(4)]
    with (root / 'frames.jsonl').open('a') as fh:
        fh.write('{"image": "images/000009.png", "people": [{"joints_3d": [[1, 2]]}]}\n')
    preds = joints[None] + np.array([0.0, 0.0, 0.05])
    pj2d = preds[..., :2] / preds[..., 2:] * 300.0 + np.array([80.0, 60.0])
    npz = tmp_path / 'infer.npz'
    np.savez(npz, frame_index=np.arange(3), joints=np.repeat(preds - preds[:, :1], 3, 0),
             cam_trans=np.repeat(preds[:, 0], 3, 0), pj2d_org=np.repeat(pj2d, 3, 0),
             center_confs=np.ones(3), joint_names=np.array(SMPL_JOINT_NAMES),
             inputs=np.array([str(root / f.image) for f in frames[:3]]),
             stamps_ns=np.full(3, -1))
    out = tmp_path / 'out'
    code, err = _evaluate('--dataset', root, '--pred-npz', npz, '--out', out, '--no-plots')
    assert code == 0, err
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['total'] == 5 and report['frames']['scored'] == 3
    # frame 3 is not in the npz; the row with a wrong joint count is unusable ground truth
    assert report['frames']['skipped'] == {'no_prediction': 1, 'bad_ground_truth': 1}
    assert report['root_error_mm'] == pytest.approx(50.0, abs=1e-3)
    assert report['sequences'] == ['walk']


def test_bad_input_is_one_line(tmp_path, recorded_bag, truth):
    corrupt = tmp_path / 'corrupt.mcap'
    corrupt.write_bytes(b'not a bag at all' * 20)
    empty = write_bag(tmp_path / 'empty', [], topics=[(GT, PERSON_MESH_ARRAY)])
    images = write_bag(tmp_path / 'images', image_messages(
        '/cam/image', '/cam/info', [np.zeros((8, 8, 3), np.uint8)], [10**9], (5, 5, 4, 4)))
    late = write_bag(tmp_path / 'late', people_messages(GT, truth[:2]) + people_messages(
        PRED, shifted(truth[:2], stamp_shift_ns=3_000_000_000)))
    out = tmp_path / 'out'
    cases = [
        (['--bag', corrupt, '--gt-topic', GT, '--pred-topic', PRED], 'not a readable bag'),
        (['--bag', recorded_bag, '--gt-topic', '/gt', '--pred-topic', PRED],
         f'no topic /gt (--gt-topic); topics in the bag: {GT}'),
        (['--bag', images, '--gt-topic', '/cam/image', '--pred-topic', PRED],
         'topic /cam/image has type sensor_msgs/msg/Image; --gt-topic needs'),
        (['--bag', empty, '--gt-topic', GT, '--pred-topic', PRED], 'the bag is empty'),
        (['--bag', late, '--gt-topic', GT, '--pred-topic', PRED],
         'no prediction stamp pairs with a ground-truth stamp'),
        (['--bag', recorded_bag, '--gt-topic', GT], 'no predictions: give --pred-topic'),
        (['--bag', recorded_bag, '--pred-topic', PRED], 'bags need --gt-topic'),
        (['--bag', recorded_bag, '--gt-topic', GT, '--pred-topic', PRED,
          '--stamp-tolerance', '-1'], 'stamp_tolerance_s must be'),
    ]
    for number, (args, expected) in enumerate(cases):
        # the first as a real process, the rest in this one (the same parser and main)
        code, err = (_evaluate(*args, '--out', out) if number == 0
                     else run_in_process('evaluate', *args, '--out', out))
        assert code == 2, (args, err)
        lines = [line for line in err.splitlines() if line.startswith('ERROR')]
        assert len(lines) == 1 and expected in lines[0], (expected, err)
        assert 'Traceback' not in err
    assert not (out / 'report.json').exists()


def test_help_lists_every_flag():
    text = subprocess.run([sys.executable, '-m', 'romp_ros.cli', 'evaluate', '--help'],
                          capture_output=True, text=True, timeout=120).stdout
    for flag in ('--bag', '--gt-topic', '--dataset', '--pred-topic', '--pred-npz',
                 '--checkpoint', '--models-dir', '--model', '--backbone', '--image-topic',
                 '--camera-info-topic', '--protocol', '--stamp-tolerance', '--out', '--track'):
        assert flag in text, flag


@pytest.mark.slow
def test_model_run_on_a_dataset(tmp_path, models_dir, seeded_checkpoint):
    """--dataset with a model: images read from the folder, each frame's camera K used."""
    import skimage.data
    root = tmp_path / 'ds'
    image = skimage.data.astronaut()
    joints = np.zeros((24, 3)) + np.array([0.0, 0.0, 3.0])
    joints[:, 1] = np.linspace(-0.8, 0.8, 24)
    uv = joints[:, :2] / joints[:, 2:] * 600.0 + 256.0
    label = PersonLabel(track_id=1, keypoints_2d=np.column_stack([uv, np.full(24, 2.0)]),
                        joints_3d=joints)
    camera = CameraLabel(width=512, height=512, k=(600.0, 600.0, 256.0, 256.0))
    with DatasetWriter(root, DatasetInfo('astro', SMPL_JOINT_NAMES)) as writer:
        for i in range(2):
            writer.add(image, [label], camera=camera, stamp_ns=i * 10**8)
    (root / 'images' / '000001.png').write_bytes(b'not a png')  # a damaged image
    out = tmp_path / 'out'
    code, err = _evaluate('--dataset', root, '--models-dir', models_dir, '--checkpoint',
                          seeded_checkpoint('romp', 'hrnet32'), '--device', 'cpu', '--no-verts',
                          '--center-thresh', '0.05', '--out', out, '--no-plots')
    assert code == 0, err
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['total'] == 2 and report['frames']['scored'] == 1
    assert report['frames']['skipped'] == {'decode_error': 1}
    assert report['people']['ground_truth'] == 2
    rows = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert rows[1]['reason'] == 'decode_error' and 'not a readable image' in rows[1]['detail']


def test_without_matplotlib_the_report_says_so(tmp_path, monkeypatch, truth):
    from romp_ros.evaluation import EvaluationSession, write_report
    session = EvaluationSession()
    for frame in truth[:3]:
        session.add_ground_truth(frame.stamp_ns, frame)
        session.add_prediction(frame.stamp_ns, frame)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # as if not installed
    write_report(session.finish(), tmp_path)
    report = json.loads((tmp_path / 'report.json').read_text())
    assert 'matplotlib is not installed (pip install matplotlib)' in report['plots']['skipped']
    assert report['frames']['scored'] == 3
    assert not list(tmp_path.glob('*.png'))
    assert 'Plots skipped' in (tmp_path / 'report.md').read_text()


def test_a_model_that_finds_nobody_still_gets_its_report_and_plots(tmp_path, truth):
    """Every ground-truth person missed (an untrained network): all plots drawn, recall 0."""
    from romp_ros.evaluation import EvaluationSession, write_report
    from romp_ros.evaluation.people import FramePeople
    session = EvaluationSession()
    for frame in truth[:5]:
        session.add_ground_truth(frame.stamp_ns, frame)
        nobody = FramePeople(frame.stamp_ns, frame.joint_names,
                             np.zeros((0, len(frame.joint_names), 3)),
                             np.zeros((0, len(frame.joint_names), 2)), np.zeros((0, 4)),
                             np.zeros(0, np.int64), np.zeros(0))
        session.add_prediction(frame.stamp_ns, nobody)
    write_report(session.finish(), tmp_path)
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['frames']['scored'] == 5
    assert report['people']['matched'] == 0 and report['people']['missed'] > 0
    assert report['detection']['recall'] == 0.0
    assert sorted(p.name for p in tmp_path.glob('*.png')) == sorted(PLOTS)


def test_protocol_choices_agree_with_the_library():
    from romp_ros.cli.evaluate import PROTOCOL_NAMES
    from romp_ros.evaluation.protocols import PROTOCOLS
    assert PROTOCOL_NAMES == tuple(sorted(PROTOCOLS))
