"""Issue 10's GPU figures in one run, for a session that is lent a GPU.

For each model (by default ROMP-HRNet-32, BEV-HRNet-32 and ROMP-EfficientNetV2-S), on seeded
weights in the official layout and the synthetic body model:

1. **Side by side with the reference** on the CPU tables' 1280x720 frame, batch 1
   (`romp_ros.cli.runtime_compare`): the reference's torch path (simple-romp, when it
   imports) beside ours in fp32, fp16, compiled with a CUDA graph, and with the padded
   post-processing; ONNX Runtime rows only where its build has the CUDA provider. Median ms
   per frame, ratios, peak RSS and GPU memory (not of the compiled variants by default).
2. **The stages**, at batch 1 and batched (several cameras' frames in one network call): the
   network alone, the whole pipeline, pipeline / network, frames per second and peak GPU
   memory.

The tables go into docs/performance.md (section ``gpu-session``) after each model, so a run
that is cut short keeps what it measured, and into OUT/gpu_session.md and OUT/gpu_session.json.
A model that would start after ``--deadline-s`` is skipped and named in the log.

    bash bench/gpu_session.sh run                   # on the lent machine (see its header)
    python bench/gpu_session.py --device cpu --models romp:resnet50 --batches 1 2 \\
        --rounds 2 --frames 2 --memory none --out /tmp/gpu_dry   # a dry run on a CPU

It needs the package alone (and simple-romp for the reference rows), not test/.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import datetime
import gc
import json
import logging
import os
from pathlib import Path
import tempfile
import time

from runtime_fixtures import PERFORMANCE_DOC, SeededSetup, frame_1280x720
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.cli.pipeline_bench import run_pipeline_bench
from romp_ros.cli.reference_pipelines import ReferenceNotInstalledError, reference_module
from romp_ros.cli.runtime_compare import compare, default_variants, device_name, table_header
from romp_ros.core import EstimatorConfig

LOG = logging.getLogger('bench.gpu_session')
DOC_SECTION = 'gpu-session'
# the reference ships HRNet-32 weights only, so only those rows have a reference beside them
REFERENCE_BACKBONE = 'hrnet32'
MEMORY_CHOICES = {'all': True, 'none': False, 'eager': lambda variant: variant.compile == 'off'}


@dataclass(frozen=True)
class StageRow:
    """The stages of one configuration at one batch size (milliseconds per network call)."""

    model: str
    backbone: str
    batch: int
    precision: str
    compile: str
    preprocess_ms: float
    network_ms: float
    pipeline_ms: float
    people_per_frame: float
    peak_gpu_mib: float | None

    @property
    def frames_per_s(self) -> float:
        return self.batch * 1e3 / self.pipeline_ms

    def markdown(self) -> str:
        gpu = f'{self.peak_gpu_mib:.0f}' if self.peak_gpu_mib is not None else '-'
        return (f'| {self.model}/{self.backbone} | {self.batch} | {self.precision}, compile '
                f'{self.compile} | {self.preprocess_ms:.1f} | {self.network_ms:.1f} | '
                f'{self.pipeline_ms:.1f} | {self.pipeline_ms / self.network_ms:.2f} | '
                f'{self.frames_per_s:.0f} | {self.people_per_frame:.1f} | {gpu} |')


STAGE_HEADER = ['| model | batch | network | preprocess ms | network ms | pipeline ms '
                '| pipeline / network | frames/s | people/frame | peak GPU MiB |',
                '|---|---|---|---|---|---|---|---|---|---|']


def parse_models(specs: list[str]) -> list[tuple[str, str]]:
    """'romp:hrnet32' -> ('romp', 'hrnet32'); a bad spec is one clear error."""
    from romp_ros.core.config import BACKBONE_NAMES, MODEL_NAMES
    models = []
    for spec in specs:
        model, _, backbone = spec.partition(':')
        if model not in MODEL_NAMES or backbone not in BACKBONE_NAMES:
            raise SystemExit(f'--models {spec!r}: expected MODEL:BACKBONE with MODEL in '
                             f'{MODEL_NAMES} and BACKBONE in {BACKBONE_NAMES}')
        models.append((model, backbone))
    return models


def reference_installed() -> bool:
    """Whether simple-romp's model code imports (the reference rows need it)."""
    try:
        reference_module('romp.model')
        reference_module('bev.model')
    except ReferenceNotInstalledError as err:
        LOG.warning('no reference rows: %s', err)
        return False
    return True


def stage_row(config: EstimatorConfig, batch: int, frames: int) -> StageRow:
    """Time one configuration's stages at one batch size, with its peak GPU memory."""
    cuda = config.device.startswith('cuda')
    if cuda:
        gc.collect()  # the previous rows' estimators, so their memory is not counted here
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    report = run_pipeline_bench(config, frames=frames, batch=batch)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return StageRow(config.model, config.backbone, batch, config.precision, config.compile,
                    report.preprocess_s * 1e3, report.network_s * 1e3,
                    report.pipeline_s * 1e3, report.people_per_frame, peak)


def render(heading: str, compare_rows: list[str], stage_rows: list[StageRow],
           skipped: list[str]) -> str:
    """The markdown of everything measured so far."""
    lines = [heading, '', '**Side by side with the reference** (batch 1, one 1280x720 frame, '
             'round-robin medians):', '', *table_header(gpu=True), *compare_rows, '',
             "**Stages** (random 1280x720 frames; a batch is several cameras' frames in one "
             'network call; ms per call):', '', *STAGE_HEADER,
             *(row.markdown() for row in stage_rows)]
    if skipped:
        lines += ['', f'Not measured in this run (deadline): {", ".join(skipped)}.']
    return '\n'.join(lines)


def publish(args: argparse.Namespace, heading: str, compare_rows: list[str],
            stage_rows: list[StageRow], skipped: list[str]) -> str:
    """Write what was measured so far into the docs and OUT; returns the markdown."""
    text = render(heading, compare_rows, stage_rows, skipped)
    write_doc_section(args.doc, text, name=args.doc_section)
    (args.out / 'gpu_session.md').write_text(text + '\n', encoding='utf-8')
    (args.out / 'gpu_session.json').write_text(json.dumps(
        {'heading': heading, 'compare_rows': compare_rows, 'skipped': skipped,
         'stages': [dict(asdict(r), frames_per_s=r.frames_per_s) for r in stage_rows]},
        indent=1), encoding='utf-8')
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda:0')
    parser.add_argument('--models', nargs='+', metavar='MODEL:BACKBONE',
                        default=['romp:hrnet32', 'bev:hrnet32', 'romp:efficientnet_v2_s'])
    parser.add_argument('--batches', nargs='+', type=int, default=[1, 8, 32],
                        help='batch sizes of the stage table')
    parser.add_argument('--rounds', type=int, default=20, help='round-robin rounds (side by side)')
    parser.add_argument('--frames', type=int, default=30, help='timed calls per stage row')
    parser.add_argument('--precision', default='fp16', help='precision of the stage rows')
    parser.add_argument('--compile', default='reduce-overhead',
                        help='torch.compile mode of the stage rows at batch 1')
    parser.add_argument('--batched-compile', default='off',
                        help='torch.compile mode of the batched stage rows (a compile per '
                             'batch size costs minutes of the lease)')
    parser.add_argument('--no-reference', action='store_true', help='leave out simple-romp')
    parser.add_argument('--memory', choices=('all', 'eager', 'none'), default='eager',
                        help="side-by-side variants whose peak memory is measured, each in a "
                             "fresh process ('eager': not the compiled ones, whose processes "
                             'would compile again)')
    parser.add_argument('--deadline-s', type=float, default=None,
                        help='start no further model after this many seconds')
    parser.add_argument('--out', type=Path, default=Path(os.environ.get('OUT', 'gpu_session')))
    parser.add_argument('--doc', type=Path, default=PERFORMANCE_DOC)
    parser.add_argument('--doc-section', default=DOC_SECTION)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')

    models = parse_models(args.models)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'--device {args.device}: torch sees no CUDA device here')
    args.out.mkdir(parents=True, exist_ok=True)
    reference = not args.no_reference and reference_installed()
    started = time.monotonic()
    heading = (f'{datetime.date.today().isoformat()}, {device_name(args.device)}, '
               f'torch {torch.__version__}; seeded weights in the official layout, synthetic '
               f'body model.')
    compare_rows: list[str] = []
    stage_rows: list[StageRow] = []
    skipped: list[str] = []
    text = ''
    with tempfile.TemporaryDirectory(prefix='romp_ros_gpu_') as tmp:
        assets = SeededSetup(Path(tmp)).prepare()
        frame = frame_1280x720()
        for index, (model, backbone) in enumerate(models):
            if args.deadline_s is not None and time.monotonic() - started > args.deadline_s:
                skipped = [f'{m}/{b}' for m, b in models[index:]]
                LOG.warning('past the %.0f s deadline; not measured: %s', args.deadline_s,
                            ', '.join(skipped))
                text = publish(args, heading, compare_rows, stage_rows, skipped)
                break
            name = f'{model}/{backbone}'
            config = EstimatorConfig(model=model, backbone=backbone,
                                     checkpoint=str(assets.checkpoint(model, backbone)),
                                     models_dir=str(assets.models_dir), device=args.device)
            LOG.info('== %s: side by side', name)
            variants = default_variants(model, args.device,
                                        reference and backbone == REFERENCE_BACKBONE,
                                        bf16=False)
            result = compare(config, frame, variants, repeats=args.rounds,
                             memory=MEMORY_CHOICES[args.memory])
            compare_rows += result.table_rows()
            # fp16 / bf16 are CUDA's: on a CPU dry run the rows say the fp32 that ran
            precision = args.precision if args.device.startswith('cuda') else 'fp32'
            for batch in args.batches:
                LOG.info('== %s: stages at batch %d', name, batch)
                mode = args.compile if batch == 1 else args.batched_compile
                stage_rows.append(stage_row(config.replace(precision=precision, compile=mode),
                                            batch, args.frames))
            # after each model, so that a run cut short keeps what it measured
            text = publish(args, heading, compare_rows, stage_rows, skipped)
            LOG.info('%s done after %.0f s; tables in %s and %s', name,
                     time.monotonic() - started, args.doc, args.out)
    for line in text.splitlines():
        LOG.info('%s', line)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
