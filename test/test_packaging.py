"""`pip install .` gives a working `romp-ros`; the package metadata is complete; lint is clean."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET

from conftest import REPO_ROOT
import pytest

SUBCOMMANDS = ('infer', 'prepare-models', 'download', 'synth', 'make-bag', 'train', 'evaluate',
               'export-motion', 'bench')


@pytest.mark.slow
def test_pip_install_into_a_clean_venv_gives_working_cli(tmp_path):
    """Install the checkout (a copy, so the source tree stays clean) into a fresh venv.

    The venv is created empty and the package installed with ``--no-deps``: the CLI's help
    must not need torch, and installing torch (GBs) per test run is not sensible. The
    declared runtime dependencies are checked against the installed metadata instead.
    """
    src = tmp_path / 'src'
    shutil.copytree(REPO_ROOT, src, ignore=shutil.ignore_patterns(
        '.venv', 'build', 'install', 'log', '.git', '__pycache__', '*.egg-info', '.cache',
        'demo_output', '.pytest_cache', '.ruff_cache'))
    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    py = env_dir / 'bin' / 'python'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
    subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', str(src)], env=env,
                   check=True, timeout=600, cwd=tmp_path)
    cli = env_dir / 'bin' / 'romp-ros'
    assert cli.exists(), 'console script romp-ros was not installed'
    top = subprocess.run([str(cli), '--help'], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    for name in SUBCOMMANDS:
        assert name in top.stdout
        sub = subprocess.run([str(cli), name, '--help'], env=env, capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert '--' in sub.stdout and 'usage: romp-ros ' + name in sub.stdout
    meta = subprocess.run(
        [str(py), '-c', 'import importlib.metadata as m; print("\\n".join(m.requires('
         '"romp-ros") or []))'], env=env, capture_output=True, text=True, check=True,
        cwd=tmp_path)
    declared = {line.split(';')[0].split('>')[0].split('=')[0].strip().lower()
                for line in meta.stdout.splitlines() if 'extra ==' not in line}
    assert {'torch', 'numpy', 'scipy', 'smplx', 'torchvision'} <= declared
    # the installed package is the library, without rclpy
    probe = subprocess.run([str(py), '-c', 'import romp_ros.cli, sys; '
                            'print("rclpy" in sys.modules)'], env=env, capture_output=True,
                           text=True, cwd=tmp_path)
    assert probe.returncode == 0 and probe.stdout.strip() == 'False', probe.stderr


def test_package_xml_declares_the_runtime_dependencies():
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    deps = {e.text for e in root if e.tag.endswith('depend')}
    for needed in ('rclpy', 'sensor_msgs', 'geometry_msgs', 'visualization_msgs', 'std_msgs',
                   'tf2_msgs', 'builtin_interfaces', 'rosidl_default_runtime',
                   'rosidl_default_generators', 'python3-numpy', 'python3-scipy'):
        assert needed in deps, f'package.xml lacks {needed}'
    runtime = (REPO_ROOT / 'requirements' / 'runtime.txt').read_text()
    assert all(name in runtime for name in ('torch', 'torchvision', 'smplx', 'rosbags'))
    assert root.find('export/build_type').text == 'ament_cmake'
    email = root.find('maintainer').get('email')
    assert email and '@' in email and email.count('.') >= 1


def test_setup_cfg_console_script_and_version_agree_with_package_xml():
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / 'setup.cfg')
    assert 'romp-ros = romp_ros.cli.main:main' in cfg['options.entry_points']['console_scripts']
    xml_version = ET.parse(REPO_ROOT / 'package.xml').getroot().find('version').text
    assert cfg['metadata']['version'] == xml_version
    import romp_ros
    assert romp_ros.__version__ == xml_version


def test_lint_is_clean():
    """`make lint`: ruff with the ROS-flavoured rules (ruff.toml) reports nothing."""
    ruff = shutil.which('ruff') or str(__import__('pathlib').Path(sys.executable).parent /
                                         'ruff')
    result = subprocess.run([ruff, 'check', 'romp_ros', 'test', 'bench', 'scripts', 'launch'],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
