"""The ``romp-ros infer`` results file as a source of motion, read in blocks of people.

The file's layout is documented in ``romp_ros/cli/infer_output.py``: people of all frames
concatenated in frame order, per-frame tables, and with ``--track`` the track ids. Small
arrays (one number per person or per frame) are held in memory; the large per-person arrays
(pose, joints, vertices) are streamed in blocks (:meth:`MotionSource.blocks`).

A person whose pose, shape, translation or SMPL joints hold NaN or inf cannot be exported: it
is left out and counted (:attr:`MotionSource.invalid_rows`), never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES
from romp_ros.export.errors import MotionExportError
from romp_ros.export.npz_stream import NpzStream

LOG = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
DEFAULT_BLOCK_ROWS = 2048
REQUIRED_KEYS = ('frame_index', 'smpl_thetas', 'smpl_betas', 'cam_trans', 'joints',
                 'joint_names', 'image_sizes', 'intrinsics')
# per-person arrays whose values must be finite for a person to be exported
_CHECKED = ('smpl_thetas', 'smpl_betas', 'cam_trans', 'joints')


@dataclass(frozen=True)
class Block:
    """Consecutive people of the file.

    Attributes:
        start: index of the first row in the file.
        rows: (R,) int64 row indices of the valid people of the block (ascending).
        frame_index: (R,) int64 frame of each person.
        track_ids: (R,) int64 track ids, or None for an untracked file.
        arrays: the requested per-person arrays, restricted to ``rows`` (``joints`` to the 24
            SMPL joints).
    """

    start: int
    rows: np.ndarray
    frame_index: np.ndarray
    track_ids: np.ndarray | None
    arrays: dict[str, np.ndarray]


class MotionSource:
    """An opened results file (use as a context manager)."""

    def __init__(self, path: str | Path, block_rows: int = DEFAULT_BLOCK_ROWS) -> None:
        """Open and validate ``path``.

        Raises:
            FileNotFoundError: no such file.
            MotionExportError: not an ``infer`` results file, or inconsistent arrays.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f'results file not found: {self.path}')
        self.block_rows = int(block_rows)
        self._npz = NpzStream(self.path)
        try:
            self._validate()
        except BaseException:
            self._npz.close()
            raise
        self._valid: np.ndarray | None = None

    def __enter__(self) -> 'MotionSource':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._npz.close()

    # -- layout ------------------------------------------------------------------------------
    def _validate(self) -> None:
        npz = self._npz
        missing = [k for k in REQUIRED_KEYS if k not in npz]
        if missing:
            raise MotionExportError(
                f'{self.path} lacks {missing}: it is not a `romp-ros infer` results file '
                '(export-motion reads what `romp-ros infer --track --out FILE.npz` writes)')
        self.frame_index = npz.load('frame_index').astype(np.int64)
        self.num_people = int(self.frame_index.shape[0])
        self.joint_names = tuple(str(n) for n in npz.load('joint_names'))
        self.image_sizes = npz.load('image_sizes').astype(np.int64).reshape(-1, 2)
        self.intrinsics = npz.load('intrinsics').astype(np.float64).reshape(-1, 4)
        self.num_frames = int(self.image_sizes.shape[0])
        # numpy string arrays, not tuples of str: a few bytes per frame, not ~60
        self.inputs = (npz.load('inputs') if 'inputs' in npz
                       else np.full(self.num_frames, '', dtype='<U1'))
        self.stamps_ns = (npz.load('stamps_ns').astype(np.int64) if 'stamps_ns' in npz
                          else np.full(self.num_frames, -1, np.int64))
        self.track_ids = (npz.load('track_ids').astype(np.int64) if 'track_ids' in npz
                          else None)
        self.track_states = npz.load('track_states') if 'track_states' in npz else None
        self.has_verts = 'verts' in npz
        if self.joint_names[:NUM_SMPL_JOINTS] != SMPL_JOINT_NAMES:
            raise MotionExportError(f'{self.path}: the first 24 joint_names are not the SMPL '
                                    f'joints in order (got {self.joint_names[:4]}...)')
        per_frame = {'intrinsics': self.intrinsics.shape[0], 'inputs': len(self.inputs),
                     'stamps_ns': self.stamps_ns.shape[0]}
        bad = {k: v for k, v in per_frame.items() if v != self.num_frames}
        if bad:
            raise MotionExportError(f'{self.path}: per-frame arrays disagree on the frame '
                                    f'count ({self.num_frames} image_sizes, {bad})')
        expected = {'smpl_thetas': (72,), 'cam_trans': (3,),
                    'joints': (len(self.joint_names), 3)}
        for key in ('smpl_thetas', 'smpl_betas', 'cam_trans', 'joints', 'verts', 'track_ids',
                    'center_confs'):
            if key not in npz:
                continue
            info = npz.info(key)
            if not info.shape or info.shape[0] != self.num_people:
                raise MotionExportError(
                    f'{self.path}: {key} has {info.shape[:1]} rows, frame_index has '
                    f'{self.num_people}: the file is inconsistent (write it again)')
            if key in expected and info.shape[1:] != expected[key]:
                raise MotionExportError(f'{self.path}: {key} has shape {info.shape}, expected '
                                        f'(N, {", ".join(map(str, expected[key]))})')
        betas = npz.info('smpl_betas').shape
        if len(betas) != 2 or betas[1] not in (10, 11):
            raise MotionExportError(f'{self.path}: smpl_betas has shape {betas}, expected '
                                    '(N, 10) for ROMP or (N, 11) for BEV')
        self.num_betas = int(betas[1])
        if self.num_people and (np.any(np.diff(self.frame_index) < 0)
                                or self.frame_index.min() < 0
                                or self.frame_index.max() >= self.num_frames):
            raise MotionExportError(f'{self.path}: frame_index is not ascending within '
                                    f'[0, {self.num_frames}): the file is not in infer order')

    @property
    def has_tracks(self) -> bool:
        """Whether the file was written with ``--track``."""
        return self.track_ids is not None

    def has_array(self, key: str) -> bool:
        """Whether the file holds array ``key``."""
        return key in self._npz

    def require_tracks(self, fmt: str) -> np.ndarray:
        """The track ids; MotionExportError naming the fix for an untracked file."""
        if self.track_ids is None:
            raise MotionExportError(
                f'{self.path} has no track_ids, and {fmt} export follows people over time: '
                'run `romp-ros infer --track ...` to write a tracked results file')
        return self.track_ids

    # -- time --------------------------------------------------------------------------------
    def frame_times(self, fps: float | None) -> np.ndarray:
        """(F,) seconds of each frame from the first: stamps when usable, else index / fps.

        Stamps are used when ``fps`` is None and every frame has one, strictly increasing
        (one bag or one video); otherwise frames are spaced ``1 / fps`` (default 30) apart.
        """
        stamps = self.stamps_ns
        if fps is None and self.num_frames and stamps.min() >= 0 and (
                self.num_frames == 1 or np.all(np.diff(stamps) > 0)):
            return (stamps - stamps[0]).astype(np.float64) * 1e-9
        return np.arange(self.num_frames, dtype=np.float64) / (fps or self.frame_rate())

    def frame_rate(self) -> float:
        """Frames per second from the median stamp step, else ``DEFAULT_FPS``."""
        stamps = self.stamps_ns
        if self.num_frames > 1 and stamps.min() >= 0:
            steps = np.diff(stamps)
            steps = steps[steps > 0]
            if steps.size:
                return float(1e9 / np.median(steps))
        return DEFAULT_FPS

    # -- people ------------------------------------------------------------------------------
    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: people whose pose, shape, translation and SMPL joints are finite."""
        if self._valid is None:
            parts = []
            for block in self._raw_blocks(_CHECKED):
                ok = np.ones(block['smpl_thetas'].shape[0], bool)
                for key in _CHECKED:
                    values = block[key].reshape(ok.shape[0], -1)
                    ok &= np.isfinite(values).all(axis=1)
                parts.append(ok)
            self._valid = np.concatenate(parts) if parts else np.zeros(0, bool)
            dropped = int((~self._valid).sum())
            if dropped:
                LOG.warning('%s: %d of %d detection(s) hold NaN/inf pose, shape, translation '
                            'or joints and are left out of the export', self.path, dropped,
                            self.num_people)
        return self._valid

    @property
    def invalid_rows(self) -> int:
        """People left out because of non-finite values."""
        return int((~self.valid).sum())

    def blocks(self, keys: Sequence[str]) -> Iterator[Block]:
        """The valid people in blocks of ``block_rows`` rows, with the arrays ``keys``."""
        valid = self.valid
        for key in keys:
            if key not in self._npz:
                raise MotionExportError(f'{self.path} has no {key!r} array')
        start = 0
        for raw in self._raw_blocks(keys):
            count = next(iter(raw.values())).shape[0] if raw else 0
            keep = np.flatnonzero(valid[start:start + count])
            rows = start + keep
            arrays = {k: np.asarray(v[keep]) for k, v in raw.items()}
            if 'joints' in arrays:
                arrays['joints'] = arrays['joints'][:, :NUM_SMPL_JOINTS]
            yield Block(start=start, rows=rows, frame_index=self.frame_index[rows],
                        track_ids=None if self.track_ids is None else self.track_ids[rows],
                        arrays=arrays)
            start += count

    def _raw_blocks(self, keys: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
        if not keys or not self.num_people:
            return
        iterators = {k: self._npz.iter_rows(k, self.block_rows) for k in keys}
        while True:
            try:
                yield {k: next(it) for k, it in iterators.items()}
            except StopIteration:
                return
