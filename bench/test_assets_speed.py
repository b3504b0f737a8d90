"""How long the synthetic test assets take to build (the figure tests used to assert).

Writes a table between markers into docs/performance.md: the synthetic SMPL-format files in
the official formats, their conversion by the real `prepare-models`, and the seeded ROMP
weights. Tests build these once per session, so they bound the suite's set-up time.
"""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
import platform
import statistics
import tempfile
import time

import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.core.body.prepare import prepare_models
from romp_ros.synthetic.body_model import write_synthetic_smpl_files
from romp_ros.testing.seeded_weights import write_seeded_checkpoint

LOG = logging.getLogger('bench.test_assets')
DOC = Path(__file__).resolve().parents[1] / 'docs' / 'performance.md'
DOC_SECTION = 'test-assets'


def _median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--doc', type=Path, default=DOC)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counter = iter(range(1000))
        files = write_synthetic_smpl_files(root / 'src', seed=0, with_zip=False)

        def synthetic() -> None:
            write_synthetic_smpl_files(root / f's{next(counter)}', seed=1, with_zip=True)

        def prepare() -> None:
            prepare_models(smpl=files.smpl_pkl, smil=files.smil_pkl, extra=files.source_dir,
                           models_dir=root / f'm{next(counter)}', progress=False)

        def seeded() -> None:
            write_seeded_checkpoint(root / f'c{next(counter)}.pth', 'romp', 'resnet50')

        for name, action, repeats in (
                ('synthetic SMPL files (pkl, npy, zip)', synthetic, args.repeats),
                ('prepare-models of them', prepare, args.repeats),
                ('seeded ROMP / ResNet-50 checkpoint', seeded, 1)):
            seconds = _median_seconds(action, repeats)
            LOG.info('%-40s %.2f s', name, seconds)
            rows.append(f'| {name} | {seconds:.2f} |')
    table = '\n'.join([
        f'{datetime.date.today()}, {platform.machine()}, {torch.get_num_threads()} torch '
        'threads; median of the repeats.', '', '| asset | seconds |', '|---|---|', *rows])
    write_doc_section(args.doc, table, name=DOC_SECTION,
                      heading='## Test assets\n\n`bench/test_assets_speed.py`: building the '
                              'synthetic test assets (once per test session).')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
