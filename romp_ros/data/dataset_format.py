"""The generic dataset format: a folder of images plus one JSON line of labels per frame.

Every other source (synthetic renders, COCO, 3DPW, ...) is read into the same records
(:class:`FrameLabel`), and the training loader, ``make-bag`` and ``evaluate --dataset`` only
see those. The on-disk layout (documented for users in ``docs/dataset_format.md``)::

    DATASET/
      dataset.json     {"format": "romp_ros.dataset", "version": 1, "name": ...,
                        "joint_names": [...], "num_frames": N, "fps": ..., "body_model": ...}
      frames.jsonl     one JSON object per frame (see FrameLabel.to_json)
      images/          the images (PNG or JPEG), paths relative to DATASET/
      body_model/      optional: a prepared models directory (the body the labels were made
                       with; synthetic datasets carry theirs, so they are self-contained)

Units and frames: 2D quantities are pixels of the stored (distorted) image, u right, v down,
the image spanning [0, W] x [0, H]; 3D quantities are metres in the camera's optical frame
(REP-103: x right, y down, z forward). SMPL parameters follow ``romp_ros/PersonMesh``:
``camera point = body-model point + translation``.

Missing fields are ``null`` (or absent) and degrade gracefully: a 2D-only dataset trains the
2D terms only. A row that cannot be used (bad JSON, a wrong keypoint count, non-finite
numbers) is skipped with its reason counted, never silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import json
import logging
import math
import os
from pathlib import Path
import tempfile
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

LOG = logging.getLogger(__name__)

FORMAT_NAME = 'romp_ros.dataset'
FORMAT_VERSION = 1
INFO_FILE = 'dataset.json'
FRAMES_FILE = 'frames.jsonl'
IMAGES_DIR = 'images'
BODY_MODEL_DIR = 'body_model'
DISTORTION_MODELS = ('none', 'plumb_bob', 'rational_polynomial', 'equidistant')
# Number of distortion coefficients each model takes (CameraInfo conventions).
DISTORTION_SIZES = {'none': (0,), 'plumb_bob': (5,), 'rational_polynomial': (8,),
                    'equidistant': (4,)}
# COCO's keypoint visibility convention.
VIS_ABSENT, VIS_OCCLUDED, VIS_VISIBLE = 0, 1, 2
_DECIMALS = 5  # digits kept in frames.jsonl (0.01 mm, 1e-5 px)


class DatasetError(ValueError):
    """A dataset folder or file that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class CameraLabel:
    """The camera that took a frame.

    Attributes:
        width, height: image size, pixels.
        k: (fx, fy, cx, cy) pinhole intrinsics, pixels.
        distortion_model: one of ``DISTORTION_MODELS`` ('none' for an ideal pinhole).
        d: distortion coefficients in the CameraInfo order of that model.
    """

    width: int
    height: int
    k: tuple[float, float, float, float]
    distortion_model: str = 'none'
    d: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise DatasetError(f'camera size {self.width}x{self.height} must be positive')
        if len(self.k) != 4 or not all(math.isfinite(v) for v in self.k):
            raise DatasetError(f'camera k={self.k!r} must be 4 finite numbers (fx, fy, cx, cy)')
        if self.k[0] <= 0 or self.k[1] <= 0:
            raise DatasetError(f'camera focal lengths {self.k[:2]} must be positive')
        if self.distortion_model not in DISTORTION_MODELS:
            raise DatasetError(f'distortion_model={self.distortion_model!r}; choose one of '
                               f'{list(DISTORTION_MODELS)}')
        if len(self.d) not in DISTORTION_SIZES[self.distortion_model] and any(self.d):
            raise DatasetError(
                f'{self.distortion_model} takes {DISTORTION_SIZES[self.distortion_model][0]} '
                f'distortion coefficients, got {len(self.d)}')

    def matrix(self) -> np.ndarray:
        """The 3x3 K matrix (float64)."""
        fx, fy, cx, cy = self.k
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this camera."""
        return {'width': self.width, 'height': self.height, 'k': [float(v) for v in self.k],
                'distortion_model': self.distortion_model, 'd': [float(v) for v in self.d]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> 'CameraLabel':
        """Parse :meth:`to_json`'s object (DatasetError on a bad one)."""
        try:
            return cls(width=int(obj['width']), height=int(obj['height']),
                       k=tuple(float(v) for v in obj['k']),
                       distortion_model=str(obj.get('distortion_model') or 'none'),
                       d=tuple(float(v) for v in obj.get('d') or ()))
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(f'bad camera {obj!r}: {err}') from err


@dataclass(frozen=True)
class PersonLabel:
    """Ground truth of one person in one frame; any field may be None (not labelled).

    Attributes:
        track_id: identity over a sequence (-1 when unknown).
        bbox: (4,) float64 (u_min, v_min, u_max, v_max), pixels.
        keypoints_2d: (J, 3) float64 (u, v, visibility); visibility 0 = not labelled or
            outside the image, 1 = labelled but occluded, 2 = visible. J = len(joint_names).
        joints_3d: (J, 3) float64 metres, camera frame; rows of NaN (null in JSON) where a
            joint is unknown.
        smpl_pose: (72,) float64 axis-angle, radians (joint 0: global orientation, camera).
        smpl_shape: (10,) SMPL betas or (11,) SMPL-A betas (11th: BEV's age offset).
        translation: (3,) float64 metres: body-model frame -> camera frame.
    """

    track_id: int = -1
    bbox: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    joints_3d: np.ndarray | None = None
    smpl_pose: np.ndarray | None = None
    smpl_shape: np.ndarray | None = None
    translation: np.ndarray | None = None

    @property
    def has_smpl(self) -> bool:
        """Whether both pose and shape are labelled."""
        return self.smpl_pose is not None and self.smpl_shape is not None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this person (arrays rounded to 1e-5)."""
        return {'track_id': int(self.track_id), 'bbox': _rounded(self.bbox),
                'keypoints_2d': _rounded(self.keypoints_2d), 'joints_3d': _rounded(self.joints_3d),
                'smpl_pose': _rounded(self.smpl_pose), 'smpl_shape': _rounded(self.smpl_shape),
                'translation': _rounded(self.translation)}


@dataclass(frozen=True)
class FrameLabel:
    """One image and its people.

    Attributes:
        index: position of the frame in the dataset (0-based).
        image: image path, relative to the dataset folder (or absolute).
        people: the labelled people (possibly none: a negative example).
        camera: the camera, or None when unknown (2D-only datasets).
        stamp_ns: capture time, nanoseconds (sequences; None otherwise).
        sequence: the sequence the frame belongs to ('' for single images).
    """

    index: int
    image: str
    people: tuple[PersonLabel, ...] = ()
    camera: CameraLabel | None = None
    stamp_ns: int | None = None
    sequence: str = ''

    def to_json(self) -> dict[str, Any]:
        """The frames.jsonl object of this frame."""
        return {'index': self.index, 'image': self.image, 'stamp_ns': self.stamp_ns,
                'sequence': self.sequence,
                'camera': self.camera.to_json() if self.camera else None,
                'people': [p.to_json() for p in self.people]}


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset.json of a dataset.

    Attributes:
        name: a short name (used in logs and reports).
        joint_names: names of the rows of ``keypoints_2d`` / ``joints_3d`` (the 71 or 24
            body-model joints for synthetic data, the source's own names otherwise).
        num_frames: frames in frames.jsonl.
        fps: frame rate of sequences (0 when the frames are independent images).
        body_model: models directory the SMPL labels were made with, relative to the
            dataset folder ('' when none ships with the data).
        description: free text (the command that made it, the source dataset, ...).
    """

    name: str
    joint_names: tuple[str, ...]
    num_frames: int = 0
    fps: float = 0.0
    body_model: str = ''
    description: str = ''

    def to_json(self) -> dict[str, Any]:
        """The dataset.json object."""
        return {'format': FORMAT_NAME, 'version': FORMAT_VERSION, 'name': self.name,
                'joint_names': list(self.joint_names), 'num_frames': self.num_frames,
                'fps': self.fps, 'body_model': self.body_model,
                'description': self.description}


@dataclass
class SkipCounter:
    """Reasons rows or samples were skipped, with counts (reported, never silent)."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str, where: str = '') -> None:
        """Count one skip; the first of each reason is logged with where it happened."""
        if self.counts[reason] == 0:
            LOG.warning('skipped %s%s (further ones are counted, not logged)', reason,
                        f' at {where}' if where else '')
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        """All skips."""
        return sum(self.counts.values())


# --------------------------------------------------------------------------------- writing


class DatasetWriter:
    """Write a dataset folder frame by frame; ``close()`` (or the ``with`` block) finishes it.

    Example::

        with DatasetWriter(out_dir, DatasetInfo('mine', joint_names)) as writer:
            writer.add(image_rgb, people, camera=camera, stamp_ns=t)
    """

    def __init__(self, root: str | os.PathLike, info: DatasetInfo, *,
                 image_format: str = 'png', jpeg_quality: int = 95,
                 overwrite: bool = False) -> None:
        """Create ``root`` (it must not hold a dataset unless ``overwrite``)."""
        if image_format not in ('png', 'jpg'):
            raise DatasetError(f"image_format={image_format!r}; choose 'png' or 'jpg'")
        self.root = Path(root)
        if (self.root / INFO_FILE).exists() and not overwrite:
            raise DatasetError(f'{self.root} already holds a dataset; choose another folder '
                               'or remove it')
        (self.root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        self.info = info
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self._frames = (self.root / FRAMES_FILE).open('w', encoding='utf-8')
        self._count = 0

    def __enter__(self) -> 'DatasetWriter':
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:  # an interrupted dataset must not look complete: no dataset.json
            self._frames.close()

    def add(self, image: np.ndarray, people: Sequence[PersonLabel] = (), *,
            camera: CameraLabel | None = None, stamp_ns: int | None = None,
            sequence: str = '') -> FrameLabel:
        """Write one RGB uint8 image (H, W, 3) and its labels; returns the frame's record."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise DatasetError(f'images must be (H, W, 3) uint8 RGB, got {image.shape} '
                               f'{image.dtype}')
        name = f'{IMAGES_DIR}/{self._count:06d}.{self.image_format}'
        write_image(self.root / name, image, jpeg_quality=self.jpeg_quality)
        frame = FrameLabel(index=self._count, image=name, people=tuple(people), camera=camera,
                           stamp_ns=stamp_ns, sequence=sequence)
        self._frames.write(json.dumps(frame.to_json(), separators=(',', ':')) + '\n')
        self._count += 1
        return frame

    def close(self) -> None:
        """Flush frames.jsonl, then write dataset.json atomically.

        dataset.json is written last: its presence marks a complete dataset.
        """
        if self._frames.closed:
            return
        self._frames.close()
        info = DatasetInfo(name=self.info.name, joint_names=self.info.joint_names,
                           num_frames=self._count, fps=self.info.fps,
                           body_model=self.info.body_model, description=self.info.description)
        _atomic_write_text(self.root / INFO_FILE, json.dumps(info.to_json(), indent=1) + '\n')


def write_image(path: Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image as PNG or JPEG (by suffix) with OpenCV."""
    import cv2
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (
        '.jpg', '.jpeg') else []
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]), params):
        raise DatasetError(f'could not write {path}')


# --------------------------------------------------------------------------------- reading


class GenericDataset:
    """A dataset folder in the generic format, read once into memory.

    ``len(ds)`` frames; ``ds[i]`` is a :class:`FrameLabel`; :meth:`load_image` reads pixels.
    Unusable rows of frames.jsonl are skipped and counted in :attr:`skipped`.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        """Read dataset.json and frames.jsonl.

        Raises:
            DatasetError: no such folder, no dataset.json (not a dataset, or one whose
                writing did not finish), another format or version, or no usable frame.
        """
        self.root = Path(root).expanduser()
        self.info = read_info(self.root)
        self.skipped = SkipCounter()
        self.frames: list[FrameLabel] = list(_read_frames(self.root, self.info, self.skipped))
        if not self.frames:
            detail = f' ({dict(self.skipped.counts)} skipped)' if self.skipped.total else ''
            raise DatasetError(f'{self.root}: the dataset has no usable frame{detail}')

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> FrameLabel:
        return self.frames[index]

    def image_path(self, frame: FrameLabel) -> Path:
        """Absolute path of a frame's image."""
        path = Path(frame.image)
        return path if path.is_absolute() else self.root / path

    def load_image(self, frame: FrameLabel) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels of a frame (DatasetError if unreadable)."""
        return read_image(self.image_path(frame))

    @property
    def body_model_dir(self) -> Path | None:
        """The models directory shipped with the dataset, if any."""
        if not self.info.body_model:
            return None
        return self.root / self.info.body_model


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file (DatasetError if missing or corrupt)."""
    import cv2
    if not path.is_file():
        raise DatasetError(f'{path}: image file missing')
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DatasetError(f'{path}: not a readable image (corrupt or unknown format)')
    return np.ascontiguousarray(pixels[..., ::-1])


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a generic-format dataset."""
    return (Path(path) / INFO_FILE).is_file()


def read_info(root: Path) -> DatasetInfo:
    """Read and check ``root/dataset.json``."""
    if not root.is_dir():
        raise DatasetError(f'{root}: no such dataset folder')
    path = root / INFO_FILE
    if not path.is_file():
        raise DatasetError(f'{root}: no {INFO_FILE}; not a romp_ros dataset (make one with '
                           '`romp-ros synth` or a converter, see docs/dataset_format.md), or '
                           'its writing was interrupted')
    try:
        obj = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f'{path}: unreadable JSON ({err})') from err
    if obj.get('format') != FORMAT_NAME:
        raise DatasetError(f'{path}: format {obj.get("format")!r} is not {FORMAT_NAME!r}')
    if obj.get('version') != FORMAT_VERSION:
        raise DatasetError(f'{path}: format version {obj.get("version")!r}; this romp_ros '
                           f'reads version {FORMAT_VERSION}')
    names = obj.get('joint_names')
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DatasetError(f'{path}: joint_names must be a non-empty list of names')
    return DatasetInfo(name=str(obj.get('name') or root.name), joint_names=tuple(names),
                       num_frames=int(obj.get('num_frames') or 0), fps=float(obj.get('fps') or 0),
                       body_model=str(obj.get('body_model') or ''),
                       description=str(obj.get('description') or ''))


def _read_frames(root: Path, info: DatasetInfo, skipped: SkipCounter) -> Iterator[FrameLabel]:
    path = root / FRAMES_FILE
    if not path.is_file():
        raise DatasetError(f'{root}: no {FRAMES_FILE}')
    num_joints = len(info.joint_names)
    with path.open(encoding='utf-8') as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f'{path}:{line_no}'
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                skipped.add('unparsable JSON line', where)
                continue
            try:
                yield parse_frame(row, num_joints, skipped, where)
            except DatasetError as err:
                skipped.add(f'bad frame ({_reason(err)})', f'{where}: {err}')


def parse_frame(row: Mapping[str, Any], num_joints: int, skipped: SkipCounter,
                where: str = '') -> FrameLabel:
    """A :class:`FrameLabel` from a frames.jsonl object.

    A person with a wrong keypoint count is an error for the whole frame (the joint order is
    then unknown); a non-finite number drops that field of that person, counted in
    ``skipped``.
    """
    if not isinstance(row, Mapping) or 'image' not in row:
        raise DatasetError('a frame needs an "image" path')
    camera = CameraLabel.from_json(row['camera']) if row.get('camera') else None
    people = []
    for person in row.get('people') or ():
        people.append(_parse_person(person, num_joints, skipped, where))
    stamp = row.get('stamp_ns')
    return FrameLabel(index=int(row.get('index', 0)), image=str(row['image']),
                      people=tuple(people), camera=camera,
                      stamp_ns=None if stamp is None else int(stamp),
                      sequence=str(row.get('sequence') or ''))


_FIELD_SHAPES = {'bbox': (4,), 'smpl_pose': (72,), 'translation': (3,)}


def _parse_person(obj: Mapping[str, Any], num_joints: int, skipped: SkipCounter,
                  where: str) -> PersonLabel:
    values: dict[str, np.ndarray | None] = {}
    for name in ('bbox', 'keypoints_2d', 'joints_3d', 'smpl_pose', 'smpl_shape', 'translation'):
        raw = obj.get(name)
        if raw is None:
            values[name] = None
            continue
        try:
            array = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DatasetError(f'{name} is not numeric') from err
        expected = {'keypoints_2d': (num_joints, 3), 'joints_3d': (num_joints, 3)}.get(
            name, _FIELD_SHAPES.get(name))
        if name == 'smpl_shape':
            if array.shape not in ((10,), (11,)):
                raise DatasetError(f'smpl_shape has shape {array.shape}; expected (10,) or (11,)')
        elif array.shape != expected:
            raise DatasetError(f'{name} has shape {array.shape}; expected {expected} '
                               f'({num_joints} joints in dataset.json)')
        if name == 'joints_3d':
            # unknown joints are NaN rows; anything else non-finite drops the field
            rows_ok = np.isfinite(array).all(1) | np.isnan(array).all(1)
            if not rows_ok.all():
                skipped.add(f'non-finite {name} (field dropped)', where)
                array = None
        elif not np.isfinite(array).all():
            skipped.add(f'non-finite {name} (field dropped)', where)
            array = None
        values[name] = array
    return PersonLabel(track_id=int(obj.get('track_id', -1)), **values)


def _reason(err: Exception) -> str:
    text = str(err)
    return text.split(' has shape')[0] + ' shape' if ' has shape' in text else text[:60]


def _rounded(array: np.ndarray | None) -> list | None:
    """Nested lists rounded to 1e-5, NaN (an unknown value) written as JSON null."""
    if array is None:
        return None
    rounded = np.round(np.asarray(array, dtype=np.float64), _DECIMALS)
    return _nan_to_none(rounded.tolist())


def _nan_to_none(value):
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if value != value else value  # NaN is the only value unequal to itself


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
