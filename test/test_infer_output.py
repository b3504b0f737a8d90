"""The streaming ``romp-ros infer`` writer: the .npz layout, and memory that does not grow."""

from __future__ import annotations

from dataclasses import dataclass
import tracemalloc

import numpy as np
import pytest

from romp_ros.cli.infer_output import InferenceWriter
from romp_ros.core.results import CameraIntrinsics, FrameResult

NUM_J, NUM_V = 71, 6890
NAMES = tuple(f'j{i}' for i in range(NUM_J))


@dataclass(frozen=True)
class _Frame:
    source: str
    stamp_ns: int | None


@dataclass(frozen=True)
class _Tracked:
    ids: np.ndarray
    states: tuple[str, ...]
    ages: np.ndarray
    velocities: np.ndarray


def _result(index: int, count: int, betas: int = 10, lens: bool = False) -> FrameResult:
    """A frame of ``count`` people whose values encode (frame, person)."""
    base = np.arange(count, dtype=np.float32)[:, None] + 1000.0 * index
    camera = (CameraIntrinsics(500.0, 501.0, 320.0, 240.0, distortion_model='plumb_bob',
                               d=(-0.3, 0.1, 0.0, 0.0, 0.01)) if lens
              else CameraIntrinsics(443.4, 443.4, 320.0, 240.0, source='fov'))
    return FrameResult(
        cam=np.repeat(base, 3, axis=1), smpl_thetas=np.repeat(base, 72, axis=1),
        smpl_betas=np.repeat(base, betas, axis=1), cam_trans=np.repeat(base, 3, axis=1),
        joints=np.repeat(base[:, :, None], NUM_J * 3, axis=2).reshape(count, NUM_J, 3),
        verts=np.repeat(base[:, :, None], NUM_V * 3, axis=2).reshape(count, NUM_V, 3),
        pj2d_org=np.repeat(base[:, :, None], NUM_J * 2, axis=2).reshape(count, NUM_J, 2),
        center_confs=np.linspace(0.9, 0.5, count, dtype=np.float32), joint_names=NAMES,
        image_size=(480, 640), intrinsics=camera,
        translation_solved=np.arange(count) % 2 == 0)


def test_memory_stays_bounded_on_a_long_stream(tmp_path):
    """400 frames x 3 people with vertices (~100 MB): the writer holds a few MB at most."""
    frames, people = 400, 3
    one = _result(0, people)
    frame_bytes = one.verts.nbytes + one.joints.nbytes + one.pj2d_org.nbytes
    tracemalloc.start()
    try:
        with InferenceWriter(tmp_path / 'long.npz', NAMES, chunk_bytes=1 << 20) as writer:
            for index in range(frames):
                writer.add(_Frame(f'video.mp4#{index}', index * 10**8), _result(index, people))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    written = frames * frame_bytes
    assert written > 90e6
    # a few frames' arrays (made by the test itself) and the 1 MB copy buffer
    assert peak < 8 * frame_bytes + 4e6, (peak, frame_bytes)
    data = np.load(tmp_path / 'long.npz')
    assert data['verts'].shape == (frames * people, NUM_V, 3)
    np.testing.assert_array_equal(data['frame_index'], np.repeat(np.arange(frames), people))
    np.testing.assert_array_equal(data['verts'][-1], _result(frames - 1, people).verts[-1])
    np.testing.assert_array_equal(data['joints'][5], _result(1, people).joints[2])
    assert list(data['inputs'][[0, -1]]) == ['video.mp4#0', f'video.mp4#{frames - 1}']
    assert not list(tmp_path.glob('.long.npz.*')), 'the spool folder must be removed'


def test_layout_of_tracked_frames_with_lenses_and_empty_frames(tmp_path):
    out = tmp_path / 'tracked'  # '.npz' is appended
    with InferenceWriter(out, NAMES, with_verts=False, with_tracks=True) as writer:
        writer.add(_Frame('a.png', None), _result(0, 0, betas=11),
                   _Tracked(np.zeros(0, np.int64), (), np.zeros(0, np.int64), np.zeros((0, 3))))
        writer.add(_Frame('bag:/cam/image_raw#1', 5), _result(1, 2, betas=11, lens=True),
                   _Tracked(np.array([3, 4]), ('confirmed', 'tentative'), np.array([7, 0]),
                            np.ones((2, 3))))
        assert (writer.num_frames, writer.num_people) == (2, 2)
    data = np.load(tmp_path / 'tracked.npz')
    assert 'verts' not in data
    assert data['smpl_betas'].shape == (2, 11) and data['joints'].shape == (2, NUM_J, 3)
    assert list(data['track_states']) == ['confirmed', 'tentative']
    assert data['track_ids'].tolist() == [3, 4] and data['track_ages'].tolist() == [7, 0]
    assert list(data['intrinsics_source']) == ['fov', 'camera']
    assert list(data['distortion_model']) == ['none', 'plumb_bob']
    np.testing.assert_allclose(data['distortion'][1], [-0.3, 0.1, 0, 0, 0.01, 0, 0, 0])
    np.testing.assert_allclose(data['intrinsics'][1], [500.0, 501.0, 320.0, 240.0])
    assert data['translation_solved'].tolist() == [True, False]
    assert data['stamps_ns'].tolist() == [-1, 5] and data['image_sizes'].shape == (2, 2)
    assert list(data['joint_names']) == list(NAMES)


def test_nothing_is_left_behind_when_inference_fails(tmp_path):
    with pytest.raises(RuntimeError, match='boom'):
        with InferenceWriter(tmp_path / 'out.npz', NAMES) as writer:
            writer.add(_Frame('a.png', None), _result(0, 2))
            raise RuntimeError('boom')
    assert list(tmp_path.iterdir()) == []


def test_no_frames_gives_empty_arrays_of_the_right_shapes(tmp_path):
    with InferenceWriter(tmp_path / 'empty.npz', NAMES) as writer:
        pass
    data = np.load(writer.path)
    assert data['joints'].shape == (0, NUM_J, 3) and data['smpl_betas'].shape == (0, 10)
    assert data['inputs'].shape == (0,) and data['intrinsics'].shape == (0, 4)
