"""Import boundaries: only romp_ros.ros imports rclpy; imports flow one way between packages.

DESIGN.md: core imports nothing else of the package; synthetic, data and export build on core
(synthetic may write datasets in data's format); evaluation on core and data; train on those
and evaluation; ros and cli on everything; testing is never imported by product code.
"""

from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

from conftest import REPO_ROOT
import pytest

PACKAGE = REPO_ROOT / 'romp_ros'
NON_ROS = ('core', 'synthetic', 'data', 'evaluation', 'train', 'cli', 'testing', 'export')

CHECK = (
    'import importlib, pkgutil, sys\n'
    'import romp_ros\n'
    'names = {names!r}\n'
    'for name in names:\n'
    '    try:\n'
    '        pkg = importlib.import_module("romp_ros." + name)\n'
    '    except ModuleNotFoundError as err:\n'
    '        if err.name == "romp_ros." + name:\n'
    '            continue  # a package this checkout does not have yet\n'
    '        raise\n'
    '    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):\n'
    '        if mod.name.endswith("__main__"):\n'
    '            continue  # running it would start the CLI\n'
    '        importlib.import_module(mod.name)\n'
    'bad = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "rosidl_runtime_py"))\n'
    'print("ROS_MODULES=" + ",".join(bad))\n'
)

# package -> the packages of romp_ros it may import (besides itself)
ALLOWED = {
    'core': set(),
    'synthetic': {'core', 'data'},
    'data': {'core'},
    'export': {'core', 'data'},
    'evaluation': {'core', 'data'},
    'train': {'core', 'data', 'evaluation'},
    'testing': {'core', 'synthetic', 'data', 'evaluation'},
}


def test_non_ros_packages_import_without_rclpy(tmp_path):
    """Import every module outside romp_ros.ros in a fresh interpreter; rclpy must stay out."""
    result = subprocess.run([sys.executable, '-c', CHECK.format(names=NON_ROS)],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith('ROS_MODULES=')]
    assert line, result.stdout
    assert line[0] == 'ROS_MODULES=', f'ROS modules imported outside romp_ros.ros: {line[0]}'


@pytest.mark.parametrize('module', ['romp_ros.core', 'romp_ros.train', 'romp_ros.cli',
                                    'romp_ros.evaluation', 'romp_ros.data'])
def test_no_rclpy_even_when_available(module, tmp_path):
    """The check above is meaningful only if rclpy could have been imported here."""
    code = f'import sys, {module}; print("rclpy" in sys.modules)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == 'False'


def _imported_packages(path: Path) -> set[str]:
    """The romp_ros sub-packages a source file imports (absolute imports)."""
    tree = ast.parse(path.read_text(encoding='utf-8'))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split('.')
            if parts[0] == 'romp_ros' and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize('package', sorted(ALLOWED))
def test_imports_flow_one_way(package):
    folder = PACKAGE / package
    if not folder.is_dir():
        pytest.skip(f'romp_ros/{package} does not exist in this checkout')
    offenders = {}
    for path in sorted(folder.rglob('*.py')):
        extra = _imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            offenders[str(path.relative_to(REPO_ROOT))] = sorted(extra)
    assert not offenders, f'romp_ros/{package} may import only {sorted(ALLOWED[package])}: ' \
                          f'{offenders}'


def test_product_code_never_imports_testing():
    offenders = [str(path.relative_to(REPO_ROOT)) for path in sorted(PACKAGE.rglob('*.py'))
                 if 'testing' in _imported_packages(path)
                 and path.parent.name != 'testing']
    assert not offenders, f'product modules importing romp_ros.testing: {offenders}'
