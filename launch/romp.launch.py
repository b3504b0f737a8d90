r"""Launch the ROMP / BEV perception node for one camera, optionally with RViz.

Example::

    ros2 launch romp_ros romp.launch.py \\
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \\
        camera_frame:=camera_color_optical_frame device:=cuda:0 use_rviz:=true

Node parameters come from ``config_file`` (default: share/romp_ros/config/romp.yaml); the
``model``, ``backbone`` and ``device`` arguments override it when they are not empty.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = 'romp_ros'
# Launch arguments copied onto the node parameter of the same name when not empty.
NODE_PARAMETER_ARGUMENTS = ('model', 'backbone', 'device')
TRUE_WORDS = ('true', '1', 'yes', 'on')


def _flag(context, name):
    return LaunchConfiguration(name).perform(context).strip().lower() in TRUE_WORDS


def launch_setup(context, *args, **kwargs):
    """Build the node (and RViz) actions from the evaluated launch arguments."""
    share = get_package_share_directory(PACKAGE)
    image = LaunchConfiguration('image').perform(context)
    camera_info = LaunchConfiguration('camera_info').perform(context)
    overrides = {name: LaunchConfiguration(name).perform(context)
                 for name in NODE_PARAMETER_ARGUMENTS}
    parameters = [
        LaunchConfiguration('config_file').perform(context),
        {name: value for name, value in overrides.items() if value},
        {'use_sim_time': _flag(context, 'use_sim_time')},
    ]
    actions = [Node(
        package=PACKAGE,
        executable='romp_node',
        name='romp_node',
        namespace=LaunchConfiguration('namespace').perform(context),
        parameters=parameters,
        # image/compressed follows the image remapping (the node appends '/compressed')
        remappings=[('image', image), ('camera_info', camera_info)],
        output='screen',
        emulate_tty=True,
    )]
    if _flag(context, 'use_rviz'):
        actions.append(Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', os.path.join(share, 'rviz', 'romp.rviz'),
                       '-f', LaunchConfiguration('camera_frame').perform(context)],
            parameters=[{'use_sim_time': _flag(context, 'use_sim_time')}],
            output='screen',
        ))
    return actions


def generate_launch_description():
    """Declare the arguments and defer the node set-up to :func:`launch_setup`."""
    default_config = os.path.join(get_package_share_directory(PACKAGE), 'config', 'romp.yaml')
    arguments = [
        DeclareLaunchArgument('image', default_value='image',
                              description='input image topic (raw sensor_msgs/Image; '
                                          'image_transport=compressed adds /compressed)'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='sensor_msgs/CameraInfo topic of the camera'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node and its relative topics'),
        DeclareLaunchArgument('config_file', default_value=default_config,
                              description='YAML file with the romp_node parameters'),
        DeclareLaunchArgument('model', default_value='',
                              description="romp | bev ('' keeps the config file's value)"),
        DeclareLaunchArgument('backbone', default_value='',
                              description="hrnet32 | resnet50 | efficientnet_v2_s ('' keeps "
                                          "the config file's value)"),
        DeclareLaunchArgument('device', default_value='',
                              description="auto | cpu | cuda:N ('' keeps the config file's "
                                          'value)'),
        DeclareLaunchArgument('use_rviz', default_value='false',
                              description='also start RViz with rviz/romp.rviz'),
        DeclareLaunchArgument('camera_frame', default_value='camera_color_optical_frame',
                              description="RViz fixed frame: the camera's optical frame "
                                          '(the header.frame_id of the images)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (bag replay)'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_setup)])
