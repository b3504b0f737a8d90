"""The runtime interface: what every network runner provides, and its error."""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from romp_ros.core.config import RUNTIME_NAMES
from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.romp_net import ROMPMaps

__all__ = ['RUNTIME_NAMES', 'NetworkRunner', 'RuntimeSetupError']


class RuntimeSetupError(RuntimeError):
    """A runtime could not be set up: unknown, not installed, wrong device, bad model file."""


class NetworkRunner(abc.ABC):
    """Runs one ROMP or BEV network; every output is a torch tensor on the runner's device.

    Attributes:
        name: the runtime ('torch', 'onnxruntime', 'openvino').
        model_name: 'romp' or 'bev'.
        precision: the precision actually in force ('fp32', 'fp16', 'bf16', 'int8').
    """

    name: str = ''
    model_name: str = ''
    precision: str = 'fp32'

    @abc.abstractmethod
    def maps(self, images: Tensor) -> ROMPMaps | BEVMaps:
        """The dense maps of (B, S, S, 3) float32 RGB 0..255 images, on the runner's device.

        The same outputs as ``ROMPNet.forward`` / ``BEVNet.forward_maps``, in float32.
        """

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        """BEV only: (N, 146) parameters of N people (``BEVNet.regress_params``)."""
        raise NotImplementedError(f'{self.model_name} has no per-person regression')

    def describe(self) -> str:
        """One line for logs and diagnostics, e.g. 'onnxruntime (CPUExecutionProvider, fp32)'."""
        return f'{self.name} ({self.precision})'


def in_static_batches(run, images: Tensor, static_batch: int) -> list[Tensor]:
    """Call ``run`` (images -> list of (b, ...) tensors) in chunks of a graph's static batch.

    A graph exported with a fixed batch b (TensorRT-friendly) still serves any number of
    images: the last chunk is padded with blank images whose outputs are dropped.
    """
    count = int(images.shape[0])
    if static_batch <= 0 or count == static_batch:
        return run(images)
    parts: list[list[Tensor]] = []
    for start in range(0, count, static_batch):
        chunk = images[start:start + static_batch]  # (<= b, S, S, 3)
        real = int(chunk.shape[0])
        if real < static_batch:
            pad = chunk.new_zeros((static_batch - real, *chunk.shape[1:]))
            chunk = torch.cat([chunk, pad], dim=0)
        parts.append([out[:real] for out in run(chunk)])
    return [torch.cat(outs, dim=0) for outs in zip(*parts, strict=True)]
