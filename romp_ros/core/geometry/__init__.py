"""ROS-free camera geometry: rotations, intrinsics, projections and translations (torch)."""

from romp_ros.core.geometry.intrinsics import (
    IntrinsicsError,
    default_intrinsics,
    intrinsics_from_camera,
    parse_intrinsics_arg,
    validate_intrinsics,
)
from romp_ros.core.geometry.projection import (
    intrinsics_matrix,
    normalised_to_original,
    original_to_normalised,
    project_perspective,
    project_weak,
)
from romp_ros.core.geometry.rotation import (
    align_quaternion_signs,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    make_quaternions_continuous,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rot6d_to_axis_angle,
    rot6d_to_matrix,
    standardize_quaternion,
)
from romp_ros.core.geometry.translation import (
    TranslationSolution,
    bev_translation,
    romp_reference_translation,
    solve_translation_with_camera,
    solve_translation_with_intrinsics,
)

__all__ = [
    'IntrinsicsError', 'TranslationSolution', 'align_quaternion_signs', 'axis_angle_to_matrix',
    'axis_angle_to_quaternion', 'bev_translation', 'default_intrinsics',
    'intrinsics_from_camera', 'intrinsics_matrix',
    'make_quaternions_continuous', 'matrix_to_axis_angle', 'matrix_to_quaternion',
    'matrix_to_rot6d', 'normalised_to_original', 'original_to_normalised',
    'parse_intrinsics_arg', 'project_perspective', 'project_weak', 'quaternion_to_axis_angle',
    'quaternion_to_matrix', 'romp_reference_translation', 'rot6d_to_axis_angle',
    'rot6d_to_matrix', 'solve_translation_with_camera', 'solve_translation_with_intrinsics',
    'standardize_quaternion',
    'validate_intrinsics',
]
