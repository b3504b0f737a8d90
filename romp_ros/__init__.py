"""romp_ros: multi-person 3D human mesh estimation (ROMP / BEV, SMPL) for ROS 2.

Sub-packages:
    romp_ros.core   ROS-free inference: networks, body model, geometry, tracking
    romp_ros.train  ROS-free training and evaluation
    romp_ros.ros    rclpy nodes and message conversions (the only place that imports rclpy)
    romp_ros.msg    generated ROS 2 message classes (present after a colcon build only)

Importing this package is cheap: nothing heavy is imported until a sub-package is used.
"""

__version__ = '0.1.0'
