r"""Launch the ROMP / BEV perception node for one camera, optionally with RViz.

Example::

    ros2 launch romp_ros romp.launch.py \\
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \\
        camera_frame:=camera_color_optical_frame device:=cuda:0 use_rviz:=true

Node parameters come from ``config_file`` (default: share/romp_ros/config/romp.yaml); the
``model``, ``backbone`` and ``device`` arguments override it when they are not empty.
A parameter file keyed by the bare node name (``romp_node:``, as the installed one) also
applies with ``namespace:=front``: rcl would match that key against ``/romp_node`` only, so
the node is given a copy keyed ``/front/romp_node``. Wildcard (``/**:``) and fully qualified
keys are passed unchanged. A bad argument stops the launch with one error naming it.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from romp_ros.ros.launch_files import LaunchArgumentError, node_parameter_file

PACKAGE = 'romp_ros'
NODE_NAME = 'romp_node'
# Launch arguments copied onto the node parameter of the same name when not empty.
NODE_PARAMETER_ARGUMENTS = ('model', 'backbone', 'device')
TRUE_WORDS = ('true', '1', 'yes', 'on')
FALSE_WORDS = ('false', '0', 'no', 'off')


def _flag(context, name):
    text = LaunchConfiguration(name).perform(context).strip().lower()
    if text not in TRUE_WORDS + FALSE_WORDS:
        raise LaunchArgumentError(
            f"{name}:='{text}' is not a boolean; use true or false")
    return text in TRUE_WORDS


def _node_overrides(context):
    """The non-empty model / backbone / device arguments, checked like the node checks them."""
    from romp_ros.ros.params import validate_value

    overrides = {}
    for name in NODE_PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context).strip()
        if not value:
            continue
        reason = validate_value(name, value)
        if reason:
            raise LaunchArgumentError(f'launch argument {reason}')
        overrides[name] = value
    return overrides


def launch_setup(context, *args, **kwargs):
    """Build the node (and RViz) actions from the evaluated launch arguments."""
    share = get_package_share_directory(PACKAGE)
    image = LaunchConfiguration('image').perform(context)
    camera_info = LaunchConfiguration('camera_info').perform(context)
    namespace = LaunchConfiguration('namespace').perform(context)
    use_sim_time = _flag(context, 'use_sim_time')
    use_rviz = _flag(context, 'use_rviz')
    parameters = [
        node_parameter_file(LaunchConfiguration('config_file').perform(context), NODE_NAME,
                            namespace, os.path.join(share, 'config', 'romp.yaml')),
        _node_overrides(context),
        {'use_sim_time': use_sim_time},
    ]
    actions = [Node(
        package=PACKAGE,
        executable='romp_node',
        name=NODE_NAME,
        namespace=namespace,
        parameters=parameters,
        # image/compressed follows the image remapping (the node appends '/compressed')
        remappings=[('image', image), ('camera_info', camera_info)],
        output='screen',
        emulate_tty=True,
        # the launch ends with the node (e.g. refused parameters) instead of idling
        on_exit=Shutdown(reason='romp_node exited'),
    )]
    if use_rviz:
        actions.append(Node(
            package='rviz2',
            executable='rviz2',
            name='rviz2',
            arguments=['-d', os.path.join(share, 'rviz', 'romp.rviz'),
                       '-f', LaunchConfiguration('camera_frame').perform(context)],
            parameters=[{'use_sim_time': use_sim_time}],
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
                              description='YAML file with the romp_node parameters (keyed '
                                          'romp_node, /** or /<namespace>/romp_node)'),
        DeclareLaunchArgument('model', default_value='',
                              description="romp | bev ('' keeps the config file's value)"),
        DeclareLaunchArgument('backbone', default_value='',
                              description="hrnet32 | resnet50 | efficientnet_v2_s ('' keeps "
                                          "the config file's value)"),
        DeclareLaunchArgument('device', default_value='',
                              description="auto | cpu | cuda:N ('' keeps the config file's "
                                          'value)'),
        DeclareLaunchArgument('use_rviz', default_value='false',
                              description='also start RViz with rviz/romp.rviz (true | false)'),
        DeclareLaunchArgument('camera_frame', default_value='camera_color_optical_frame',
                              description="RViz fixed frame: the camera's optical frame "
                                          '(the header.frame_id of the images)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='use /clock (bag replay): true | false'),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_setup)])
