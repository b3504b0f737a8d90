"""ROS 2 side of romp_ros: the perception node and message conversions.

This is the only sub-package that imports rclpy. Modules:

* ``romp_node``: the lifecycle node and its ``main()`` (executable ``romp_node``).
* ``params``: parameter declarations, validation and mapping onto the core configuration.
* ``conversions``: core results -> PersonMeshArray, TF, markers, BodyModel.
* ``overlay``: skeletons and meshes drawn on the camera image.
* ``visualization``: the thread that builds markers and overlays off the inference path.
* ``camera_info``: the latest valid intrinsics per camera frame_id.
* ``frame_buffer``: the latest-frame hand-over between callbacks and the inference worker.
* ``diagnostics``: statistics, /diagnostics status and throttled warnings.
* ``person_ids``: identities of people (the one place the core tracker plugs in).
* ``launch_files``: what the launch files share (the parameter file keyed for a namespace).
"""
