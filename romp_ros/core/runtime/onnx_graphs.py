"""ONNX graphs of the networks: export from a loaded torch module, save, load, metadata.

One network gives one or two graphs:

* ``maps``: images (B, S, S, 3) float32 RGB 0..255 -> the raw dense maps. ROMP: ``center_maps``
  (B, 1, S/8, S/8) and ``params_maps`` (B, 145, S/8, S/8) with the RAW camera scale (the
  ``1.1 **`` stays outside the graph, as in the reference, for TensorRT). BEV:
  ``center_maps_3d`` (B, D, M, M), ``cam_maps_3d`` (B, D, M, M, 3), ``center_maps_fv``
  (B, 1, M, M), ``param_features`` (B, 128, M, M), M = S/4, D = M/2.
* ``regressor`` (BEV only): ``param_features``, ``cams`` (N, 3) float32 and ``batch_ids`` (N,)
  int64 -> ``params`` (N, 146), for a dynamic number N >= 1 of people and any batch. BEV's
  parsing of the 3D
  center map (NMS, threshold, top-K) sits between the two graphs and stays in torch.

Files: ``NAME.onnx`` holds the maps graph; BEV's regressor goes beside it as
``NAME.regressor.onnx``. Both carry metadata (model, backbone, input size, batch, opset) that
the loaders check. The TorchScript-based exporter is used (no onnxscript dependency); the
network's spatial size is static, the batch static or dynamic (ROMP; BEV's maps graph always
has a static batch, see :func:`export_graphs`). A static-batch graph serves any number of
images: the runners run it in chunks (``in_static_batches``).
"""

from __future__ import annotations

from dataclasses import dataclass
import io
import logging
from pathlib import Path
import warnings

import torch
from torch import Tensor, nn

from romp_ros.core.runtime.base import RuntimeSetupError

DEFAULT_OPSET = 17  # ONNX Runtime >= 1.14, OpenVINO >= 2023.0 and TensorRT 8.6+ all read it
FORMAT_VERSION = '1'
ROMP_OUTPUTS = ('center_maps', 'params_maps')
BEV_OUTPUTS = ('center_maps_3d', 'cam_maps_3d', 'center_maps_fv', 'param_features')
REGRESSOR_INPUTS = ('param_features', 'cams', 'batch_ids')
REGRESSOR_SUFFIX = '.regressor.onnx'
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphInfo:
    """What an exported graph is (stored as ONNX metadata_props, all strings there).

    Attributes:
        model: 'romp' or 'bev'.
        backbone: backbone name.
        input_size: side S of the square input, pixels.
        batch: the static batch size, or 0 for a dynamic batch.
        opset: ONNX opset of the graph.
        precision: 'fp32', or 'int8' for a statically quantised graph.
    """

    model: str
    backbone: str
    input_size: int
    batch: int
    opset: int
    precision: str = 'fp32'

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entries."""
        return {'romp_ros.format': FORMAT_VERSION, 'romp_ros.model': self.model,
                'romp_ros.backbone': self.backbone,
                'romp_ros.input_size': str(self.input_size),
                'romp_ros.batch': str(self.batch), 'romp_ros.opset': str(self.opset),
                'romp_ros.precision': self.precision}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> 'GraphInfo':
        """Parse ``metadata_props``; a file not written by ``romp-ros export`` is an error."""
        if meta.get('romp_ros.format') != FORMAT_VERSION:
            raise RuntimeSetupError(
                f'{source} was not written by `romp-ros export` (no romp_ros metadata); '
                'export the checkpoint with `romp-ros export --format onnx`')
        try:
            return cls(model=meta['romp_ros.model'], backbone=meta['romp_ros.backbone'],
                       input_size=int(meta['romp_ros.input_size']),
                       batch=int(meta['romp_ros.batch']), opset=int(meta['romp_ros.opset']),
                       precision=meta.get('romp_ros.precision', 'fp32'))
        except (KeyError, ValueError) as err:
            raise RuntimeSetupError(f'{source} has incomplete romp_ros metadata ({err}); '
                                    'export it again with `romp-ros export`') from err


@dataclass(frozen=True)
class OnnxGraphs:
    """Serialised ONNX graphs of one network.

    Attributes:
        info: what they are.
        maps: the dense maps graph (bytes of a ModelProto).
        regressor: BEV's per-person regression graph, None for ROMP.
    """

    info: GraphInfo
    maps: bytes
    regressor: bytes | None = None

    def save(self, path: str | Path) -> list[Path]:
        """Write ``path`` (and BEV's ``*.regressor.onnx`` beside it); returns the files."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.maps)
        written = [path]
        if self.regressor is not None:
            regressor_path = regressor_path_for(path)
            regressor_path.write_bytes(self.regressor)
            written.append(regressor_path)
        return written


class _ROMPGraph(nn.Module):
    """ROMPNet with tuple outputs (the exporter wants tensors, not dataclasses)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.net(images)
        return maps.center_maps, maps.params_maps


class _BEVMapsGraph(nn.Module):
    """BEVNet.forward_maps with tuple outputs."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        maps = self.net.forward_maps(images)
        return maps.center_maps_3d, maps.cam_maps_3d, maps.center_maps_fv, maps.param_features


class _BEVRegressorGraph(nn.Module):
    """BEVNet.regress_params (the anchors become a graph constant)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, param_features: Tensor, cams: Tensor, batch_ids: Tensor) -> Tensor:
        return self.net.regress_params(param_features, cams, batch_ids)


def regressor_path_for(path: str | Path) -> Path:
    """Where BEV's regressor graph lives beside ``path`` (``x.onnx`` -> ``x.regressor.onnx``)."""
    path = Path(path)
    stem = path.name[:-len('.onnx')] if path.name.endswith('.onnx') else path.name
    return path.with_name(stem + REGRESSOR_SUFFIX)


def _to_bytes(module: nn.Module, args: tuple[Tensor, ...], input_names, output_names,
              dynamic_axes: dict, opset: int, info: GraphInfo) -> bytes:
    buffer = io.BytesIO()
    # a fresh wrapper is in training mode, and the exporter restores the mode it found on
    # the wrapper - recursively, which would leave the wrapped network training afterwards
    module.eval()
    with warnings.catch_warnings():
        # the tracer warns about every shape read of the fixed spatial size; those are static
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        warnings.simplefilter('ignore', category=DeprecationWarning)
        # BEV's gathers by person index: the indices are cells and batch ids, never negative
        warnings.filterwarnings('ignore', message='Exporting aten::index operator')
        torch.onnx.export(module, args, buffer, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    return with_metadata(buffer.getvalue(), info)


def with_metadata(model_bytes: bytes, info: GraphInfo) -> bytes:
    """Add the romp_ros metadata to a serialised ModelProto (needs the ``onnx`` package)."""
    onnx = _import_onnx()
    proto = onnx.load_from_string(model_bytes)
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export_graphs(net: nn.Module, model_name: str, backbone: str, input_size: int,
                  batch: int = 1, dynamic_batch: bool = True,
                  opset: int = DEFAULT_OPSET) -> OnnxGraphs:
    """Export a loaded network (eval mode, on the CPU) to ONNX.

    Args:
        net: ROMPNet or BEVNet with its final weights (BatchNorm folded or not).
        model_name: 'romp' or 'bev'.
        backbone: recorded in the metadata.
        input_size: side S of the square input.
        batch: batch size of the example input (the static batch when not dynamic).
        dynamic_batch: leave the batch dimension symbolic.
        opset: ONNX opset.

    Returns:
        :class:`OnnxGraphs` (bytes; :meth:`OnnxGraphs.save` writes them).
    """
    if net.training:
        raise ValueError('export needs net.eval() (BatchNorm and dropout frozen)')
    if batch < 1:
        raise ValueError(f'batch={batch} must be >= 1')
    if model_name == 'bev' and dynamic_batch:
        # BEV's depth branch writes its offsets into one component of the 3D camera volume;
        # the tracer freezes that broadcast at the example's batch, so the maps graph is
        # exported for a fixed batch and the runtimes run larger batches in chunks of it
        LOG.info('BEV maps graph: static batch %d (its depth-offset assignment does not '
                 'trace with a dynamic batch); larger batches run in chunks', batch)
        dynamic_batch = False
    info = GraphInfo(model=model_name, backbone=backbone, input_size=int(input_size),
                     batch=0 if dynamic_batch else int(batch), opset=int(opset))
    device = next(net.parameters()).device
    images = torch.full((batch, input_size, input_size, 3), 127.0, device=device)
    batch_axis = {0: 'batch'} if dynamic_batch else {}
    with torch.no_grad():
        if model_name == 'romp':
            maps = _to_bytes(_ROMPGraph(net), (images,), ('images',), ROMP_OUTPUTS,
                             dict.fromkeys(('images', *ROMP_OUTPUTS), batch_axis),
                             opset, info)
            return OnnxGraphs(info=info, maps=maps)
        maps = _to_bytes(_BEVMapsGraph(net), (images,), ('images',), BEV_OUTPUTS,
                         dict.fromkeys(('images', *BEV_OUTPUTS), batch_axis), opset, info)
        features = net.forward_maps(images).param_features.float()  # (B, 128, M, M)
        people = 2  # any N >= 1: the person axis is dynamic (and the batch: see maps chunks)
        cams = torch.tensor([[0.5, 0.0, 0.0]] * people, device=device)  # (N, 3)
        batch_ids = torch.zeros(people, dtype=torch.long, device=device)  # (N,)
        person_axis = {0: 'people'}
        regressor = _to_bytes(
            _BEVRegressorGraph(net), (features, cams, batch_ids), REGRESSOR_INPUTS,
            ('params',), {'param_features': {0: 'batch'}, 'cams': person_axis,
                          'batch_ids': person_axis, 'params': person_axis}, opset, info)
    return OnnxGraphs(info=info, maps=maps, regressor=regressor)


def read_graph_info(model_bytes: bytes, source: str) -> GraphInfo:
    """The :class:`GraphInfo` stored in a serialised graph."""
    onnx = _import_onnx()
    try:
        proto = onnx.load_from_string(model_bytes)
    except Exception as err:  # noqa: BLE001 - protobuf raises several types on bad bytes
        raise RuntimeSetupError(f'{source} is not a readable ONNX file ({err})') from err
    return GraphInfo.from_metadata({p.key: p.value for p in proto.metadata_props}, source)


def load_graphs(path: str | Path) -> OnnxGraphs:
    """Read what :meth:`OnnxGraphs.save` wrote (BEV: both files must be there)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RuntimeSetupError(f'ONNX file not found: {path}; write it with `romp-ros '
                                'export --format onnx --out PATH`')
    maps = path.read_bytes()
    info = read_graph_info(maps, str(path))
    regressor = None
    if info.model == 'bev':
        regressor_path = regressor_path_for(path)
        if not regressor_path.is_file():
            raise RuntimeSetupError(
                f'{path} is a BEV graph but its per-person regressor {regressor_path} is '
                'missing; `romp-ros export` writes both files, keep them together')
        regressor = regressor_path.read_bytes()
    return OnnxGraphs(info=info, maps=maps, regressor=regressor)


def _import_onnx():
    try:
        import onnx
    except ImportError as err:
        raise RuntimeSetupError(
            "ONNX export needs the 'onnx' package: pip install onnx (or "
            "pip install 'romp-ros[fast]')") from err
    return onnx


@dataclass(frozen=True)
class GraphCheck:
    """How far an exported graph's outputs are from the torch module's, on one input.

    Attributes:
        max_abs: per output name, the largest absolute difference.
        scale: per output name, the largest absolute torch value (for a relative reading).
    """

    max_abs: dict[str, float]
    scale: dict[str, float]

    def worst_relative(self) -> float:
        """Max over outputs of max_abs / max(1, scale): the number the tolerance applies to."""
        return max(self.max_abs[name] / max(1.0, self.scale[name]) for name in self.max_abs)


def check_graphs(graphs: OnnxGraphs, net: nn.Module, images: Tensor) -> GraphCheck:
    """Run the exported graphs in ONNX Runtime (CPU) and the module in torch on ``images``.

    Args:
        graphs: what :func:`export_graphs` returned.
        net: the module they were exported from (eval mode).
        images: (B, S, S, 3) float32 RGB 0..255 (B must be the static batch, if any).

    Returns:
        :class:`GraphCheck` over every output (BEV: the maps and the regressed parameters of
        a few cameras read from the 3D camera map).
    """
    from romp_ros.core.runtime.onnxruntime_runner import import_onnxruntime
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(graphs.maps, options, providers=['CPUExecutionProvider'])
    images = images.detach().float().cpu()
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {'images': images.numpy()}), strict=True))
    with torch.no_grad():
        if graphs.info.model == 'romp':
            maps = net(images)
            want = {'center_maps': maps.center_maps, 'params_maps': maps.params_maps}
        else:
            maps = net.forward_maps(images)
            want = dict(zip(BEV_OUTPUTS, (maps.center_maps_3d, maps.cam_maps_3d,
                                          maps.center_maps_fv, maps.param_features),
                            strict=True))
            # three people: cameras read at fixed cells of the 3D camera map
            cells = torch.tensor([[10, 40, 40], [30, 64, 64], [50, 90, 20]]).clamp(
                max=maps.cam_maps_3d.shape[2] - 1)
            batch_ids = torch.zeros(3, dtype=torch.long)
            cams = maps.cam_maps_3d[batch_ids, cells[:, 0], cells[:, 1], cells[:, 2]]
            want['params'] = net.regress_params(maps.param_features, cams, batch_ids)
            regressor = ort.InferenceSession(graphs.regressor, options,
                                             providers=['CPUExecutionProvider'])
            (got['params'],) = regressor.run(None, {
                'param_features': maps.param_features.float().numpy(),
                'cams': cams.float().numpy(), 'batch_ids': batch_ids.numpy()})
    max_abs = {name: float((torch.from_numpy(got[name]) - want[name].float()).abs().max())
               for name in want}
    scale = {name: float(want[name].float().abs().max()) for name in want}
    return GraphCheck(max_abs=max_abs, scale=scale)
