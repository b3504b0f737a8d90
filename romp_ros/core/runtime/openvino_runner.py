"""OpenVINO on the CPU: the exported graphs compiled for latency, fp32 unless asked otherwise.

OpenVINO's CPU plugin picks bf16 by itself on CPUs with AMX / AVX512-BF16 (as on the
benchmark machine). That is 5-7x faster there but not exact, so fp32 is always requested
explicitly and bf16 only runs when ``precision='bf16'`` is configured (its accuracy cost is
measured in docs/performance.md and bounded in test/test_runtimes.py). NVIDIA GPUs are not
OpenVINO devices: use 'torch' or 'onnxruntime' for CUDA.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.romp_net import ROMPMaps
from romp_ros.core.runtime.base import NetworkRunner, RuntimeSetupError, in_static_batches
from romp_ros.core.runtime.onnx_graphs import BEV_OUTPUTS, ROMP_OUTPUTS, OnnxGraphs

LOG = logging.getLogger(__name__)

PRECISION_HINTS = {'fp32': 'f32', 'bf16': 'bf16', 'fp16': 'f16'}


class OpenVinoRunner(NetworkRunner):
    """ROMP / BEV graphs compiled by OpenVINO for the CPU."""

    name = 'openvino'

    def __init__(self, graphs: OnnxGraphs, device: torch.device, precision: str = 'fp32',
                 threads: int | None = None) -> None:
        if device.type != 'cpu':
            raise RuntimeSetupError(
                f"runtime 'openvino' runs on the CPU here, not on {device}; use runtime "
                "'torch' or 'onnxruntime' (CUDA / TensorRT) for NVIDIA GPUs")
        ov = import_openvino()
        self.model_name = graphs.info.model
        self.static_batch = graphs.info.batch
        self.device = device
        self.precision = 'int8' if graphs.info.precision == 'int8' else precision
        core = ov.Core()
        config = {'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_NUM_THREADS': int(threads or torch.get_num_threads()),
                  # int8 graphs keep fp32 between their quantised ops
                  'INFERENCE_PRECISION_HINT': PRECISION_HINTS[
                      'fp32' if self.precision == 'int8' else precision]}
        try:
            self._maps = core.compile_model(_read(core, graphs.maps), 'CPU', config)
            self._regressor = (core.compile_model(_read(core, graphs.regressor), 'CPU', config)
                               if graphs.regressor is not None else None)
        except RuntimeError as err:
            raise RuntimeSetupError(f'OpenVINO could not compile the graph for the CPU '
                                    f'(precision {self.precision}): {err}') from err
        if self.precision == 'int8':
            LOG.warning("openvino runs int8 graphs about twice as fast as onnxruntime, but its "
                        "int8 arithmetic cost trained ROMP-HRNet-32 detections (F1 0.785 -> "
                        "0.737, onnxruntime 0.778; EfficientNetV2-S unchanged: "
                        "docs/performance.md#int8); check your graph with `romp-ros evaluate` "
                        "or use runtime 'onnxruntime'")
        self._maps_request = self._maps.create_infer_request()
        self._regressor_request = (self._regressor.create_infer_request()
                                   if self._regressor is not None else None)

    def _run(self, request, inputs: list[Tensor], names: tuple[str, ...]) -> list[Tensor]:
        arrays = [t.detach().contiguous().numpy() for t in inputs]
        # share_outputs=False: each call gets its own arrays (the request reuses its buffers)
        result = request.infer(arrays, share_inputs=True, share_outputs=False)
        by_name = {out.get_any_name(): value for out, value in result.items()}
        return [torch.from_numpy(np.asarray(by_name[name])) for name in names]

    def maps(self, images: Tensor) -> ROMPMaps | BEVMaps:
        names, cls = ((ROMP_OUTPUTS, ROMPMaps) if self.model_name == 'romp'
                      else (BEV_OUTPUTS, BEVMaps))

        def run(chunk: Tensor) -> list[Tensor]:
            return self._run(self._maps_request, [chunk.float()], names)

        return cls(*in_static_batches(run, images, self.static_batch))

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        if self._regressor_request is None:
            raise NotImplementedError('romp has no per-person regression')
        if int(cams.shape[0]) == 0:  # the graph's person axis starts at 1
            return torch.zeros(0, 146)
        (params,) = self._run(self._regressor_request,
                              [param_features.float(), cams.float(), batch_ids.long()],
                              ('params',))
        return params

    def describe(self) -> str:
        return f'openvino (CPU, {self.precision})'


def _read(core, model_bytes: bytes):
    """An ov.Model from serialised ONNX bytes (weights inline: graphs here are < 2 GB)."""
    return core.read_model(model_bytes)


def import_openvino():
    """The openvino module, or a RuntimeSetupError naming the pip package."""
    try:
        import openvino
    except ImportError as err:
        raise RuntimeSetupError(
            "runtime 'openvino' is not installed: pip install openvino, or "
            "pip install 'romp-ros[fast]'") from err
    return openvino
