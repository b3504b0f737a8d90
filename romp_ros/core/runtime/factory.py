"""Build the runner of a runtime by name, with one clear error for an unknown or missing one."""

from __future__ import annotations

import importlib.util
import logging
import time

import torch
from torch import nn

from romp_ros.core.runtime.base import RUNTIME_NAMES, NetworkRunner, RuntimeSetupError
from romp_ros.core.runtime.onnx_graphs import OnnxGraphs, export_graphs

LOG = logging.getLogger(__name__)

# the pip package that provides each optional runtime
RUNTIME_PACKAGES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def runtime_available(name: str) -> bool:
    """Whether a runtime can be used here (torch always; the others when installed)."""
    if name not in RUNTIME_NAMES:
        return False
    package = RUNTIME_PACKAGES.get(name)
    return package is None or importlib.util.find_spec(package) is not None


def runtime_runs_on(name: str, device: str | torch.device) -> bool:
    """Whether a runtime is installed here and can run its network on ``device``.

    OpenVINO runs on the CPU only; ONNX Runtime runs on CUDA only when its build offers the
    CUDA execution provider (``onnxruntime-gpu``), and the CPU-only ``onnxruntime`` does not.
    """
    if not runtime_available(name):
        return False
    device = torch.device(device)
    if name == 'onnxruntime':
        # the runner's own provider choice decides, so the two cannot disagree
        from romp_ros.core.runtime.onnxruntime_runner import import_onnxruntime, select_providers
        try:
            select_providers(import_onnxruntime().get_available_providers(), device, 'fp32')
        except RuntimeSetupError:
            return False
        return True
    if name == 'openvino':
        return device.type == 'cpu'  # as OpenVinoRunner requires
    return device.type in ('cpu', 'cuda')


def build_runner(name: str, *, model_name: str, device: torch.device, precision: str = 'fp32',
                 model: nn.Module | None = None, graphs: OnnxGraphs | None = None,
                 backbone: str = 'hrnet32', input_size: int = 512,
                 compile_mode: str = 'off', compile_cache_dir: str = '') -> NetworkRunner:
    """The runner of runtime ``name`` for one network.

    Args:
        name: 'torch', 'onnxruntime' or 'openvino'.
        model_name: 'romp' or 'bev'.
        device: where inputs come from and outputs go.
        precision: requested network precision (each runtime says what it honours).
        model: the loaded torch network (eval mode). The torch runtime calls it; the others
            export it to ONNX in memory when no ``graphs`` are given.
        graphs: ONNX graphs read from ``romp-ros export`` files.
        backbone, input_size: recorded when exporting ``model``.
        compile_mode, compile_cache_dir: ``torch.compile`` of the torch runtime's network
            (``EstimatorConfig.compile``).

    Raises:
        RuntimeSetupError: unknown runtime, runtime not installed, or nothing to run.
    """
    if name not in RUNTIME_NAMES:
        raise RuntimeSetupError(f'unknown runtime {name!r}; choose one of {list(RUNTIME_NAMES)}')
    if name == 'torch':
        if model is None:
            raise RuntimeSetupError(
                "runtime 'torch' needs the torch checkpoint, not an ONNX file; use runtime "
                "'onnxruntime' or 'openvino' for .onnx files")
        from romp_ros.core.runtime.torch_runner import TorchRunner
        return TorchRunner(model, model_name, device, precision, compile_mode=compile_mode,
                           compile_cache_dir=compile_cache_dir)
    if not runtime_available(name):
        raise RuntimeSetupError(
            f'runtime {name!r} is not installed: pip install {RUNTIME_PACKAGES[name]} '
            "(or pip install 'romp-ros[fast]')")
    if graphs is None:
        if model is None:
            raise RuntimeSetupError(f'runtime {name!r} needs a network or an ONNX file')
        start = time.perf_counter()
        graphs = export_graphs(model, model_name, backbone, input_size)
        LOG.info('exported %s to ONNX in memory for %s in %.1f s (`romp-ros export` writes '
                 'it once to a file for faster starts)', model_name, name,
                 time.perf_counter() - start)
    elif graphs.info.model != model_name:
        raise RuntimeSetupError(f'the ONNX file holds {graphs.info.model!r}, but '
                                f'model={model_name!r} is configured')
    if name == 'onnxruntime':
        from romp_ros.core.runtime.onnxruntime_runner import OnnxRuntimeRunner
        return OnnxRuntimeRunner(graphs, device, precision)
    from romp_ros.core.runtime.openvino_runner import OpenVinoRunner
    return OpenVinoRunner(graphs, device, precision)

