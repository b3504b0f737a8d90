"""ROS-free post-processing of the network outputs: centers, parameters, BEV filters."""

from romp_ros.core.postprocess.bev_filtering import (
    bev_keep_mask,
    bev_keep_slots,
    duplicate_suppression_mask,
    outlier_mask,
)
from romp_ros.core.postprocess.center_parsing import (
    Centers,
    Centers3D,
    parse_center_map_2d,
    parse_center_map_3d,
    sample_params,
)
from romp_ros.core.postprocess.params import SMPLParams, apply_cam_scale, unpack_params

__all__ = [
    'Centers', 'Centers3D', 'SMPLParams', 'apply_cam_scale', 'bev_keep_mask', 'bev_keep_slots',
    'duplicate_suppression_mask',
    'outlier_mask', 'parse_center_map_2d', 'parse_center_map_3d', 'sample_params',
    'unpack_params',
]
