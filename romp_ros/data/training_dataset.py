"""The torch training dataset of one source: frames -> augmented :class:`TrainingSample`.

Determinism: the augmentation of a sample is drawn from a generator seeded with
``(seed, epoch, index)``, nothing else. DDP ranks, DataLoader workers (any number, persistent
or not) and a run resumed at epoch e therefore see exactly the same sample for the same index.
The epoch comes either from :meth:`TrainingDataset.set_epoch` or, worker-safe even with
persistent workers, from the index itself: ``dataset[(epoch, index)]``, which is what
``romp_ros.data.mixing.EpochSampler`` yields.

Bad samples are returned as :class:`~romp_ros.data.sample.SkippedSample` with a short reason
('unreadable image', 'wrong keypoint count', 'non-finite label', ...), counted in
:attr:`TrainingDataset.skipped` (first of each reason logged with its file) and again by
``collate_samples`` in ``TrainingBatch.skipped``: nothing is dropped silently.
"""

from __future__ import annotations

import logging

import numpy as np
import torch.utils.data

from romp_ros.data.augment import AugmentConfig, LabelError, augment
from romp_ros.data.dataset_format import DatasetError, SkipCounter
from romp_ros.data.joint_sets import JointMapping, mapping_for_names
from romp_ros.data.sample import SkippedSample, TrainingSample
from romp_ros.data.sources import Source

LOG = logging.getLogger(__name__)

def split_index(index: 'int | tuple[int, int]', epoch: int) -> tuple[int, int]:
    """(epoch, index) from a plain index (with the current ``epoch``) or an (epoch, index)."""
    if isinstance(index, tuple):
        if len(index) != 2:
            raise TypeError(f'index must be an int or (epoch, index), got {index!r}')
        return int(index[0]), int(index[1])
    return epoch, int(index)


def sample_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one sample: a function of (seed, epoch, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index, stream]))


class TrainingDataset(torch.utils.data.Dataset):
    """Augmented samples of one source.

    Attributes:
        source: the frames (any loader of ``romp_ros.data.sources``).
        config: the augmentation.
        seed: base seed of the augmentation.
        name: dataset name carried by every sample.
        mapping: the source's joints -> the 71 training joints.
        skipped: samples skipped in this process, by reason.
    """

    def __init__(self, source: Source, config: AugmentConfig, *, seed: int = 0,
                 name: str = '', joint_set: str = '') -> None:
        """Wrap ``source``.

        Args:
            joint_set: a known joint set for the source's keypoints when their names are
                not recognised (see ``joint_sets.mapping_for_names``).

        Raises:
            DatasetError: an empty source, or keypoint names that map to no training joint.
        """
        self.source = source
        self.config = config
        self.seed = int(seed)
        self.name = name or source.info.name
        if len(source) == 0:
            raise DatasetError(f'{self.name}: the dataset is empty (no frame to train on)')
        try:
            self.mapping: JointMapping = mapping_for_names(source.info.joint_names, joint_set)
        except ValueError as err:
            raise DatasetError(f'{self.name}: {err}') from err
        self.skipped = SkipCounter()
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    @property
    def epoch(self) -> int:
        """The epoch plain integer indices refer to."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make plain indices draw the augmentation of ``epoch``."""
        self._epoch = int(epoch)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """(L,) int64 the frames in the order epoch ``epoch`` visits them (seeded shuffle)."""
        return sample_rng(self.seed, epoch, 0, stream=1).permutation(len(self.source))

    def __getitem__(self, index: 'int | tuple[int, int]') -> TrainingSample | SkippedSample:
        """The sample of ``index`` (or of ``(epoch, index)``), or why it was skipped."""
        epoch, position = split_index(index, self._epoch)
        if not 0 <= position < len(self.source):
            raise IndexError(f'{self.name}: index {position} out of range '
                             f'(0..{len(self.source) - 1})')
        frame = self.source[position]
        try:
            where = str(self.source.image_path(frame))
        except (TypeError, ValueError):
            where = str(frame.image)
        where = f'{where}#{frame.index}'
        try:
            image = self.source.load_image(frame)
        except (DatasetError, OSError) as err:
            return self._skip('unreadable image', where, err)
        rng = sample_rng(self.seed, epoch, position)
        try:
            return augment(image, frame, self.mapping, self.config, rng, dataset=self.name,
                           source=where)
        except LabelError as err:
            return self._skip(str(err).split(':')[0], where, err)
        except ValueError as err:  # e.g. an image of an unexpected layout
            return self._skip('unusable image', where, err)

    def _skip(self, reason: str, where: str, err: Exception) -> SkippedSample:
        self.skipped.add(reason, f'{where}: {err}')
        return SkippedSample(reason=reason, source=where)
