"""Uploading uint8 frames to a CUDA device through one reused page-locked host buffer.

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
        """Copy each uint8 array to the device, in order, without waiting for the copies.

        Args:
            images: uint8 arrays of any shapes and strides (views are fine).

        Returns:
            one uint8 tensor per image on the device, same shape, contiguous. Work queued on
            the current stream after this call sees the uploaded values.
        """
        sizes = [int(np.asarray(image).nbytes) for image in images]
        total = sum(sizes)
        if self._copies_done is not None:
            self._copies_done.synchronize()  # the last uploads finished reading the buffer
        if total > self.capacity:
            # grow with headroom, so a slowly growing batch does not re-pin every frame
            self._buffer = torch.empty(max(total, 2 * self.capacity), dtype=torch.uint8,
                                       pin_memory=True)
        host = self._buffer.numpy()  # shares the pinned memory
        out, offset = [], 0
        for image, size in zip(images, sizes, strict=True):
            image = np.asarray(image)
            np.copyto(host[offset:offset + size].reshape(image.shape), image)
            staged = self._buffer[offset:offset + size].view(image.shape)
            out.append(staged.to(self.device, non_blocking=True))
            offset += size
        self._copies_done = torch.cuda.Event()
        self._copies_done.record(torch.cuda.current_stream(self.device))
        return out
