"""Write rendered synthetic scenes as a dataset folder in the generic format.

The folder (``docs/dataset_format.md``) is self-contained: besides images and labels it
holds the body model the labels were made with, in ``body_model/`` (a prepared models
directory):

* without ``models_dir``: the synthetic SMPL-format body (``write_synthetic_smpl_files``,
  seed 0), prepared by ``prepare_models`` into ``body_model/`` (SMPL and SMPL-A, about 40 MB);
* with ``models_dir`` (the user's prepared real SMPL): those files are licence-gated, so they
  are NOT copied by default: ``dataset.json`` records the models directory's absolute path in
  ``body_model`` instead. ``copy_body_model=True`` copies the prepared files into
  ``body_model/`` for private use (do not share such a dataset).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
import logging
import os
from pathlib import Path
import shutil
import tempfile

from tqdm import tqdm

from romp_ros.core.body.model_files import MANIFEST_NAME, MODEL_FILE_NAMES, available_kinds
from romp_ros.data.dataset_format import (
    BODY_MODEL_DIR,
    DatasetError,
    DatasetInfo,
    DatasetWriter,
)
from romp_ros.synthetic.scene_spec import SceneSpec
from romp_ros.synthetic.scenes import SceneGenerator, body_model_for_scenes, torch_device

LOG = logging.getLogger(__name__)

SYNTHETIC_BODY_SEED = 0  # every synthetic dataset uses the same synthetic body


@dataclass(frozen=True)
class SynthReport:
    """What :func:`write_synthetic_dataset` wrote.

    Attributes:
        root: the dataset folder.
        frames: frames written.
        people: labelled people in all frames.
        sequences: sequences (1 per frame without ``spec.sequence``).
        body_model: ``dataset.json``'s ``body_model`` entry (relative folder or absolute path).
        joint_names: the label joints (71 with the extra regressors, else 24).
    """

    root: Path
    frames: int
    people: int
    sequences: int
    body_model: str
    joint_names: tuple[str, ...]


def write_synthetic_dataset(out: str | os.PathLike, spec: SceneSpec, frames: int, seed: int,
                            models_dir: str | os.PathLike | None = None, *,
                            image_format: str = 'png', jpeg_quality: int = 95,
                            copy_body_model: bool = False, name: str = 'synthetic',
                            description: str = '', device: str = 'cpu',
                            progress: bool = True) -> SynthReport:
    """Render ``frames`` synthetic frames into a new dataset folder ``out``.

    Args:
        out: the dataset folder; it must not exist or be empty.
        spec: what to render.
        frames: number of frames (> 0).
        seed: random seed; identical arguments give identical images and labels.
        models_dir: a prepared models directory to take the body model from (the real SMPL);
            None for the synthetic SMPL-format body (written into the dataset).
        image_format: 'png' (lossless) or 'jpg'.
        jpeg_quality: JPEG quality when ``image_format='jpg'``.
        copy_body_model: with ``models_dir``: copy its prepared files into the dataset
            (licence-gated files: for private use only).
        name: the dataset's name in ``dataset.json``.
        description: free text for ``dataset.json`` (the spec and seed are appended).
        device: where to pose and render ('cpu', 'cuda', ...).
        progress: show a tqdm progress bar.

    Raises:
        DatasetError: ``out`` holds files, a bad frame count or image format.
        ModelFilesError: ``models_dir`` lacks a usable body model.
        SceneSpecError: never for a valid ``spec`` (it is checked when built).
    """
    root = Path(out).expanduser()
    if frames <= 0:
        raise DatasetError(f'--frames {frames}: the number of frames must be positive')
    if image_format not in ('png', 'jpg'):
        raise DatasetError(f"image format {image_format!r}; choose 'png' or 'jpg'")
    torch_device(device)  # fails before anything is written
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(f'{root} exists and is not an empty folder; choose a new output '
                           'folder (datasets are never overwritten)')
    if models_dir is not None:
        source = Path(models_dir).expanduser().resolve()
        body = body_model_for_scenes(source)  # fails before anything is written
    root.mkdir(parents=True, exist_ok=True)
    if models_dir is None:
        body_dir = root / BODY_MODEL_DIR
        _write_synthetic_body(body_dir)
        body_entry = BODY_MODEL_DIR
        body = body_model_for_scenes(body_dir)
    elif copy_body_model:
        _copy_prepared(source, root / BODY_MODEL_DIR)
        body_entry = BODY_MODEL_DIR
        LOG.warning('copied the body model of %s into %s: if it is the licence-gated SMPL, '
                    'do not share this dataset', source, root / BODY_MODEL_DIR)
    else:
        body_entry = str(source)
        LOG.info('labels made with the body model in %s; its path is recorded in '
                 'dataset.json (not copied: SMPL is licence-gated)', source)

    generator = SceneGenerator(spec, body, device=device)
    provenance = json.dumps({'seed': seed, 'frames': frames, 'spec': asdict(spec)},
                            sort_keys=True, separators=(',', ':'))
    info = DatasetInfo(name=name, joint_names=generator.joint_names,
                       fps=spec.fps if spec.sequence else 0.0, body_model=body_entry,
                       description=(f'{description} ' if description else '')
                       + f'romp_ros synthetic scenes {provenance}')
    people = 0
    sequences = set()
    with DatasetWriter(root, info, image_format=image_format,
                       jpeg_quality=jpeg_quality) as writer:
        for frame in tqdm(generator.frames(frames, seed), total=frames, desc='synth',
                          unit='frame', disable=not progress):
            writer.add(frame.image, [p.label() for p in frame.people],
                       camera=frame.camera_label(), stamp_ns=frame.stamp_ns,
                       sequence=frame.sequence)
            people += len(frame.people)
            sequences.add(frame.sequence or frame.index)
    LOG.info('wrote %d frames with %d people to %s', frames, people, root)
    return SynthReport(root=root, frames=frames, people=people, sequences=len(sequences),
                       body_model=body_entry, joint_names=generator.joint_names)


def _write_synthetic_body(body_dir: Path) -> None:
    """The synthetic SMPL-format body, prepared (SMPL + SMPL-A, 71 joints) into body_dir."""
    from romp_ros.core.body.prepare import prepare_models
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files
    with tempfile.TemporaryDirectory(prefix='romp_ros_synth_body_') as tmp:
        files = write_synthetic_smpl_files(tmp, seed=SYNTHETIC_BODY_SEED)
        # no SMIL: synthetic children stay below BEV's infant threshold
        prepare_models(smpl=files.smpl_pkl, extra=files.source_dir, models_dir=body_dir,
                       progress=False)


def _copy_prepared(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for kind in available_kinds(source):
        shutil.copy2(source / MODEL_FILE_NAMES[kind], target / MODEL_FILE_NAMES[kind])
    if (source / MANIFEST_NAME).is_file():
        shutil.copy2(source / MANIFEST_NAME, target / MANIFEST_NAME)
