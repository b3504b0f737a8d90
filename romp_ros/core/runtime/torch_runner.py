"""The default runtime: the loaded torch module itself (eager, optional autocast on CUDA)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.romp_net import ROMPMaps
from romp_ros.core.runtime.base import NetworkRunner

LOG = logging.getLogger(__name__)

AUTOCAST_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


class TorchRunner(NetworkRunner):
    """Calls the module directly; fp16 / bf16 run under CUDA autocast (maps come back fp32).

    On the CPU a reduced precision is refused with a warning and fp32 runs, as the estimator
    always did: torch's CPU autocast is not validated against the reference here (the
    OpenVINO runtime is the one that runs bf16 on CPUs with AMX / AVX512-BF16).
    """

    name = 'torch'

    def __init__(self, model: nn.Module, model_name: str, device: torch.device,
                 precision: str = 'fp32') -> None:
        self.model = model
        self.model_name = model_name
        self.device = device
        if precision != 'fp32' and device.type != 'cuda':
            LOG.warning('precision=%s needs CUDA; running fp32 on %s', precision, device)
            precision = 'fp32'
        self.precision = precision
        self._autocast_dtype = AUTOCAST_DTYPES.get(precision)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self._autocast_dtype,
                              enabled=self._autocast_dtype is not None)

    def maps(self, images: Tensor) -> ROMPMaps | BEVMaps:
        with self._autocast():
            if self.model_name == 'romp':
                out = self.model(images)
                return ROMPMaps(center_maps=out.center_maps.float(),
                                params_maps=out.params_maps.float())
            out = self.model.forward_maps(images)
        return BEVMaps(center_maps_3d=out.center_maps_3d.float(),
                       cam_maps_3d=out.cam_maps_3d.float(),
                       center_maps_fv=out.center_maps_fv.float(),
                       param_features=out.param_features)

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        with self._autocast():
            return self.model.regress_params(param_features, cams, batch_ids).float()

    def describe(self) -> str:
        return f'torch ({self.device}, {self.precision})'
