"""int8 static quantisation (`romp-ros export --int8-calibration`).

What is checked here: which layers are quantised and which stay fp32, that the int8 file runs
through the estimator in both CPU runtimes, how far its maps are from the fp32 graph's, and the
bad-input cases of the calibration folder.

Tolerance, on seeded weights: the int8 parameter maps correlate with the fp32 graph's at >= 0.8
and differ by < 60 % relative L2 (measured 0.88-0.90 and 42-47 % on the three backbones). That is
loose, because seeded weights are random: their activations are heavy-tailed per channel, and a
per-tensor uint8 range rounds the small channels away. On trained weights the same quantiser
changes nothing that matters (docs/performance.md#int8: ROMP-HRNet-32 F1 0.785 -> 0.785,
PA-MPJPE 80.1 -> 80.2 mm), which bench/runtime_accuracy.py measures against labels. What the
bounds here catch is a quantiser that broke the graph (wrong scales, a layer fed the wrong
tensor: correlation near 0), and the structure test catches quantised output layers.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

onnx = pytest.importorskip('onnx', reason="the 'fast' extra (onnx) is not installed")
pytest.importorskip('onnxruntime', reason="the 'fast' extra (onnxruntime) is not installed")

from romp_ros.core import Estimator, EstimatorConfig  # noqa: E402
from romp_ros.core.nets.checkpoint import load_into, read_checkpoint  # noqa: E402
from romp_ros.core.nets.factory import build_model  # noqa: E402
from romp_ros.core.preprocess import prepare_batch  # noqa: E402
from romp_ros.core.runtime import RuntimeSetupError  # noqa: E402
from romp_ros.core.runtime.factory import runtime_available  # noqa: E402
from romp_ros.core.runtime.int8_quantization import (  # noqa: E402
    MIN_CALIBRATION_IMAGES,
    output_layers,
    quantize_int8,
    read_calibration_images,
)
from romp_ros.core.runtime.onnx_graphs import (  # noqa: E402
    export_graphs,
    load_graphs,
    read_graph_info,
)
from romp_ros.core.runtime.onnxruntime_runner import OnnxRuntimeRunner  # noqa: E402

pytestmark = pytest.mark.slow
INPUT_SIZE = 256
PARAMS_CORRELATION = 0.8
PARAMS_RELATIVE_L2 = 0.6
CALIBRATION = ('hubble_deep_field', 'camera', 'brick', 'grass', 'gravel', 'coins', 'horse',
               'clock', 'moon', 'page')


def _rgb(name: str) -> np.ndarray:
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


@pytest.fixture(scope='module')
def romp_graphs(seeded_checkpoint):
    """fp32 and int8 graphs of seeded ROMP-ResNet-50 at 256 px (calibrated on 10 photos)."""
    net = build_model('romp', 'resnet50', input_size=INPUT_SIZE)
    load_into(net, read_checkpoint(seeded_checkpoint('romp', 'resnet50'))[0])
    fp32 = export_graphs(net.eval(), 'romp', 'resnet50', INPUT_SIZE)
    return fp32, quantize_int8(fp32, [_rgb(name) for name in CALIBRATION])


def _producers(model):
    return {out: node for node in model.graph.node for out in node.output}


def test_convolutions_are_int8_except_the_output_layers(romp_graphs):
    fp32, int8 = romp_graphs
    assert int8.info.precision == 'int8' and fp32.info.precision == 'fp32'
    assert read_graph_info(int8.maps, 'int8').precision == 'int8'  # travels in the file
    model = onnx.load_from_string(int8.maps)
    producer = _producers(model)
    initializers = {init.name: init for init in model.graph.initializer}
    kept = set(output_layers(model))
    quantised, float_weights = [], []
    for node in model.graph.node:
        if node.op_type != 'Conv':
            continue
        weight = producer.get(node.input[1])
        if weight is not None and weight.op_type == 'DequantizeLinear':
            assert initializers[weight.input[0]].data_type == onnx.TensorProto.INT8
            quantised.append(node.name)
        else:
            float_weights.append(node.name)
    # the convolutions that write the outputs stay fp32, every other one is int8
    assert set(float_weights) == {n for n in kept if n in float_weights} and float_weights
    assert all(name not in kept for name in quantised)
    assert len(quantised) > 10 * len(float_weights)
    # the interface is unchanged: float images in, the same float maps out
    ref = onnx.load_from_string(fp32.maps)
    assert ([(o.name, o.type.tensor_type.elem_type) for o in model.graph.output]
            == [(o.name, o.type.tensor_type.elem_type) for o in ref.graph.output])


def test_int8_maps_are_a_rounding_of_the_fp32_maps(romp_graphs):
    fp32, int8 = romp_graphs
    cpu = torch.device('cpu')
    images = prepare_batch([skimage.data.astronaut(), skimage.data.coffee()],
                           input_size=INPUT_SIZE).tensor
    want = OnnxRuntimeRunner(fp32, cpu).maps(images)
    got = OnnxRuntimeRunner(int8, cpu).maps(images)
    params_rel = float(torch.linalg.vector_norm(got.params_maps - want.params_maps)
                       / torch.linalg.vector_norm(want.params_maps))
    correlation = float(np.corrcoef(got.params_maps.flatten().numpy(),
                                    want.params_maps.flatten().numpy())[0, 1])
    assert correlation > PARAMS_CORRELATION, correlation
    assert 0 < params_rel < PARAMS_RELATIVE_L2, params_rel  # > 0: it did run quantised


@pytest.mark.parametrize('runtime', [
    'onnxruntime',
    pytest.param('openvino', marks=pytest.mark.skipif(
        not runtime_available('openvino'), reason="the 'fast' extra (openvino) is missing"))])
def test_int8_file_runs_through_the_estimator(romp_graphs, models_dir, tmp_path, runtime):
    _, int8 = romp_graphs
    path = tmp_path / 'romp_int8.onnx'
    int8.save(path)
    estimator = Estimator(EstimatorConfig(model='romp', backbone='resnet50', checkpoint=str(path),
                                          models_dir=str(models_dir), runtime=runtime,
                                          device='cpu'))
    assert 'int8' in estimator.runner.describe()
    result = estimator.predict([skimage.data.astronaut()])[0]
    assert result.joints.shape[1:] == (71, 3) and np.isfinite(result.joints).all()


def test_quantising_twice_or_with_too_few_images_is_refused(romp_graphs):
    fp32, int8 = romp_graphs
    with pytest.raises(RuntimeSetupError, match='already int8'):
        quantize_int8(int8, [_rgb(name) for name in CALIBRATION])
    with pytest.raises(RuntimeSetupError, match=f'at least {MIN_CALIBRATION_IMAGES}'):
        quantize_int8(fp32, [_rgb('camera')] * (MIN_CALIBRATION_IMAGES - 1))


def _write_frames(folder, count, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        cv2.imwrite(str(folder / f'{i:04d}.png'), rng.integers(0, 256, (48, 64, 3), np.uint8))


def test_calibration_images_are_read_spaced_and_checked(tmp_path):
    _write_frames(tmp_path / 'cam' / 'a', 6)
    _write_frames(tmp_path / 'cam' / 'b', 6, start=6)
    (tmp_path / 'cam' / 'broken.jpg').write_bytes(b'not an image')
    (tmp_path / 'cam' / 'notes.txt').write_text('ignored')
    cv2.imwrite(str(tmp_path / 'cam' / 'grey.png'), np.full((20, 30), 7, np.uint8))
    frames = read_calibration_images(tmp_path / 'cam', limit=64)
    # 12 colour frames in two sub-folders + the grey one (as 3 channels); the broken jpg skipped
    assert len(frames) == 13
    assert all(f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8 for f in frames)
    assert len(read_calibration_images(tmp_path / 'cam', limit=9)) >= MIN_CALIBRATION_IMAGES
    with pytest.raises(RuntimeSetupError, match='not found'):
        read_calibration_images(tmp_path / 'nowhere')
    _write_frames(tmp_path / 'few', 3)
    with pytest.raises(RuntimeSetupError, match='3 readable'):
        read_calibration_images(tmp_path / 'few')


def test_export_command_writes_an_int8_graph(seeded_checkpoint, tmp_path, caplog):
    from romp_ros.cli.main import main
    frames = tmp_path / 'frames'
    _write_frames(frames, 10)
    out = tmp_path / 'romp_int8.onnx'
    args = ['--quiet', 'export', '--backbone', 'resnet50', '--input-size', '128',
            '--checkpoint', str(seeded_checkpoint('romp', 'resnet50')), '--out', str(out)]
    with caplog.at_level('INFO'):
        status = main([*args, '--int8-calibration', str(frames)])
    assert status == 0, caplog.text
    assert load_graphs(out).info.precision == 'int8'
    assert 'calibrating on 10 images' in caplog.text and 'romp-ros evaluate' in caplog.text
    # a folder with too few frames: one clear line, exit 2, and no file written
    caplog.clear()
    out.unlink()
    _write_frames(tmp_path / 'few', 2)
    status = main([*args, '--int8-calibration', str(tmp_path / 'few')])
    assert status == 2 and 'at least' in caplog.text
    assert not out.exists()


def test_bench_comparison_times_the_int8_graph(models_dir, seeded_checkpoint, tmp_path):
    from romp_ros.cli.runtime_compare import compare, int8_variants
    config = EstimatorConfig(model='romp', backbone='resnet50', device='cpu', input_size=128,
                             checkpoint=str(seeded_checkpoint('romp', 'resnet50')),
                             models_dir=str(models_dir))
    variants = int8_variants(config, [_rgb(name) for name in CALIBRATION], tmp_path)
    assert variants[0].label == 'ours onnxruntime int8'
    assert ('ours openvino int8' in [v.label for v in variants]) == runtime_available('openvino')
    assert load_graphs(variants[0].checkpoint).info.precision == 'int8'
    result = compare(config, np.ascontiguousarray(skimage.data.astronaut()), variants,
                     repeats=1, memory=False)
    assert [r.variant for r in result.results] == variants
    assert all(r.median_ms > 0 for r in result.results)
    assert all('int8' in row for row in result.table_rows())
