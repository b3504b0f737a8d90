"""`romp-ros export`: a checkpoint -> ONNX graphs for ONNX Runtime, OpenVINO or TensorRT."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from romp_ros.core.config import BACKBONE_NAMES, MODEL_NAMES

LOG = logging.getLogger(__name__)

# exported vs torch outputs, relative to max(1, the output's magnitude); measured ~3e-5 on
# every model at opset 17 (fp32, different convolution algorithms and summation orders)
VERIFY_TOLERANCE = 1e-3


def network_for_export(config, input_size: int | None = None):
    """The configured torch network (eval mode, CPU) and the input side to export it at.

    Args:
        config: an EstimatorConfig naming the model, backbone and checkpoint.
        input_size: the side to use; None: what the checkpoint records, else 512.

    Returns:
        (network, input side).

    Raises:
        EstimatorError: the checkpoint file does not exist.
    """
    from romp_ros.core.estimator import EstimatorError, default_checkpoint_path
    from romp_ros.core.nets.checkpoint import load_into, read_checkpoint
    from romp_ros.core.nets.factory import build_model

    path = default_checkpoint_path(config)
    if not path.is_file():
        raise EstimatorError(f'checkpoint not found: {path}; pass --checkpoint PATH (or '
                             '--models-dir with the official file in it)')
    state, info = read_checkpoint(path)
    input_size = input_size or info.input_size or 512
    net = build_model(config.model, config.backbone, input_size=input_size)
    load_into(net, state)
    return net.eval(), input_size


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.core.config import EstimatorConfig
    from romp_ros.core.preprocess import prepare_batch
    from romp_ros.core.runtime.factory import runtime_available
    from romp_ros.core.runtime.onnx_graphs import check_graphs, export_graphs

    config = EstimatorConfig(model=args.model, backbone=args.backbone,
                             checkpoint=str(args.checkpoint or ''),
                             models_dir=str(args.models_dir or ''), device='cpu')
    net, input_size = network_for_export(config, args.input_size)
    graphs = export_graphs(net, args.model, args.backbone, input_size, batch=args.batch,
                           dynamic_batch=not args.static_batch, opset=args.opset)
    calibration = None
    if args.int8_calibration is not None:  # read before the work, so a bad folder fails fast
        from romp_ros.core.runtime.int8_quantization import read_calibration_images
        calibration = read_calibration_images(args.int8_calibration, args.calibration_images)
    verify = not args.no_verify
    if verify and not runtime_available('onnxruntime'):
        LOG.warning('not verified: onnxruntime is not installed (pip install onnxruntime)')
        verify = False
    if verify:
        import numpy as np
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
                  for _ in range(args.batch)]
        check = check_graphs(graphs, net, prepare_batch(frames, input_size=input_size).tensor)
        _log_check(check)
        if check.worst_relative() > VERIFY_TOLERANCE:
            LOG.error('the exported graph differs from torch by %.2e (relative), more than '
                      '%.0e; nothing written (report this with your torch and onnx versions)',
                      check.worst_relative(), VERIFY_TOLERANCE)
            return 1
    if calibration is not None:
        from romp_ros.core.runtime.int8_quantization import quantize_int8
        LOG.info('int8: calibrating on %d images from %s', len(calibration),
                 args.int8_calibration)
        graphs = quantize_int8(graphs, calibration)
        if verify:
            # int8 is not exact: the differences are reported, and the accuracy that matters
            # is measured against labels with `romp-ros evaluate`
            check = check_graphs(graphs, net, prepare_batch(
                calibration[:args.batch] if graphs.info.batch else calibration[:1],
                input_size=input_size).tensor)
            _log_check(check)
    written = graphs.save(args.out)
    batch = (f'static batch {graphs.info.batch}' if graphs.info.batch else 'dynamic batch')
    LOG.info('%s/%s (%d px, %s, opset %d, %s) -> %s', args.model, args.backbone, input_size,
             batch, args.opset, graphs.info.precision, ', '.join(str(p) for p in written))
    if calibration is not None:
        LOG.info('measure what int8 costs on labelled frames before deploying it: romp-ros '
                 'evaluate --dataset DIR --runtime onnxruntime --checkpoint %s ...', args.out)
    return 0


def _log_check(check) -> None:
    for name, diff in check.max_abs.items():
        LOG.info('  %-15s max |onnx - torch| = %.2e (outputs up to %.3g)', name, diff,
                 check.scale[name])


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'export', help='export a ROMP / BEV checkpoint to ONNX',
        description='Write the network as ONNX (docs/performance.md#onnx-export) for '
                    "`--runtime onnxruntime|openvino --checkpoint FILE.onnx` or TensorRT. "
                    "ROMP: one graph, images -> raw maps (the camera scale's 1.1 ** stays "
                    'outside the graph). BEV: the dense maps graph and, beside it as '
                    '*.regressor.onnx, the per-person parameter regression (a dynamic number '
                    'of people). The result is checked against torch with ONNX Runtime when '
                    'it is installed.')
    p.add_argument('--format', choices=('onnx',), default='onnx', help='output format')
    p.add_argument('--model', choices=MODEL_NAMES, default='romp', help='network')
    p.add_argument('--backbone', choices=BACKBONE_NAMES, default='hrnet32',
                   help='feature extractor (BEV: hrnet32)')
    p.add_argument('--checkpoint', type=Path, default=None,
                   help="weights (.pkl/.pth/.safetensors); default: the model's official file "
                        'name inside --models-dir')
    p.add_argument('--models-dir', type=Path, default=None,
                   help='where the official checkpoint lies when --checkpoint is not given')
    p.add_argument('--out', type=Path, required=True, metavar='FILE.onnx',
                   help='output graph (BEV also writes FILE.regressor.onnx)')
    p.add_argument('--input-size', type=int, default=None, metavar='S',
                   help='input side in pixels (default: what the checkpoint records, else 512)')
    p.add_argument('--batch', type=int, default=1, metavar='B',
                   help='batch of the example input (the batch of a --static-batch graph)')
    p.add_argument('--static-batch', action='store_true',
                   help='fix the batch dimension to --batch (TensorRT builds one engine); '
                        "default: dynamic batch (ROMP; BEV's maps graph is always static)")
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    p.add_argument('--no-verify', action='store_true',
                   help='skip the comparison with torch')
    p.add_argument('--int8-calibration', type=Path, default=None, metavar='DIR',
                   help='quantise the maps graph to int8 (static, QDQ), with activation ranges '
                        'calibrated on the jpg / png frames under DIR (frames from your camera; '
                        'a dataset folder works); needs onnxruntime. Fastest on CPUs: run it '
                        'with --runtime onnxruntime (docs/performance.md#int8)')
    p.add_argument('--calibration-images', type=int, default=64, metavar='N',
                   help='with --int8-calibration: use at most N frames, evenly spaced '
                        '(default 64)')
    p.set_defaults(func=run)
