"""COCO-style keypoint JSON: COCO, CrowdPose, and MPII / LSP converted to the same layout.

The file holds ``images`` (id, file_name, width, height), ``annotations`` (image_id,
category_id, keypoints as [u, v, visibility] x K, num_keypoints, bbox [x, y, w, h],
iscrowd) and ``categories`` (the person category lists its keypoint names). The names
decide the joint set (``joint_sets.identify_joint_set``): COCO's 17, CrowdPose's 14, MPII's
16 or LSP's 14.

Choices, each counted in ``source.skipped`` when it removes something:

* ``iscrowd`` annotations mark regions of unlabelled people. Training on such an image would
  teach the network that nobody is there, so the image is left out unless ``keep_crowd``.
* A person with no labelled keypoint (``num_keypoints == 0``) is kept with its box only.
* Images without people are negatives; they are kept only with ``keep_empty`` (COCO has tens
  of thousands of them, which would otherwise dilute the people).
* A wrong keypoint count or a non-finite number skips the image (the joint order is unknown,
  or the label is corrupt).
"""

from __future__ import annotations

from collections import defaultdict
import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from romp_ros.data.dataset_format import (
    DatasetError,
    DatasetInfo,
    FrameLabel,
    PersonLabel,
    SkipCounter,
)
from romp_ros.data.joint_sets import identify_joint_set, joint_set_by_name
from romp_ros.data.sources import FrameSource

LOG = logging.getLogger(__name__)


def open_coco(path: str | Path, images_dir: str | Path | None = None, *, name: str = '',
              joint_set: str = '', keep_crowd: bool = False,
              keep_empty: bool = False) -> FrameSource:
    """Read a COCO-style keypoint JSON.

    Args:
        path: the annotation file (e.g. ``person_keypoints_train2017.json``).
        images_dir: folder of the images; default: the first of ``../<split>`` (the name's
            last ``_`` part, COCO's layout), ``images/`` beside the file or one level up,
            and the file's folder that holds the first image.
        name: dataset name in logs (default: the file's stem).
        joint_set: a known joint set name when the category's keypoint names are not
            recognised (their count must match).
        keep_crowd: keep images with crowd regions.
        keep_empty: keep images without people as negatives.

    Raises:
        DatasetError: unreadable JSON, missing keys, no person category with keypoints,
            unknown keypoint names, no image folder, or no usable image.
    """
    path = Path(path).expanduser()
    obj = _read_json(path)
    category_id, source_names = _person_category(obj, path)
    known = joint_set_by_name(joint_set) if joint_set else identify_joint_set(source_names)
    if known is None:
        raise DatasetError(
            f'{path}: keypoint names {list(source_names)} are not a known joint set '
            '(COCO 17, CrowdPose 14, MPII 16, LSP 14); name one with joint_set:')
    if len(known.names) != len(source_names):
        raise DatasetError(f'{path}: joint set {known.name} has {len(known.names)} keypoints, '
                           f'the file {len(source_names)}')
    images = {img['id']: img for img in obj['images'] if isinstance(img, Mapping)
              and 'id' in img and 'file_name' in img}
    root = _images_root(path, images_dir, [img['file_name'] for img in images.values()])
    by_image: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    for ann in obj['annotations']:
        if isinstance(ann, Mapping) and ann.get('category_id', category_id) == category_id:
            by_image[ann.get('image_id')].append(ann)
    skipped = SkipCounter()
    orphans = set(by_image) - set(images)
    for _ in orphans:
        skipped.add('annotations of an image missing from "images"', str(path))
    frames: list[FrameLabel] = []
    for image_id, image in images.items():
        where = f'{path} image {image_id} ({image["file_name"]})'
        anns = by_image.get(image_id, [])
        if any(ann.get('iscrowd') for ann in anns) and not keep_crowd:
            skipped.add('image with a crowd region (unlabelled people; keep_crowd keeps it)',
                        where)
            continue
        try:
            people = _people(anns, len(source_names), skipped, where)
        except DatasetError as err:
            skipped.add(str(err).split(':')[0], f'{where}: {err}')
            continue
        if not people and not keep_empty:
            skipped.add('image without people (keep_empty keeps negatives)', where)
            continue
        frames.append(FrameLabel(index=len(frames), image=str(image['file_name']),
                                 people=tuple(people)))
    info = DatasetInfo(name=name or path.stem, joint_names=known.names,
                       num_frames=len(frames),
                       description=f'COCO-style keypoints ({known.name}) from {path}')
    LOG.info('%s: %d images (%d skipped: %s)', info.name, len(frames), skipped.total,
             dict(skipped.counts))
    return FrameSource(info, frames, root, skipped, where=str(path))


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        with path.open(encoding='utf-8') as fh:
            obj = json.load(fh)
    except OSError as err:
        raise DatasetError(f'{path}: cannot read ({err})') from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f'{path}: not valid JSON ({err})') from err
    if not isinstance(obj, Mapping):
        raise DatasetError(f'{path}: a COCO keypoint file is a JSON object')
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(obj.get(k), list)]
    if missing:
        raise DatasetError(f'{path}: not a COCO-style keypoint file: no {missing} list(s) '
                           f'(found keys {sorted(obj)[:10]})')
    return obj


def _person_category(obj: Mapping[str, Any], path: Path) -> tuple[Any, tuple[str, ...]]:
    with_keypoints = [c for c in obj['categories']
                      if isinstance(c, Mapping) and isinstance(c.get('keypoints'), list)
                      and c['keypoints']]
    if not with_keypoints:
        raise DatasetError(f'{path}: no category lists keypoint names (a detection-only '
                           'file?); person keypoint annotations are needed')
    people = [c for c in with_keypoints if c.get('name') == 'person'] or with_keypoints
    category = people[0]
    return category.get('id'), tuple(str(n) for n in category['keypoints'])


def _images_root(path: Path, images_dir: str | Path | None, files: Sequence[str]) -> Path:
    if images_dir is not None:
        root = Path(images_dir).expanduser()
        if not root.is_dir():
            raise DatasetError(f'{root}: images folder does not exist')
        return root
    split = path.stem.rsplit('_', 1)[-1]
    candidates = [path.parent.parent / split, path.parent / 'images',
                  path.parent.parent / 'images', path.parent]
    probe = next(iter(files), None)
    for root in candidates:
        if root.is_dir() and (probe is None or (root / probe).is_file()):
            return root
    raise DatasetError(f'{path}: cannot find the images (tried {[str(c) for c in candidates]} '
                       f'for {probe}); pass the folder with images:')


def _people(anns: Sequence[Mapping[str, Any]], num_joints: int, skipped: SkipCounter,
            where: str) -> list[PersonLabel]:
    people = []
    for ann in anns:
        if ann.get('iscrowd'):
            continue  # a crowd region is not a person
        keypoints = None
        raw = ann.get('keypoints')
        if raw:
            values = np.asarray(raw, dtype=np.float64) if _numeric(raw) else None
            if values is None or values.ndim != 1 or values.size != 3 * num_joints:
                raise DatasetError(f'wrong keypoint count: {len(raw)} numbers, expected '
                                   f'{3 * num_joints}')
            if not np.isfinite(values).all():
                raise DatasetError('non-finite keypoints: NaN or infinite values')
            keypoints = values.reshape(num_joints, 3)
            if not (keypoints[:, 2] > 0).any():
                keypoints = None  # num_keypoints == 0: the box is the only label
        bbox = _bbox(ann.get('bbox'), skipped, where)
        if keypoints is None and bbox is None:
            skipped.add('person with neither keypoints nor a box (dropped)', where)
            continue
        people.append(PersonLabel(track_id=int(ann.get('track_id', -1)), bbox=bbox,
                                  keypoints_2d=keypoints))
    return people


def _numeric(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, (int, float)) for v in values)


def _bbox(raw: Any, skipped: SkipCounter, where: str) -> np.ndarray | None:
    if raw is None:
        return None
    if not _numeric(raw) or len(raw) != 4 or not all(math.isfinite(v) for v in raw) \
            or raw[2] < 0 or raw[3] < 0:
        skipped.add('bad bbox (field dropped)', where)
        return None
    x, y, w, h = (float(v) for v in raw)
    return np.array([x, y, x + w, y + h])
