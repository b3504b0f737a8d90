"""Decode ROS image buffers (sensor_msgs/Image, CompressedImage) into numpy, without ROS.

Works on rclpy messages and on rosbags' message objects alike (same field names), so the node
and the offline tools share one decoder. ``cv_bridge`` is deliberately not used: it is not
available everywhere and costs a copy.

Encodings (names as in ``sensor_msgs/image_encodings.hpp``):

* ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``: copied (alpha dropped, grey tripled);
* ``rgb16``, ``bgr16``, ``rgba16``, ``bgra16``, ``mono16``: the same after value / 256;
* ``yuv422`` (= ``uyvy``, U Y0 V Y1) and ``yuv422_yuy2`` (= ``yuyv``, Y0 U Y1 V, usb_cam's
  default): OpenCV, BT.601 video range, even widths only;
* ``bayer_rggb8``, ``bayer_bggr8``, ``bayer_gbrg8``, ``bayer_grbg8`` and their 16-bit
  variants: OpenCV's bilinear demosaic (16 bit: at full precision, then value / 256).

16-bit values are scaled by 1/256 (the full 16-bit range maps to 8 bit, as cv_bridge does);
``is_bigendian`` is honoured for them. Depth encodings (``16UC1``, ``32FC1``) are refused with
their own message: a depth image is not a camera image the networks can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

# Images beyond this many pixels per side are refused: the network sees 512 px anyway and a
# corrupt header claiming e.g. 100000 x 100000 must not allocate tens of gigabytes.
MAX_IMAGE_SIDE = 16384


@dataclass(frozen=True)
class _Layout:
    """How one encoding is laid out and converted.

    Attributes:
        channels: values per pixel in the buffer (2 for packed YUV 4:2:2).
        bits: 8 or 16 bits per value.
        convert: 'copy' (3 colour channels), 'drop_alpha', 'grey', or the name of an OpenCV
            colour-conversion code giving RGB.
        color_order: channel order of the decoded image ('rgb' or 'bgr').
        even_width: the layout packs pixel pairs (YUV 4:2:2).
    """

    channels: int
    bits: int
    convert: str
    color_order: str = 'rgb'
    even_width: bool = False


def _layouts() -> dict[str, _Layout]:
    table = {
        'rgb8': _Layout(3, 8, 'copy'), 'bgr8': _Layout(3, 8, 'copy', 'bgr'),
        'rgba8': _Layout(4, 8, 'drop_alpha'), 'bgra8': _Layout(4, 8, 'drop_alpha', 'bgr'),
        'rgb16': _Layout(3, 16, 'copy'), 'bgr16': _Layout(3, 16, 'copy', 'bgr'),
        'rgba16': _Layout(4, 16, 'drop_alpha'), 'bgra16': _Layout(4, 16, 'drop_alpha', 'bgr'),
        'mono8': _Layout(1, 8, 'grey'), 'mono16': _Layout(1, 16, 'grey'),
    }
    # 'yuv422' is UYVY in ROS (and 'uyvy' its newer name); 'yuv422_yuy2' / 'yuyv' is YUYV.
    for name in ('yuv422', 'uyvy'):
        table[name] = _Layout(2, 8, 'COLOR_YUV2RGB_UYVY', even_width=True)
    for name in ('yuv422_yuy2', 'yuyv'):
        table[name] = _Layout(2, 8, 'COLOR_YUV2RGB_YUY2', even_width=True)
    # OpenCV names a Bayer pattern by the second row's second and third pixels, so ROS's
    # rggb (R at the top-left) is OpenCV's BG; the test paints each mosaic itself to prove it.
    for pattern, code in (('rggb', 'BG'), ('bggr', 'RG'), ('gbrg', 'GR'), ('grbg', 'GB')):
        for bits in (8, 16):
            table[f'bayer_{pattern}{bits}'] = _Layout(1, bits, f'COLOR_Bayer{code}2RGB')
    return table


_LAYOUTS = MappingProxyType(_layouts())
# encoding -> the colour order of the decoded 3-channel image
SUPPORTED_ENCODINGS = MappingProxyType({name: lay.color_order for name, lay in _LAYOUTS.items()})
DEPTH_ENCODINGS = frozenset({'16uc1', '32fc1'})


class ImageDecodeError(ValueError):
    """A message that cannot be turned into an image; the message says why and what to do."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded camera image.

    Attributes:
        pixels: (H, W, 3) uint8, C-contiguous.
        color_order: 'rgb' or 'bgr', the order of ``pixels``' channels.
    """

    pixels: np.ndarray
    color_order: str


def _cv2():
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImageDecodeError(
            'this image encoding needs OpenCV: pip install opencv-python-headless '
            '(or apt install python3-opencv)') from err
    return cv2


def _as_bytes(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast('B'), dtype=np.uint8)


def _unsupported(encoding: str) -> ImageDecodeError:
    if str(encoding).lower() in DEPTH_ENCODINGS:
        return ImageDecodeError(
            f"unsupported image encoding '{encoding}': a depth image, not a camera image; "
            "remap 'image' to the camera's colour or mono topic (e.g. .../color/image_raw)")
    return ImageDecodeError(
        f"unsupported image encoding '{encoding}'; supported: {sorted(SUPPORTED_ENCODINGS)}. "
        'Convert the stream (e.g. with image_proc) or use compressed transport')


def decode_image(encoding: str, height: int, width: int, step: int, data,
                 is_bigendian: int = 0) -> DecodedImage:
    """Decode a raw ``sensor_msgs/Image`` buffer.

    Args:
        encoding: the message's encoding; see :data:`SUPPORTED_ENCODINGS`.
        height, width: image size, pixels.
        step: bytes per row, may exceed the row's size (padded rows).
        data: the message's byte buffer (bytes, array.array, memoryview or numpy).
        is_bigendian: byte order of 16-bit encodings (ignored for 8-bit ones).

    Returns:
        The image as (H, W, 3) uint8 in the order given by ``color_order``.

    Raises:
        ImageDecodeError: unsupported encoding, empty or oversized image, odd width for
            YUV 4:2:2, or a buffer whose size does not match ``height * step``.
    """
    enc = str(encoding).lower()
    layout = _LAYOUTS.get(enc)
    if layout is None:
        raise _unsupported(encoding)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'empty image ({width}x{height} pixels)')
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise ImageDecodeError(
            f'image {width}x{height} exceeds {MAX_IMAGE_SIDE} pixels per side; downscale it '
            'before publishing')
    if layout.even_width and width % 2:
        raise ImageDecodeError(
            f'{enc} packs two pixels in four bytes, so its width must be even (got {width})')
    value_bytes = layout.bits // 8
    row_bytes = width * layout.channels * value_bytes
    if step < row_bytes:
        raise ImageDecodeError(
            f'step {step} is smaller than width*channels = {row_bytes} for {enc}')
    buffer = _as_bytes(data)
    if buffer.size != height * step:
        raise ImageDecodeError(
            f'data holds {buffer.size} bytes but height*step = {height}*{step} = '
            f'{height * step}; the message is truncated or its step is wrong')
    rows = buffer.reshape(height, step)[:, :row_bytes]  # (H, row_bytes), drops row padding
    if value_bytes == 2:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
        values = np.ascontiguousarray(rows).view(dtype).astype(np.uint16)  # (H, W * C) native
    else:
        values = rows
    values = values.reshape(height, width, layout.channels)  # (H, W, C)
    return DecodedImage(pixels=_convert(values, layout), color_order=layout.color_order)


def _to_8bit(values: np.ndarray) -> np.ndarray:
    return values if values.dtype == np.uint8 else (values >> 8).astype(np.uint8)


def _convert(values: np.ndarray, layout: _Layout) -> np.ndarray:
    """(H, W, C) uint8 / uint16 buffer values -> (H, W, 3) uint8, C-contiguous."""
    if layout.convert == 'copy':
        out = _to_8bit(values)
    elif layout.convert == 'drop_alpha':
        out = _to_8bit(values[:, :, :3])
    elif layout.convert == 'grey':
        out = np.repeat(_to_8bit(values), 3, axis=2)
    else:
        cv2 = _cv2()
        code = getattr(cv2, layout.convert)
        src = values[:, :, 0] if layout.channels == 1 else values  # Bayer wants (H, W)
        # OpenCV demosaics 16-bit mosaics at full precision; scale afterwards.
        out = _to_8bit(cv2.cvtColor(np.ascontiguousarray(src), code))
    return np.ascontiguousarray(out)


def decode_raw_image(msg) -> DecodedImage:
    """Decode a ``sensor_msgs/Image`` (rclpy or rosbags object), byte order included."""
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                        getattr(msg, 'is_bigendian', 0))


def decode_compressed(fmt: str, data) -> DecodedImage:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg / png) with OpenCV.

    Raises:
        ImageDecodeError: OpenCV missing, empty data, or undecodable bytes.
    """
    cv2 = _cv2()
    raw = _as_bytes(data)
    if raw.size == 0:
        raise ImageDecodeError('compressed image with no data')
    pixels = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if pixels is None:
        raise ImageDecodeError(
            f"could not decode compressed image (format '{fmt}', {raw.size} bytes)")
    if pixels.shape[0] > MAX_IMAGE_SIDE or pixels.shape[1] > MAX_IMAGE_SIDE:
        raise ImageDecodeError(f'image {pixels.shape[1]}x{pixels.shape[0]} is too large')
    return DecodedImage(pixels=pixels, color_order='bgr')
