"""Read the arrays of an ``.npz`` a block of rows at a time, never the whole array at once.

``numpy.load`` reads a member completely; an ``infer`` file of a long video holds gigabytes
of vertices. An ``.npz`` is a zip of ``.npy`` members, and a C-ordered ``.npy`` is its
header followed by the rows in order, so a member can be streamed: parse the header, then
read ``rows x row_bytes`` at a time (through the zip decompressor for ``savez_compressed``
files). Object arrays are refused (no pickle is ever loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Iterator
import zipfile

import numpy as np

from romp_ros.export.errors import MotionExportError


@dataclass(frozen=True)
class MemberInfo:
    """Shape and dtype of one ``.npy`` member.

    Attributes:
        shape: the array's shape.
        dtype: its dtype (never object).
        fortran_order: True for a column-major member (read whole, it cannot be streamed).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (one index of the first axis)."""
        return int(self.dtype.itemsize * math.prod(self.shape[1:]))


class NpzStream:
    """An open ``.npz``: member headers, whole small arrays, and row blocks of large ones.

    Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, path: str | Path) -> None:
        """Open ``path``; MotionExportError when it is not a readable ``.npz``."""
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, OSError) as err:
            raise MotionExportError(f'{self.path} is not a readable .npz file ({err}); pass '
                                    'the file written by `romp-ros infer --out`') from err
        self._members = {name[:-4]: name for name in self._zip.namelist()
                         if name.endswith('.npy')}
        self._infos: dict[str, MemberInfo] = {}

    def __enter__(self) -> 'NpzStream':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._zip.close()

    def keys(self) -> tuple[str, ...]:
        """Names of the arrays."""
        return tuple(self._members)

    def __contains__(self, key: str) -> bool:
        return key in self._members

    def info(self, key: str) -> MemberInfo:
        """Header of array ``key`` (KeyError when absent)."""
        if key not in self._infos:
            with self._zip.open(self._members[key]) as handle:
                self._infos[key] = self._read_header(key, handle)
        return self._infos[key]

    def load(self, key: str) -> np.ndarray:
        """The whole array ``key`` (for the small per-frame and per-person index arrays)."""
        info = self.info(key)
        with self._zip.open(self._members[key]) as handle:
            self._read_header(key, handle)
            count = math.prod(info.shape)
            data = _read_exactly(handle, count * info.dtype.itemsize, self.path, key)
        order = 'F' if info.fortran_order else 'C'
        return np.frombuffer(data, dtype=info.dtype, count=count).reshape(info.shape,
                                                                          order=order)

    def iter_rows(self, key: str, block_rows: int) -> Iterator[np.ndarray]:
        """Blocks of at most ``block_rows`` consecutive rows of ``key``, first to last."""
        if block_rows < 1:
            raise ValueError(f'block_rows must be >= 1, got {block_rows}')
        info = self.info(key)
        if info.fortran_order or not info.shape:
            yield self.load(key)
            return
        total = info.shape[0]
        with self._zip.open(self._members[key]) as handle:
            self._read_header(key, handle)
            for start in range(0, total, block_rows):
                rows = min(block_rows, total - start)
                data = _read_exactly(handle, rows * info.row_bytes, self.path, key)
                yield np.frombuffer(data, dtype=info.dtype).reshape((rows, *info.shape[1:]))

    def _read_header(self, key: str, handle) -> MemberInfo:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        except ValueError as err:
            raise MotionExportError(f'{self.path}: array {key!r} is not a valid .npy member '
                                    f'({err})') from err
        if dtype.hasobject:
            raise MotionExportError(f'{self.path}: array {key!r} holds Python objects; '
                                    'refusing to unpickle it (infer files hold plain arrays)')
        return MemberInfo(tuple(int(s) for s in shape), dtype, bool(fortran))


def _read_exactly(handle, size: int, path: Path, key: str) -> bytes:
    """``size`` bytes from ``handle``; a truncated member is a clear error."""
    parts = []
    remaining = size
    while remaining > 0:
        chunk = handle.read(remaining)
        if not chunk:
            raise MotionExportError(f'{path}: array {key!r} is truncated (the file was cut '
                                    'short; write it again)')
        parts.append(chunk)
        remaining -= len(chunk)
    return b''.join(parts)
