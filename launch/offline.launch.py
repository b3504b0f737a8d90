r"""Launch the offline node: live evaluation of romp_node during a bag replay, or a batch job.

Live evaluation (score what romp_node publishes against a bag's ground truth)::

    ros2 launch romp_ros romp.launch.py image:=/camera/image camera_info:=/camera/camera_info &
    ros2 launch romp_ros offline.launch.py job:=evaluate_live output_dir:=eval_out \\
        ground_truth:=/ground_truth/people people:=/people
    ros2 bag play my_dataset_bag

Batch jobs take their inputs from a parameter file (``config_file``)::

    ros2 launch romp_ros offline.launch.py job:=train config_file:=my_training.yaml

Node parameters come from ``config_file`` (default: share/romp_ros/config/offline.yaml);
``job`` and ``output_dir`` override it when not empty. As in romp.launch.py, a file keyed by
the bare node name (``offline_node:``) also applies with a ``namespace``, and a bad argument
stops the launch with one error naming it.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from romp_ros.ros.launch_files import LaunchArgumentError, node_parameter_file

PACKAGE = 'romp_ros'
NODE_NAME = 'offline_node'
NODE_PARAMETER_ARGUMENTS = ('job', 'output_dir')
TRUE_WORDS = ('true', '1', 'yes', 'on')
FALSE_WORDS = ('false', '0', 'no', 'off')


def _flag(context, name):
    text = LaunchConfiguration(name).perform(context).strip().lower()
    if text not in TRUE_WORDS + FALSE_WORDS:
        raise LaunchArgumentError(
            f"{name}:='{text}' is not a boolean; use true or false")
    return text in TRUE_WORDS


def _node_overrides(context):
    """The non-empty job / output_dir arguments, checked like the node checks them."""
    from romp_ros.ros.offline_params import OFFLINE_PARAMETERS_BY_NAME
    from romp_ros.ros.params import validate_value

    overrides = {}
    for name in NODE_PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context).strip()
        if not value:
            continue
        reason = validate_value(name, value, OFFLINE_PARAMETERS_BY_NAME)
        if reason:
            raise LaunchArgumentError(f'launch argument {reason}')
        overrides[name] = value
    return overrides


def launch_setup(context, *args, **kwargs):
    """Build the node action from the evaluated launch arguments."""
    share = get_package_share_directory(PACKAGE)
    namespace = LaunchConfiguration('namespace').perform(context)
    use_sim_time = _flag(context, 'use_sim_time')
    parameters = [
        node_parameter_file(LaunchConfiguration('config_file').perform(context), NODE_NAME,
                            namespace, os.path.join(share, 'config', 'offline.yaml')),
        _node_overrides(context),
        {'use_sim_time': use_sim_time},
    ]
    return [Node(
        package=PACKAGE,
        executable='offline_node',
        name=NODE_NAME,
        namespace=namespace,
        parameters=parameters,
        remappings=[('people', LaunchConfiguration('people').perform(context)),
                    ('ground_truth', LaunchConfiguration('ground_truth').perform(context))],
        output='screen',
        emulate_tty=True,
        # a batch job ends the launch when it is done (exit_when_done), a refused start too
        on_exit=Shutdown(reason='offline_node exited'),
    )]


def generate_launch_description():
    """Declare the arguments and defer the node set-up to :func:`launch_setup`."""
    default_config = os.path.join(get_package_share_directory(PACKAGE), 'config',
                                  'offline.yaml')
    arguments = [
        DeclareLaunchArgument('job', default_value='',
                              description="evaluate_live | evaluate_bags | evaluate_dataset | "
                                          "train ('' keeps the config file's value)"),
        DeclareLaunchArgument('output_dir', default_value='',
                              description="report / run folder ('' keeps the config file's)"),
        DeclareLaunchArgument('config_file', default_value=default_config,
                              description='YAML file with the offline_node parameters (keyed '
                                          'offline_node, /** or /<namespace>/offline_node)'),
        DeclareLaunchArgument('people', default_value='people',
                              description="live: the perception node's PersonMeshArray topic"),
        DeclareLaunchArgument('ground_truth', default_value='/ground_truth/people',
                              description='live: the ground-truth PersonMeshArray topic'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node and its relative topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (bag replay with --clock): true | false'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_setup)])
