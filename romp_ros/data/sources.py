"""Training sources: the common interface of every loader and the detection of formats.

Every loader (generic folder, COCO JSON, 3DPW, the reference's Human3.6M / MPI-INF-3DHP /
MuCo / AGORA files) returns an object with the interface of
:class:`~romp_ros.data.dataset_format.GenericDataset`: ``len(source)`` frames,
``source[i]`` a :class:`~romp_ros.data.dataset_format.FrameLabel`, ``source.info``
(name, joint names), ``source.image_path(frame)``, ``source.load_image(frame)`` and
``source.skipped`` (rows skipped while reading, by reason). :class:`FrameSource` is that
object for the loaders that read everything into memory.

:func:`open_source` takes a path (or a :class:`SourceSpec` from a training config) and picks
the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
import os
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from romp_ros.data.dataset_format import (
    INFO_FILE,
    DatasetError,
    DatasetInfo,
    FrameLabel,
    SkipCounter,
    read_image,
)

FORMATS: tuple[str, ...] = ('generic', 'coco', '3dpw', 'h36m', 'mpi_inf_3dhp', 'muco', 'agora')


class Source(Protocol):
    """What the training dataset needs from a loader (GenericDataset has it too)."""

    info: DatasetInfo
    skipped: SkipCounter

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> FrameLabel: ...

    def image_path(self, frame: FrameLabel) -> Path: ...

    def load_image(self, frame: FrameLabel) -> np.ndarray: ...


class FrameSource:
    """Frames already read into memory, with their images under ``image_root``.

    Attributes:
        info: name and joint names of the rows of every person's keypoint arrays.
        frames: the frames, ``frames[i].index == i``.
        image_root: folder the frames' relative image paths start from.
        skipped: rows of the original files that could not be used, by reason.
    """

    def __init__(self, info: DatasetInfo, frames: Sequence[FrameLabel], image_root: Path,
                 skipped: SkipCounter | None = None, *, where: str = '') -> None:
        """Keep ``frames``; DatasetError when there is none (``where`` names the files)."""
        self.info = info
        self.frames = list(frames)
        self.image_root = Path(image_root)
        self.skipped = skipped if skipped is not None else SkipCounter()
        if not self.frames:
            detail = f' ({dict(self.skipped.counts)} skipped)' if self.skipped.total else ''
            raise DatasetError(f'{where or info.name}: no usable frame{detail}')

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> FrameLabel:
        return self.frames[index]

    def image_path(self, frame: FrameLabel) -> Path:
        """Absolute path of a frame's image."""
        path = Path(frame.image)
        return path if path.is_absolute() else self.image_root / path

    def load_image(self, frame: FrameLabel) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels of a frame (DatasetError if missing or corrupt)."""
        return read_image(self.image_path(frame))


@dataclass(frozen=True)
class SourceSpec:
    """One entry of a training config's ``data.sources`` list.

    Attributes:
        path: dataset folder or annotation file.
        format: one of :data:`FORMATS`, or 'auto' to detect it from the files.
        weight: sampling weight relative to the other sources (> 0).
        name: name in logs (default: from the files).
        split: dataset split where the format has several ('train', 'validation', 'test').
        images: image folder of a COCO-style JSON (default: guessed next to the JSON).
        models_dir: prepared body models; 3DPW and AGORA need it for SMPL translations
            (and AGORA for the camera-frame orientation). Without it those labels are absent.
        joint_set: name of a known joint set (``romp_ros.data.joint_sets.JOINT_SETS``) when
            the keypoint names of the files are not recognised.
        keep_crowd: COCO: keep images that have crowd regions (unlabelled people; default off).
        keep_empty: COCO: keep images without people as negatives (default off).
    """

    path: str
    format: str = 'auto'
    weight: float = 1.0
    name: str = ''
    split: str = ''
    images: str = ''
    models_dir: str = ''
    joint_set: str = ''
    keep_crowd: bool = False
    keep_empty: bool = False

    def __post_init__(self) -> None:
        if not str(self.path):
            raise DatasetError('a data source needs a path')
        if self.format != 'auto' and self.format not in FORMATS:
            raise DatasetError(f'data source {self.path}: format {self.format!r}; choose auto '
                               f'or one of {list(FORMATS)}')
        if not (isinstance(self.weight, (int, float)) and np.isfinite(self.weight)
                and self.weight > 0):
            raise DatasetError(f'data source {self.path}: weight {self.weight!r} must be a '
                               'positive number')

    @classmethod
    def from_config(cls, entry: 'SourceSpec | str | os.PathLike | Mapping[str, Any]'
                    ) -> 'SourceSpec':
        """A spec from a path or a config mapping (DatasetError naming unknown keys)."""
        if isinstance(entry, SourceSpec):
            return entry
        if isinstance(entry, (str, os.PathLike)):
            return cls(path=str(entry))
        if not isinstance(entry, Mapping):
            raise DatasetError(f'a data source must be a path or a mapping, got {entry!r}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise DatasetError(f'data source {entry.get("path", "?")}: unknown keys {unknown}; '
                               f'known: {sorted(known)}')
        if 'path' not in entry:
            raise DatasetError(f'data source {dict(entry)} has no path')
        values = dict(entry)
        values['path'] = str(values['path'])
        if 'weight' in values:
            try:
                values['weight'] = float(values['weight'])
            except (TypeError, ValueError):
                raise DatasetError(f'data source {values["path"]}: weight '
                                   f'{values["weight"]!r} is not a number') from None
        return cls(**values)


def open_source(spec: 'SourceSpec | str | os.PathLike | Mapping[str, Any]') -> Source:
    """Open a dataset in any supported format.

    Detection when ``format`` is 'auto':

    ======================================================  =============
    what is found                                           format
    ======================================================  =============
    a folder with ``dataset.json``                          generic
    a ``.json`` file (images, annotations, categories)      coco
    a folder with ``sequenceFiles/``                        3dpw
    a folder with ``annots.npz`` and ``h36m_*.txt``         h36m
    a folder with ``annots_augmented.npz``                  muco
    a folder with ``annots_<split>.npz``                    agora
    a folder with ``annots.npz`` (no h36m lists)            mpi_inf_3dhp
    ======================================================  =============

    Raises:
        DatasetError: nothing there, an unrecognised layout (the message lists what was
            found and what each format needs), or the loader's own errors.
    """
    spec = SourceSpec.from_config(spec)
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise DatasetError(f'{path}: no such file or folder')
    fmt = spec.format if spec.format != 'auto' else detect_format(path)
    name = spec.name
    models_dir = Path(spec.models_dir).expanduser() if spec.models_dir else None
    if fmt == 'generic':
        from romp_ros.data.dataset_format import GenericDataset
        return GenericDataset(path)
    if fmt == 'coco':
        from romp_ros.data.coco import open_coco
        return open_coco(path, images_dir=spec.images or None, name=name,
                         joint_set=spec.joint_set, keep_crowd=spec.keep_crowd,
                         keep_empty=spec.keep_empty)
    if fmt == '3dpw':
        from romp_ros.data.threedpw import open_3dpw
        return open_3dpw(path, split=spec.split or 'train', models_dir=models_dir, name=name)
    from romp_ros.data import reference_layouts as layouts
    openers = {'h36m': layouts.open_h36m, 'mpi_inf_3dhp': layouts.open_mpi_inf_3dhp,
               'muco': layouts.open_muco, 'agora': layouts.open_agora}
    kwargs: dict[str, Any] = {'name': name}
    if spec.split:
        kwargs['split'] = spec.split
    if fmt == 'agora':
        kwargs['models_dir'] = models_dir
    return openers[fmt](path, **kwargs)


_LAYOUT_HELP = (
    'generic: a folder with dataset.json (docs/dataset_format.md); coco: a keypoint JSON with '
    '"images", "annotations" and "categories"; 3dpw: the 3DPW folder with sequenceFiles/ and '
    'imageFiles/; h36m: annots.npz + h36m_train.txt + images/; mpi_inf_3dhp: annots.npz + '
    'images/; muco: annots_augmented.npz; agora: annots_<split>.npz + <split>/ images. '
    'Name the format with format: if the files are there under other names.')


def detect_format(path: Path) -> str:
    """The format of a dataset path (DatasetError listing what was found otherwise)."""
    if path.is_file():
        if path.suffix.lower() == '.json':
            return 'coco'  # open_coco checks the keys and says what is missing
        if path.name == INFO_FILE:
            return 'generic'
        raise DatasetError(f'{path}: a file that is not a COCO-style keypoint JSON. Expected '
                           f'one of: {_LAYOUT_HELP}')
    entries = sorted(p.name for p in path.iterdir())
    if INFO_FILE in entries:
        return 'generic'
    if 'sequenceFiles' in entries:
        return '3dpw'
    if 'annots_augmented.npz' in entries:
        return 'muco'
    if any(e.startswith('annots_') and e.endswith('.npz') for e in entries):
        return 'agora'
    if 'annots.npz' in entries:
        if any(e.startswith('h36m_') and e.endswith('.txt') for e in entries):
            return 'h36m'
        return 'mpi_inf_3dhp'
    shown = ', '.join(entries[:12]) + (', ...' if len(entries) > 12 else '')
    raise DatasetError(f'{path}: cannot tell the dataset format; the folder holds [{shown}]. '
                       f'Expected one of: {_LAYOUT_HELP}')

