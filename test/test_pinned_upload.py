"""Frames reach a CUDA device through one reused page-locked buffer (core/pinned_upload.py).

The upload itself needs a CUDA device: those tests run where one is present (a GPU machine;
CI has none, so there they are skipped, and docs/performance.md says the path is unmeasured).
What runs everywhere: the refusal of other devices, and the torch preprocessing path that the
uploads feed, on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from romp_ros.core.pinned_upload import PinnedUploader, pack_into, packed_size
from romp_ros.core.preprocess import prepare_batch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _frames(seed=0):
    rng = np.random.default_rng(seed)
    wide = rng.integers(0, 256, (120, 200, 3), np.uint8)
    tall = rng.integers(0, 256, (90, 40, 3), np.uint8)
    grey = rng.integers(0, 256, (64, 64, 1), np.uint8)
    view = rng.integers(0, 256, (100, 100, 3), np.uint8)[10:70:2, ::-1]  # strided view
    return [wide, tall, grey, view]


def test_only_cuda_devices_get_a_pinned_uploader():
    with pytest.raises(ValueError, match='for CUDA devices, not cpu'):
        PinnedUploader(torch.device('cpu'))


def test_packing_keeps_every_array_with_its_dtype_and_alignment():
    """What the pinned buffer holds: arrays of mixed dtypes, each 16-byte aligned."""
    arrays = [np.arange(7, dtype=np.uint8), np.random.default_rng(0).random((3, 4), np.float32),
              np.random.default_rng(1).random((6, 3))[::2], np.array([True, False, True])]
    size = packed_size(arrays)
    assert size == 16 + 48 + 80 + 3  # 7 -> 16, 48 -> 48, 72 -> 80, then 3 bytes
    buffer = torch.zeros(size + 5, dtype=torch.uint8)
    views = pack_into(buffer, arrays)
    for array, view in zip(arrays, views, strict=True):
        assert view.dtype == torch.from_numpy(np.ascontiguousarray(array)).dtype
        assert view.data_ptr() % 16 == buffer.data_ptr() % 16
        np.testing.assert_array_equal(view.numpy(), array)
    arrays[1][0, 0] = 5.0  # views share the buffer, not the arrays
    assert float(views[1][0, 0]) != 5.0


def test_host_image_sizes_need_no_device_read():
    batch = prepare_batch(_frames(), device='cpu', input_size=128, resize_backend='torch')
    assert batch.image_sizes == ((120, 200), (90, 40), (64, 64), (30, 100))
    assert batch.pad_info[:, 4:6].tolist() == [list(s) for s in batch.image_sizes]


@needs_cuda
def test_uploads_equal_the_frames_and_survive_buffer_reuse():
    device = torch.device('cuda:0')
    uploader = PinnedUploader(device)
    first = _frames(0)
    got_first = uploader.upload(first)
    capacity = uploader.capacity
    second = _frames(1)  # the buffer is rewritten: the first uploads must be unaffected
    got_second = uploader.upload(second)
    torch.cuda.synchronize()
    for want, got in [*zip(first, got_first, strict=True),
                      *zip(second, got_second, strict=True)]:
        assert got.device == device and got.dtype == torch.uint8
        np.testing.assert_array_equal(got.cpu().numpy(), want)
    assert uploader.capacity == capacity  # same sizes: no new allocation
    big = [np.zeros((capacity + 1, 1, 1), np.uint8)]
    uploader.upload(big)
    assert uploader.capacity >= capacity + 1


@needs_cuda
def test_pinned_batches_equal_pageable_ones():
    device = torch.device('cuda:0')
    plain = prepare_batch(_frames(), device=device, input_size=128)
    pinned = prepare_batch(_frames(), device=device, input_size=128,
                           uploader=PinnedUploader(device))
    torch.testing.assert_close(pinned.tensor, plain.tensor, atol=0, rtol=0)
