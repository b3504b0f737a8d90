"""torchrun: bags shared across 2 CPU processes (gloo) give exactly the single-process report."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT
import numpy as np
import pytest
from test_evaluation_bags import GT, PRED, people_messages, shifted, synthetic_people, write_bag

from romp_ros.evaluation.runner import EvaluateJob, PredictionSource, run_evaluation

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from pathlib import Path
from romp_ros.evaluation.errors import EvaluationInputError
from romp_ros.evaluation.runner import EvaluateJob, PredictionSource, run_evaluation
out, *bags = sys.argv[1:]
job = EvaluateJob(source=PredictionSource('topic', topic={pred!r}), out_dir=Path(out),
                  bags=tuple(Path(b) for b in bags), gt_topic={gt!r}, plots=False)
try:
    run_evaluation(job)
except EvaluationInputError as err:
    print('ERROR', err, file=sys.stderr)
    sys.exit(2)
"""


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    out, dropped = [], 0
    for i in range(3):
        truth = synthetic_people(seconds=2.0, people=2 + i, seed=i)
        preds = shifted(truth, offset=np.array([0.0, 0.01 * i, 0.02]))
        preds = [p for k, p in enumerate(preds) if k % 7 != i]  # different drops per bag
        dropped += len(truth) - len(preds)
        out.append(write_bag(root / f'bag{i}', people_messages(GT, truth)
                             + people_messages(PRED, preds)))
    return out, dropped


def _env():
    # the checkout's package first (a colcon install on the path lacks the newest modules)
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')])
    return dict(os.environ, PYTHONPATH=path)


def _torchrun(tmp_path, out, bags):
    script = tmp_path / 'evaluate_job.py'
    script.write_text(SCRIPT.format(pred=PRED, gt=GT))
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
         '2', str(script), str(out), *map(str, bags)],
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO_ROOT)


def test_two_processes_give_the_single_process_report(tmp_path, bags):
    bags, dropped = bags
    single = tmp_path / 'single'
    run_evaluation(EvaluateJob(source=PredictionSource('topic', topic=PRED), out_dir=single,
                               bags=tuple(bags), gt_topic=GT, plots=False))
    merged = tmp_path / 'merged'
    done = _torchrun(tmp_path, merged, bags)
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads((single / 'report.json').read_text())
    two = json.loads((merged / 'report.json').read_text())
    assert two == one  # every number, bit for bit, and the bag order
    assert two['sequences'] == [str(b) for b in bags]
    assert (merged / 'frames.jsonl').read_text() == (single / 'frames.jsonl').read_text()
    assert two['frames']['skipped'] == {'no_prediction': dropped}  # the three bags' drops
    assert two['per_sequence'][1]['people'] != two['per_sequence'][0]['people']


def test_a_bad_bag_on_one_process_stops_every_process(tmp_path, bags):
    bags, _ = bags
    broken = tmp_path / 'broken.mcap'
    broken.write_bytes(b'garbage' * 40)
    done = _torchrun(tmp_path, tmp_path / 'out', [bags[0], broken, bags[1]])
    assert done.returncode != 0
    assert 'not a readable bag' in done.stderr
    assert not (tmp_path / 'out' / 'report.json').exists()


def test_the_cli_under_torchrun(tmp_path, bags):
    bags, _ = bags
    if 'evaluate' not in importlib.import_module('romp_ros.cli.main').SUBCOMMAND_MODULES:
        pytest.skip('evaluate is not yet registered in romp_ros.cli.main')
    out = tmp_path / 'cli'
    args = [a for b in bags for a in ('--bag', str(b))]
    done = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
         '2', '-m', 'romp_ros.cli', '--quiet', 'evaluate', *args, '--gt-topic', GT,
         '--pred-topic', PRED, '--out', str(out), '--no-plots'],
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / 'report.json').read_text())['frames']['total'] > 0
