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


@pytest.fixture
def ros_domain_id(monkeypatch) -> int:
    """A ROS_DOMAIN_ID of this test alone, also exported for child processes.

    Domains 1..101 are used, derived from the pytest worker's pid and a counter so that
    concurrent test runs on one machine do not hear each other.
    """
    require_ros()
    domain = 1 + (os.getpid() * 7 + next(_domain_counter)) % 101
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return domain
