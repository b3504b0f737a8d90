"""core/ and train/ never import rclpy; the ROS layer is the only one that may."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = (
    'import sys\n'
    'import romp_ros.core, romp_ros.train\n'
    'import pkgutil, importlib\n'
    'for pkg in (romp_ros.core, romp_ros.train):\n'
    '    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):\n'
    '        importlib.import_module(mod.name)\n'
    'bad = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "rosidl_runtime_py"))\n'
    'print("ROS_MODULES=" + ",".join(bad))\n'
)


def test_core_and_train_import_without_rclpy(tmp_path):
    """Import every module of core/ and train/ in a fresh interpreter; rclpy must stay out."""
    result = subprocess.run([sys.executable, '-c', CHECK], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith('ROS_MODULES=')]
    assert line, result.stdout
    assert line[0] == 'ROS_MODULES=', f'ROS modules imported by core/train: {line[0]}'


@pytest.mark.parametrize('module', ['romp_ros.core', 'romp_ros.train', 'romp_ros.cli'])
def test_no_rclpy_even_when_available(module, tmp_path):
    """The check above is meaningful only if rclpy could have been imported here."""
    code = f'import sys, {module}; print("rclpy" in sys.modules)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == 'False'
