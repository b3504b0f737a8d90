"""Read evaluation inputs from ROS 2 bags with ``rosbags`` (no ROS install needed).

A bag is a rosbag2 folder (with ``metadata.yaml``) or a single ``.mcap`` / ``.db3`` file.
Message types come from :func:`romp_ros.data.bag_types.typestore` (the standard ones plus
``romp_ros/PersonMeshArray``). Bad input stops with one :class:`EvaluationInputError` line:
a missing, empty or corrupt bag, a missing topic (the line lists the topics present), a topic
of the wrong type. Damage found while reading (a storage error part-way, a message that does not
deserialise) is not fatal: what was read is evaluated and the rest is counted.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import struct
from typing import Any, Iterator, Sequence

import numpy as np

from romp_ros.core.image_decoding import decode_compressed, decode_raw_image
from romp_ros.core.results import CameraIntrinsics
from romp_ros.data.bag_types import (
    COMPRESSED_IMAGE,
    IMAGE,
    PERSON_MESH_ARRAY,
    typestore,
)
from romp_ros.evaluation.errors import EvaluationInputError
from romp_ros.evaluation.people import FramePeople

LOG = logging.getLogger(__name__)

IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
BAG_SUFFIXES = ('.mcap', '.db3')


class MessageDecodeError(ValueError):
    """A message whose bytes do not deserialise as its topic's type (a damaged message)."""


@dataclass(frozen=True)
class TopicInfo:
    """A topic of a bag: its type and message count (from the bag's index)."""

    topic: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One raw message: its topic, type, log time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes


def check_bag_path(path: str | os.PathLike) -> Path:
    """The path of a bag, checked to exist and to look like one (EvaluationInputError)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise EvaluationInputError(f'{path}: no such bag (file or folder)')
    if path.is_dir():
        if not (path / 'metadata.yaml').is_file():
            raise EvaluationInputError(f'{path}: a folder without metadata.yaml is not a rosbag2 '
                                       'bag; pass the bag folder or its .mcap / .db3 file')
    elif path.suffix.lower() not in BAG_SUFFIXES:
        raise EvaluationInputError(f'{path}: not a bag; expected a rosbag2 folder (with '
                                   'metadata.yaml) or a .mcap / .db3 file')
    return path


class BagReader:
    """An open bag: its topics, checked topic look-ups, raw messages and deserialisation."""

    def __init__(self, path: Path, reader: Any) -> None:
        """Use :func:`open_bag`."""
        self.path = path
        self._reader = reader
        self.read_error: str | None = None
        self.read_counts: dict[str, int] = {}

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name -> :class:`TopicInfo`."""
        out: dict[str, TopicInfo] = {}
        for conn in self._reader.connections:
            old = out.get(conn.topic)
            count = conn.msgcount + (old.count if old else 0)
            out[conn.topic] = TopicInfo(conn.topic, conn.msgtype, count)
        return out

    def describe_topics(self) -> str:
        """'/a (type, N msgs), /b (...)' for error messages."""
        return ', '.join(f'{t.topic} ({t.msgtype}, {t.count} msgs)'
                         for t in sorted(self.topics.values(), key=lambda t: t.topic)) or 'none'

    def require_topic(self, topic: str, types: Sequence[str], flag: str) -> TopicInfo:
        """A topic that must exist with one of ``types`` and hold messages.

        Raises:
            EvaluationInputError: missing (listing the topics present), wrong type, or empty.
        """
        info = self.topics.get(topic)
        if info is None:
            raise EvaluationInputError(f'{self.path}: no topic {topic} ({flag}); topics in the '
                                       f'bag: {self.describe_topics()}')
        if info.msgtype not in types:
            raise EvaluationInputError(
                f'{self.path}: topic {topic} has type {info.msgtype}; {flag} needs '
                f'{" or ".join(types)}')
        if info.count == 0:
            raise EvaluationInputError(f'{self.path}: topic {topic} ({flag}) has no messages')
        return info

    def topics_of_type(self, types: Sequence[str]) -> list[TopicInfo]:
        """Topics of the given types, by name."""
        return sorted((t for t in self.topics.values() if t.msgtype in types),
                      key=lambda t: t.topic)

    def messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        """The raw messages of ``topics`` in log-time order.

        A storage error part-way (a damaged file) ends the iteration; :attr:`read_error` says
        what happened and :attr:`read_counts` how many messages of each topic were read.
        """
        conns = [c for c in self._reader.connections if c.topic in set(topics)]
        self.read_counts = dict.fromkeys(topics, 0)
        iterator = self._reader.messages(connections=conns)
        while True:
            try:
                conn, log_time, raw = next(iterator)
            except StopIteration:
                return
            # the storage back-ends raise their own error types on damaged files (apsw,
            # sqlite3, the mcap parser, ...); any of them ends the readable part of the bag
            except Exception as err:
                self.read_error = f'{type(err).__name__}: {err}'
                LOG.warning('%s: reading stopped: %s', self.path, self.read_error)
                return
            self.read_counts[conn.topic] = self.read_counts.get(conn.topic, 0) + 1
            yield BagMessage(conn.topic, conn.msgtype, int(log_time), bytes(raw))

    def deserialize(self, message: BagMessage) -> Any:
        """The message object (rosbags' dataclass).

        Raises:
            MessageDecodeError: the bytes do not deserialise as the topic's type.
        """
        from rosbags.highlevel import AnyReaderError
        from rosbags.serde import SerdeError
        try:
            return self._reader.deserialize(message.raw, message.msgtype)
        except (AnyReaderError, SerdeError) as err:  # AnyReader re-raises SerdeError as its own
            raise MessageDecodeError(f'{message.topic}: {err}') from err

    def unread(self, topic: str) -> int:
        """Messages of ``topic`` the index lists but :meth:`messages` did not deliver."""
        info = self.topics.get(topic)
        return max(0, (info.count if info else 0) - self.read_counts.get(topic, 0))


@contextmanager
def open_bag(path: str | os.PathLike) -> Iterator[BagReader]:
    """Open a bag for reading (EvaluationInputError: missing, corrupt or empty)."""
    path = check_bag_path(path)
    try:
        from rosbags.highlevel import AnyReader, AnyReaderError
    except ImportError as err:
        raise EvaluationInputError("reading bags needs rosbags: pip install 'romp-ros[io]'"
                                   ) from err
    reader = AnyReader([path], default_typestore=typestore())
    try:
        reader.open()
    except AnyReaderError as err:
        raise EvaluationInputError(f'{path}: not a readable bag, it may be corrupt or truncated '
                                   f'({err})') from err
    try:
        if reader.message_count == 0:
            raise EvaluationInputError(f'{path}: the bag is empty (no messages)')
        yield BagReader(path, reader)
    finally:
        reader.close()


def header_stamp_from_cdr(raw: bytes) -> int | None:
    """The header stamp (ns) of a CDR message starting with a std_msgs/Header, if readable.

    Lets a message that does not deserialise still be placed in time (its frame is then
    skipped with a reason instead of vanishing). None when the bytes are too short or the
    encapsulation is unknown.
    """
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        return None
    fmt = '<iI' if raw[1] == 1 else '>iI'
    sec, nanosec = struct.unpack_from(fmt, raw, 4)
    if sec < 0 or nanosec >= 1_000_000_000:
        return None
    return sec * 1_000_000_000 + nanosec


def decode_image_message(msg: Any, msgtype: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of a sensor_msgs Image / CompressedImage (ImageDecodeError)."""
    if msgtype == COMPRESSED_IMAGE:
        decoded = decode_compressed(msg.format, msg.data)
    else:
        decoded = decode_raw_image(msg)
    pixels = decoded.pixels
    return np.ascontiguousarray(pixels[..., ::-1]) if decoded.color_order == 'bgr' else pixels


def intrinsics_from_camera_info(msg: Any) -> CameraIntrinsics | None:
    """The K of a sensor_msgs/CameraInfo, or None when it is zero or invalid (uncalibrated)."""
    k = np.asarray(msg.k, dtype=np.float64)
    if k.size != 9 or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
        return None
    return CameraIntrinsics(fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]))


# -- writing (tests, tools) ---------------------------------------------------------------------


def person_mesh_array_message(people: FramePeople, store: Any, model: str = '',
                              backbone: str = '') -> Any:
    """A rosbags ``romp_ros/PersonMeshArray`` object of :class:`FramePeople` (to write bags).

    Root pose = the pelvis-like first joint's position with an identity orientation (the
    evaluation does not read orientations); SMPL parameters are left zero.
    """
    t = store.types
    header = t['std_msgs/msg/Header'](
        stamp=t['builtin_interfaces/msg/Time'](sec=people.stamp_ns // 1_000_000_000,
                                               nanosec=people.stamp_ns % 1_000_000_000),
        frame_id=people.frame_id)
    point, vector = t['geometry_msgs/msg/Point'], t['geometry_msgs/msg/Vector3']
    pose, quat = t['geometry_msgs/msg/Pose'], t['geometry_msgs/msg/Quaternion']
    translation = (people.translation if people.translation is not None
                   else np.zeros((people.num_people, 3)))
    persons = []
    for i in range(people.num_people):
        joints = np.nan_to_num(people.joints_3d[i])
        root = joints[0] if len(joints) else np.zeros(3)
        verts = (np.zeros(0, np.float32) if people.verts is None
                 else people.verts[i].astype(np.float32).ravel())
        persons.append(t[PERSON_MESH_ARRAY.replace('Array', '')](
            id=int(max(people.ids[i], 0)), track_state=1, track_age=0,
            confidence=float(people.confidences[i]),
            root_pose=pose(position=point(x=float(root[0]), y=float(root[1]), z=float(root[2])),
                           orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0)),
            root_velocity=vector(x=0.0, y=0.0, z=0.0), has_velocity=False,
            smpl_pose=np.zeros(72, np.float32), smpl_shape=np.zeros(10, np.float32),
            weak_perspective_camera=np.zeros(3, np.float32),
            translation=vector(x=float(translation[i, 0]), y=float(translation[i, 1]),
                               z=float(translation[i, 2])),
            translation_from_camera_info=True,
            joints_3d=[point(x=float(x), y=float(y), z=float(z)) for x, y, z in joints],
            keypoints_2d=np.nan_to_num(people.keypoints_2d[i]).astype(np.float32).ravel(),
            bbox=np.nan_to_num(people.bbox[i]).astype(np.float32), vertices=verts))
    return t[PERSON_MESH_ARRAY](header=header, model=model, backbone=backbone,
                                joint_names=list(people.joint_names),
                                intrinsics_from_camera_info=True, people=persons)
