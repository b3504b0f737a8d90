"""Static int8 quantisation of an exported maps graph, calibrated on the user's own images.

The graph keeps its interface (float32 images in, float32 maps out); inside it, convolution
weights become int8 per output channel and activations uint8 per tensor (QDQ format, which
ONNX Runtime, OpenVINO and TensorRT all execute). Ranges come from min / max over calibration
images that look like what the robot will see.

The output convolutions and everything between them and the graph outputs stay fp32: the
center map is thresholded (a step of a quantised output near the threshold adds or drops
people) and the parameter maps carry the camera scale, which is exponentiated later. Measured on
trained weights, the rest quantises with no loss worth the name (docs/performance.md); on
untrained, seeded weights it does not, so measure your own weights with ``romp-ros evaluate``
before deploying an int8 graph.

BEV's per-person regressor is small and stays fp32.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
import tempfile

import numpy as np

from romp_ros.core.preprocess import prepare_batch
from romp_ros.core.runtime.base import RuntimeSetupError
from romp_ros.core.runtime.onnx_graphs import OnnxGraphs, with_metadata

MIN_CALIBRATION_IMAGES = 8


def output_layers(model) -> list[str]:
    """Names of the nodes that stay fp32: each output's producer back to its convolution.

    Args:
        model: an onnx.ModelProto.

    Returns:
        node names, walking back from every graph output through non-convolution nodes and
        stopping at (and including) the first Conv on each path.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    kept, stack, seen = [], [out.name for out in model.graph.output], set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        kept.append(node.name)
        if node.op_type != 'Conv':
            stack.extend(node.input)
    return kept


def quantize_int8(graphs: OnnxGraphs, calibration: Sequence[np.ndarray]) -> OnnxGraphs:
    """The same graphs with the maps graph statically quantised to int8.

    Args:
        graphs: fp32 graphs from ``export_graphs`` / ``load_graphs``.
        calibration: H x W x 3 uint8 RGB frames, any sizes; at least
            ``MIN_CALIBRATION_IMAGES``, ideally a few dozen from the deployment camera.

    Returns:
        graphs whose info says ``precision='int8'``; BEV's regressor is unchanged.

    Raises:
        RuntimeSetupError: onnxruntime is missing, the graph is already int8, or there are too
            few calibration images.
    """
    if graphs.info.precision == 'int8':
        raise RuntimeSetupError('the graph is already int8; quantise the fp32 export')
    if len(calibration) < MIN_CALIBRATION_IMAGES:
        raise RuntimeSetupError(
            f'int8 calibration needs at least {MIN_CALIBRATION_IMAGES} images, got '
            f'{len(calibration)}; give a folder of frames from your camera')
    onnx, quantization = _import_quantization()
    info = replace(graphs.info, precision='int8')
    with tempfile.TemporaryDirectory(prefix='romp_ros_int8_') as tmp:
        src, prepared, out = (Path(tmp) / name for name in ('fp32.onnx', 'pre.onnx',
                                                          'int8.onnx'))
        src.write_bytes(graphs.maps)
        # shape inference and constant folding first, as the quantiser recommends
        quantization.shape_inference.quant_pre_process(str(src), str(prepared),
                                                       skip_symbolic_shape=True)
        kept_fp32 = output_layers(onnx.load(str(prepared)))
        quantization.quantize_static(
            str(prepared), str(out), _CalibrationReader(calibration, info.input_size),
            quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            # uint8 activations x int8 weights: the pairing x86 CPUs' VNNI instructions run
            # (symmetric int8 activations measured 4x slower in ONNX Runtime on this CPU)
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            nodes_to_exclude=kept_fp32)
        maps = with_metadata(out.read_bytes(), info)
    return OnnxGraphs(info=info, maps=maps, regressor=graphs.regressor)


def read_calibration_images(folder: str | Path, limit: int = 64) -> list[np.ndarray]:
    """Up to ``limit`` images (jpg / png, sorted, evenly spaced) from a folder tree, as RGB.

    Raises:
        RuntimeSetupError: the folder does not exist, or holds too few readable images.
    """
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise RuntimeSetupError(f'calibration folder not found: {folder}')
    paths = sorted(p for p in folder.rglob('*')
                   if p.suffix.lower() in ('.jpg', '.jpeg', '.png') and p.is_file())
    if len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    frames = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:  # unreadable files are skipped; the count check below reports
            frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    if len(frames) < MIN_CALIBRATION_IMAGES:
        raise RuntimeSetupError(
            f'{folder} holds {len(frames)} readable jpg / png images; int8 calibration needs '
            f'at least {MIN_CALIBRATION_IMAGES} frames from your camera')
    return frames


class _CalibrationReader:
    """ONNX Runtime's calibration data reader protocol: one preprocessed frame per call."""

    def __init__(self, frames: Sequence[np.ndarray], input_size: int) -> None:
        self._batches: Iterator[dict] = (
            {'images': prepare_batch([frame], input_size=input_size).tensor.numpy()}
            for frame in frames)

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def _import_quantization():
    try:
        import onnx
        from onnxruntime import quantization
        from onnxruntime.quantization import shape_inference  # noqa: F401  (submodule load)
    except ImportError as err:
        raise RuntimeSetupError(
            "int8 quantisation needs onnx and onnxruntime: pip install 'romp-ros[fast]'") from err
    return onnx, quantization
