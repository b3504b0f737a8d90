"""Rotation conversions in NumPy, for the per-frame host paths (tracking, messages, TF).

These steps handle a few people per frame on the host. A NumPy call costs a fraction of a
torch dispatch there, and no device round trip is needed. The conventions are those of
:mod:`romp_ros.core.geometry.rotation` (the batched torch version, for the network's side):

* matrices act on column vectors, ``x' = R @ x``;
* axis-angle ``r`` is the unit axis times the angle in radians;
* quaternions are ``(x, y, z, w)``, the order of ROS ``geometry_msgs/Quaternion``.

Every function takes any number of leading dimensions (``...``) and keeps them.
"""

from __future__ import annotations

import numpy as np

# Below this angle (radians) the closed forms divide ~0 by ~0; Taylor series take over.
_SMALL_ANGLE = 1e-6


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 3, 3) rotation matrices (Rodrigues' formula).

    The result has the dtype of the input (float32 stays float32).
    """
    v = np.asarray(axis_angle)
    angle_sq = np.sum(v * v, axis=-1)  # (...,)
    angle = np.sqrt(angle_sq)
    small = angle < _SMALL_ANGLE
    safe = np.where(small, 1.0, angle)
    # R = I + a K + b K^2 on the unnormalised vector, a = sin t / t, b = (1 - cos t) / t^2,
    # b written with sin(t / 2): 1 - cos t cancels for small t.
    a = np.where(small, 1.0 - angle_sq / 6.0, np.sin(safe) / safe).astype(v.dtype)
    half_sinc = np.sin(0.5 * safe) / safe
    b = np.where(small, 0.5 - angle_sq / 24.0, 2.0 * half_sinc * half_sinc).astype(v.dtype)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    skew = np.zeros(v.shape[:-1] + (3, 3), dtype=v.dtype)  # (..., 3, 3)
    skew[..., 0, 1], skew[..., 0, 2] = -z, y
    skew[..., 1, 0], skew[..., 1, 2] = z, -x
    skew[..., 2, 0], skew[..., 2, 1] = -y, x
    matrix = a[..., None, None] * skew + b[..., None, None] * (skew @ skew)
    matrix[..., 0, 0] += 1.0
    matrix[..., 1, 1] += 1.0
    matrix[..., 2, 2] += 1.0
    return matrix


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 4) unit quaternions (x, y, z, w), float64.

    ``w >= 0`` for angles up to pi (what the network and the tracker produce).
    """
    v = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a, with its Taylor series where a is too small to divide by.
    small = angle < _SMALL_ANGLE
    scale = np.where(small, 0.5 - angle ** 2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def quaternion_to_axis_angle(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) -> (..., 3) rotation vectors, angle in [0, pi]."""
    q = np.asarray(quaternion, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:] < 0.0, -q, q)  # the w >= 0 representative: angle <= pi
    xyz, w = q[..., :3], q[..., 3:]
    n = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(n, w)
    # angle / sin(angle / 2) -> 2 / w as the rotation vanishes (w -> 1).
    small = n < 1e-8
    scale = np.where(small, 2.0 / np.maximum(w, 1e-12), angle / np.where(small, 1.0, n))
    return xyz * scale


def quaternion_multiply(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamilton products ``left * right`` of (..., 4) xyzw quaternions (broadcasting).

    As rotations: apply ``right`` first, then ``left`` (the quaternion of ``R_left @ R_right``).
    """
    lx, ly, lz, lw = np.moveaxis(np.asarray(left), -1, 0)
    rx, ry, rz, rw = np.moveaxis(np.asarray(right), -1, 0)
    return np.stack([lw * rx + lx * rw + ly * rz - lz * ry,
                     lw * ry - lx * rz + ly * rw + lz * rx,
                     lw * rz + lx * ry - ly * rx + lz * rw,
                     lw * rw - lx * rx - ly * ry - lz * rz], axis=-1)


def standardize_quaternions(quaternion: np.ndarray) -> np.ndarray:
    """Unit quaternions with ``w >= 0`` (q and -q are one rotation); zero rows stay zero."""
    q = np.asarray(quaternion, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    q = q / np.where(norm > 0.0, norm, 1.0)
    return np.where(q[..., 3:] < 0.0, -q, q)


def geodesic_angle(axis_angle_a: np.ndarray, axis_angle_b: np.ndarray) -> np.ndarray:
    """Angle (radians, [0, pi]) of the relative rotation between two (..., 3) rotation vectors."""
    qa = axis_angle_to_quaternion(axis_angle_a)
    qb = axis_angle_to_quaternion(axis_angle_b)
    dot = np.abs(np.sum(qa * qb, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))
