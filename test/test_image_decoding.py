"""Raw image encodings cameras publish: each decoded from a colour chart this test encodes
itself into the encoding's layout (our own YUV / Bayer / 16-bit writers, not OpenCV's)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from romp_ros.core.image_decoding import (
    SUPPORTED_ENCODINGS,
    DecodedImage,
    ImageDecodeError,
    decode_image,
    decode_raw_image,
)

PATCH = 8  # pixels per chart patch side
CHART = np.array([  # (4, 6, 3) RGB, saturated, mixed and neutral colours
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]],
    [[200, 60, 30], [30, 160, 90], [70, 40, 180], [240, 200, 150], [90, 120, 60], [20, 20, 20]],
    [[255, 255, 255], [128, 128, 128], [64, 64, 64], [0, 0, 0], [180, 30, 120], [40, 200, 220]],
    [[250, 130, 10], [10, 90, 250], [150, 250, 40], [100, 0, 50], [230, 230, 200], [5, 60, 40]],
], dtype=np.uint8)


def chart_image() -> np.ndarray:
    """(32, 48, 3) uint8 RGB: the chart, each colour a PATCH x PATCH square."""
    return np.repeat(np.repeat(CHART, PATCH, axis=0), PATCH, axis=1)


def patch_means(rgb: np.ndarray, margin: int) -> np.ndarray:
    """(4, 6, 3) mean colour of each patch's interior (``margin`` pixels off each edge)."""
    rows, cols = CHART.shape[:2]
    out = np.zeros((rows, cols, 3))
    for r in range(rows):
        for c in range(cols):
            block = rgb[r * PATCH + margin:(r + 1) * PATCH - margin,
                        c * PATCH + margin:(c + 1) * PATCH - margin]
            out[r, c] = block.reshape(-1, 3).mean(0)
    return out


def as_rgb(decoded: DecodedImage) -> np.ndarray:
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.flags.c_contiguous
    assert decoded.pixels.ndim == 3 and decoded.pixels.shape[2] == 3
    return decoded.pixels[..., ::-1] if decoded.color_order == 'bgr' else decoded.pixels


def pad_rows(rows: np.ndarray, extra: int) -> tuple[bytes, int]:
    """(H, row_bytes) uint8 -> bytes with ``extra`` junk bytes after each row, and the step."""
    junk = np.full((rows.shape[0], extra), 0xAB, np.uint8)
    padded = np.concatenate([rows, junk], axis=1)
    return padded.tobytes(), padded.shape[1]


# -- our own writers ---------------------------------------------------------------------------
def rgb_to_yuv601(rgb: np.ndarray) -> np.ndarray:
    """BT.601 video range (Y 16-235, U/V 16-240), as cameras and usb_cam deliver."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return np.stack([y, u, v], -1)


def pack_yuv422(rgb: np.ndarray, order: str) -> np.ndarray:
    """(H, W, 3) RGB -> (H, 2W) bytes in 'uyvy' or 'yuyv' order (chroma of each pixel pair)."""
    yuv = rgb_to_yuv601(rgb)
    y = yuv[..., 0]
    u = yuv[:, 0::2, 1] / 2 + yuv[:, 1::2, 1] / 2
    v = yuv[:, 0::2, 2] / 2 + yuv[:, 1::2, 2] / 2
    planes = {'y0': y[:, 0::2], 'y1': y[:, 1::2], 'u': u, 'v': v}
    names = ('u', 'y0', 'v', 'y1') if order == 'uyvy' else ('y0', 'u', 'y1', 'v')
    packed = np.stack([planes[n] for n in names], -1)  # (H, W/2, 4)
    return np.clip(np.round(packed), 0, 255).astype(np.uint8).reshape(rgb.shape[0], -1)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) -> (H, W) raw Bayer: the 2x2 tile ``pattern`` (e.g. 'rggb', row-major)."""
    channel = {'r': 0, 'g': 1, 'b': 2}
    out = np.zeros(rgb.shape[:2], rgb.dtype)
    for k, letter in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[letter]]
    return out


# -- the encodings -----------------------------------------------------------------------------
@pytest.mark.parametrize('encoding,order', [('yuv422', 'uyvy'), ('uyvy', 'uyvy'),
                                            ('yuv422_yuy2', 'yuyv'), ('yuyv', 'yuyv')])
@pytest.mark.parametrize('padding', [0, 6])
def test_yuv422_chart_colours(encoding, order, padding):
    rgb = chart_image()
    data, step = pad_rows(pack_yuv422(rgb, order), padding)
    decoded = decode_image(encoding, rgb.shape[0], rgb.shape[1], step, data)
    got = as_rgb(decoded)
    # patch interiors: rounding of Y/U/V to 8 bit moves a channel by at most ~3 levels
    np.testing.assert_allclose(patch_means(got, margin=2), CHART, atol=4)
    assert np.abs(got[2:-2, 2:-2].astype(int) - rgb[2:-2, 2:-2]).max() <= 40  # edges blur only


def test_yuv422_byte_orders_are_not_confused():
    """The UYVY bytes read as YUYV give other colours: the two names are really distinct."""
    rgb = chart_image()
    packed = pack_yuv422(rgb, 'uyvy')
    wrong = as_rgb(decode_image('yuv422_yuy2', *rgb.shape[:2], packed.shape[1], packed.tobytes()))
    assert np.abs(patch_means(wrong, 2) - CHART).max() > 100


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('padding', [0, 4])
def test_bayer_chart_colours(pattern, bits, padding):
    rgb = chart_image()
    raw = mosaic(rgb.astype(np.uint16) * 257 if bits == 16 else rgb, pattern)
    rows = raw.astype('<u2').view(np.uint8) if bits == 16 else raw
    data, step = pad_rows(np.ascontiguousarray(rows).reshape(rgb.shape[0], -1), padding)
    decoded = decode_image(f'bayer_{pattern}{bits}', rgb.shape[0], rgb.shape[1], step, data)
    got = as_rgb(decoded)
    # a flat patch is rebuilt exactly away from its edges (bilinear interpolation)
    np.testing.assert_allclose(patch_means(got, margin=2), CHART, atol=2)


def test_every_bayer_pattern_differs_from_the_others():
    """Decoding a mosaic with the wrong pattern name gives wrong colours (no silent alias)."""
    rgb = chart_image()
    raw = mosaic(rgb, 'rggb')
    for other in ('bggr', 'gbrg', 'grbg'):
        got = as_rgb(decode_image(f'bayer_{other}8', *rgb.shape[:2], rgb.shape[1], raw))
        assert np.abs(patch_means(got, 2) - CHART).max() > 100, other


@pytest.mark.parametrize('bigendian', [0, 1])
@pytest.mark.parametrize('padding', [0, 2])
def test_mono16_scales_the_full_range_to_8_bit(bigendian, padding):
    height, width = 6, 256
    values = (np.arange(width, dtype=np.uint32) * 257)[None].repeat(height, 0)  # 0..65535
    values[3] = 0x1234
    raw = values.astype('>u2' if bigendian else '<u2').view(np.uint8)
    data, step = pad_rows(raw.reshape(height, -1), padding)
    got = as_rgb(decode_image('mono16', height, width, step, data, is_bigendian=bigendian))
    expected = (values >> 8).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], expected)
    assert got[3, 0, 0] == 0x12  # the high byte, whatever the byte order


@pytest.mark.parametrize('encoding', ['rgb16', 'bgr16', 'rgba16', 'bgra16'])
def test_16_bit_colour(encoding):
    rgb = chart_image()
    channels = [rgb[..., i] for i in ((0, 1, 2) if encoding.startswith('rgb') else (2, 1, 0))]
    if 'a' in encoding[3:]:
        channels.append(np.full(rgb.shape[:2], 255, np.uint8))
    values = np.stack(channels, -1).astype(np.uint16) * 256 + 200  # the low byte is dropped
    raw = values.astype('<u2').view(np.uint8).reshape(rgb.shape[0], -1)
    got = as_rgb(decode_image(encoding, *rgb.shape[:2], raw.shape[1], raw.tobytes()))
    np.testing.assert_array_equal(got, rgb)


def test_message_objects_with_their_byte_order():
    """decode_raw_image reads the fields of an Image-like object, is_bigendian included."""

    class Msg:  # the field names of sensor_msgs/Image (rclpy and rosbags alike)
        encoding, height, width, step, is_bigendian = 'mono16', 1, 2, 4, 1
        data = bytes([0x12, 0x34, 0xAB, 0xCD])

    np.testing.assert_array_equal(decode_raw_image(Msg()).pixels[0, :, 0], [0x12, 0xAB])


@pytest.mark.parametrize('encoding', sorted(SUPPORTED_ENCODINGS))
def test_every_listed_encoding_decodes_a_padded_frame(encoding):
    """No encoding in the list is a dead entry: each decodes to (H, W, 3) uint8."""
    per_pixel = 2 if encoding in ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv') else 1
    if encoding.startswith(('rgb', 'bgr')):
        per_pixel = 4 if 'a' in encoding[3:] else 3
    if encoding.endswith('16'):
        per_pixel *= 2
    height, width, padding = 4, 6, 3
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, height * (width * per_pixel + padding), dtype=np.uint8)
    decoded = decode_image(encoding, height, width, width * per_pixel + padding, data)
    assert decoded.pixels.shape == (height, width, 3) and decoded.pixels.dtype == np.uint8


# -- refused -----------------------------------------------------------------------------------
@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_depth_images_are_refused_with_their_own_reason(encoding):
    with pytest.raises(ImageDecodeError, match=f"unsupported image encoding '{encoding}': a "
                       'depth image'):
        decode_image(encoding, 4, 4, 16, bytes(64))


def test_unknown_encoding_lists_the_supported_ones():
    with pytest.raises(ImageDecodeError, match=r"unsupported image encoding 'nv12'.*yuv422"):
        decode_image('nv12', 4, 4, 4, bytes(24))


@pytest.mark.parametrize('args,fragment', [
    (('yuv422', 4, 5, 10, bytes(40)), 'width must be even'),
    (('yuv422_yuy2', 4, 6, 10, bytes(40)), 'step 10 is smaller than width*channels = 12'),
    (('mono16', 4, 6, 10, bytes(40)), 'step 10 is smaller than width*channels = 12'),
    (('bayer_rggb16', 4, 6, 12, bytes(47)), 'data holds 47 bytes'),
    (('bayer_grbg8', 0, 6, 6, b''), 'empty image'),
])
def test_malformed_frames_are_clear_errors(args, fragment):
    with pytest.raises(ImageDecodeError, match=re.escape(fragment)):
        decode_image(*args)
