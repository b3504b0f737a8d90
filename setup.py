"""pip install of the ROS-free library and the `romp-ros` CLI (metadata lives in setup.cfg).

The ROS 2 build is CMakeLists.txt (ament_cmake + ament_cmake_python); colcon picks it from
package.xml and never runs this file.
"""

from setuptools import setup

setup()
