"""Process-group set-up for torchrun (DistributedDataParallel), and single-process fallbacks.

``torchrun --nproc_per_node N -m romp_ros.cli train ...`` starts N copies of the same command
with RANK, LOCAL_RANK and WORLD_SIZE in the environment; several machines join through
torchrun's rendezvous (``--nnodes``, ``--rdzv-backend c10d --rdzv-endpoint HOST:PORT``).
Without those variables the run is one ordinary process. torch does all process management;
there is none of our own.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os

import torch
import torch.distributed as dist

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 writes files and logs).
        local_rank: rank on this machine (selects the CUDA device).
        world_size: number of processes.
        device: this process's device.
        backend: 'nccl', 'gloo', or '' when not distributed.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device('cpu')
    backend: str = ''

    @property
    def is_distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints, logs and events."""
        return self.rank == 0


def init_distributed(device: str = 'auto') -> DistributedContext:
    """Join the torchrun job described by the environment, or describe a single process.

    Args:
        device: 'auto' (CUDA when available), 'cpu' or 'cuda'. Under torchrun each process
            uses the GPU of its LOCAL_RANK; the backend is NCCL on CUDA, gloo on CPU.

    Raises:
        RuntimeError: 'cuda' requested without CUDA, or more local processes than GPUs.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    use_cuda = device == 'cuda' or (device == 'auto' and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available here; "
                           "use --device cpu")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f'LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} '
                               'CUDA device(s): lower --nproc_per_node')
        torch.cuda.set_device(local_rank)
        dev = torch.device('cuda', local_rank)
    else:
        dev = torch.device('cpu')
    if world_size == 1:
        return DistributedContext(device=dev)
    backend = 'nccl' if use_cuda else 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    LOG.info('rank %d/%d (local %d) on %s, backend %s', rank, world_size, local_rank, dev,
             backend)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size,
                              device=dev, backend=backend)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (a no-op for a single process)."""
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum of ``value`` over all processes (the value itself for one process)."""
    if not context.is_distributed:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def barrier(context: DistributedContext) -> None:
    """Wait for every process (a no-op for one)."""
    if context.is_distributed:
        dist.barrier()
