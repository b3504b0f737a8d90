"""Mixing several training sources by weight, and the sampler for one or many GPUs.

:class:`MixedDataset` defines an **epoch** as ``epoch_length`` samples (default: the sum of
the sources' lengths). Source k gets ``round(w_k / sum(w) * epoch_length)`` of them (largest
remainders, so the counts add up exactly), spread over the epoch in a random order drawn from
``(seed, epoch)``. Within a source, samples are read along an endless sequence of random
permutations of its frames: epoch e continues where epoch e - 1 stopped, so a small weight on
a large dataset still visits every frame before repeating one.

:class:`EpochSampler` splits an epoch over DDP ranks like ``DistributedSampler``: the epoch's
positions (shuffled or not), padded by wrapping to a multiple of ``world_size``, rank r taking
positions r, r + W, r + 2W, ... Every rank sees the same number of samples, and together they
see the whole epoch. It yields ``(epoch, position)`` pairs, so the datasets need no shared
epoch state (safe with persistent DataLoader workers).

Everything is a pure function of (seed, epoch, position): a resumed run replays its epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import os
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch.utils.data

from romp_ros.data.augment import AugmentConfig
from romp_ros.data.dataset_format import DatasetError
from romp_ros.data.sample import SkippedSample, TrainingSample
from romp_ros.data.sources import SourceSpec, open_source
from romp_ros.data.training_dataset import TrainingDataset, split_index


def _generator(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def split_counts(weights: Sequence[float], total: int) -> np.ndarray:
    """(K,) int64 counts proportional to ``weights`` summing exactly to ``total``."""
    share = np.asarray(weights, dtype=np.float64)
    share = share / share.sum() * total
    counts = np.floor(share).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.argsort(-(share - counts), kind='stable')  # largest fractions first
    counts[order[:remainder]] += 1
    return counts


@dataclass(frozen=True)
class EpochPlan:
    """Which source and which of its frames each position of an epoch reads.

    Attributes:
        dataset: (L,) int64 source of each position.
        index: (L,) int64 frame of that source.
    """

    dataset: np.ndarray
    index: np.ndarray


class MixedDataset(torch.utils.data.Dataset):
    """Several :class:`TrainingDataset` mixed by sampling weight."""

    def __init__(self, datasets: Sequence[TrainingDataset], weights: Sequence[float], *,
                 epoch_length: int | None = None, seed: int = 0) -> None:
        """Mix ``datasets``.

        Raises:
            DatasetError: no dataset, a weight count mismatch, a non-positive weight or
                epoch length.
        """
        if not datasets:
            raise DatasetError('no training data: give at least one source')
        if len(weights) != len(datasets):
            raise DatasetError(f'{len(weights)} weights for {len(datasets)} datasets')
        if not all(math.isfinite(w) and w > 0 for w in weights):
            raise DatasetError(f'sampling weights {list(weights)} must be positive numbers')
        self.datasets = list(datasets)
        self.weights = tuple(float(w) for w in weights)
        self.epoch_length = int(epoch_length if epoch_length is not None
                                else sum(len(d) for d in datasets))
        if self.epoch_length <= 0:
            raise DatasetError(f'epoch_length={epoch_length!r} must be positive')
        self.seed = int(seed)
        self.counts = split_counts(self.weights, self.epoch_length)
        self._epoch = 0
        self._plans: dict[int, EpochPlan] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """The sources' names."""
        return tuple(d.name for d in self.datasets)

    def __len__(self) -> int:
        return self.epoch_length

    def set_epoch(self, epoch: int) -> None:
        """Make plain indices read ``epoch``."""
        self._epoch = int(epoch)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """(L,) int64 positions in visiting order: 0, 1, ... (the plan is already random)."""
        return np.arange(self.epoch_length, dtype=np.int64)

    def plan(self, epoch: int) -> EpochPlan:
        """The epoch's sources and frames (cached; a pure function of seed and epoch)."""
        if epoch not in self._plans:
            if len(self._plans) > 2:
                self._plans.clear()
            self._plans[epoch] = self._make_plan(epoch)
        return self._plans[epoch]

    def _make_plan(self, epoch: int) -> EpochPlan:
        slots = np.repeat(np.arange(len(self.datasets)), self.counts)
        slots = slots[_generator(self.seed, epoch, 0).permutation(len(slots))]
        index = np.empty(len(slots), dtype=np.int64)
        for k, dataset in enumerate(self.datasets):
            where = np.nonzero(slots == k)[0]
            start = epoch * int(self.counts[k])
            index[where] = self._stream(k, len(dataset), start, len(where))
        return EpochPlan(dataset=slots.astype(np.int64), index=index)

    def _stream(self, k: int, size: int, start: int, count: int) -> np.ndarray:
        """Positions [start, start + count) of source k's endless permutation sequence."""
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            cycle, offset = divmod(start + done, size)
            perm = _generator(self.seed, 1, k, cycle).permutation(size)
            take = min(size - offset, count - done)
            out[done:done + take] = perm[offset:offset + take]
            done += take
        return out

    def __getitem__(self, index: 'int | tuple[int, int]') -> TrainingSample | SkippedSample:
        """The sample at ``index`` (or ``(epoch, index)``) of the epoch."""
        epoch, position = split_index(index, self._epoch)
        if not 0 <= position < self.epoch_length:
            raise IndexError(f'position {position} out of the epoch (0..{self.epoch_length - 1})')
        plan = self.plan(epoch)
        dataset = self.datasets[int(plan.dataset[position])]
        return dataset[(epoch, int(plan.index[position]))]


class EpochSampler(torch.utils.data.Sampler):
    """(epoch, position) pairs of this rank's share of an epoch (see the module docs)."""

    def __init__(self, dataset: torch.utils.data.Dataset, *, rank: int | None = None,
                 world_size: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        """Split ``dataset`` over ranks.

        Args:
            rank, world_size: default: from ``torch.distributed`` when initialised, else from
                the RANK / WORLD_SIZE environment variables torchrun sets, else 0 / 1.
            shuffle: shuffle the positions per (seed, epoch); not needed for a
                MixedDataset, whose epoch is already in random order.
            drop_last: drop the tail instead of padding it by wrapping.
        """
        self.dataset = dataset
        default_rank, default_world = _process_group()
        self.rank = default_rank if rank is None else int(rank)
        self.world_size = default_world if world_size is None else int(world_size)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} of world size {self.world_size} is invalid')
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (also for the dataset's plain indices)."""
        self.epoch = int(epoch)
        if hasattr(self.dataset, 'set_epoch'):
            self.dataset.set_epoch(self.epoch)

    def _total(self) -> int:
        size = len(self.dataset)
        if self.drop_last:
            return size // self.world_size * self.world_size
        return math.ceil(size / self.world_size) * self.world_size

    def __len__(self) -> int:
        return self._total() // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        size = len(self.dataset)
        order = (_generator(self.seed, 2, self.epoch).permutation(size) if self.shuffle
                 else np.arange(size))
        total = self._total()
        if total > size:
            order = np.resize(order, total)  # wraps around
        for position in order[self.rank:total:self.world_size]:
            yield self.epoch, int(position)


def _process_group() -> tuple[int, int]:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))


def open_training_data(sources: Sequence['SourceSpec | str | Mapping[str, Any]'],
                       augment: AugmentConfig, *, seed: int = 0,
                       epoch_length: int | None = None) -> MixedDataset:
    """Open every source of a training config and mix them by their weights.

    Example config (the ``data`` section)::

        data:
          epoch_length: 20000
          sources:
            - {path: datasets/synthetic, weight: 0.7}
            - {path: coco/annotations/person_keypoints_train2017.json, weight: 0.3}

    Raises:
        DatasetError: an unusable source (the message names it) or no source at all.
    """
    specs = [SourceSpec.from_config(entry) for entry in sources]
    if not specs:
        raise DatasetError('no training data: data.sources is empty')
    datasets = []
    for number, spec in enumerate(specs):
        source = open_source(spec)
        datasets.append(TrainingDataset(source, augment, seed=seed + 1000003 * number,
                                        name=spec.name or source.info.name,
                                        joint_set=spec.joint_set))
    return MixedDataset(datasets, [s.weight for s in specs], epoch_length=epoch_length,
                        seed=seed)
