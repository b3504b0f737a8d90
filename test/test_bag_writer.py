"""A dataset written as a ROS 2 bag reads back (rosbags AnyReader) with the labels intact."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from scipy.spatial.transform import Rotation

from romp_ros.data.bag_types import typestore
from romp_ros.data.bag_writer import BagWriteError, frame_stamps, write_dataset_bag
from romp_ros.data.dataset_format import (
    CameraLabel,
    DatasetInfo,
    DatasetWriter,
    GenericDataset,
    PersonLabel,
)

JOINTS = ('pelvis', 'l_hip', 'r_hip', 'head')
CAMERA = CameraLabel(width=32, height=24, k=(30.0, 31.0, 16.5, 11.5),
                     distortion_model='plumb_bob', d=(-0.2, 0.05, 0.001, -0.002, 0.0))


def _person(rng: np.random.Generator, track_id: int, full: bool = True) -> PersonLabel:
    kp = np.concatenate([rng.uniform(0, 24, (4, 2)), [[2], [1], [0], [2]]], axis=1)
    if not full:  # a 2D-only label
        return PersonLabel(track_id=track_id, keypoints_2d=kp, bbox=np.array([1., 2., 9., 20.]))
    return PersonLabel(track_id=track_id, bbox=np.array([1.0, 2.0, 20.5, 23.0]),
                       keypoints_2d=kp, joints_3d=rng.normal(0, 1, (4, 3)) + [0, 0, 5],
                       smpl_pose=rng.normal(0, 0.3, 72), smpl_shape=rng.normal(0, 1, 11),
                       translation=rng.normal(0, 1, 3) + [0, 0, 5])


@pytest.fixture
def dataset(tmp_path) -> GenericDataset:
    """4 frames, 2 sequences restarting their stamps, people with and without full labels."""
    rng = np.random.default_rng(0)
    root = tmp_path / 'ds'
    with DatasetWriter(root, DatasetInfo('tiny', JOINTS, fps=10.0)) as writer:
        for index in range(4):
            image = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
            people = [_person(rng, 7), _person(rng, 3, full=index != 1)]
            writer.add(image, people if index != 2 else people[:1], camera=CAMERA,
                       stamp_ns=(index % 2) * 100_000_000, sequence=f's{index // 2}')
    return GenericDataset(root)


def _read(path: Path) -> dict[str, list]:
    """topic -> [(log time, message)] in bag order."""
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=typestore()) as reader:
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    return out


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.parametrize('name', ['bag_folder', 'single.mcap', 'single.db3'])
def test_bag_reads_back_with_the_labels(dataset, tmp_path, name):
    out = tmp_path / name
    report = write_dataset_bag(dataset, out, progress=False)
    assert out.exists() and report.frames == 4 and report.people == 7
    assert (out / 'metadata.yaml').is_file() if name == 'bag_folder' else out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no staging left
    topics = _read(out)
    assert set(topics) == {'/camera/image', '/camera/camera_info', '/ground_truth/people'}
    images, infos, people = (topics[t] for t in ('/camera/image', '/camera/camera_info',
                                                 '/ground_truth/people'))
    assert len(images) == len(infos) == len(people) == 4
    # stamps: paired across topics, the second sequence continues after the first
    stamps = [_stamp(m) for _, m in images]
    assert stamps == [0, 100_000_000, 200_000_000, 300_000_000]
    for index in range(4):
        assert _stamp(infos[index][1]) == _stamp(people[index][1]) == stamps[index]
        assert images[index][0] == infos[index][0] == people[index][0] == stamps[index]
        assert images[index][1].header.frame_id == 'camera_optical_frame'
    for index, frame in enumerate(dataset.frames):
        image = images[index][1]
        assert (image.encoding, image.height, image.width) == ('rgb8', 24, 32)
        np.testing.assert_array_equal(image.data.reshape(24, 32, 3), dataset.load_image(frame))
        info = infos[index][1]
        assert info.distortion_model == 'plumb_bob'
        np.testing.assert_allclose(info.d, CAMERA.d)
        np.testing.assert_allclose(info.k.reshape(3, 3), CAMERA.matrix())
        np.testing.assert_allclose(info.p.reshape(3, 4)[:, :3], CAMERA.matrix())
        np.testing.assert_allclose(info.r.reshape(3, 3), np.eye(3))
        _check_people(people[index][1], frame)


def _check_people(msg, frame) -> None:
    assert msg.model == 'ground_truth' and list(msg.joint_names) == list(JOINTS)
    assert len(msg.people) == len(frame.people)
    for got, label in zip(msg.people, frame.people, strict=True):
        assert got.id == label.track_id and got.confidence == 1.0
        kp = label.keypoints_2d
        flat = np.asarray(got.keypoints_2d).reshape(-1, 2)
        np.testing.assert_allclose(flat[kp[:, 2] > 0], kp[kp[:, 2] > 0, :2], atol=1e-4)
        assert np.isnan(flat[kp[:, 2] == 0]).all()
        np.testing.assert_allclose(got.bbox, label.bbox, atol=1e-4)
        if label.smpl_pose is None:
            assert len(got.smpl_shape) == 0 and len(got.joints_3d) == 0
            continue
        np.testing.assert_allclose(got.smpl_pose, label.smpl_pose, atol=1e-5)
        np.testing.assert_allclose(got.smpl_shape, label.smpl_shape, atol=1e-5)
        t = got.translation
        np.testing.assert_allclose([t.x, t.y, t.z], label.translation, atol=1e-9)
        joints = np.array([[p.x, p.y, p.z] for p in got.joints_3d])
        np.testing.assert_allclose(joints, label.joints_3d, atol=1e-9)
        pos, q = got.root_pose.position, got.root_pose.orientation
        np.testing.assert_allclose([pos.x, pos.y, pos.z], label.joints_3d[0], atol=1e-9)
        rot = Rotation.from_quat([q.x, q.y, q.z, q.w])
        assert (rot.inv() * Rotation.from_rotvec(label.smpl_pose[:3])).magnitude() < 1e-6


def test_track_ages_count_frames_since_first_seen_per_sequence(dataset, tmp_path):
    out = tmp_path / 'b.mcap'
    write_dataset_bag(dataset, out, progress=False)
    people = [m for _, m in _read(out)['/ground_truth/people']]
    ages = [{p.id: p.track_age for p in msg.people} for msg in people]
    assert ages == [{7: 0, 3: 0}, {7: 1, 3: 1}, {7: 0}, {7: 1, 3: 0}]


@pytest.mark.parametrize('compression', ['jpeg', 'png'])
def test_compressed_images(dataset, tmp_path, compression):
    out = tmp_path / f'c_{compression}'
    report = write_dataset_bag(dataset, out, compressed=True, compression=compression,
                               image_topic='/cam/img', progress=False)
    assert report.topics[0] == '/cam/img/compressed'
    images = _read(out)['/cam/img/compressed']
    for (_, msg), frame in zip(images, dataset.frames, strict=True):
        assert msg.format == compression
        decoded = cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_COLOR)[..., ::-1]
        original = dataset.load_image(frame)
        if compression == 'png':  # the dataset's PNG files, copied byte for byte
            assert bytes(msg.data) == dataset.image_path(frame).read_bytes()
            np.testing.assert_array_equal(decoded, original)
        else:
            assert decoded.shape == original.shape


def test_missing_stamps_are_synthesised_from_fps(tmp_path):
    root = tmp_path / 'nostamps'
    with DatasetWriter(root, DatasetInfo('x', JOINTS)) as writer:
        for _ in range(3):
            writer.add(np.zeros((8, 8, 3), np.uint8))
    data = GenericDataset(root)
    np.testing.assert_array_equal(frame_stamps(data), [0, 100_000_000, 200_000_000])
    np.testing.assert_array_equal(frame_stamps(data, fps=4.0), [0, 250_000_000, 500_000_000])
    out = tmp_path / 'b.mcap'
    write_dataset_bag(data, out, fps=4.0, progress=False)
    topics = _read(out)
    # frames without a camera get no camera_info, the others still pair up
    assert '/camera/camera_info' not in topics
    assert [_stamp(m) for _, m in topics['/ground_truth/people']] == [0, 250_000_000,
                                                                      500_000_000]


def test_existing_output_and_bad_options_are_refused(dataset, tmp_path):
    existing = tmp_path / 'exists.mcap'
    existing.write_bytes(b'x')
    with pytest.raises(BagWriteError, match='already exists'):
        write_dataset_bag(dataset, existing, progress=False)
    assert existing.read_bytes() == b'x'
    with pytest.raises(BagWriteError, match='does not exist'):
        write_dataset_bag(dataset, tmp_path / 'no' / 'bag', progress=False)
    with pytest.raises(BagWriteError, match='compression'):
        write_dataset_bag(dataset, tmp_path / 'b', compressed=True, compression='webp',
                          progress=False)
    with pytest.raises(BagWriteError, match='storage'):
        write_dataset_bag(dataset, tmp_path / 'b', storage='rosbag1', progress=False)
    assert not (tmp_path / 'b').exists()


def test_make_bag_from_a_3dpw_folder(tmp_path, models_dir):
    """`romp-ros make-bag` reads any loader's format: a 3DPW folder becomes a bag whose ground
    truth equals what the 3DPW loader reads, frame by frame."""
    import subprocess
    import sys

    from test_loaders import _write_3dpw

    from romp_ros.core.body.smpl import BodyModel
    from romp_ros.data.threedpw import open_3dpw
    _write_3dpw(tmp_path / 'pw3d', BodyModel.from_models_dir(models_dir))
    bag = tmp_path / 'pw3d.mcap'
    result = subprocess.run([sys.executable, '-m', 'romp_ros.cli', '--quiet', 'make-bag',
                             str(tmp_path / 'pw3d'), str(bag), '--models-dir', str(models_dir)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    source = open_3dpw(tmp_path / 'pw3d', models_dir=models_dir)
    topics = _read(bag)
    people = [msg for _, msg in topics['/ground_truth/people']]
    assert len(people) == len(source) == len(topics['/camera/image'])
    for msg, frame in zip(people, source.frames, strict=True):
        assert len(msg.people) == len(frame.people)
        for person, label in zip(msg.people, frame.people, strict=True):
            joints = np.array([[p.x, p.y, p.z] for p in person.joints_3d])
            assert np.allclose(joints, label.joints_3d, atol=1e-4)
            assert np.allclose(person.translation.z, label.translation[2], atol=1e-4)
    infos = [msg for _, msg in topics['/camera/camera_info']]
    assert infos[0].k[0] == 60.0 and infos[0].width == 64
