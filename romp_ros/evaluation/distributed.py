"""Share an evaluation's bags across ``torchrun`` processes and gather the results on rank 0.

``torchrun --nproc_per_node N -m romp_ros.cli evaluate --bag A --bag B ...`` starts N copies;
process r evaluates the bags (or dataset sequences) with index i where ``i % N == r``. Each
process sends its raw session results (:class:`~romp_ros.evaluation.records.SessionResult`:
per-person columns and counts, not averages) to rank 0 over a CPU ``gloo`` group, which puts
them back in input order and summarises them exactly as one process would: the merged numbers
equal a single process's, bit for bit.

A bad input on any process is reported by every process (the one of the lowest input index),
so the job fails as a whole with one line per process and none of them hangs.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
from typing import Any

from romp_ros.evaluation.errors import EvaluationInputError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # this evaluation started the process group (and ends it)


def context_from_env() -> DistributedContext:
    """Join the torchrun job of the environment (a gloo group), or describe one process.

    The evaluation only exchanges Python objects, so the group is CPU ``gloo`` whatever the
    device the model runs on; an existing process group (e.g. the training's) is reused.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistributedContext()
    import torch.distributed as dist
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend='gloo')
    context = DistributedContext(rank=dist.get_rank(),
                                 local_rank=int(os.environ.get('LOCAL_RANK', '0')),
                                 world_size=dist.get_world_size(), owns_group=owns_group)
    LOG.info('evaluation rank %d of %d', context.rank, context.world_size)
    return context


def gather_to_main(local: list[tuple[int, Any]], error: tuple[int, str] | None,
                   context: DistributedContext) -> list[tuple[int, Any]] | None:
    """Collect every process's (index, result) pairs on rank 0.

    Args:
        local: this process's results, keyed by input index.
        error: (input index, message) of this process's bad input, or None.
        context: from :func:`context_from_env`.

    Returns:
        On rank 0 all pairs (any order); None on the other ranks.

    Raises:
        EvaluationInputError: on every rank, when any rank reported an error (the one of the
            lowest input index).
    """
    if context.world_size <= 1:
        if error is not None:
            raise EvaluationInputError(error[1])
        return local
    import torch.distributed as dist
    group = _cpu_group(dist)
    errors: list[Any] = [None] * context.world_size
    dist.all_gather_object(errors, error, group=group)
    reported = sorted(e for e in errors if e is not None)
    if reported:
        raise EvaluationInputError(reported[0][1])
    gathered: list[Any] = [None] * context.world_size if context.rank == 0 else None
    dist.gather_object(local, gathered, dst=0, group=group)
    if context.rank != 0:
        return None
    return [pair for part in gathered for pair in part]


def release(context: DistributedContext) -> None:
    """End the process group this evaluation started, once every process is done with it.

    A process that exits with its gloo group alive aborts in the group's C++ destructor
    ("terminate called without an active exception"), which torchrun reports as a failure.
    """
    if not context.owns_group:
        return
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()  # rank 0 may still be writing the report: nobody leaves before it
        dist.destroy_process_group()


def _cpu_group(dist: Any) -> Any:
    """The default group when it is gloo, else a gloo group over the same processes."""
    if dist.get_backend() == 'gloo':
        return None
    return dist.new_group(backend='gloo')
