"""Write a labelled dataset as a ROS 2 bag: images, camera_info and ground-truth people.

One frame of the dataset becomes three messages with the same header stamp and frame_id:

=============================  ===========================================================
topic (defaults)               message
=============================  ===========================================================
``/camera/camera_info``        ``sensor_msgs/CameraInfo``: K, D, distortion_model, R = I,
                               P = [K | 0] (frames without a camera get none)
``/camera/image``              ``sensor_msgs/Image`` rgb8, or with ``compressed``
``/camera/image/compressed``   ``sensor_msgs/CompressedImage`` (jpeg or png)
``/ground_truth/people``       ``romp_ros/PersonMeshArray``, model ``ground_truth``
=============================  ===========================================================

Ground truth per person (``romp_ros/PersonMesh``): ``id`` = track id (the person's index
in the frame when unknown), confidence 1, ``track_state`` CONFIRMED, ``track_age`` = frames
since the track's first labelled frame in its sequence, ``root_pose`` = pelvis (joint 0) and
SMPL global orientation, SMPL pose / shape, translation, ``joints_3d`` (camera frame, NaN
where unknown), ``keypoints_2d`` (u, v; NaN where the label's visibility is 0, because the
message has no visibility field), ``bbox``. Unlabelled fields are left empty / zero.

Stamps come from the dataset (``FrameLabel.stamp_ns``); when a frame has none, all frames
get ``index / fps`` (``fps`` argument, else the dataset's, else 10 Hz). Stamps that go back
(sequences restarting at 0) are shifted so the bag plays forward, keeping the spacing inside
each sequence. Messages are written in the order camera_info, image, ground truth.

Storage follows ``out_bag``'s suffix: ``.mcap`` / ``.db3`` give a single file (readable by
rosbags' ``AnyReader``; ``ros2 bag`` wants the folder form), anything else a rosbag2 folder
with ``metadata.yaml`` (MCAP unless ``storage='sqlite3'``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
import logging
import math
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.data.bag_types import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    PERSON_MESH_ARRAY,
    typestore,
)
from romp_ros.data.dataset_format import VIS_ABSENT, DatasetInfo, FrameLabel, PersonLabel

LOG = logging.getLogger(__name__)

GROUND_TRUTH_MODEL = 'ground_truth'
DEFAULT_FPS = 10.0
_STATE_CONFIRMED = 1
_STORAGES = ('mcap', 'sqlite3')


class BagWriteError(ValueError):
    """The bag cannot be written (existing output, bad option); the message says what to do."""


class LabelledFrames(Protocol):
    """What :func:`write_dataset_bag` needs from a dataset: the extension point for loaders.

    ``GenericDataset`` has these members; another source (e.g. a 3DPW reader) only needs to
    provide the same four. ``image_path(frame)``, when present, lets compressed bags copy
    JPEG / PNG files without re-encoding.
    """

    info: DatasetInfo

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> FrameLabel: ...

    def load_image(self, frame: FrameLabel) -> np.ndarray: ...


@dataclass(frozen=True)
class BagReport:
    """What was written.

    Attributes:
        path: the bag (folder or single file).
        frames: frames written (one image, camera_info and ground truth each).
        people: PersonMesh messages written in all.
        topics: the topics written, image topic first.
        storage: 'mcap' or 'sqlite3'.
        first_stamp_ns, last_stamp_ns: stamp range.
    """

    path: Path
    frames: int
    people: int
    topics: tuple[str, ...]
    storage: str
    first_stamp_ns: int
    last_stamp_ns: int


def bag_storage(out_bag: Path, storage: str | None = None) -> tuple[str, bool]:
    """(storage, single_file) for an output path: the suffix wins over ``storage``."""
    suffix = out_bag.suffix.lower()
    if suffix == '.mcap':
        return 'mcap', True
    if suffix == '.db3':
        return 'sqlite3', True
    storage = storage or 'mcap'
    if storage not in _STORAGES:
        raise BagWriteError(f"storage={storage!r}; choose 'mcap' or 'sqlite3'")
    return storage, False


def frame_stamps(dataset: LabelledFrames, fps: float | None = None) -> np.ndarray:
    """(F,) int64 nanosecond stamps of the frames (see the module docstring)."""
    count = len(dataset)
    stamps = [dataset[i].stamp_ns for i in range(count)]
    rate = fps or dataset.info.fps or DEFAULT_FPS
    if not (math.isfinite(rate) and rate > 0):
        raise BagWriteError(f'fps={rate} must be positive')
    period = int(round(1e9 / rate))
    if any(s is None for s in stamps):
        return np.arange(count, dtype=np.int64) * period
    out = np.asarray(stamps, dtype=np.int64)
    for i in range(1, count):
        if out[i] <= out[i - 1]:  # a new sequence restarting: continue after the last frame
            out[i:] += out[i - 1] + period - out[i]
    return out


def write_dataset_bag(dataset: LabelledFrames, out_bag: str | os.PathLike, *,
                      compressed: bool = False, compression: str = 'jpeg',
                      image_topic: str = '/camera/image',
                      camera_info_topic: str = '/camera/camera_info',
                      gt_topic: str = '/ground_truth/people',
                      frame_id: str = 'camera_optical_frame', storage: str | None = None,
                      fps: float | None = None, jpeg_quality: int = 95,
                      progress: bool = True) -> BagReport:
    """Write ``dataset`` as a ROS 2 bag (see the module docstring for topics and fields).

    Args:
        dataset: a :class:`~romp_ros.data.dataset_format.GenericDataset` or any object with
            the :class:`LabelledFrames` members.
        out_bag: the bag to create: a folder, or a single ``.mcap`` / ``.db3`` file. It must
            not exist.
        compressed: write ``sensor_msgs/CompressedImage`` on ``<image_topic>/compressed``
            instead of raw rgb8 images.
        compression: 'jpeg' or 'png' (files already in that format are copied byte for byte).
        image_topic, camera_info_topic, gt_topic: topic names.
        frame_id: header frame_id of every message.
        storage: 'mcap' (default) or 'sqlite3' for a folder bag; a file suffix decides for
            single files.
        fps: stamp rate for datasets without stamps (default: the dataset's, else 10 Hz).
        jpeg_quality: quality of re-encoded JPEG images.
        progress: show a tqdm progress bar.

    Raises:
        BagWriteError: the output exists, or a bad option. Nothing is left behind on error.
        DatasetError: an image cannot be read.
    """
    out = Path(out_bag).expanduser()
    if out.exists() or out.is_symlink():
        raise BagWriteError(f'{out} already exists; choose another output path or remove it')
    if not out.parent.is_dir():
        raise BagWriteError(f'{out.parent} does not exist; create it first')
    if compression not in ('jpeg', 'png'):
        raise BagWriteError(f"compression={compression!r}; choose 'jpeg' or 'png'")
    storage, single_file = bag_storage(out, storage)
    if not len(dataset):
        raise BagWriteError('the dataset has no frames; nothing to write')
    stamps = frame_stamps(dataset, fps)
    store = typestore()
    # write into a fresh folder beside the output; move it (or its one file) into place last
    staging = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    bag_dir = staging / (out.stem if single_file else out.name)
    try:
        report = _write(dataset, bag_dir, store, stamps, storage, compressed, compression,
                        image_topic, camera_info_topic, gt_topic, frame_id, jpeg_quality,
                        progress)
        if single_file:
            files = sorted(bag_dir.glob('*.mcap' if storage == 'mcap' else '*.db3'))
            os.replace(files[0], out)
        else:
            os.replace(bag_dir, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info('wrote %d frames (%d people) to %s', report['frames'], report['people'], out)
    return BagReport(path=out, storage=storage, first_stamp_ns=int(stamps[0]),
                     last_stamp_ns=int(stamps[-1]), **report)


def _write(dataset: LabelledFrames, bag_dir: Path, store, stamps: np.ndarray, storage: str,
           compressed: bool, compression: str, image_topic: str, camera_info_topic: str,
           gt_topic: str, frame_id: str, jpeg_quality: int, progress: bool) -> dict[str, Any]:
    from rosbags.rosbag2 import StoragePlugin, Writer
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    image_type = COMPRESSED_IMAGE if compressed else IMAGE
    topic = f'{image_topic.rstrip("/")}/compressed' if compressed else image_topic
    joint_names = list(dataset.info.joint_names)
    ages = _track_ages(dataset)
    people_written = 0
    with Writer(bag_dir, version=9, storage_plugin=plugin) as writer:
        info_conn = writer.add_connection(camera_info_topic, CAMERA_INFO, typestore=store)
        image_conn = writer.add_connection(topic, image_type, typestore=store)
        gt_conn = writer.add_connection(gt_topic, PERSON_MESH_ARRAY, typestore=store)
        for index in tqdm(range(len(dataset)), desc='make-bag', unit='frame',
                          disable=not progress):
            frame = dataset[index]
            stamp = int(stamps[index])
            header = _header(store, stamp, frame_id)
            if frame.camera is not None:
                msg = _camera_info(store, header, frame)
                writer.write(info_conn, stamp, store.serialize_cdr(msg, CAMERA_INFO))
            if compressed:
                msg = _compressed_image(store, header, dataset, frame, compression,
                                        jpeg_quality)
            else:
                msg = _raw_image(store, header, dataset.load_image(frame))
            writer.write(image_conn, stamp, store.serialize_cdr(msg, image_type))
            msg = _people(store, header, frame, joint_names, ages[index])
            writer.write(gt_conn, stamp, store.serialize_cdr(msg, PERSON_MESH_ARRAY))
            people_written += len(frame.people)
    return {'frames': len(dataset), 'people': people_written,
            'topics': (topic, camera_info_topic, gt_topic)}


def _track_ages(dataset: LabelledFrames) -> list[list[int]]:
    """Per frame and person: frames since the track was first labelled in its sequence.

    0 for people without a track id.
    """
    first_seen: dict[tuple[str, int], int] = {}
    seen_in_sequence: dict[str, int] = defaultdict(int)
    ages = []
    for index in range(len(dataset)):
        frame = dataset[index]
        position = seen_in_sequence[frame.sequence]
        seen_in_sequence[frame.sequence] += 1
        row = []
        for person in frame.people:
            if person.track_id < 0:
                row.append(0)
                continue
            key = (frame.sequence, person.track_id)
            first_seen.setdefault(key, position)
            row.append(position - first_seen[key])
        ages.append(row)
    return ages


def _header(store, stamp_ns: int, frame_id: str):
    types = store.types
    time = types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                 nanosec=stamp_ns % 10**9)
    return types['std_msgs/msg/Header'](stamp=time, frame_id=frame_id)


def _camera_info(store, header, frame: FrameLabel):
    cam = frame.camera
    fields = CameraModel(cam.width, cam.height, cam.k, cam.distortion_model,
                         cam.d).camera_info_fields()
    types = store.types
    roi = types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                   do_rectify=False)
    return types[CAMERA_INFO](
        header=header, height=fields['height'], width=fields['width'],
        distortion_model=fields['distortion_model'],
        d=np.asarray(fields['d'], dtype=np.float64), k=np.asarray(fields['k'], np.float64),
        r=np.asarray(fields['r'], np.float64), p=np.asarray(fields['p'], np.float64),
        binning_x=0, binning_y=0, roi=roi)


def _raw_image(store, header, pixels: np.ndarray):
    height, width = pixels.shape[:2]
    return store.types[IMAGE](header=header, height=height, width=width, encoding='rgb8',
                              is_bigendian=0, step=width * 3,
                              data=np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1))


def _compressed_image(store, header, dataset: LabelledFrames, frame: FrameLabel,
                      compression: str, jpeg_quality: int):
    data = None
    path_of = getattr(dataset, 'image_path', None)
    if path_of is not None:
        path = Path(path_of(frame))
        suffixes = ('.jpg', '.jpeg') if compression == 'jpeg' else ('.png',)
        if path.suffix.lower() in suffixes and path.is_file():
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)  # no re-encoding loss
    if data is None:
        import cv2
        bgr = np.ascontiguousarray(dataset.load_image(frame)[..., ::-1])
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if compression == 'jpeg' else []
        ok, buf = cv2.imencode('.jpg' if compression == 'jpeg' else '.png', bgr, params)
        if not ok:
            raise BagWriteError(f'{frame.image}: could not encode the image as {compression}')
        data = buf.reshape(-1)
    return store.types[COMPRESSED_IMAGE](header=header, format=compression,
                                         data=np.ascontiguousarray(data, dtype=np.uint8))


def _people(store, header, frame: FrameLabel, joint_names: Sequence[str], ages: list[int]):
    types = store.types
    people = [_person(types, index, person, ages[index])
              for index, person in enumerate(frame.people)]
    return types[PERSON_MESH_ARRAY](header=header, model=GROUND_TRUTH_MODEL, backbone='',
                                    joint_names=list(joint_names),
                                    intrinsics_from_camera_info=frame.camera is not None,
                                    people=people)


def _person(types, index: int, person: PersonLabel, age: int):
    from scipy.spatial.transform import Rotation
    point = types['geometry_msgs/msg/Point']
    vector = types['geometry_msgs/msg/Vector3']
    quaternion = types['geometry_msgs/msg/Quaternion']
    pose = np.zeros(72) if person.smpl_pose is None else person.smpl_pose
    qx, qy, qz, qw = Rotation.from_rotvec(pose[:3]).as_quat()
    if person.joints_3d is not None:
        pelvis = person.joints_3d[0]
    elif person.translation is not None:
        pelvis = person.translation  # the body-model origin: the best available root
    else:
        pelvis = np.full(3, np.nan)
    root_pose = types['geometry_msgs/msg/Pose'](
        position=point(x=float(pelvis[0]), y=float(pelvis[1]), z=float(pelvis[2])),
        orientation=quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw)))
    if person.keypoints_2d is not None:
        kp = person.keypoints_2d[:, :2].astype(np.float32).copy()
        kp[person.keypoints_2d[:, 2] == VIS_ABSENT] = np.nan
        keypoints = kp.reshape(-1)
    else:
        keypoints = np.zeros(0, np.float32)
    joints = ([] if person.joints_3d is None else
              [point(x=float(x), y=float(y), z=float(z)) for x, y, z in person.joints_3d])
    translation = (np.zeros(3) if person.translation is None else person.translation)
    return types['romp_ros/msg/PersonMesh'](
        id=int(person.track_id if person.track_id >= 0 else index),
        track_state=_STATE_CONFIRMED, track_age=int(age), confidence=1.0,
        root_pose=root_pose, root_velocity=vector(x=0.0, y=0.0, z=0.0), has_velocity=False,
        smpl_pose=np.asarray(pose, dtype=np.float32),
        smpl_shape=(np.zeros(0, np.float32) if person.smpl_shape is None
                    else np.asarray(person.smpl_shape, dtype=np.float32)),
        weak_perspective_camera=np.zeros(3, np.float32),
        translation=vector(x=float(translation[0]), y=float(translation[1]),
                           z=float(translation[2])),
        translation_from_camera_info=person.translation is not None,
        joints_3d=joints, keypoints_2d=keypoints,
        bbox=(np.zeros(4, np.float32) if person.bbox is None
              else np.asarray(person.bbox, dtype=np.float32)),
        vertices=np.zeros(0, np.float32))
