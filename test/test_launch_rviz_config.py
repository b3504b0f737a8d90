"""The launch file, RViz config and YAML parameters agree with what the node declares.

The launch file is checked by parsing it (ast), so these checks need no ``launch`` package;
the node side is the real declaration code (a RompNode without a model). The launch files run
for real through ``ros2 launch`` in test_ros2_launch.py.
"""

from __future__ import annotations

import ast
import os

from conftest import REPO_ROOT, require_ros
import pytest
import yaml

pytestmark = pytest.mark.ros

LAUNCH = REPO_ROOT / 'launch' / 'romp.launch.py'
RVIZ = REPO_ROOT / 'rviz' / 'romp.rviz'
CONFIG = REPO_ROOT / 'config' / 'romp.yaml'
INSTALL = REPO_ROOT / 'install' / 'romp_ros'
RCLPY_BUILTIN_PARAMETERS = {'use_sim_time'}
RVIZ_DISPLAY_TYPES = {
    'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
    'rviz_default_plugins/Marker': 'visualization_msgs/msg/Marker',
    'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
}


def _tree():
    return ast.parse(LAUNCH.read_text(encoding='utf-8'), filename=str(LAUNCH))


def _constants(tree) -> dict:
    """Module-level NAME = <literal> assignments."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, 'attr', None)
            if called == name:
                yield node


def _keyword(call, name, constants):
    for kw in call.keywords:
        if kw.arg == name:
            if isinstance(kw.value, ast.Constant):
                return kw.value.value
            if isinstance(kw.value, ast.Name):
                return constants.get(kw.value.id)
    return None


def _declared_arguments(tree):
    return {call.args[0].value for call in _calls(tree, 'DeclareLaunchArgument')}


def _type_name(msg_type) -> str:
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


@pytest.fixture
def declared(ros_domain_id):
    """{name: descriptor} of the parameters the real node declares, and the YAML values loaded."""
    import rclpy
    from rclpy.context import Context
    from rclpy.exceptions import ParameterUninitializedException

    from romp_ros.ros.romp_node import RompNode

    def value(node, name):
        try:
            return node.get_parameter(name).value
        except ParameterUninitializedException:  # a string array without a value
            return None

    context = Context()
    rclpy.init(context=context, args=['--ros-args', '--params-file', str(CONFIG)])
    try:
        plain = rclpy.create_node('plain_node', context=context)
        builtin = set(plain._parameters)
        plain.destroy_node()
        node = RompNode(context=context)
        names = set(node._parameters) - builtin
        out = {name: (node.describe_parameter(name), value(node, name)) for name in names}
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return out


def test_launch_file_compiles_and_declares_its_arguments():
    tree = _tree()
    compile(tree, str(LAUNCH), 'exec')
    assert _declared_arguments(tree) == {
        'image', 'camera_info', 'namespace', 'config_file', 'model', 'backbone', 'device',
        'use_rviz', 'camera_frame', 'use_sim_time'}
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body)


def test_launch_sets_only_parameters_the_node_declares(declared):
    tree = _tree()
    constants = _constants(tree)
    forwarded = set(constants['NODE_PARAMETER_ARGUMENTS'])
    literal_keys = {key.value for node in ast.walk(tree) if isinstance(node, ast.Dict)
                    for key in node.keys if isinstance(key, ast.Constant)}
    assert forwarded <= _declared_arguments(tree)
    assert forwarded | literal_keys <= set(declared) | RCLPY_BUILTIN_PARAMETERS
    assert 'use_sim_time' in literal_keys


def test_launch_executables_and_files_are_installed():
    require_ros()
    tree = _tree()
    constants = _constants(tree)
    nodes = [(_keyword(c, 'package', constants), _keyword(c, 'executable', constants))
             for c in _calls(tree, 'Node')]
    assert ('romp_ros', 'romp_node') in nodes and ('rviz2', 'rviz2') in nodes
    for package, executable in nodes:
        if package == 'romp_ros':
            path = INSTALL / 'lib' / 'romp_ros' / executable
            assert path.is_file() and os.access(path, os.X_OK), f'{path} is not installed'
    # share/ files the launch file joins onto the package share directory
    joined = [tuple(a.value for a in call.args[1:] if isinstance(a, ast.Constant))
              for call in _calls(tree, 'join')]
    share_files = [parts for parts in joined if parts and parts[0] in ('config', 'rviz')]
    assert ('config', 'romp.yaml') in share_files and ('rviz', 'romp.rviz') in share_files
    for parts in share_files:
        assert (INSTALL / 'share' / 'romp_ros').joinpath(*parts).is_file(), parts


def test_yaml_and_declared_parameters_agree(declared):
    from rcl_interfaces.msg import ParameterType

    from romp_ros.ros.params import PARAMETERS_BY_NAME, validate_value

    text = CONFIG.read_text(encoding='utf-8')
    values = yaml.safe_load(text)['romp_node']['ros__parameters']
    # string lists default to empty, which a ROS parameter file cannot type: the YAML shows them
    # in a comment
    arrays = {name for name, (descriptor, _) in declared.items()
              if descriptor.type == ParameterType.PARAMETER_STRING_ARRAY}
    assert arrays == {'camera_namespaces'}
    for name in arrays:
        assert f'# {name}: [' in text, name
        assert declared[name][1] is None  # declared with its type, no value
    assert set(values) == set(declared) - arrays, (
        f'only in YAML: {sorted(set(values) - set(declared))}; '
        f'only declared: {sorted(set(declared) - set(values) - arrays)}')
    kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    for name, value in values.items():
        descriptor, loaded = declared[name]
        assert descriptor.type == kinds[type(value)], f'{name}: YAML type {type(value)}'
        assert descriptor.description, name
        assert validate_value(name, value) == '', name
        assert loaded == value == PARAMETERS_BY_NAME[name].default, name
    read_only = {name for name, (descriptor, _) in declared.items() if descriptor.read_only}
    assert {'model', 'backbone', 'checkpoint', 'models_dir'} <= read_only
    assert declared['center_thresh'][0].floating_point_range[0].to_value == 1.0
    assert declared['max_people'][0].integer_range[0].to_value == 64


def test_rviz_topics_are_published_by_the_node_with_the_same_type():
    require_ros()
    from romp_ros.ros.romp_node import OUTPUT_TOPICS

    config = yaml.safe_load(RVIZ.read_text(encoding='utf-8'))
    manager = config['Visualization Manager']
    published = {('/' + t.lstrip('/')): _type_name(m) for t, m in OUTPUT_TOPICS.items()}
    classes = [d['Class'] for d in manager['Displays']]
    assert 'rviz_default_plugins/TF' in classes
    topics = []
    for display in manager['Displays']:
        if 'Topic' not in display:
            continue
        topic = display['Topic']['Value']
        topics.append(topic)
        assert topic in published, f'{display["Name"]}: {topic} is not published by romp_node'
        assert RVIZ_DISPLAY_TYPES[display['Class']] == published[topic], topic
        assert display['Topic']['Reliability Policy'] in ('Reliable', 'Best Effort')
    assert {'/markers', '/overlay'} <= set(topics)
    fixed = manager['Global Options']['Fixed Frame']
    assert fixed.endswith('optical_frame')
    constants_default = [call.keywords for call in _calls(_tree(), 'DeclareLaunchArgument')
                         if call.args[0].value == 'camera_frame'][0]
    default = [kw.value.value for kw in constants_default if kw.arg == 'default_value'][0]
    assert default == fixed
    assert manager['Views']['Current']['Target Frame'] == '<Fixed Frame>'
