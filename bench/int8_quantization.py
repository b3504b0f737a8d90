"""int8 static quantisation of an exported maps graph (ONNX Runtime's QDQ tool), for the
accuracy and speed benchmarks. Not part of the package: see docs/performance.md for why int8
was measured and not kept.

Weights are quantised per output channel (int8, symmetric) and activations per tensor (uint8)
with min / max ranges calibrated on photos that the accuracy is not measured on.
"""

from __future__ import annotations

from pathlib import Path
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from romp_ros.core.preprocess import prepare_batch
from romp_ros.core.runtime.onnx_graphs import GraphInfo, OnnxGraphs


class _PhotoReader(CalibrationDataReader):
    """Feeds one preprocessed photo per calibration step."""

    def __init__(self, frames: list[np.ndarray], input_size: int) -> None:
        self._batches = iter([{'images': prepare_batch([f], input_size=input_size)
                               .tensor.numpy()} for f in frames])

    def get_next(self):
        return next(self._batches, None)


def quantize_maps_graph(graphs: OnnxGraphs, calibration: list[np.ndarray]) -> OnnxGraphs:
    """The same graphs with the maps graph quantised to int8 (BEV's regressor stays fp32)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (Path(tmp) / name for name in ('fp32.onnx', 'pre.onnx', 'int8.onnx'))
        src.write_bytes(graphs.maps)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _PhotoReader(calibration, graphs.info.input_size),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        info = GraphInfo(**{**graphs.info.__dict__, 'precision': 'int8'})
        proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return OnnxGraphs(info=info, maps=proto.SerializeToString(), regressor=graphs.regressor)
