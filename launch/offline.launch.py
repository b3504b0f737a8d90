r"""Launch the offline node: live evaluation of romp_node during a bag replay, or a batch job.

Live evaluation (score what romp_node publishes against a bag's ground truth)::

    ros2 launch romp_ros romp.launch.py image:=/camera/image camera_info:=/camera/camera_info &
    ros2 launch romp_ros offline.launch.py job:=evaluate_live output_dir:=eval_out \\
        ground_truth:=/ground_truth/people people:=/people
    ros2 bag play my_dataset_bag

Batch jobs take their inputs from a parameter file (``config_file``)::

    ros2 launch romp_ros offline.launch.py job:=train config_file:=my_training.yaml

Node parameters come from ``config_file`` (default: share/romp_ros/config/offline.yaml);
``job`` and ``output_dir`` override it when not empty.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = 'romp_ros'
NODE_PARAMETER_ARGUMENTS = ('job', 'output_dir')
TRUE_WORDS = ('true', '1', 'yes', 'on')


def launch_setup(context, *args, **kwargs):
    """Build the node action from the evaluated launch arguments."""
    overrides = {name: LaunchConfiguration(name).perform(context)
                 for name in NODE_PARAMETER_ARGUMENTS}
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).strip().lower()
    parameters = [
        LaunchConfiguration('config_file').perform(context),
        {name: value for name, value in overrides.items() if value},
        {'use_sim_time': use_sim_time in TRUE_WORDS},
    ]
    return [Node(
        package=PACKAGE,
        executable='offline_node',
        name='offline_node',
        namespace=LaunchConfiguration('namespace').perform(context),
        parameters=parameters,
        remappings=[('people', LaunchConfiguration('people').perform(context)),
                    ('ground_truth', LaunchConfiguration('ground_truth').perform(context))],
        output='screen',
        emulate_tty=True,
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
                              description='YAML file with the offline_node parameters'),
        DeclareLaunchArgument('people', default_value='people',
                              description="live: the perception node's PersonMeshArray topic"),
        DeclareLaunchArgument('ground_truth', default_value='/ground_truth/people',
                              description='live: the ground-truth PersonMeshArray topic'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node and its relative topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (bag replay with --clock)'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_setup)])
