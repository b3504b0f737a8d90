"""Stream per-frame estimates into one ``.npz`` (the ``infer`` output), with bounded memory.

Layout (all people of all frames concatenated in input order; within a frame by descending
confidence; N people, F frames, J joints, V vertices):

===================  ==============  ====================================================
key                  shape           meaning
===================  ==============  ====================================================
frame_index          (N,) int64      index into ``inputs`` of each person's frame
center_confs         (N,) float32    body-center score
cam                  (N, 3)          weak-perspective camera [s, tx, ty] (ROMP and BEV)
smpl_thetas          (N, 72)         SMPL pose, axis-angle, radians
smpl_betas           (N, 10|11)      SMPL (ROMP) / SMPL-A (BEV) shape
cam_trans            (N, 3)          metres, body frame -> camera optical frame
translation_solved   (N,) bool       cam_trans solved with the frame's camera (False: the
                                     network's 60-degree translation; see FrameResult)
joints               (N, J, 3)       metres, body frame (add cam_trans for the camera)
verts                (N, V, 3)       metres, body frame (absent with --no-verts)
pj2d_org             (N, J, 2)       pixels of the original (raw) image
joint_names          (J,) str
inputs               (F,) str        source of each frame (path, path#k, bag:topic#k)
image_sizes          (F, 2) int64    (height, width) of each frame
intrinsics           (F, 4) float64  fx, fy, cx, cy used for each frame
intrinsics_source    (F,) str        'camera' (calibrated) or 'fov' (assumed)
distortion_model     (F,) str        the lens of each frame's camera ('none': pinhole)
distortion           (F, 8) float64  its coefficients in CameraInfo order, zero-padded
stamps_ns            (F,) int64      capture time (bags: header stamp; videos: since the
                                     start), -1 when unknown
===================  ==============  ====================================================

With ``--track`` the people of a frame are its observed tracks (see docs/tracking.md) and
four more per-person arrays are written:

===================  ==============  ====================================================
track_ids            (N,) int64      track id, >= 1, never reused within the file
track_states         (N,) str        'tentative' or 'confirmed'
track_ages           (N,) int64      frames since the track was born
root_velocity        (N, 3) float32  pelvis velocity, m/s, camera optical frame
===================  ==============  ====================================================

Memory: each frame's arrays go to per-key spool files next to the output as they come; at
the end they are copied into the ``.npz`` (an uncompressed zip of ``.npy`` members, as
``np.savez`` writes, ZIP64 when large) in chunks of ``chunk_bytes``. What the writer holds
does not grow with the number of frames, so hours of video with vertices fit in any RAM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any, BinaryIO
import zipfile

import numpy as np

PER_PERSON = ('center_confs', 'cam', 'smpl_thetas', 'smpl_betas', 'cam_trans', 'joints',
              'pj2d_org')
TRACKS = ('track_ids', 'track_states', 'track_ages', 'root_velocity')
NUM_DISTORTION = 8
DEFAULT_CHUNK_BYTES = 4 << 20


class _Column:
    """One fixed-dtype array, appended row block by row block to a spool file."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...] | None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = row_shape  # None: taken from the first block
        self.rows = 0
        self._handle: BinaryIO = open(path, 'wb')

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if self.row_shape is None:
            self.row_shape = tuple(block.shape[1:])
        if tuple(block.shape[1:]) != self.row_shape:
            raise ValueError(f'{self.path.stem}: rows of shape {block.shape[1:]} after '
                             f'{self.row_shape}')
        self._handle.write(block.tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        self._handle.close()

    def write_npy(self, out: BinaryIO, chunk_bytes: int, empty_row_shape: tuple[int, ...]
                  ) -> None:
        shape = (self.rows,) + (self.row_shape if self.row_shape is not None
                                else empty_row_shape)
        _write_header(out, self.dtype, shape)
        with open(self.path, 'rb') as spool:
            shutil.copyfileobj(spool, out, chunk_bytes)


class _TextColumn:
    """A column of strings (unknown width until the end), spooled as JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.width = 1
        self._handle = open(path, 'w', encoding='utf-8')

    def append(self, values) -> None:
        for value in values:
            text = str(value)
            self.width = max(self.width, len(text))
            self._handle.write(json.dumps(text) + '\n')
            self.rows += 1

    def close(self) -> None:
        self._handle.close()

    def write_npy(self, out: BinaryIO, chunk_bytes: int) -> None:
        dtype = np.dtype(f'<U{self.width}')
        _write_header(out, dtype, (self.rows,))
        per_chunk = max(1, chunk_bytes // dtype.itemsize)
        batch: list[str] = []
        with open(self.path, encoding='utf-8') as spool:
            for line in spool:
                batch.append(json.loads(line))
                if len(batch) >= per_chunk:
                    out.write(np.asarray(batch, dtype=dtype).tobytes())
                    batch = []
        if batch:
            out.write(np.asarray(batch, dtype=dtype).tobytes())


def _write_header(out: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    header = {'descr': np.lib.format.dtype_to_descr(dtype), 'fortran_order': False,
              'shape': tuple(int(v) for v in shape)}
    np.lib.format.write_array_header_1_0(out, header)


class InferenceWriter:
    """Writes :class:`~romp_ros.core.results.FrameResult` objects frame by frame to a .npz.

    Example::

        with InferenceWriter('out.npz', estimator.joint_names) as writer:
            for frame, result in ...:
                writer.add(frame, result)
        # out.npz is complete once the block ends; an exception leaves no file behind

    Args:
        path: the output file ('.npz' is appended when missing).
        joint_names: the J joint names.
        with_verts: store the vertices.
        with_tracks: frames come with their tracking (``add``'s ``tracked``).
        chunk_bytes: the copy buffer of :meth:`close` (memory it uses at most, per column).
    """

    def __init__(self, path: str | os.PathLike, joint_names: tuple[str, ...],
                 with_verts: bool = True, with_tracks: bool = False,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        path = Path(path)
        self.path = path if path.suffix == '.npz' else path.with_suffix('.npz')
        self.joint_names = tuple(joint_names)
        self.with_verts = with_verts
        self.with_tracks = with_tracks
        self.chunk_bytes = int(chunk_bytes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._spool = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f'.{self.path.name}.',
                                            suffix='.parts'))
        num_j = len(self.joint_names)
        specs: dict[str, tuple[Any, tuple[int, ...] | None]] = {
            'frame_index': (np.int64, ()), 'center_confs': (np.float32, ()),
            'cam': (np.float32, (3,)), 'smpl_thetas': (np.float32, (72,)),
            'smpl_betas': (np.float32, None), 'cam_trans': (np.float32, (3,)),
            'translation_solved': (np.bool_, ()), 'joints': (np.float32, (num_j, 3)),
            'pj2d_org': (np.float32, (num_j, 2)), 'image_sizes': (np.int64, (2,)),
            'intrinsics': (np.float64, (4,)), 'distortion': (np.float64, (NUM_DISTORTION,)),
            'stamps_ns': (np.int64, ()),
        }
        if with_verts:
            specs['verts'] = (np.float32, None)
        if with_tracks:
            specs.update({'track_ids': (np.int64, ()), 'track_ages': (np.int64, ()),
                          'root_velocity': (np.float32, (3,))})
        self._columns = {key: _Column(self._spool / f'{key}.bin', dtype, shape)
                         for key, (dtype, shape) in specs.items()}
        text_keys = ['inputs', 'intrinsics_source', 'distortion_model']
        if with_tracks:
            text_keys.append('track_states')
        self._text = {key: _TextColumn(self._spool / f'{key}.jsonl') for key in text_keys}
        self._frames = 0
        self._people = 0
        self._done = False

    def __enter__(self) -> 'InferenceWriter':
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def num_frames(self) -> int:
        """F, frames added so far."""
        return self._frames

    @property
    def num_people(self) -> int:
        """N, person detections added so far."""
        return self._people

    def add(self, frame, result, tracked=None) -> None:
        """Append one frame (an ``input_sources.Frame``) and its ``FrameResult``.

        With tracking, ``tracked`` is the frame's ``TrackedFrame`` and ``result`` its people.
        """
        if self._done:
            raise ValueError('the writer is closed')
        if self.with_tracks != (tracked is not None):
            raise ValueError('a tracking writer needs every frame tracked, and only then')
        count = result.num_people
        columns = self._columns
        columns['frame_index'].append(np.full(count, self._frames, dtype=np.int64))
        for key in PER_PERSON:
            columns[key].append(np.asarray(getattr(result, key)))
        columns['translation_solved'].append(np.asarray(
            result.translation_solved if result.translation_solved is not None
            else np.full(count, result.intrinsics.source == 'camera'), dtype=bool))
        if self.with_verts:
            if result.verts is None:
                raise ValueError('the writer stores vertices but a result has none')
            columns['verts'].append(result.verts)
        if tracked is not None:
            columns['track_ids'].append(np.asarray(tracked.ids, dtype=np.int64))
            columns['track_ages'].append(np.asarray(tracked.ages, dtype=np.int64))
            columns['root_velocity'].append(
                np.asarray(tracked.velocities, dtype=np.float32).reshape(-1, 3))
            self._text['track_states'].append(tracked.states)
        k = result.intrinsics
        lens = np.zeros(NUM_DISTORTION)
        lens[:len(k.d)] = k.d
        columns['image_sizes'].append(np.asarray([result.image_size], dtype=np.int64))
        columns['intrinsics'].append(np.asarray([[k.fx, k.fy, k.cx, k.cy]]))
        columns['distortion'].append(lens[None])
        columns['stamps_ns'].append(np.asarray(
            [-1 if frame.stamp_ns is None else frame.stamp_ns], dtype=np.int64))
        self._text['inputs'].append([frame.source])
        self._text['intrinsics_source'].append([k.source])
        self._text['distortion_model'].append([k.distortion_model])
        self._frames += 1
        self._people += count

    def close(self) -> Path:
        """Write the .npz (atomically: a crash never leaves a half-written file); its path."""
        if self._done:
            return self.path
        self._done = True
        num_j = len(self.joint_names)
        empty_rows = {'smpl_betas': (10,), 'verts': (0, 3)}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix='.tmp')
        os.close(fd)
        try:
            for column in list(self._columns.values()) + list(self._text.values()):
                column.close()
            with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED,
                                 allowZip64=True) as archive:
                for key, column in self._columns.items():
                    with archive.open(f'{key}.npy', 'w', force_zip64=True) as member:
                        column.write_npy(member, self.chunk_bytes, empty_rows.get(key, ()))
                for key, text in self._text.items():
                    with archive.open(f'{key}.npy', 'w', force_zip64=True) as member:
                        text.write_npy(member, self.chunk_bytes)
                with archive.open('joint_names.npy', 'w') as member:
                    np.lib.format.write_array(member, np.asarray(self.joint_names, dtype=str)
                                              if num_j else np.zeros(0, '<U1'))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(self._spool, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (no output file)."""
        self._done = True
        for column in list(self._columns.values()) + list(self._text.values()):
            column.close()
        shutil.rmtree(self._spool, ignore_errors=True)
