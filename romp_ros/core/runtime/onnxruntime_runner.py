"""ONNX Runtime: the exported graphs in an InferenceSession, inputs and outputs bound in place.

Inputs and outputs are bound to torch tensors by pointer (``io_binding``), so nothing is
copied through NumPy: on the CPU the session reads the prepared batch where it lies, and on
CUDA (CUDA / TensorRT execution providers) the maps stay on the GPU for the torch
post-processing. The same binding code runs on both; only the device type changes.

Providers, best first (:func:`select_providers`): TensorRT (fp16 when asked, engine cache
next to the user's cache), CUDA, then CPU. On the CPU the graph is optimised at
``ORT_ENABLE_ALL`` with as many intra-op threads as torch uses.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.romp_net import ROMPMaps
from romp_ros.core.runtime.base import NetworkRunner, RuntimeSetupError, in_static_batches
from romp_ros.core.runtime.onnx_graphs import BEV_OUTPUTS, ROMP_OUTPUTS, OnnxGraphs

LOG = logging.getLogger(__name__)

_TORCH_DTYPES = {'tensor(float)': torch.float32, 'tensor(int64)': torch.int64,
                 'tensor(float16)': torch.float16}


def trt_cache_dir() -> Path:
    """Where TensorRT engines are cached ($XDG_CACHE_HOME/romp_ros/tensorrt)."""
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'romp_ros' / 'tensorrt'


def select_providers(available: list[str], device: torch.device, precision: str
                     ) -> tuple[list[tuple[str, dict]], str]:
    """Execution providers (with options) for a device, and the precision they give.

    Args:
        available: ``onnxruntime.get_available_providers()``.
        device: where the estimator runs.
        precision: requested 'fp32', 'fp16' or 'bf16'.

    Returns:
        (providers best first, precision in force). fp16 is honoured by TensorRT only; every
        other combination runs the fp32 graph (logged).

    Raises:
        RuntimeSetupError: a CUDA device without a CUDA-enabled onnxruntime.
    """
    if device.type == 'cpu':
        if precision != 'fp32':
            LOG.warning('onnxruntime on the CPU runs the fp32 graph (precision=%s ignored; '
                        "runtime 'openvino' runs bf16 on CPUs that have it)", precision)
        return [('CPUExecutionProvider', {})], 'fp32'
    if device.type != 'cuda':
        raise RuntimeSetupError(f'onnxruntime cannot run on {device}; use cpu or cuda:N')
    if 'CUDAExecutionProvider' not in available:
        raise RuntimeSetupError(
            f'device={device} needs a CUDA build of ONNX Runtime, but this one offers '
            f'{available}: pip install onnxruntime-gpu (in place of onnxruntime)')
    index = device.index or 0
    providers: list[tuple[str, dict]] = []
    in_force = 'fp32'
    if 'TensorrtExecutionProvider' in available:
        trt = {'device_id': index, 'trt_engine_cache_enable': True,
               'trt_engine_cache_path': str(trt_cache_dir())}
        if precision == 'fp16':
            trt['trt_fp16_enable'] = True
            in_force = 'fp16'
        providers.append(('TensorrtExecutionProvider', trt))
    providers.append(('CUDAExecutionProvider', {'device_id': index}))
    providers.append(('CPUExecutionProvider', {}))
    if precision != in_force:
        LOG.warning('onnxruntime runs %s here (precision=%s needs the TensorRT execution '
                    'provider for fp16; bf16 is not offered)', in_force, precision)
    return providers, in_force


class OnnxRuntimeRunner(NetworkRunner):
    """ROMP / BEV graphs in ONNX Runtime sessions."""

    name = 'onnxruntime'

    def __init__(self, graphs: OnnxGraphs, device: torch.device, precision: str = 'fp32',
                 threads: int | None = None) -> None:
        ort = import_onnxruntime()
        self.model_name = graphs.info.model
        self.static_batch = graphs.info.batch
        self.device = device
        providers, in_force = select_providers(ort.get_available_providers(), device,
                                               precision)
        self.precision = 'int8' if graphs.info.precision == 'int8' else in_force
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.log_severity_level = 3  # errors only: the CPU EP lists every node it places
        names = [name for name, _ in providers]
        opts = [opt for _, opt in providers]
        try:
            self._maps = ort.InferenceSession(graphs.maps, options, providers=names,
                                              provider_options=opts)
            self._regressor = (ort.InferenceSession(graphs.regressor, options,
                                                    providers=names, provider_options=opts)
                               if graphs.regressor is not None else None)
        except Exception as err:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            raise RuntimeSetupError(f'ONNX Runtime could not load the graph: {err}') from err
        self.providers = self._maps.get_providers()
        self._ort = ort

    def _run(self, session, inputs: dict[str, Tensor], output_shapes: dict[str, tuple]
             ) -> dict[str, Tensor]:
        """Run with every input and output bound to a contiguous torch tensor on the device."""
        binding = session.io_binding()
        kind, index = self.device.type, self.device.index or 0
        keep = []
        for meta in session.get_inputs():
            tensor = inputs[meta.name].to(self.device, _TORCH_DTYPES[meta.type]).contiguous()
            keep.append(tensor)
            binding.bind_input(meta.name, kind, index, _np_dtype(tensor), tuple(tensor.shape),
                               tensor.data_ptr())
        outputs = {}
        for meta in session.get_outputs():
            out = torch.empty(output_shapes[meta.name], dtype=_TORCH_DTYPES[meta.type],
                              device=self.device)
            binding.bind_output(meta.name, kind, index, _np_dtype(out), tuple(out.shape),
                                out.data_ptr())
            outputs[meta.name] = out
        binding.synchronize_inputs()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return outputs

    def maps(self, images: Tensor) -> ROMPMaps | BEVMaps:
        side = int(images.shape[1])
        if self.model_name == 'romp':
            cells = side // 8
            shapes = {'center_maps': (1, cells, cells), 'params_maps': (145, cells, cells)}
            names, cls = ROMP_OUTPUTS, ROMPMaps
        else:
            cells, bins = side // 4, side // 8
            shapes = {'center_maps_3d': (bins, cells, cells),
                      'cam_maps_3d': (bins, cells, cells, 3),
                      'center_maps_fv': (1, cells, cells),
                      'param_features': (128, cells, cells)}
            names, cls = BEV_OUTPUTS, BEVMaps

        def run(chunk: Tensor) -> list[Tensor]:
            batch = int(chunk.shape[0])
            out = self._run(self._maps, {'images': chunk},
                            {name: (batch, *shape) for name, shape in shapes.items()})
            return [out[name] for name in names]

        return cls(*in_static_batches(run, images, self.static_batch))

    def regress_params(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        if self._regressor is None:
            raise NotImplementedError('romp has no per-person regression')
        people = int(cams.shape[0])
        if people == 0:  # the graph's person axis starts at 1
            return torch.zeros(0, 146, device=self.device)
        out = self._run(self._regressor, {'param_features': param_features.float(),
                                          'cams': cams.float(), 'batch_ids': batch_ids},
                        {'params': (people, 146)})
        return out['params']

    def describe(self) -> str:
        return f'onnxruntime ({self.providers[0]}, {self.precision})'


def _np_dtype(tensor: Tensor):
    import numpy as np
    return {torch.float32: np.float32, torch.int64: np.int64,
            torch.float16: np.float16}[tensor.dtype]


def import_onnxruntime():
    """The onnxruntime module, or a RuntimeSetupError naming the pip package."""
    try:
        import onnxruntime
    except ImportError as err:
        raise RuntimeSetupError(
            "runtime 'onnxruntime' is not installed: pip install onnxruntime (CPU) or "
            "onnxruntime-gpu (CUDA / TensorRT), or pip install 'romp-ros[fast]'") from err
    return onnxruntime
