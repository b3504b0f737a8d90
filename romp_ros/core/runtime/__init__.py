"""Where the network runs: torch, ONNX Runtime or OpenVINO behind one small interface.

The estimator hands each runtime the dense network call only (images in, raw maps out) and,
for BEV, the per-person parameter regression; pre- and post-processing stay in torch.

    runner = build_runner('onnxruntime', model=net, model_name='romp', device=dev)
    maps = runner.maps(images)  # ROMPMaps, as net(images) would return

See docs/performance.md for what each runtime costs and how accurate it is.
"""

from __future__ import annotations

from romp_ros.core.runtime.base import (
    RUNTIME_NAMES,
    NetworkRunner,
    RuntimeSetupError,
)
from romp_ros.core.runtime.factory import build_runner, runtime_available, runtime_runs_on

__all__ = ['RUNTIME_NAMES', 'NetworkRunner', 'RuntimeSetupError', 'build_runner',
           'runtime_available', 'runtime_runs_on']
