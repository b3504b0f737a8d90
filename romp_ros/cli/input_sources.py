"""Frames from image files, videos and ROS 2 bags, for the offline tools (no rclpy needed).

Bags are read with the pure-Python ``rosbags`` library, so the CLI works on a laptop without
ROS. Image decoding is shared with the node (:mod:`romp_ros.core.image_decoding`).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from romp_ros.core.geometry.calibration import CameraCalibration, calibration_from_message
from romp_ros.core.geometry.camera_model import CameraModelError
from romp_ros.core.image_decoding import ImageDecodeError, decode_compressed, decode_raw_image
from romp_ros.core.results import CameraIntrinsics

LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'}
VIDEO_SUFFIXES = {'.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v'}
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


class InputError(ValueError):
    """An input path that cannot be read; the message names it and says why."""


@dataclass(frozen=True)
class Frame:
    """One input frame.

    Attributes:
        pixels: (H, W, 3) uint8.
        color_order: 'rgb' or 'bgr'.
        source: the input it came from (file path, 'video.mp4#12', 'bag:/topic#12').
        stamp_ns: capture time in nanoseconds when known: the header stamp (bags) or the
            time since the start of the video (videos with a frame rate); else None.
        intrinsics: the camera's K when the input carries it (bag camera_info), else None.
        camera_info: the bag's whole CameraInfo (K, D, P, binning, ROI), else None.
        frame_id: the image's frame_id when known (bags), else ''.
        stream: the sequence the frame belongs to: the video, the bag topic, or 'images' for
            image files (given in order, they form one sequence).
    """

    pixels: np.ndarray
    color_order: str
    source: str
    stamp_ns: int | None = None
    intrinsics: CameraIntrinsics | None = None
    camera_info: CameraCalibration | None = None
    frame_id: str = ''
    stream: str = 'images'


def _cv2():
    try:
        import cv2
    except ImportError as err:
        raise InputError('reading images and videos needs OpenCV: '
                         "pip install 'romp-ros[io]' (or apt install python3-opencv)") from err
    return cv2


def classify(path: Path) -> str:
    """'image', 'video' or 'bag' for an input path (a bag is a directory or .mcap/.db3)."""
    if path.is_dir() and (path / 'metadata.yaml').is_file():
        return 'bag'
    suffix = path.suffix.lower()
    if suffix in ('.mcap', '.db3'):
        return 'bag'
    if suffix in IMAGE_SUFFIXES:
        return 'image'
    if suffix in VIDEO_SUFFIXES:
        return 'video'
    raise InputError(f'{path}: unknown input type; expected an image '
                     f'({sorted(IMAGE_SUFFIXES)}), a video ({sorted(VIDEO_SUFFIXES)}) or a '
                     'ROS 2 bag (a folder with metadata.yaml, .mcap or .db3)')


def check_inputs(paths: list[Path]) -> list[str]:
    """Fail fast, before any model is loaded: every path exists and has a known kind.

    Returns:
        The kind of each path ('image', 'video' or 'bag').
    """
    kinds = []
    for path in paths:
        if not path.exists():
            raise InputError(f'{path}: no such file or directory')
        kinds.append(classify(path))
    return kinds


def iter_frames(paths: list[Path], topic: str | None = None) -> Iterator[Frame]:
    """Yield the frames of every input, in order."""
    for path, kind in zip(paths, check_inputs(paths), strict=True):
        if kind == 'image':
            yield _read_image(path)
        elif kind == 'video':
            yield from _read_video(path)
        else:
            yield from _read_bag(path, topic)


def count_frames(paths: list[Path], topic: str | None = None) -> int | None:
    """Total frame count when cheaply known (for progress bars), else None."""
    total = 0
    for path in paths:
        kind = classify(path)
        if kind == 'image':
            total += 1
        elif kind == 'video':
            cap = _cv2().VideoCapture(str(path))
            total += max(int(cap.get(_cv2().CAP_PROP_FRAME_COUNT)), 0)
            cap.release()
        else:
            return None
    return total


def _read_image(path: Path) -> Frame:
    pixels = _cv2().imread(str(path), _cv2().IMREAD_COLOR)
    if pixels is None:
        raise InputError(f'{path}: not a readable image')
    return Frame(pixels=pixels, color_order='bgr', source=str(path))


def _read_video(path: Path) -> Iterator[Frame]:
    cap = _cv2().VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f'{path}: OpenCV cannot open this video')
    fps = float(cap.get(_cv2().CAP_PROP_FPS))
    if not (np.isfinite(fps) and fps > 0):
        fps = 0.0  # unknown: frames get no stamp
    try:
        index = 0
        while True:
            ok, pixels = cap.read()
            if not ok:
                break
            stamp = round(index * 1e9 / fps) if fps else None
            yield Frame(pixels=pixels, color_order='bgr', source=f'{path}#{index}',
                        stamp_ns=stamp, stream=str(path))
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise InputError(f'{path}: the video has no readable frames')


def _read_bag(path: Path, topic: str | None) -> Iterator[Frame]:
    try:
        from rosbags.highlevel import AnyReader
    except ImportError as err:
        raise InputError("reading bags needs rosbags: pip install 'romp-ros[io]'") from err
    with AnyReader([path]) as reader:
        image_conns = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
        if topic is not None:
            image_conns = [c for c in image_conns if c.topic == topic]
        if not image_conns:
            topics = sorted({f'{c.topic} ({c.msgtype})' for c in reader.connections})
            raise InputError(f'{path}: no image topic {topic or ""} in the bag; topics: '
                             f'{topics}. Pick one with --topic')
        chosen = image_conns[0].topic
        conns = [c for c in image_conns if c.topic == chosen]
        info_conns = [c for c in reader.connections if c.msgtype == CAMERA_INFO_TYPE]
        latest_k: dict[str, CameraIntrinsics] = {}
        latest_info: dict[str, CameraCalibration] = {}
        index = 0
        for conn, _, raw in reader.messages(connections=conns + info_conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.msgtype == CAMERA_INFO_TYPE:
                k = np.asarray(msg.k, dtype=np.float64)
                if np.all(np.isfinite(k)) and k[0] > 0 and k[4] > 0:
                    latest_k[msg.header.frame_id] = CameraIntrinsics(
                        fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]))
                    try:
                        latest_info[msg.header.frame_id] = calibration_from_message(msg)
                    except CameraModelError as err:
                        LOG.warning('%s: camera_info skipped: %s', path, err)
                continue
            try:
                if conn.msgtype.endswith('CompressedImage'):
                    decoded = decode_compressed(msg.format, msg.data)
                else:
                    decoded = decode_raw_image(msg)
            except ImageDecodeError as err:
                LOG.warning('%s: frame %d skipped: %s', path, index, err)
                index += 1
                continue
            header = msg.header
            yield Frame(pixels=decoded.pixels, color_order=decoded.color_order,
                        source=f'bag:{chosen}#{index}',
                        stamp_ns=int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec),
                        intrinsics=latest_k.get(header.frame_id),
                        camera_info=latest_info.get(header.frame_id), frame_id=header.frame_id,
                        stream=f'{path}:{chosen}')
            index += 1
