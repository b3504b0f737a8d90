"""Side-by-side timing of the runtimes and the reference's paths (``romp-ros bench --compare-*``).

Every variant runs the whole pipeline on the same frame with the same weights: image in host
memory -> people with joints, vertices and translations. The variants are timed round-robin
(one call each per round), so a change of machine load hits them alike; the ratios of one
run are what to read. Peak resident memory (and peak CUDA memory of torch allocations) is
measured per variant in a fresh process, since a process's peak only ever grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import multiprocessing
from pathlib import Path
import platform
import resource
import statistics
import tempfile
import time
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from romp_ros.core.config import EstimatorConfig

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One way of running the pipeline.

    Attributes:
        label: shown in the table.
        side: 'ours' or 'reference'.
        runtime: 'torch', 'onnxruntime' or 'openvino' (reference: 'torch' or 'onnxruntime').
        precision: 'fp32', 'fp16' or 'bf16'.
        checkpoint: weights to load instead of the configuration's (an int8 ONNX graph).
        max_people: a cap on the people found instead of the configuration's: keeps the
            post-processing work equal when a variant's maps find more people (int8 on
            untrained, seeded weights).
        compile: the torch runtime's ``torch.compile`` mode ('off' = eager).
        postprocess: 'compact' or 'padded' (see ``EstimatorConfig.postprocess``); None
            keeps the configuration's (``--postprocess``).
    """

    label: str
    side: str
    runtime: str
    precision: str = 'fp32'
    checkpoint: str | None = None
    max_people: int | None = None
    compile: str = 'off'
    postprocess: str | None = None


@dataclass(frozen=True)
class VariantResult:
    """Timing and memory of one variant.

    Attributes:
        variant: what ran.
        people: people found on the frame.
        median_ms: median milliseconds per frame over the rounds.
        peak_rss_mb: peak resident memory of a process that built it and ran two frames
            (None when not measured).
        peak_gpu_mb: peak CUDA memory allocated by torch in that process (None on the CPU).
    """

    variant: Variant
    people: int
    median_ms: float
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every variant of one model on one frame."""

    config: EstimatorConfig
    frame_size: tuple[int, int]
    threads: int
    results: list[VariantResult] = field(default_factory=list)

    def baseline_ms(self, runtime: str) -> float | None:
        """The reference's time with a runtime ('torch' / 'onnxruntime'), if it ran."""
        for r in self.results:
            if r.variant.side == 'reference' and r.variant.runtime == runtime:
                return r.median_ms
        return None

    def table_rows(self) -> list[str]:
        """Markdown rows (see :func:`table_header`)."""
        ref_torch, ref_onnx = self.baseline_ms('torch'), self.baseline_ms('onnxruntime')
        rows = []
        for r in self.results:
            def ratio(base, ms=r.median_ms):
                return f'{base / ms:.2f}x' if base else '-'
            rss = f'{r.peak_rss_mb:.0f}' if r.peak_rss_mb is not None else '-'
            gpu = f' / {r.peak_gpu_mb:.0f}' if r.peak_gpu_mb is not None else ''
            rows.append(f'| {self.config.model}/{self.config.backbone} | {r.variant.label} | '
                        f'{r.people} | {r.median_ms:.0f} | {ratio(ref_torch)} | '
                        f'{ratio(ref_onnx)} | {rss}{gpu} |')
        return rows


def device_name(device: str) -> str:
    """The device's name for a table's heading: the GPU's model, else the CPU's."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    return f'CPU ({platform.processor() or platform.machine()})'


def table_header(gpu: bool = False) -> list[str]:
    """The markdown table header of :meth:`Comparison.table_rows`."""
    memory = 'peak RSS / GPU MiB' if gpu else 'peak RSS MiB'
    return [f'| model | pipeline | people | ms/frame | vs reference torch | vs reference ONNX '
            f'| {memory} |', '|---|---|---|---|---|---|---|']


def default_variants(model: str, device: str, reference: bool, bf16: bool) -> list[Variant]:
    """The variants worth comparing for a model on a device, given what is installed.

    A runtime that cannot run on ``device`` is left out, never timed on another device: on a
    GPU machine with the CPU-only ``onnxruntime``, neither ONNX Runtime row is built.
    """
    from romp_ros.core.runtime import runtime_available, runtime_runs_on
    cuda = device.startswith('cuda')
    onnx = runtime_runs_on('onnxruntime', device)
    if not onnx and runtime_available('onnxruntime'):
        LOG.info('ONNX Runtime rows left out: this onnxruntime cannot run on %s '
                 '(pip install onnxruntime-gpu in place of onnxruntime)', device)
    variants = []
    if reference:
        variants.append(Variant('reference torch', 'reference', 'torch'))
        if model == 'romp' and onnx:
            variants.append(Variant('reference ONNX Runtime', 'reference', 'onnxruntime'))
    variants.append(Variant('ours torch fp32', 'ours', 'torch'))
    if cuda:
        variants.append(Variant('ours torch fp16', 'ours', 'torch', 'fp16'))
        variants.append(Variant('ours torch fp16, compiled + CUDA graph', 'ours', 'torch',
                                'fp16', compile='reduce-overhead'))
        # the padded post-processing never waits for the GPU before the copy back
        variants.append(Variant('ours torch fp16, compiled + CUDA graph, padded', 'ours',
                                'torch', 'fp16', compile='reduce-overhead',
                                postprocess='padded'))
    if onnx:
        variants.append(Variant('ours onnxruntime fp32', 'ours', 'onnxruntime'))
    if runtime_runs_on('openvino', device):
        variants.append(Variant('ours openvino fp32', 'ours', 'openvino'))
        if bf16:
            variants.append(Variant('ours openvino bf16', 'ours', 'openvino', 'bf16'))
    return variants


def int8_variants(config: EstimatorConfig, calibration: list[np.ndarray], folder: Path,
                  max_people: int | None = None) -> list[Variant]:
    """ONNX Runtime and OpenVINO on the configured weights quantised to int8 (file in folder).

    Args:
        config: the model being compared (its checkpoint is exported and quantised).
        calibration: RGB frames for the activation ranges (see ``quantize_int8``).
        folder: where the int8 graph is written.
        max_people: cap on the people of the int8 variants (see :class:`Variant`).
    """
    from romp_ros.cli.export import network_for_export
    from romp_ros.core.runtime import runtime_runs_on
    from romp_ros.core.runtime.int8_quantization import quantize_int8
    from romp_ros.core.runtime.onnx_graphs import export_graphs
    net, input_size = network_for_export(config, config.input_size)
    graphs = quantize_int8(export_graphs(net, config.model, config.backbone, input_size),
                           calibration)
    path = Path(folder) / f'{config.model}_{config.backbone}_int8.onnx'
    graphs.save(path)
    variants = []
    if runtime_runs_on('onnxruntime', config.device):
        variants.append(Variant('ours onnxruntime int8', 'ours', 'onnxruntime',
                                checkpoint=str(path), max_people=max_people))
    if runtime_runs_on('openvino', config.device):
        variants.append(Variant('ours openvino int8', 'ours', 'openvino', checkpoint=str(path),
                                max_people=max_people))
    return variants


def _build(variant: Variant, config: EstimatorConfig, reference_files: dict | None
           ) -> Callable[[np.ndarray], int]:
    """A function RGB frame -> people found, for one variant."""
    if variant.side == 'ours':
        from romp_ros.core.estimator import Estimator
        est = Estimator(config.replace(runtime=variant.runtime, precision=variant.precision,
                                       checkpoint=variant.checkpoint or config.checkpoint,
                                       max_people=variant.max_people or config.max_people,
                                       compile=variant.compile, color_order='rgb',
                                       postprocess=variant.postprocess or config.postprocess))
        return lambda frame: est.predict([frame])[0].num_people
    from romp_ros.cli.reference_pipelines import ReferenceBev, ReferenceRomp
    from romp_ros.core.estimator import default_checkpoint_path, resolve_device
    ckpt = default_checkpoint_path(config)
    device = resolve_device(config.device)
    if config.model == 'romp':
        ref = ReferenceRomp(ckpt, reference_files['smpl'], onnx=variant.runtime != 'torch',
                            center_thresh=config.effective_center_thresh,
                            threads=torch.get_num_threads(), device=device)
    else:
        ref = ReferenceBev(ckpt, reference_files['smpla'], reference_files['smil'],
                           center_thresh=config.effective_center_thresh, device=device)

    def run(frame: np.ndarray) -> int:
        out = ref(np.ascontiguousarray(frame[:, :, ::-1]))  # the reference reads BGR
        return 0 if out is None else int(len(out['cam']))
    return run


def _peak_rss_mb() -> float:
    """This process's resident-memory high-water mark, MiB (Linux VmHWM; else ru_maxrss)."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _probe_memory(queue, variant: Variant, config: EstimatorConfig, reference_files, frame,
                  threads: int) -> None:
    """In a fresh process: build the variant, run two frames, put peak RSS / GPU MiB."""
    torch.set_num_threads(threads)
    run = _build(variant, config, reference_files)
    run(frame)
    run(frame)
    gpu = (torch.cuda.max_memory_allocated() / 2**20
           if torch.cuda.is_available() and config.device.startswith('cuda') else None)
    queue.put((_peak_rss_mb(), gpu))


def _memory_of(variant: Variant, config: EstimatorConfig, reference_files, frame,
               threads: int) -> tuple[float | None, float | None]:
    """Peak memory of one variant, measured in its own freshly spawned interpreter."""
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_probe_memory,
                              args=(queue, variant, config, reference_files, frame, threads))
    process.start()
    try:
        return queue.get(timeout=1800)
    except Exception as err:  # noqa: BLE001 - queue.Empty or a dead child: report, go on
        LOG.warning('memory of %s not measured: %s', variant.label, err)
        return None, None
    finally:
        process.join(timeout=60)


def compare(config: EstimatorConfig, frame_rgb: np.ndarray, variants: list[Variant],
            repeats: int = 5, memory: bool | Callable[[Variant], bool] = True) -> Comparison:
    """Time every variant round-robin on one frame; optionally measure its memory.

    ``memory`` is True (every variant), False (none) or a predicate choosing the variants
    whose peak memory is measured, each in a fresh process: a compiled variant's process
    compiles its network again, which a short GPU lease may not afford.

    Raises:
        ReferenceNotInstalledError: a reference variant without simple-romp installed.
    """
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        reference_files = None
        if any(v.side == 'reference' for v in variants):
            from romp_ros.cli.reference_pipelines import (
                reference_module,
                write_reference_body_files,
            )
            reference_module('romp.model')  # fails early and clearly when not installed
            reference_files = write_reference_body_files(config.models_dir, Path(tmp))
        runs = {}
        for variant in tqdm(variants, desc='building', unit='variant'):
            runs[variant] = _build(variant, config, reference_files)
        people = {v: run(frame_rgb) for v, run in runs.items()}  # also the warm-up
        times: dict[Variant, list[float]] = {v: [] for v in variants}
        for _ in tqdm(range(repeats), desc='rounds', unit='round'):
            for variant, run in runs.items():
                start = time.perf_counter()
                run(frame_rgb)
                times[variant].append(time.perf_counter() - start)
        del runs
        memories: dict[Variant, tuple[float | None, float | None]] = {}
        measured = [v for v in variants if (memory(v) if callable(memory) else memory)]
        for variant in tqdm(measured, desc='memory', unit='variant', disable=not measured):
            memories[variant] = _memory_of(variant, config, reference_files, frame_rgb,
                                           threads)
    results = [VariantResult(v, people[v], statistics.median(times[v]) * 1e3,
                             *memories.get(v, (None, None))) for v in variants]
    return Comparison(config=config, frame_size=frame_rgb.shape[:2], threads=threads,
                      results=results)
