"""`romp-ros export --format onnx`: the graphs equal the torch networks, files and metadata.

Tolerance: each exported output may differ from torch by 1e-3 of max(1, |output|). Measured
differences are 1e-6..2e-4 absolute (fp32; ONNX Runtime's convolutions sum in another order
than oneDNN's), so a broken export (a wrong op, a frozen shape, a training-mode BatchNorm: all
differences of order 1) cannot pass. The camera scale's ``1.1 **`` must stay outside the graph.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

onnx = pytest.importorskip('onnx', reason="the 'fast' extra (onnx) is not installed")
pytest.importorskip('onnxruntime', reason="the 'fast' extra (onnxruntime) is not installed")

from romp_ros.core.nets.checkpoint import load_into, read_checkpoint  # noqa: E402
from romp_ros.core.nets.factory import build_model  # noqa: E402
from romp_ros.core.preprocess import prepare_batch  # noqa: E402
from romp_ros.core.runtime import RuntimeSetupError  # noqa: E402
from romp_ros.core.runtime.onnx_graphs import (  # noqa: E402
    check_graphs,
    export_graphs,
    load_graphs,
    regressor_path_for,
)

pytestmark = pytest.mark.slow
TOLERANCE = 1e-3


def _net(checkpoint, name, backbone='hrnet32', input_size=512):
    net = build_model(name, backbone, input_size=input_size)
    load_into(net, read_checkpoint(checkpoint)[0])
    return net.eval()


def _images(input_size, count):
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    return prepare_batch(photos[:count], input_size=input_size).tensor  # (B, S, S, 3)


def _op_types(model_bytes):
    return {node.op_type for node in onnx.load_from_string(model_bytes).graph.node}


@pytest.mark.parametrize('backbone,input_size', [
    ('hrnet32', 512), ('resnet50', 256), ('efficientnet_v2_s', 256)])
def test_romp_graph_matches_torch_with_a_dynamic_batch(seeded_checkpoint, tmp_path, backbone,
                                                       input_size):
    net = _net(seeded_checkpoint('romp', backbone), 'romp', backbone, input_size)
    graphs = export_graphs(net, 'romp', backbone, input_size, batch=1, dynamic_batch=True)
    assert not net.training, 'exporting must leave the network in eval mode'
    written = graphs.save(tmp_path / 'romp.onnx')
    assert written == [tmp_path / 'romp.onnx']
    loaded = load_graphs(tmp_path / 'romp.onnx')
    assert (loaded.info.model, loaded.info.backbone, loaded.info.input_size,
            loaded.info.batch, loaded.info.opset) == ('romp', backbone, input_size, 0, 17)
    onnx.checker.check_model(onnx.load_from_string(loaded.maps))
    assert 'Pow' not in _op_types(loaded.maps), 'the 1.1 ** camera scale belongs outside'
    # exported at batch 1, run at batch 2 (dynamic), two different photos
    check = check_graphs(loaded, net, _images(input_size, 2))
    assert check.worst_relative() < TOLERANCE, check
    assert set(check.max_abs) == {'center_maps', 'params_maps'}


def test_bev_graphs_match_torch_and_travel_together(seeded_checkpoint, tmp_path):
    net = _net(seeded_checkpoint('bev', 'hrnet32'), 'bev')
    graphs = export_graphs(net, 'bev', 'hrnet32', 512, batch=1, dynamic_batch=True)
    assert graphs.info.batch == 1, "BEV's maps graph has a static batch"
    path = tmp_path / 'bev.onnx'
    assert graphs.save(path) == [path, tmp_path / 'bev.regressor.onnx']
    loaded = load_graphs(path)
    check = check_graphs(loaded, net, _images(512, 1))
    assert check.worst_relative() < TOLERANCE, check
    assert {'center_maps_3d', 'cam_maps_3d', 'param_features', 'params'} <= set(check.max_abs)
    # the regressor takes any number of people
    import onnxruntime as ort
    session = ort.InferenceSession(loaded.regressor, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        features = net.forward_maps(_images(512, 1)).param_features
        for people in (1, 5):
            cams = torch.stack([torch.tensor([0.3 + 0.1 * i, 0.1 * i - 0.2, 0.05 * i])
                                for i in range(people)])  # (N, 3)
            ids = torch.zeros(people, dtype=torch.long)
            (got,) = session.run(None, {'param_features': features.numpy(),
                                        'cams': cams.numpy(), 'batch_ids': ids.numpy()})
            want = net.regress_params(features, cams, ids).numpy()
            assert got.shape == (people, 146)
            np.testing.assert_allclose(got, want, atol=TOLERANCE * max(1, np.abs(want).max()))
    # the maps graph alone is not a usable BEV: its regressor must be beside it
    regressor_path_for(path).unlink()
    with pytest.raises(RuntimeSetupError, match='regressor'):
        load_graphs(path)


def test_static_batch_graph_has_a_fixed_batch(seeded_checkpoint, tmp_path):
    net = _net(seeded_checkpoint('romp', 'resnet50'), 'romp', 'resnet50', 256)
    graphs = export_graphs(net, 'romp', 'resnet50', 256, batch=2, dynamic_batch=False)
    assert graphs.info.batch == 2
    dims = onnx.load_from_string(graphs.maps).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 256, 256, 3]
    assert check_graphs(graphs, net, _images(256, 2)).worst_relative() < TOLERANCE


def test_files_not_written_by_export_are_refused(tmp_path):
    plain = tmp_path / 'plain.onnx'
    x = onnx.helper.make_tensor_value_info('images', onnx.TensorProto.FLOAT, [1, 3])
    y = onnx.helper.make_tensor_value_info('out', onnx.TensorProto.FLOAT, [1, 3])
    graph = onnx.helper.make_graph([onnx.helper.make_node('Relu', ['images'], ['out'])],
                                   'g', [x], [y])
    onnx.save(onnx.helper.make_model(graph), plain)
    with pytest.raises(RuntimeSetupError, match='romp-ros export'):
        load_graphs(plain)
    (tmp_path / 'junk.onnx').write_bytes(b'not a protobuf at all')
    with pytest.raises(RuntimeSetupError, match='not a readable ONNX file|romp-ros export'):
        load_graphs(tmp_path / 'junk.onnx')
    with pytest.raises(RuntimeSetupError, match='not found'):
        load_graphs(tmp_path / 'missing.onnx')


def test_export_command_writes_a_verified_graph(seeded_checkpoint, tmp_path, caplog):
    from romp_ros.cli.main import main
    out = tmp_path / 'exported' / 'romp_r50.onnx'
    with caplog.at_level('INFO'):
        status = main(['--quiet', 'export', '--format', 'onnx', '--backbone', 'resnet50',
                       '--checkpoint', str(seeded_checkpoint('romp', 'resnet50')),
                       '--input-size', '256', '--out', str(out)])
    assert status == 0, caplog.text
    assert load_graphs(out).info.input_size == 256
    assert 'max |onnx - torch|' in caplog.text
    # a missing checkpoint is one clear line, exit 2
    caplog.clear()
    status = main(['--quiet', 'export', '--checkpoint', str(tmp_path / 'nope.pth'),
                   '--out', str(out)])
    assert status == 2 and 'nope.pth' in caplog.text
