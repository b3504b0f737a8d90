"""`romp-ros synth` and `romp-ros make-bag` through the real command-line entry point."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from romp_ros.data.bag_types import typestore
from romp_ros.data.dataset_format import GenericDataset

SIZE = '96x64'
_OUR_ERRORS = (('romp_ros.synthetic.scenes', 'SceneSpecError'),
               ('romp_ros.data.dataset_format', 'DatasetError'),
               ('romp_ros.data.bag_writer', 'BagWriteError'))


@pytest.fixture
def cli(monkeypatch, caplog):
    """main(argv) -> exit status, with synth and make-bag registered (until main lists them)."""
    main_module = importlib.import_module('romp_ros.cli.main')
    for name in ('synth', 'make_bag'):
        if name not in main_module.SUBCOMMAND_MODULES:
            monkeypatch.setattr(main_module, 'SUBCOMMAND_MODULES',
                                main_module.SUBCOMMAND_MODULES + (name,))
    missing = tuple(e for e in _OUR_ERRORS if e not in main_module._USER_ERRORS)
    monkeypatch.setattr(main_module, '_USER_ERRORS', main_module._USER_ERRORS + missing)
    caplog.set_level(logging.INFO)

    def run(*argv: str) -> int:
        return main_module.main(['--quiet', *argv])

    return run


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _read_bag(path: Path) -> dict[str, list[int]]:
    """topic -> header stamps."""
    out: dict[str, list[int]] = {}
    with AnyReader([path], default_typestore=typestore()) as reader:
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            out.setdefault(conn.topic, []).append(stamp)
    return out


@pytest.fixture(scope='module')
def synth_sequence(tmp_path_factory):
    """A 3-frame sequence with its bag, made once through the CLI (synthetic body)."""
    main_module = importlib.import_module('romp_ros.cli.main')
    root = tmp_path_factory.mktemp('synth')
    out = root / 'seq'
    argv = ['--quiet', 'synth', '--out', str(out), '--frames', '3', '--seed', '5',
            '--size', SIZE, '--people', '2-3', '--sequence', '--fps', '10', '--bag']
    with pytest.MonkeyPatch.context() as patch:
        for name in ('synth', 'make_bag'):
            if name not in main_module.SUBCOMMAND_MODULES:
                patch.setattr(main_module, 'SUBCOMMAND_MODULES',
                              main_module.SUBCOMMAND_MODULES + (name,))
        assert main_module.main(argv) == 0
    return out


def test_synth_writes_a_self_contained_dataset(synth_sequence):
    data = GenericDataset(synth_sequence)
    assert len(data) == 3 and not data.skipped.total
    assert data.info.fps == 10.0 and len(data.info.joint_names) == 71
    assert data.body_model_dir == synth_sequence / 'body_model'
    assert (data.body_model_dir / 'smpla_neutral.npz').is_file()
    frame = data[0]
    assert data.load_image(frame).shape == (64, 96, 3)
    assert frame.camera is not None and frame.camera.width == 96
    assert [f.stamp_ns for f in data.frames] == [0, 100_000_000, 200_000_000]
    # identities persist over the sequence
    ids = [{p.track_id for p in f.people} for f in data.frames]
    assert ids[0] and ids[0] & ids[1] & ids[2]
    for person in frame.people:
        assert person.has_smpl and person.smpl_shape.shape == (11,)
        assert person.keypoints_2d.shape == (71, 3) and person.joints_3d.shape == (71, 3)


def test_synth_bag_has_three_topics_with_paired_stamps(synth_sequence):
    bag = synth_sequence.parent / 'seq_bag'
    assert (bag / 'metadata.yaml').is_file()
    stamps = _read_bag(bag)
    assert set(stamps) == {'/camera/image', '/camera/camera_info', '/ground_truth/people'}
    assert stamps['/camera/image'] == stamps['/camera/camera_info'] == stamps[
        '/ground_truth/people'] == [0, 100_000_000, 200_000_000]


def test_make_bag_from_the_dataset(cli, caplog, synth_sequence, tmp_path):
    out = tmp_path / 'again.mcap'
    assert cli('make-bag', str(synth_sequence), str(out), '--compressed') == 0
    stamps = _read_bag(out)
    assert set(stamps) == {'/camera/image/compressed', '/camera/camera_info',
                           '/ground_truth/people'}
    # an existing bag is refused with one line, exit code 2
    assert cli('make-bag', str(synth_sequence), str(out)) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and 'already exists' in errors[0]


def test_make_bag_refuses_a_folder_that_is_not_a_dataset(cli, caplog, tmp_path):
    assert cli('make-bag', str(tmp_path), str(tmp_path / 'b')) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and 'dataset.json' in errors[0]


def test_same_seed_gives_identical_files(cli, tmp_path):
    args = ('--frames', '2', '--size', SIZE, '--people', '1-2', '--image-format', 'jpg')
    assert cli('synth', '--out', str(tmp_path / 'a'), '--seed', '3', *args) == 0
    assert cli('synth', '--out', str(tmp_path / 'b'), '--seed', '3', *args) == 0
    assert cli('synth', '--out', str(tmp_path / 'c'), '--seed', '4', *args) == 0
    a, b, c = (tmp_path / n for n in 'abc')
    for name in ('dataset.json', 'frames.jsonl', 'images/000000.jpg', 'images/000001.jpg'):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / 'frames.jsonl').read_bytes() != (c / 'frames.jsonl').read_bytes()
    # the body model files hold the same arrays (npz zip timestamps may differ)
    with np.load(a / 'body_model' / 'smpla_neutral.npz') as x, \
            np.load(b / 'body_model' / 'smpla_neutral.npz') as y:
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
    info = json.loads((a / 'dataset.json').read_text())
    assert info['fps'] == 0.0 and '"seed":3' in info['description']


def test_models_dir_is_recorded_not_copied(cli, models_dir, tmp_path):
    out = tmp_path / 'real'
    assert cli('synth', '--out', str(out), '--frames', '1', '--size', SIZE,
               '--models-dir', str(models_dir)) == 0
    data = GenericDataset(out)
    assert not (out / 'body_model').exists()
    assert data.body_model_dir == Path(models_dir).resolve()
    copied = tmp_path / 'copied'
    assert cli('synth', '--out', str(copied), '--frames', '1', '--size', SIZE,
               '--models-dir', str(models_dir), '--copy-body-model') == 0
    assert GenericDataset(copied).body_model_dir == copied / 'body_model'
    assert (copied / 'body_model' / 'smpla_neutral.npz').is_file()


@pytest.mark.parametrize('flags, message', [
    (('--people', '5-2'), '--people'),
    (('--people', 'many'), '--people'),
    (('--size', '0x10'), '--size'),
    (('--size', '64'), '--size'),
    (('--distance', '3-1'), '--distance'),
    (('--distortion-prob', '2'), 'distortion_prob'),
    (('--device', 'warp-drive'), 'device'),
])
def test_bad_flags_give_one_clear_line_and_exit_2(cli, caplog, tmp_path, flags, message):
    out = tmp_path / 'never'
    assert cli('synth', '--out', str(out), '--frames', '1', *flags) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and message in errors[0]
    assert not out.exists()


def test_existing_output_folder_is_refused(cli, caplog, tmp_path):
    out = tmp_path / 'full'
    out.mkdir()
    (out / 'keep.txt').write_text('mine')
    assert cli('synth', '--out', str(out), '--frames', '1', '--size', SIZE) == 2
    errors = _errors(caplog)
    assert len(errors) == 1 and 'not an empty folder' in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ['keep.txt']
