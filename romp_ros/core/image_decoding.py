"""Decode ROS image buffers (sensor_msgs/Image, CompressedImage) into numpy, without ROS.

Works on rclpy messages and on rosbags' message objects alike (same field names), so the node
and the offline tools share one decoder. ``cv_bridge`` is deliberately not used: it is not
available everywhere and costs a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# encoding -> (channels, colour order of the returned 3-channel image)
SUPPORTED_ENCODINGS = {
    'rgb8': (3, 'rgb'),
    'bgr8': (3, 'bgr'),
    'rgba8': (4, 'rgb'),
    'bgra8': (4, 'bgr'),
    'mono8': (1, 'rgb'),
}
# Images beyond this many pixels per side are refused: the network sees 512 px anyway and a
# corrupt header claiming e.g. 100000 x 100000 must not allocate tens of gigabytes.
MAX_IMAGE_SIDE = 16384


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


def decode_image(encoding: str, height: int, width: int, step: int, data,
                 is_bigendian: int = 0) -> DecodedImage:
    """Decode a raw ``sensor_msgs/Image`` buffer.

    Args:
        encoding: the message's encoding; see :data:`SUPPORTED_ENCODINGS`.
        height, width: image size, pixels.
        step: bytes per row, may exceed width * channels (padded rows).
        data: the message's byte buffer (bytes, array.array, memoryview or numpy).
        is_bigendian: ignored for 8-bit encodings.

    Raises:
        ImageDecodeError: unsupported encoding, empty or oversized image, or a buffer whose
            size does not match ``height * step``.
    """
    del is_bigendian  # only 8-bit encodings are accepted, byte order does not matter
    enc = str(encoding).lower()
    if enc not in SUPPORTED_ENCODINGS:
        raise ImageDecodeError(
            f"unsupported image encoding '{encoding}'; supported: "
            f"{sorted(SUPPORTED_ENCODINGS)}. Convert the stream (e.g. with image_proc) or use "
            'compressed transport')
    channels, order = SUPPORTED_ENCODINGS[enc]
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'empty image ({width}x{height} pixels)')
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise ImageDecodeError(
            f'image {width}x{height} exceeds {MAX_IMAGE_SIDE} pixels per side; downscale it '
            'before publishing')
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageDecodeError(
            f'step {step} is smaller than width*channels = {row_bytes} for {enc}')
    buffer = np.frombuffer(memoryview(data).cast('B') if not isinstance(data, np.ndarray)
                           else data.view(np.uint8).reshape(-1), dtype=np.uint8)
    if buffer.size != height * step:
        raise ImageDecodeError(
            f'data holds {buffer.size} bytes but height*step = {height}*{step} = '
            f'{height * step}; the message is truncated or its step is wrong')
    rows = buffer.reshape(height, step)[:, :row_bytes]  # drops row padding
    pixels = rows.reshape(height, width, channels)
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 4:
        pixels = pixels[:, :, :3]
    return DecodedImage(pixels=np.ascontiguousarray(pixels), color_order=order)


def decode_compressed(fmt: str, data) -> DecodedImage:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg / png) with OpenCV.

    Raises:
        ImageDecodeError: OpenCV missing, empty data, or undecodable bytes.
    """
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImageDecodeError(
            'compressed images need OpenCV: pip install opencv-python-headless '
            '(or apt install python3-opencv)') from err
    raw = np.frombuffer(memoryview(data).cast('B') if not isinstance(data, np.ndarray)
                        else data.view(np.uint8).reshape(-1), dtype=np.uint8)
    if raw.size == 0:
        raise ImageDecodeError('compressed image with no data')
    pixels = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if pixels is None:
        raise ImageDecodeError(
            f"could not decode compressed image (format '{fmt}', {raw.size} bytes)")
    if pixels.shape[0] > MAX_IMAGE_SIDE or pixels.shape[1] > MAX_IMAGE_SIDE:
        raise ImageDecodeError(f'image {pixels.shape[1]}x{pixels.shape[0]} is too large')
    return DecodedImage(pixels=pixels, color_order='bgr')
