"""Uploading frames (and small tables) to a CUDA device through one reused page-locked buffer.

A copy from ordinary (pageable) memory to the GPU is synchronous: the driver stages it
through its own pinned buffer, and the CPU waits. Copying the frames into a page-locked buffer
first lets the upload run as DMA, asynchronously on the current stream, while the CPU goes on
decoding the next message; the buffer is allocated once and grows to the largest batch seen.

The buffer is reused by the next call, so before overwriting it the previous uploads must have
finished reading it: each call records a CUDA event after its copies and the next call waits
for that event (normally long done: the network ran in between).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

_ALIGN = 16  # bytes: a multiple of every element size


class PinnedUploader:
    """Uploads batches of host images to one CUDA device via a reused pinned buffer."""

    def __init__(self, device: torch.device) -> None:
        """Nothing is allocated until the first upload.

        Raises:
            ValueError: ``device`` is not a CUDA device (pinned memory needs one).
        """
        device = torch.device(device)
        if device.type != 'cuda':
            raise ValueError(f'pinned uploads are for CUDA devices, not {device}')
        self.device = device
        self._buffer: torch.Tensor | None = None  # (capacity,) uint8, page-locked
        self._copies_done: torch.cuda.Event | None = None

    @property
    def capacity(self) -> int:
        """Bytes of the pinned buffer (0 before the first upload)."""
        return 0 if self._buffer is None else int(self._buffer.numel())

    def upload(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Copy each array to the device, in order, without waiting for the copies.

        Args:
            images: arrays of any shapes, strides and numeric dtypes (views are fine): the
                frames as uint8, or small tables of numbers.

        Returns:
            one tensor per array on the device, same shape and dtype, contiguous. Work queued
            on the current stream after this call sees the uploaded values.
        """
        arrays = [np.asarray(image) for image in images]
        total = packed_size(arrays)
        if self._copies_done is not None:
            self._copies_done.synchronize()  # the last uploads finished reading the buffer
        if total > self.capacity:
            # grow with headroom, so a slowly growing batch does not re-pin every frame
            self._buffer = torch.empty(max(total, 2 * self.capacity), dtype=torch.uint8,
                                       pin_memory=True)
        out = [staged.to(self.device, non_blocking=True)
               for staged in pack_into(self._buffer, arrays)]
        self._copies_done = torch.cuda.Event()
        self._copies_done.record(torch.cuda.current_stream(self.device))
        return out


def packed_size(arrays: Sequence[np.ndarray]) -> int:
    """Bytes :func:`pack_into` needs for these arrays (each starts 16-byte aligned)."""
    total = 0
    for array in arrays:
        total = _aligned(total) + int(np.asarray(array).nbytes)
    return total


def pack_into(buffer: torch.Tensor, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Copy arrays one after another into a uint8 host buffer; return typed views of them.

    Args:
        buffer: (capacity,) uint8 CPU tensor of at least :func:`packed_size` bytes.
        arrays: numeric arrays of any shapes and strides.

    Returns:
        per array, a contiguous tensor of its shape and dtype viewing ``buffer``.
    """
    host = buffer.numpy()  # shares the tensor's memory
    views, offset = [], 0
    for array in arrays:
        array = np.asarray(array)
        offset = _aligned(offset)
        end = offset + int(array.nbytes)
        np.copyto(host[offset:end].view(array.dtype).reshape(array.shape), array)
        dtype = torch.from_numpy(np.empty(0, array.dtype)).dtype  # torch's name for it
        views.append(buffer[offset:end].view(dtype).view(array.shape))
        offset = end
    return views


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN
