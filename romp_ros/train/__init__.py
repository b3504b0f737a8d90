"""ROS-free training and evaluation: data, losses and metrics.

Nothing here imports rclpy; offline nodes in ``romp_ros.ros`` wrap these functions.
"""
