"""Dataset formats, loaders and augmentation for training and evaluation (no rclpy).

* :mod:`romp_ros.data.dataset_format`: the generic dataset folder (images + frames.jsonl) that
  every source is read into, its writer and reader;
* :mod:`romp_ros.data.sample`: the training sample and batch (the loaders' contract with the
  losses and the loop);
* :mod:`romp_ros.data.sources` (open_source, format detection), :mod:`~romp_ros.data.coco`,
  :mod:`~romp_ros.data.threedpw`, :mod:`~romp_ros.data.reference_layouts` (the loaders),
  :mod:`~romp_ros.data.joint_sets` (mapping into the 71 joints, flips);
* :mod:`~romp_ros.data.augment`, :mod:`~romp_ros.data.training_dataset`,
  :mod:`~romp_ros.data.mixing` (torch datasets, the DDP sampler);
* :mod:`~romp_ros.data.bag_types`: ROS 2 message types for rosbags (no ROS runtime).

Heavy modules (torch, OpenCV) are imported by the functions that need them.
"""
