"""Which samples make global batch k, and which share of it each process loads.

The order is a pure function of (seed, epoch) given by the dataset, so a resumed run picks up
at exactly the batch where it stopped, and a torchrun job sees the same global batches as one
process: global batch k is ``order[k*B:(k+1)*B]`` (B = the global batch size) and rank r
loads its r-th contiguous slice of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
from torch.utils.data import Sampler


class OrderedDataset(Protocol):
    """What the plan needs from a training dataset."""

    def __len__(self) -> int: ...

    def epoch_order(self, epoch: int) -> np.ndarray:
        """(L,) int64 dataset indices in the order epoch ``epoch`` visits them."""


@dataclass(frozen=True)
class BatchPlan:
    """The split of an epoch order into global batches and per-rank shares.

    Attributes:
        global_batch: samples per optimizer step over all processes.
        world_size: processes; ``global_batch`` must be a multiple of it.
        rank: this process.
    """

    global_batch: int
    world_size: int = 1
    rank: int = 0

    def __post_init__(self) -> None:
        if self.global_batch % self.world_size:
            raise ValueError(f'the global batch size {self.global_batch} is not a multiple of '
                             f'the {self.world_size} processes; choose data.batch_size '
                             f'divisible by --nproc_per_node')

    @property
    def local_batch(self) -> int:
        """Samples this process loads per step."""
        return self.global_batch // self.world_size

    def batches_per_epoch(self, dataset_len: int) -> int:
        """Whole global batches in one epoch (the remainder of an epoch is dropped)."""
        return dataset_len // self.global_batch

    def position(self, steps_done: int, dataset_len: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the next step after ``steps_done`` steps."""
        per_epoch = self.batches_per_epoch(dataset_len)
        if per_epoch == 0:
            raise ValueError(f'the dataset has {dataset_len} samples, fewer than one global '
                             f'batch of {self.global_batch}: lower data.batch_size')
        return divmod(steps_done, per_epoch)

    def local_indices(self, order: np.ndarray, batch_in_epoch: int) -> np.ndarray:
        """This rank's dataset indices for one global batch of an epoch order."""
        start = batch_in_epoch * self.global_batch + self.rank * self.local_batch
        return order[start:start + self.local_batch]


class PlannedSampler(Sampler[tuple[int, int]]):
    """Yields this rank's (epoch, index) keys for steps ``steps_done + 1 ...``, forever.

    Used with ``DataLoader(batch_size=plan.local_batch, drop_last=True)``: each consecutive
    chunk of ``local_batch`` keys is this rank's share of the next global batch. The epoch
    travels with each index so that augmentation, which depends on (seed, epoch, index), is
    the same in any worker process and after a resume.
    """

    def __init__(self, dataset: OrderedDataset, plan: BatchPlan, steps_done: int) -> None:
        self.dataset = dataset
        self.plan = plan
        self.steps_done = steps_done

    def __iter__(self) -> Iterator[tuple[int, int]]:
        length = len(self.dataset)
        epoch, batch = self.plan.position(self.steps_done, length)
        per_epoch = self.plan.batches_per_epoch(length)
        while True:
            order = np.asarray(self.dataset.epoch_order(epoch), dtype=np.int64)
            for b in range(batch, per_epoch):
                yield from ((epoch, int(i)) for i in self.plan.local_indices(order, b))
            epoch, batch = epoch + 1, 0
