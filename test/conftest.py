"""Shared fixtures: isolated ROS domains, the synthetic body model and seeded checkpoints."""

from __future__ import annotations

import importlib.util
import itertools
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_domain_counter = itertools.count()


def ros_available() -> bool:
    """Whether rclpy and the generated romp_ros messages import (a `make setup` build)."""
    return (importlib.util.find_spec('rclpy') is not None
            and importlib.util.find_spec('romp_ros.msg') is not None)


def require_ros() -> None:
    """Skip outside a ROS environment, but fail in CI where it must be present."""
    if ros_available():
        return
    if os.environ.get('CI'):
        pytest.fail('rclpy / romp_ros.msg missing in CI: `make setup` did not build the package')
    pytest.skip('needs rclpy and the colcon-built messages: run `make setup` and '
                '`source scripts/env.sh`')


# thread pools of the numeric libraries, read when each starts
_THREAD_VARIABLES = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS')


def pytest_configure(config) -> None:
    """Under pytest-xdist, one CPU thread per worker and per child process it starts.

    Each worker's torch would otherwise start an OpenMP thread per core, and so would every
    CLI and node process the tests start: with two workers on two cores that is twice the
    threads there are cores, and OpenMP threads spin while they wait for each other. That
    made the suite nearly twice as slow on the 2-core CI machine. Set in the controller, before
    the workers start, so that they and their children inherit it; a value given in the
    environment is kept.
    """
    if getattr(config.option, 'numprocesses', None) and not os.environ.get('PYTEST_XDIST_WORKER'):
        for name in _THREAD_VARIABLES:
            os.environ.setdefault(name, '1')


@pytest.fixture
def ros_domain_id(monkeypatch) -> int:
    """A ROS_DOMAIN_ID of this test alone, also exported for child processes.

    Domains 1..100 are used. Under pytest-xdist (``make test`` runs two workers) each worker
    owns its own share of them, so tests running at the same time never share a domain; a
    plain run derives them from its pid and a counter, so that concurrent runs on one machine
    are unlikely to hear each other.
    """
    require_ros()
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')
    if worker.startswith('gw'):
        workers = max(1, int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')))
        span = max(1, 100 // workers)
        domain = 1 + int(worker[2:]) % workers * span + next(_domain_counter) % span
    else:
        domain = 1 + (os.getpid() * 7 + next(_domain_counter)) % 100
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return domain


# -- synthetic assets shared by the estimator, CLI and node tests ---------------------------------
@pytest.fixture(scope='session')
def synthetic_body_files(tmp_path_factory):
    """A synthetic SMPL-format body model in the official file formats (pkl + npy)."""
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files
    return write_synthetic_smpl_files(tmp_path_factory.mktemp('smpl_src'), seed=0)


@pytest.fixture(scope='session')
def models_dir(synthetic_body_files, tmp_path_factory) -> pathlib.Path:
    """A models directory made by the real `prepare-models` code (SMPL, SMPL-A, SMIL, extras)."""
    from romp_ros.core.body.prepare import prepare_models
    out = tmp_path_factory.mktemp('models')
    prepare_models(smpl=synthetic_body_files.smpl_pkl, smil=synthetic_body_files.smil_pkl,
                   extra=synthetic_body_files.source_dir, models_dir=out, progress=False)
    return out


@pytest.fixture(scope='session')
def seeded_checkpoint(tmp_path_factory):
    """Factory: path of a seeded, well-conditioned checkpoint in an official layout (cached)."""
    from romp_ros.testing.seeded_weights import write_seeded_checkpoint
    cache: dict[tuple, pathlib.Path] = {}
    root = tmp_path_factory.mktemp('checkpoints')

    def make(name: str = 'romp', backbone: str = 'hrnet32', layout: str = 'inference',
             seed: int = 0) -> pathlib.Path:
        key = (name, backbone, layout, seed)
        if key not in cache:
            path = root / f'{name}_{backbone}_{layout}_{seed}.pth'
            write_seeded_checkpoint(path, name, backbone, seed=seed, layout=layout)
            cache[key] = path
        return cache[key]

    return make
