"""Image preprocessing: agreement with the reference (cv2) and input validation."""

from __future__ import annotations

import numpy as np
import pytest
from reference_oracle import reference_module
import torch

from romp_ros.core.preprocess import MAX_IMAGE_SIDE, ImageInputError, prepare_batch


def _photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth shading, hard-edged shapes, a checkerboard and sensor noise (uint8, HxWx3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[..., 0] = 128 + 100 * np.sin(x / width * 7) * np.cos(y / height * 5)
    img[..., 1] = 255 * x / max(width - 1, 1)
    img[..., 2] = ((x // 37 + y // 23) % 2) * 200
    for _ in range(20):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(2, max(height, width) / 8)
        img[(y - cy) ** 2 + (x - cx) ** 2 < radius ** 2] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# (height, width): upscaling (32x32), downscaling, landscape and portrait.
SIZES = [(32, 32), (480, 640), (720, 1280), (1080, 1920), (1280, 720)]


@pytest.mark.oracle
@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('backend', ['torch', 'cv2'])
def test_prepare_batch_matches_reference_img_preprocess(size, backend):
    utils = reference_module('romp.utils')
    image_bgr = _photo_like(*size, seed=size[0])
    ref_input, ref_pad = utils.img_preprocess(image_bgr.copy())  # the reference reads BGR
    batch = prepare_batch([image_bgr], color_order='bgr', resize_backend=backend)
    assert batch.tensor.shape == (1, 512, 512, 3) and batch.tensor.dtype == torch.float32
    diff = (batch.tensor - ref_input).abs()
    if backend == 'cv2':
        assert diff.max().item() == 0.0
    else:
        # Measured: at most 1 grey level on a handful of pixels (float rounding at .5).
        assert diff.max().item() <= 1.0
        assert diff.mean().item() < 1e-3
    assert torch.equal(batch.pad_info[0], ref_pad)
    assert batch.scale.item() == pytest.approx(512 / max(size))


@pytest.mark.parametrize('backend', ['torch', 'cv2'])
def test_color_order_and_mixed_size_batches(backend):
    images = [_photo_like(480, 640, 1), _photo_like(720, 1280, 2), _photo_like(640, 480, 3)]
    together = prepare_batch(images, color_order='rgb', resize_backend=backend)
    assert together.tensor.shape == (3, 512, 512, 3)
    for index, image in enumerate(images):
        alone = prepare_batch([image], color_order='rgb', resize_backend=backend)
        assert torch.equal(together.tensor[index], alone.tensor[0])
        assert torch.equal(together.pad_info[index], alone.pad_info[0])
        as_bgr = prepare_batch([image[..., ::-1]], color_order='bgr', resize_backend=backend)
        assert torch.equal(as_bgr.tensor[0], alone.tensor[0])
    # 640x480 landscape and 480x640 portrait share a 640 square but differ in padding.
    assert together.pad_info[0].tolist() == [80, 560, 0, 640, 480, 640]
    assert together.pad_info[2].tolist() == [0, 640, 80, 560, 640, 480]
    # Values are integers in 0..255 (rounded and saturated like cv2 on uint8).
    values = together.tensor
    assert torch.equal(values, values.round()) and values.min() >= 0 and values.max() <= 255


@pytest.mark.parametrize('backend', ['torch', 'cv2'])
def test_padding_is_black_and_image_is_centred(backend):
    image = np.full((100, 400, 3), 200, np.uint8)
    # Square of 400, the image on rows 150..250.
    out = prepare_batch([image], resize_backend=backend).tensor[0]
    assert out[:150 * 512 // 400 - 3].abs().max() == 0  # top padding
    assert out[256, :, :].min() == 200  # image centre row
    assert out[-(150 * 512 // 400 - 3):].abs().max() == 0  # bottom padding


@pytest.mark.parametrize('backend', ['torch', 'cv2'])
def test_grey_images_are_replicated_to_three_channels(backend):
    grey = _photo_like(120, 90, 4)[..., 0]
    rgb = np.repeat(grey[..., None], 3, axis=2)
    expected = prepare_batch([rgb], resize_backend=backend).tensor
    assert torch.equal(prepare_batch([grey], resize_backend=backend).tensor, expected)
    assert torch.equal(prepare_batch([grey[..., None]], color_order='bgr',
                                     resize_backend=backend).tensor, expected)


@pytest.mark.parametrize('backend', ['torch', 'cv2'])
def test_read_only_and_non_contiguous_inputs_are_accepted(backend):
    image = _photo_like(60, 80, 5)
    expected = prepare_batch([image], resize_backend=backend).tensor
    frozen = image.copy()
    frozen.flags.writeable = False
    assert torch.equal(prepare_batch([frozen], resize_backend=backend).tensor, expected)
    padded = np.zeros((60, 100, 3), np.uint8)
    padded[:, 10:90] = image
    assert torch.equal(prepare_batch([padded[:, 10:90]], resize_backend=backend).tensor,
                       expected)


def test_backends_agree_and_auto_uses_cv2_on_cpu():
    images = [_photo_like(300, 500, 6), _photo_like(33, 17, 7)]
    auto = prepare_batch(images)
    exact = prepare_batch(images, resize_backend='cv2')
    on_device = prepare_batch(images, resize_backend='torch')
    assert torch.equal(auto.tensor, exact.tensor)
    assert (on_device.tensor - exact.tensor).abs().max() <= 1.0
    with pytest.raises(ImageInputError, match='resize_backend'):
        prepare_batch(images, resize_backend='pil')


@pytest.mark.parametrize('bad,match', [
    ([], 'empty'),
    ([np.zeros((10, 10, 3), np.float32)], 'uint8'),
    ([np.zeros((10, 10, 4), np.uint8)], 'alpha'),
    ([np.zeros((10, 10, 2), np.uint8)], 'channels'),
    ([np.zeros((2, 10, 10, 3), np.uint8)], 'shape'),
    ([np.zeros((0, 10, 3), np.uint8)], 'empty image'),
    ([np.zeros((10, 10, 3), np.uint8), 'frame.png'], 'numpy array'),
    ([np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (2, MAX_IMAGE_SIDE + 1, 3))], 'limit'),
])
def test_invalid_images_raise_clear_errors(bad, match):
    with pytest.raises(ImageInputError, match=match):
        prepare_batch(bad)


def test_invalid_options_raise():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ImageInputError, match='color_order'):
        prepare_batch([image], color_order='yuv')
    with pytest.raises(ImageInputError, match='list'):
        prepare_batch(image)


def test_other_input_sizes_and_scale():
    batch = prepare_batch([_photo_like(300, 200, 6)], input_size=256)
    assert batch.tensor.shape == (1, 256, 256, 3)
    assert batch.scale.tolist() == pytest.approx([256 / 300])
