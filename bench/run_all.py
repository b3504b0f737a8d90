"""`make bench`: every benchmark, each writing its figures into docs/.

Needs test/ on PYTHONPATH for the reference oracle (the Makefile sets it).
"""

from __future__ import annotations

import logging
from pathlib import Path
import subprocess
import sys

LOG = logging.getLogger('bench')
HERE = Path(__file__).resolve().parent
SCRIPTS = ('param_counts.py', 'pipeline_vs_reference.py', 'tracking_eval.py', 'augment_speed.py',
           'augment_examples.py', 'test_assets_speed.py', 'visualization_bench.py',
           'lens_translation.py', 'runtime_accuracy.py', 'runtime_speed.py', 'node_latency.py')


def main() -> int:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    failed = []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            LOG.warning('skipping %s (not present)', name)
            continue
        LOG.info('== %s', name)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        LOG.error('failed: %s', ', '.join(failed))
        return 1
    LOG.info('all benchmarks done; figures written into docs/')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
