"""The default runtime: the loaded torch module itself (eager or compiled, autocast on CUDA)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
import time

import torch
from torch import Tensor, nn

from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.romp_net import ROMPMaps
from romp_ros.core.runtime.base import NetworkRunner

LOG = logging.getLogger(__name__)

AUTOCAST_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
# modes in which torch.compile captures CUDA graphs on CUDA devices
CUDA_GRAPH_MODES = ('reduce-overhead', 'max-autotune')
DEFAULT_COMPILE_CACHE = '~/.cache/romp_ros/inductor'


class TorchRunner(NetworkRunner):
    """Calls the module directly; fp16 / bf16 run under CUDA autocast (maps come back fp32).

    On the CPU a reduced precision is refused with a warning and fp32 runs, as the estimator
    always did: torch's CPU autocast is not validated against the reference here (the
    OpenVINO runtime is the one that runs bf16 on CPUs with AMX / AVX512-BF16).
    """

    name = 'torch'

    def __init__(self, model: nn.Module, model_name: str, device: torch.device,
                 precision: str = 'fp32', compile_mode: str = 'off',
                 compile_cache_dir: str = '') -> None:
        self.model = model
        self.model_name = model_name
        self.device = device
        if precision != 'fp32' and device.type != 'cuda':
            LOG.warning('precision=%s needs CUDA; running fp32 on %s', precision, device)
            precision = 'fp32'
        self.precision = precision
        self._autocast_dtype = AUTOCAST_DTYPES.get(precision)
        self.compile_mode = compile_mode
        forward = model if model_name == 'romp' else model.forward_maps
        if compile_mode != 'off':
            forward = compile_network(forward, compile_mode, compile_cache_dir)
        self._forward = forward
        # a CUDA graph replays into the same output buffers: each call's maps are copied out
        self._cuda_graphs = compile_mode in CUDA_GRAPH_MODES and device.type == 'cuda'

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self._autocast_dtype,
                              enabled=self._autocast_dtype is not None)

    def maps(self, images: Tensor) -> ROMPMaps | BEVMaps:
        if self._cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the previous replay's outputs are ours
        with self._autocast():
            out = self._forward(images)
        own = (lambda t: t.float().clone()) if self._cuda_graphs else (lambda t: t.float())
        if self.model_name == 'romp':
            return ROMPMaps(center_maps=own(out.center_maps), params_maps=own(out.params_maps))
        return BEVMaps(center_maps_3d=own(out.center_maps_3d), cam_maps_3d=own(out.cam_maps_3d),
                       center_maps_fv=own(out.center_maps_fv),
                       param_features=(out.param_features.clone() if self._cuda_graphs
                                       else out.param_features))

    def warm_up(self, input_size: int) -> float:
        """Run one batch-1 frame (compiles a compiled network now); returns the seconds."""
        start = time.perf_counter()
        with torch.inference_mode():
            self.maps(torch.zeros(1, input_size, input_size, 3, device=self.device))
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        with self._autocast():
            return self.model.regress_params(param_features, cams, batch_ids).float()

    def describe(self) -> str:
        compiled = '' if self.compile_mode == 'off' else f', compiled {self.compile_mode}'
        graphs = ', CUDA graphs' if self._cuda_graphs else ''
        return f'torch ({self.device}, {self.precision}{compiled}{graphs})'


def compile_network(forward, mode: str, cache_dir: str = ''):
    """``torch.compile`` of a network's forward for fixed input shapes, kernels cached on disk.

    Args:
        forward: the module (ROMP) or its ``forward_maps`` (BEV).
        mode: 'default', 'reduce-overhead' or 'max-autotune'.
        cache_dir: inductor's cache; '' keeps TORCHINDUCTOR_CACHE_DIR when it is set, else
            ``~/.cache/romp_ros/inductor`` (kept across reboots, unlike inductor's /tmp one).
    """
    if cache_dir or 'TORCHINDUCTOR_CACHE_DIR' not in os.environ:
        directory = Path(cache_dir or DEFAULT_COMPILE_CACHE).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        # inductor reads its cache location from the environment when it compiles
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = str(directory)
    # the input side is fixed; each batch size gets its own graph (no dynamic shapes)
    return torch.compile(forward, mode=None if mode == 'default' else mode, dynamic=False)
