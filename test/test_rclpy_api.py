"""The rclpy APIs the nodes use are the ones docs/ros_interface.md lists as present since
Humble, and each exists in the rclpy this test runs against (Kilted and, in `make test`'s second
pass, Jazzy)."""

from __future__ import annotations

import ast
import importlib
import re

from conftest import REPO_ROOT, require_ros
import pytest

pytestmark = pytest.mark.ros

ROS_DIR = REPO_ROOT / 'romp_ros' / 'ros'
DOC = REPO_ROOT / 'docs' / 'ros_interface.md'


def used_rclpy_api() -> dict[str, set[str]]:
    """{'module.Name' or 'Node.method': files} of what romp_ros/ros uses from rclpy."""
    require_ros()
    from rclpy.lifecycle import LifecycleNode
    node_methods = {name for name in dir(LifecycleNode) if not name.startswith('_')}
    found: dict[str, set[str]] = {}
    for path in sorted(ROS_DIR.glob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('rclpy'):
                names = [f'{node.module}.{alias.name}' for alias in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == 'rclpy':
                    names = [f'rclpy.{node.attr}']
                elif node.value.id == 'self' and node.attr in node_methods:
                    names = [f'Node.{node.attr}']
            for name in names:
                found.setdefault(name, set()).add(path.name)
    return found


def documented_api() -> str:
    text = DOC.read_text(encoding='utf-8')
    section = text.split('## ROS 2 distributions', 1)[1].split('\n## ', 1)[0]
    return ' '.join(re.findall(r'`([^`]+)`', section))


def _short(name: str) -> str:
    return name.rsplit('.', 1)[-1]


def test_every_rclpy_api_the_nodes_use_is_in_the_humble_table():
    used = used_rclpy_api()
    assert 'rclpy.lifecycle.LifecycleNode' in used  # the scan sees the nodes' imports
    documented = documented_api()
    missing = sorted(name for name in used if _short(name) not in documented)
    assert not missing, (f'rclpy APIs used by {ROS_DIR} but not in the distribution table of '
                         f'{DOC.name}: {missing}; check they exist in Humble (rclpy 3.3) and '
                         'add them')


def test_every_used_rclpy_api_exists_here():
    require_ros()
    from rclpy.lifecycle import LifecycleNode
    for name in used_rclpy_api():
        owner, attr = name.rsplit('.', 1)
        if owner == 'Node':
            assert hasattr(LifecycleNode, attr), name
            continue
        module = importlib.import_module(owner)
        assert hasattr(module, attr), name
