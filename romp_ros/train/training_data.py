"""The data side of a run: training set, label body model, fixed batch, held-out set.

The mixed training set, the body model the labels' SMPL parameters belong to, a fixed batch
for prediction images, and the held-out set for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

from torch import nn

from romp_ros.core.body.model_files import ModelFilesError, load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel, SMPLAWithInfants
from romp_ros.data.dataset_format import DatasetError, SkipCounter
from romp_ros.data.mixing import MixedDataset, open_training_data
from romp_ros.data.sample import SkippedSample, TrainingBatch, collate_samples
from romp_ros.data.sources import SourceSpec, open_source
from romp_ros.train.config import TrainConfig, TrainConfigError, augment_config

LOG = logging.getLogger(__name__)

FIXED_BATCH_SIZE = 4  # images shown with their predictions in TensorBoard


@dataclass
class TrainingData:
    """Everything the loop reads.

    Attributes:
        dataset: the mixed, augmented training set (indexed by (epoch, position)).
        fixed_batch: a few training samples of epoch 0, always the same, for images of the
            predictions during training.
        validation: the held-out source (frames with ground truth), or None.
    """

    dataset: MixedDataset
    fixed_batch: TrainingBatch | None
    validation: object | None


def build_training_data(config: TrainConfig) -> TrainingData:
    """Open and mix the sources of ``config.data`` (TrainConfigError naming a bad one)."""
    try:
        dataset = open_training_data(
            [_with_models_dir(spec, config) for spec in config.data.sources],
            augment_config(config), seed=config.seed,
            epoch_length=config.data.epoch_length or None)
    except DatasetError as err:
        raise TrainConfigError(f'training data: {err}') from err
    validation = None
    if config.validation.path:
        try:
            validation = open_source(SourceSpec(path=config.validation.path,
                                                models_dir=config.data.models_dir))
        except DatasetError as err:
            raise TrainConfigError(f'validation.path: {err}') from err
    return TrainingData(dataset=dataset, fixed_batch=_fixed_batch(dataset),
                        validation=validation)


def label_models_dir(config: TrainConfig) -> Path:
    """The prepared body models the labels' SMPL parameters belong to.

    ``data.models_dir`` when set, else the ``body_model/`` folder a generic dataset ships
    with (``romp-ros synth`` writes one).
    """
    if config.data.models_dir:
        return Path(config.data.models_dir).expanduser()
    for spec in config.data.sources:
        candidate = Path(spec.path).expanduser() / 'body_model'
        if candidate.is_dir():
            return candidate
    raise TrainConfigError(
        'no body model for the SMPL labels and losses: give --models-dir DIR (a folder '
        'written by `romp-ros prepare-models`), or train on a dataset that ships one '
        '(`romp-ros synth` writes DATASET/body_model)')


def load_label_body_model(config: TrainConfig) -> nn.Module:
    """The body model of the losses: SMPL for ROMP; SMPL-A (with SMIL infants) for BEV."""
    models_dir = label_models_dir(config)
    try:
        if config.model.name == 'romp':
            return BodyModel(load_body_model_arrays(models_dir, 'smpl'))
        try:
            smil = load_body_model_arrays(models_dir, 'smil')
        except ModelFilesError:
            smil = None
        return SMPLAWithInfants(load_body_model_arrays(models_dir, 'smpla'), smil)
    except ModelFilesError as err:
        raise TrainConfigError(f'body model for training: {err}') from err


def _with_models_dir(spec: SourceSpec, config: TrainConfig) -> SourceSpec:
    if spec.models_dir or not config.data.models_dir:
        return spec
    from dataclasses import replace
    return replace(spec, models_dir=config.data.models_dir)


def _fixed_batch(dataset: MixedDataset) -> TrainingBatch | None:
    samples = []
    skipped = SkipCounter()
    for position in range(min(len(dataset), 4 * FIXED_BATCH_SIZE)):
        sample = dataset[(0, position)]
        if isinstance(sample, SkippedSample):
            skipped.add(sample.reason)
            continue
        samples.append(sample)
        if len(samples) == FIXED_BATCH_SIZE:
            break
    return collate_samples(samples) if samples else None
