"""The binary side of a ``.glb``: buffer views and accessors laid out before any data exists.

A GLB file is a JSON chunk followed by one binary chunk. The JSON names byte ranges of the
binary chunk, so the layout must be known before the file is written; data that streams in
later (animation keys) gets its range now and is filled in place afterwards
(:func:`write_glb_file` returns the binary chunk as a writable memory map).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
import struct

import numpy as np

from romp_ros.export.errors import MotionExportError

GLB_MAGIC = 0x46546C67  # 'glTF'
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # 'JSON'
CHUNK_BIN = 0x004E4942  # 'BIN\0'
MAX_GLB_BYTES = 2 ** 32 - 1  # lengths are uint32
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
COMPONENT_TYPES = {np.dtype(np.uint8): 5121, np.dtype(np.uint16): 5123,
                   np.dtype(np.uint32): 5125, np.dtype(np.float32): 5126}
TYPE_WIDTH = {'SCALAR': 1, 'VEC3': 3, 'VEC4': 4, 'MAT4': 16}


@dataclass
class BinLayout:
    """Buffer views and accessors of one binary chunk, appended in order (4-byte aligned)."""

    views: list[dict] = field(default_factory=list)
    accessors: list[dict] = field(default_factory=list)
    static: list[tuple[int, bytes]] = field(default_factory=list)
    size: int = 0

    def add(self, data: np.ndarray | None, *, kind: str, dtype=np.float32,
            count: int | None = None, target: int | None = None, bounds: bool = False) -> int:
        """Reserve a tightly packed accessor; returns its index.

        Args:
            data: the values, (count, width) or (count,); None to fill later through
                :meth:`offset_of`.
            kind: the glTF accessor type ('SCALAR', 'VEC3', 'VEC4', 'MAT4').
            dtype: component type when ``data`` is None.
            count: element count when ``data`` is None.
            target: the buffer view target (vertex attributes, indices), or None.
            bounds: write min / max (required for positions and animation times).
        """
        width = TYPE_WIDTH[kind]
        if data is not None:
            data = np.ascontiguousarray(data)
            dtype = data.dtype
            count = int(data.shape[0])
        dtype = np.dtype(dtype)
        length = int(count) * width * dtype.itemsize
        view = {'buffer': 0, 'byteOffset': self.size, 'byteLength': length}
        if target is not None:
            view['target'] = target
        self.views.append(view)
        accessor = {'bufferView': len(self.views) - 1, 'componentType': COMPONENT_TYPES[dtype],
                    'count': int(count), 'type': kind}
        if bounds and data is not None and count:
            flat = data.reshape(count, width)
            accessor['min'] = [_number(v) for v in flat.min(axis=0)]
            accessor['max'] = [_number(v) for v in flat.max(axis=0)]
        self.accessors.append(accessor)
        if data is not None:
            self.static.append((self.size, data.tobytes()))
        self.size += (length + 3) // 4 * 4
        return len(self.accessors) - 1

    def set_bounds(self, accessor: int, low, high) -> None:
        """Set min / max of an accessor whose data comes later."""
        self.accessors[accessor]['min'] = [_number(v) for v in np.atleast_1d(low)]
        self.accessors[accessor]['max'] = [_number(v) for v in np.atleast_1d(high)]

    def offset_of(self, accessor: int) -> int:
        """Byte offset of an accessor's data in the binary chunk."""
        return self.views[self.accessors[accessor]['bufferView']]['byteOffset']


def _number(value) -> float | int:
    return int(value) if np.issubdtype(type(value), np.integer) else float(value)


def write_glb_file(path: Path, document: dict, layout: BinLayout) -> np.memmap | None:
    """Write the GLB with the static data in place; returns the binary chunk to fill in.

    The binary chunk is returned as a ``uint8`` memory map (None when it is empty); flush and
    drop it when done. MotionExportError when the file would exceed GLB's 4 GiB limit.
    """
    if layout.size:
        document = {**document, 'buffers': [{'byteLength': layout.size}],
                    'bufferViews': layout.views, 'accessors': layout.accessors}
    text = json.dumps(document, separators=(',', ':')).encode('utf-8')
    text += b' ' * (-len(text) % 4)
    total = 12 + 8 + len(text) + (8 + layout.size if layout.size else 0)
    if total > MAX_GLB_BYTES:
        raise MotionExportError(f'the .glb would be {total / 2 ** 30:.1f} GiB, more than the '
                                'format allows (4 GiB): export fewer tracks (--track ID) or '
                                'use --format bvh')
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(struct.pack('<III', GLB_MAGIC, GLB_VERSION, total))
        handle.write(struct.pack('<II', len(text), CHUNK_JSON))
        handle.write(text)
        if not layout.size:
            return None
        handle.write(struct.pack('<II', layout.size, CHUNK_BIN))
        start = handle.tell()
        handle.truncate(start + layout.size)  # zeros: padding and the ranges filled later
        for offset, data in layout.static:
            handle.seek(start + offset)
            handle.write(data)
    return np.memmap(path, dtype=np.uint8, mode='r+', offset=start, shape=(layout.size,))
