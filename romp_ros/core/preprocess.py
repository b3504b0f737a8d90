"""Batched, on-device image preprocessing into the networks' 512 x 512 input.

Reproduces the reference (simple-romp ``img_preprocess``) for every image of a batch:

1. channel order to RGB;
2. zero padding to a centred square of side L = max(h, w), the image at rows
   [top, top + h) and columns [left, left + w), top = (L - h) // 2, left = (L - w) // 2;
3. bicubic resize of the square to ``input_size`` (cv2 INTER_CUBIC on uint8: a = -0.75,
   half-pixel centres, replicated border, no antialiasing, rounded and saturated to 0..255);
4. float32, channels last: (B, 512, 512, 3) holding 0..255.

Step 3 has two interchangeable backends (``resize_backend``):

* 'torch' - ``torch.nn.functional.interpolate(mode='bicubic', align_corners=False,
  antialias=False)`` on the device, the same kernel and sampling as OpenCV, then round +
  clamp. Measured against cv2.resize (docs/geometry.md): at most 1 grey level on a few
  pixels per million. Images are uploaded as uint8 (a third of float32 traffic) and squares
  of the same side are resized in one call.
* 'cv2' - cv2.resize itself on the host: bit-exact with the reference and ~9x faster than
  torch's CPU kernels on 720p frames, but CPU only.

'auto' (the default) picks 'cv2' for the CPU device when OpenCV is importable, else 'torch'.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from romp_ros.core.pinned_upload import PinnedUploader

DEFAULT_INPUT_SIZE = 512
# Longest accepted image side. The padded square is held as float32 on the device
# (L^2 * 12 bytes: 805 MB at 8192), and the network only sees 512 pixels: a 16x downscale
# without antialiasing already aliases badly, so larger inputs are a caller mistake
# (e.g. a wrongly decoded buffer) rather than something to support.
MAX_IMAGE_SIDE = 8192
COLOR_ORDERS = ('rgb', 'bgr')
RESIZE_BACKENDS = ('auto', 'torch', 'cv2')


class ImageInputError(ValueError):
    """An image the preprocessing cannot accept; the message says which and why."""


@dataclass(frozen=True)
class PreparedBatch:
    """Network-ready images and how to map back to the originals (all on the device).

    Attributes:
        tensor: (B, S, S, 3) float32, RGB, values 0..255 (integers), channels last; S is the
            input size (512).
        pad_info: (B, 6) float32 [top, bottom, left, right, h, w] in original pixels:
            the image occupies rows [top, bottom) and columns [left, right) of the padded
            square of side max(h, w); bottom = top + h and right = left + w.
        scale: (B,) float32 network pixels per original pixel, S / max(h, w).
        image_sizes: B (h, w) pairs on the host (reading them needs no device sync).
    """

    tensor: torch.Tensor
    pad_info: torch.Tensor
    scale: torch.Tensor
    image_sizes: tuple[tuple[int, int], ...] = ()

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.tensor.shape[0])


def prepare_batch(images: Sequence[np.ndarray], color_order: str = 'rgb',
                  device: torch.device | str = 'cpu',
                  input_size: int = DEFAULT_INPUT_SIZE,
                  resize_backend: str = 'auto',
                  uploader: PinnedUploader | None = None) -> PreparedBatch:
    """Pad, resize and stack images of any sizes into the network input.

    Args:
        images: B arrays, uint8, each H x W x 3, H x W x 1 or H x W (grey levels are
            replicated into the three channels), 1 <= H, W <= 8192.
        color_order: channel order of the 3-channel images: 'rgb' or 'bgr'.
        device: where the work happens and the results live.
        input_size: side of the square network input.
        resize_backend: 'auto', 'torch' or 'cv2' (see the module docstring).
        uploader: with the torch backend on a CUDA device, upload the frames through this
            reused pinned buffer (asynchronous copies) instead of from pageable memory.

    Returns:
        :class:`PreparedBatch`.

    Raises:
        ImageInputError: empty batch, wrong dtype / shape / size, unknown option.
    """
    if resize_backend not in RESIZE_BACKENDS:
        raise ImageInputError(
            f'resize_backend={resize_backend!r}; expected one of {RESIZE_BACKENDS}')
    if color_order not in COLOR_ORDERS:
        raise ImageInputError(f'color_order={color_order!r}; expected one of {COLOR_ORDERS}')
    if input_size < 1:
        raise ImageInputError(f'input_size={input_size} must be positive')
    checked = check_images(images)
    device = torch.device(device)
    pad_rows = []
    for image in checked:
        height, width = image.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        pad_rows.append((top, top + height, left, left + width, height, width))
    cv2 = _cv2_for(resize_backend, device)
    if cv2 is not None:
        tensor = _resize_cv2(cv2, checked, pad_rows, color_order, input_size).to(device)
    else:
        tensor = _resize_torch(checked, pad_rows, color_order, input_size, device, uploader)
    pad_info = torch.tensor(pad_rows, dtype=torch.float32, device=device)  # (B, 6)
    sides = torch.maximum(pad_info[:, 4], pad_info[:, 5])
    scale = input_size / sides  # (B,)
    return PreparedBatch(tensor=tensor, pad_info=pad_info, scale=scale,
                         image_sizes=tuple((row[4], row[5]) for row in pad_rows))


def _cv2_for(resize_backend: str, device: torch.device):
    """The cv2 module when it should do the resizing, else None."""
    if resize_backend == 'torch' or (resize_backend == 'auto' and device.type != 'cpu'):
        return None
    try:
        return importlib.import_module('cv2')
    except ImportError as err:
        if resize_backend == 'cv2':
            raise ImageInputError('resize_backend=cv2 needs OpenCV (python3-opencv)') from err
        return None


def _resize_torch(images: list[np.ndarray], pad_rows: list[tuple[int, ...]], color_order: str,
                  input_size: int, device: torch.device,
                  uploader: PinnedUploader | None = None) -> torch.Tensor:
    """(B, S, S, 3) float32 RGB via torch bicubic on ``device``."""
    # uint8 on the device: a third of float32's traffic, converted there
    if uploader is not None and uploader.device == device:
        uploaded = uploader.upload(images)
    else:
        uploaded = [_to_device(image, device) for image in images]
    out = torch.empty(len(images), 3, input_size, input_size, dtype=torch.float32,
                      device=device)
    # Images with the same padded side share one resize call.
    by_side: dict[int, list[int]] = {}
    for index, row in enumerate(pad_rows):
        by_side.setdefault(max(row[4], row[5]), []).append(index)
    for side, members in by_side.items():
        square = torch.zeros(len(members), 3, side, side, dtype=torch.float32, device=device)
        for slot, index in enumerate(members):
            top, bottom, left, right = pad_rows[index][:4]
            square[slot, :, top:bottom, left:right] = _rgb_planes(uploaded[index], color_order)
        resized = F.interpolate(square, size=(input_size, input_size), mode='bicubic',
                                align_corners=False, antialias=False)
        # cv2 works on uint8: round to nearest and saturate (overshoot of the cubic kernel).
        out[torch.as_tensor(members, device=device)] = resized.round_().clamp_(0.0, 255.0)
    return out.permute(0, 2, 3, 1).contiguous()


def _resize_cv2(cv2, images: list[np.ndarray], pad_rows: list[tuple[int, ...]],
                color_order: str, input_size: int) -> torch.Tensor:
    """(B, S, S, 3) float32 RGB on the host via cv2.resize (the reference's own call)."""
    out = np.empty((len(images), input_size, input_size, 3), dtype=np.uint8)
    for index, (image, row) in enumerate(zip(images, pad_rows, strict=True)):
        top, bottom, left, right, height, width = row
        side = max(height, width)
        if image.shape[2] == 1:
            # Replicate before resizing: cv2's 1-channel kernel rounds differently.
            image = np.repeat(image, 3, axis=2)
        # cv2 needs a positive-stride layout (e.g. not image[..., ::-1]).
        square = cv2.copyMakeBorder(np.ascontiguousarray(image), top, side - bottom, left,
                                    side - right, cv2.BORDER_CONSTANT, value=0)
        resized = cv2.resize(square, (input_size, input_size), interpolation=cv2.INTER_CUBIC)
        # Channels are resized independently, so reordering the small result is exact.
        out[index] = resized[:, :, ::-1] if color_order == 'bgr' else resized
    return torch.from_numpy(out).float()


def check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate a batch as :func:`prepare_batch` does; return each image as H x W x C uint8.

    Raises:
        ImageInputError: not a list, empty, or an image of the wrong dtype / shape / size.
    """
    if isinstance(images, np.ndarray):
        raise ImageInputError('pass a list of images, not a single array '
                              '(wrap one image as [image])')
    if len(images) == 0:
        raise ImageInputError('the batch is empty: at least one image is needed')
    return [_check_image(index, image) for index, image in enumerate(images)]


def _check_image(index: int, image: object) -> np.ndarray:
    """Validate one image and return it as H x W x C (C = 1 or 3), uint8."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f'image {index}: expected a numpy array, got '
                              f'{type(image).__name__}')
    if image.dtype != np.uint8:
        raise ImageInputError(f'image {index}: dtype {image.dtype}, expected uint8 '
                              '(convert 16-bit or float images to 8-bit first)')
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ImageInputError(f'image {index}: shape {image.shape}; expected H x W x 3, '
                              'H x W x 1 or H x W')
    height, width, channels = image.shape
    if channels not in (1, 3):
        hint = ' (drop the alpha channel first)' if channels == 4 else ''
        raise ImageInputError(f'image {index}: {channels} channels; expected 3 (or 1 for '
                              f'grey){hint}')
    if height == 0 or width == 0:
        raise ImageInputError(f'image {index}: empty image of shape {image.shape}')
    if max(height, width) > MAX_IMAGE_SIDE:
        raise ImageInputError(
            f'image {index}: {width}x{height} exceeds the {MAX_IMAGE_SIDE}-pixel limit per '
            'side (the network sees 512 pixels; downscale it first)')
    return image


def _to_device(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """The H x W x C uint8 array on ``device`` (synchronous copy from pageable memory)."""
    # Non-contiguous views (e.g. a cropped image) and read-only buffers (torch cannot wrap
    # those) are copied once on the host.
    host = np.ascontiguousarray(image)
    if not host.flags.writeable:
        host = host.copy()
    return torch.from_numpy(host).to(device)


def _rgb_planes(pixels: torch.Tensor, color_order: str) -> torch.Tensor:
    """(3, h, w) float32 RGB from an (h, w, C) uint8 tensor, on its device."""
    pixels = pixels.permute(2, 0, 1)  # (C, h, w)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    elif color_order == 'bgr':
        pixels = pixels.flip(0)
    return pixels.float()
