"""Flags shared by the sub-commands that run a model, and their mapping onto EstimatorConfig."""

from __future__ import annotations

import argparse
from pathlib import Path

# romp_ros.core.config imports neither numpy nor torch, so `--help` stays fast
from romp_ros.core.config import (
    BACKBONE_NAMES,
    COMPILE_MODES,
    MODEL_NAMES,
    POSTPROCESS_LAYOUTS,
    PRECISIONS,
    RUNTIME_NAMES,
)


def add_model_flags(parser: argparse.ArgumentParser, *, models_dir_required: bool = True) -> None:
    """Add --model, --backbone, --checkpoint, --models-dir and the inference settings."""
    parser.add_argument('--model', choices=MODEL_NAMES, default='romp',
                        help='network: romp (2D center map) or bev (3D center map, children)')
    parser.add_argument('--backbone', choices=BACKBONE_NAMES, default='hrnet32',
                        help='feature extractor; official weights exist for hrnet32 (ROMP, '
                             'BEV) and resnet50 (ROMP); efficientnet_v2_s is the light one')
    parser.add_argument('--checkpoint', type=Path, default=None,
                        help='network weights (.pkl/.pth/.safetensors); default: the '
                             "model's official file name inside --models-dir")
    parser.add_argument('--models-dir', type=Path, required=models_dir_required,
                        help='folder written by `romp-ros prepare-models` (body model files)')
    parser.add_argument('--center-thresh', type=float, default=None,
                        help='minimum body-center score (default: romp 0.25, bev 0.08, as the '
                             'reference)')
    parser.add_argument('--max-people', type=int, default=64,
                        help='at most this many people per image (1..64)')
    parser.add_argument('--device', default='auto',
                        help="'auto' (CUDA if available), 'cpu' or 'cuda:N'")
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='network precision: fp16/bf16 on CUDA (torch; onnxruntime with '
                             'TensorRT: fp16), bf16 on the CPU with --runtime openvino; '
                             'post-processing stays fp32')
    parser.add_argument('--input-size', type=int, default=None, metavar='S',
                        help='network input side in pixels (default: the size a `romp-ros '
                             "train` checkpoint records, else 512, the official weights')")
    parser.add_argument('--runtime', choices=RUNTIME_NAMES, default='torch',
                        help='where the network runs: torch, onnxruntime or openvino (pip '
                             "install 'romp-ros[fast]'); --checkpoint may then be a .onnx "
                             'file from `romp-ros export`. openvino with --precision bf16 is '
                             'the fastest on CPUs with AMX / AVX512-BF16 (docs/performance.md)')
    parser.add_argument('--compile', choices=COMPILE_MODES, default='off',
                        help='torch.compile the network (runtime torch; reduce-overhead and '
                             'max-autotune replay CUDA graphs on CUDA): compiled at start-up, '
                             'minutes the first time, cached in ~/.cache/romp_ros/inductor')
    parser.add_argument('--postprocess', choices=POSTPROCESS_LAYOUTS, default='compact',
                        help='padded: keep --max-people slots per image through '
                             'post-processing, so it never waits for a GPU before the copy '
                             'back (lower --max-people to the crowd you expect); same results')


def config_from_args(args: argparse.Namespace, **extra):
    """The :class:`EstimatorConfig` of the model flags (plus ``extra`` fields)."""
    from romp_ros.core.config import EstimatorConfig
    return EstimatorConfig(
        model=args.model, backbone=args.backbone,
        checkpoint=str(args.checkpoint) if args.checkpoint else '',
        models_dir=str(args.models_dir) if args.models_dir else '', device=args.device,
        precision=args.precision, center_thresh=args.center_thresh,
        max_people=args.max_people, input_size=args.input_size,
        runtime=getattr(args, 'runtime', 'torch'), compile=getattr(args, 'compile', 'off'),
        postprocess=getattr(args, 'postprocess', 'compact'), **extra)
