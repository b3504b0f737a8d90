"""`rosdep install --from-paths src` on the README's ROS route: every key of package.xml
resolves, read from rosdep's own rule files (../shared/rosdep: ros/rosdistro's base.yaml and
python.yaml), with no network. ROS package keys resolve to the packages themselves; what has
no apt package comes from requirements/runtime.txt (the README's pip step)."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
import re
import xml.etree.ElementTree as ET

from conftest import REPO_ROOT
import pytest
import yaml

RULES_DIR = Path(os.environ.get('ROMP_ROS_ROSDEP_RULES', REPO_ROOT.parent / 'shared' / 'rosdep'))
# Ubuntu releases of the supported distributions: Humble (jammy), Jazzy and Kilted (noble)
CODENAMES = ('jammy', 'noble')
INSTALLERS = frozenset({'apt', 'pip', 'source'})
# the ROS 2 packages of ../shared/ros2-cli: in the environment only where make setup found it
ROS2_CLI_PACKAGES = frozenset({'launch', 'launch_ros'})
# PyPI name (setup.cfg) -> its rosdep key
PYPI_TO_KEY = {'numpy': 'python3-numpy', 'scipy': 'python3-scipy', 'pyyaml': 'python3-yaml',
               'tqdm': 'python3-tqdm', 'opencv-python-headless': 'python3-opencv',
               'scikit-image': 'python3-skimage', 'matplotlib': 'python3-matplotlib'}


@pytest.fixture(scope='module')
def rules() -> dict:
    files = [RULES_DIR / 'base.yaml', RULES_DIR / 'python.yaml']
    if not all(f.is_file() for f in files):
        pytest.skip(f'rosdep rule files not found in {RULES_DIR} (set ROMP_ROS_ROSDEP_RULES)')
    merged: dict = {}
    for path in files:
        merged.update(yaml.safe_load(path.read_text(encoding='utf-8')))
    return merged


def package_keys() -> dict[str, str]:
    """{key: dependency tag} of every *depend element of package.xml."""
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    return {e.text.strip(): e.tag for e in root if e.tag.endswith('depend')}


def resolve(rules: dict, key: str, codename: str) -> tuple[str, list[str]] | None:
    """(installer, packages) of ``key`` on Ubuntu ``codename`` as rosdep reads its rules, or
    None when rosdep would stop with "Cannot locate rosdep definition"."""
    entry = rules.get(key)
    if not isinstance(entry, dict):
        return None
    rule = entry.get('ubuntu', entry.get('*'))
    if isinstance(rule, dict) and not set(rule) <= INSTALLERS:  # per-release rules
        rule = rule.get(codename, rule.get('*'))
    if isinstance(rule, list):
        return ('apt', rule) if rule else None
    if isinstance(rule, dict):
        for installer in ('apt', 'pip'):
            spec = rule.get(installer)
            if isinstance(spec, dict) and spec.get('packages'):
                return installer, list(spec['packages'])
    return None


def ros_packages_here() -> set[str]:
    """ROS packages of this environment's ament index (wheels, colcon installs)."""
    from ament_index_python.packages import get_packages_with_prefixes
    return set(get_packages_with_prefixes())


def test_every_system_key_resolves_on_every_supported_ubuntu(rules):
    system = [k for k in package_keys() if k.startswith('python3-')]
    assert system, 'package.xml lists no system Python package at all'
    for key in system:
        for codename in CODENAMES:
            resolved = resolve(rules, key, codename)
            assert resolved is not None, f'{key}: no rosdep rule for ubuntu {codename}'
            # apt only: rosdep's pip installer would `sudo pip install` system-wide
            assert resolved[0] == 'apt', f'{key} resolves to {resolved} on {codename}'


def test_every_other_key_is_a_ros_package(rules):
    pytest.importorskip('ament_index_python')
    here = ros_packages_here() | {'romp_ros'}
    others = [k for k in package_keys() if not k.startswith('python3-')]
    for key in others:
        assert key not in rules, f'{key} is a rosdep rule, not a ROS package'
        assert re.fullmatch(r'[a-z][a-z0-9_]*', key), f'{key} is not a ROS package name'
        if key in ROS2_CLI_PACKAGES and key not in here:
            continue  # launch / launch_ros: installed here only with ../shared/ros2-cli
        assert key in here, f'{key}: no such ROS package in this environment (ament index)'


def test_a_key_rosdep_does_not_know_is_caught(rules):
    """The resolver above is strict: the old key python3-smplx-pip fails, real ones pass."""
    assert resolve(rules, 'python3-smplx-pip', 'noble') is None
    assert resolve(rules, 'python3-numpy', 'jammy') == ('apt', ['python3-numpy'])
    assert resolve(rules, 'python3-pytorch-pip', 'noble')[0] == 'pip'


def test_runtime_dependencies_are_covered_by_rosdep_or_the_pip_step():
    """Every runtime requirement of setup.cfg (and its io extra) is a package.xml key or a
    line of requirements/runtime.txt, the README's pip step."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / 'setup.cfg')
    declared = cfg['options']['install_requires'].split() + \
        cfg['options.extras_require']['io'].split()
    names = {re.split(r'[<>=!~ \[]', line, maxsplit=1)[0].lower() for line in declared
             if line and line[0].isalpha()}
    runtime = {re.split(r'[<>=!~ \[]', line, maxsplit=1)[0].lower()
               for line in (REPO_ROOT / 'requirements' / 'runtime.txt').read_text().splitlines()
               if line.strip() and not line.startswith('#')}
    keys = set(package_keys())
    for name in names:
        assert name in runtime or PYPI_TO_KEY.get(name) in keys, \
            f'{name}: neither a rosdep key of package.xml nor in requirements/runtime.txt'
    assert {'torch', 'torchvision', 'smplx', 'rosbags'} <= runtime
