"""Batched conversions between 3D rotation representations (torch, any device).

Every function accepts any number of leading dimensions (``...``) and keeps them.

Conventions:
    * Rotation matrices act on column vectors: ``x' = R @ x``.
    * Axis-angle (rotation vector) ``r``: unit axis times angle in radians, ``|r|`` in [0, pi].
    * Quaternions are ``(x, y, z, w)``, the order of ROS ``geometry_msgs/Quaternion`` and of
      scipy, and are returned with ``w >= 0`` unless continuity was requested.
    * The 6D representation is the network's: six numbers read as a (3, 2) row-major matrix
      whose two columns are Gram-Schmidt orthonormalised into the first two columns of R.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

# Below this angle (radians) the closed forms divide ~0 by ~0; Taylor series take over.
_SMALL_ANGLE = 1e-4
# Normalisation floor of the 6D Gram-Schmidt; the network was trained with this value.
_GRAM_SCHMIDT_EPS = 1e-6


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from the network's 6D representation.

    Args:
        rot6d: (..., 6). Read as a (3, 2) row-major matrix [[a0, a1], [a2, a3], [a4, a5]].

    Returns:
        (..., 3, 3) rotation matrices whose columns are b1, b2, b3 = b1 x b2, where b1 is the
        normalised first column and b2 the normalised part of the second column orthogonal
        to b1. Degenerate (zero) inputs give non-rotations rather than NaN, as the network's
        training code did.
    """
    pairs = rot6d.reshape(*rot6d.shape[:-1], 3, 2)  # (..., 3, 2)
    first, second = pairs[..., 0], pairs[..., 1]  # (..., 3) each
    b1 = F.normalize(first, dim=-1, eps=_GRAM_SCHMIDT_EPS)
    # Remove the b1 component of the second column, then normalise what is left.
    b2 = second - (b1 * second).sum(dim=-1, keepdim=True) * b1
    b2 = F.normalize(b2, dim=-1, eps=_GRAM_SCHMIDT_EPS)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)  # (..., 3, 3), b_i as columns


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """The 6D representation of rotation matrices, the inverse of :func:`rot6d_to_matrix`.

    Args:
        matrix: (..., 3, 3).

    Returns:
        (..., 6): the first two columns, flattened row by row as the network emits them.
    """
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, stable at and near the zero rotation.

    Args:
        axis_angle: (..., 3) rotation vectors, radians.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    angle_sq = (axis_angle * axis_angle).sum(dim=-1)  # (...,)
    angle = angle_sq.sqrt()
    small = angle < _SMALL_ANGLE
    safe_angle = torch.where(small, torch.ones_like(angle), angle)
    # R = I + a [r]x + b [r]x^2 with a = sin(t)/t and b = (1 - cos t)/t^2 on the unnormalised
    # vector r. b is written with sin(t/2) to avoid the cancellation in 1 - cos t.
    a = torch.where(small, 1.0 - angle_sq / 6.0, torch.sin(safe_angle) / safe_angle)
    half_sinc = torch.sin(safe_angle / 2.0) / safe_angle
    b = torch.where(small, 0.5 - angle_sq / 24.0, 2.0 * half_sinc * half_sinc)
    skew = _skew(axis_angle)  # (..., 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * skew + b[..., None, None] * (skew @ skew)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (x, y, z, w) with w >= 0 from rotation matrices.

    Uses the branch of Shepperd's method with the largest pivot (4w^2, 4x^2, 4y^2 or 4z^2),
    so the result stays accurate for every rotation, including half turns. Slightly
    non-orthonormal inputs are tolerated: the result is normalised.

    Args:
        matrix: (..., 3, 3).

    Returns:
        (..., 4) quaternions, xyzw.
    """
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four times the squares of x, y, z, w, each derived from the diagonal.
    pivots = torch.stack((1.0 + m00 - m11 - m22,
                          1.0 - m00 + m11 - m22,
                          1.0 - m00 - m11 + m22,
                          1.0 + m00 + m11 + m22), dim=-1)  # (..., 4)
    # Each candidate is the quaternion scaled by 4 * (its pivot component); rows are the
    # candidates computed from the x, y, z and w pivots respectively, columns are xyzw.
    candidates = torch.stack((
        torch.stack((pivots[..., 0], m01 + m10, m02 + m20, m21 - m12), dim=-1),
        torch.stack((m01 + m10, pivots[..., 1], m12 + m21, m02 - m20), dim=-1),
        torch.stack((m02 + m20, m12 + m21, pivots[..., 2], m10 - m01), dim=-1),
        torch.stack((m21 - m12, m02 - m20, m10 - m01, pivots[..., 3]), dim=-1),
    ), dim=-2)  # (..., 4, 4)
    best = pivots.argmax(dim=-1)  # (...,)
    index = best[..., None, None].expand(*best.shape, 1, 4)
    quat = candidates.gather(-2, index).squeeze(-2)  # (..., 4)
    quat = F.normalize(quat, dim=-1)
    return standardize_quaternion(quat)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from quaternions (x, y, z, w); the input need not be normalised.

    Args:
        quaternion: (..., 4), xyzw.

    Returns:
        (..., 3, 3).
    """
    q = F.normalize(quaternion, dim=-1)
    x, y, z, w = q.unbind(dim=-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = (
        torch.stack((1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)), dim=-1),
        torch.stack((2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)), dim=-1),
        torch.stack((2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)), dim=-1),
    )
    return torch.stack(rows, dim=-2)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (angle in [0, pi]) from quaternions (x, y, z, w).

    Args:
        quaternion: (..., 4), xyzw, unit norm.

    Returns:
        (..., 3) axis-angle, radians.
    """
    q = standardize_quaternion(quaternion)  # w >= 0 keeps the angle in [0, pi]
    vec, w = q[..., :3], q[..., 3]
    sin_half = vec.norm(dim=-1)  # (...,)
    angle = 2.0 * torch.atan2(sin_half, w)
    small = sin_half < _SMALL_ANGLE
    safe_sin = torch.where(small, torch.ones_like(sin_half), sin_half)
    # angle / sin(angle/2) -> 2 / w as the angle vanishes (first two Taylor terms).
    safe_w = w.clamp_min(_SMALL_ANGLE)
    factor = torch.where(small, 2.0 / safe_w - (2.0 / 3.0) * sin_half ** 2 / safe_w ** 3,
                         angle / safe_sin)
    return vec * factor[..., None]


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (angle in [0, pi]) from rotation matrices.

    Goes through :func:`matrix_to_quaternion`, so it is accurate near both the zero rotation
    and half turns. At exactly pi, r and -r are the same rotation; either may be returned.

    Args:
        matrix: (..., 3, 3).

    Returns:
        (..., 3) axis-angle, radians.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Quaternions (x, y, z, w) from rotation vectors.

    Args:
        axis_angle: (..., 3), radians.

    Returns:
        (..., 4) xyzw with w >= 0 for angles up to pi.
    """
    angle = axis_angle.norm(dim=-1, keepdim=True)  # (..., 1)
    small = angle < _SMALL_ANGLE
    safe_angle = torch.where(small, torch.ones_like(angle), angle)
    # sin(t/2)/t -> 1/2 - t^2/48 near zero.
    scale = torch.where(small, 0.5 - angle * angle / 48.0, torch.sin(safe_angle / 2) / safe_angle)
    return torch.cat((axis_angle * scale, torch.cos(angle / 2.0)), dim=-1)


def rot6d_to_axis_angle(rot6d: torch.Tensor) -> torch.Tensor:
    """Rotation vectors from the 6D representation (see :func:`rot6d_to_matrix`).

    Args:
        rot6d: (..., 6).

    Returns:
        (..., 3) axis-angle, radians.
    """
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def standardize_quaternion(quaternion: torch.Tensor) -> torch.Tensor:
    """Flip quaternions (x, y, z, w) with w < 0, so that each rotation has one representative.

    Args:
        quaternion: (..., 4), xyzw.

    Returns:
        (..., 4) with w >= 0.
    """
    sign = torch.where(quaternion[..., 3:] < 0, -1.0, 1.0).to(quaternion.dtype)
    return quaternion * sign


def align_quaternion_signs(quaternion: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Choose, per quaternion, the sign (q or -q) closest to a reference quaternion.

    q and -q are the same rotation; a message stream whose sign jumps between frames makes
    filters and interpolation (slerp, averaging) take the long way round. Aligning each new
    quaternion with the previously published one (e.g. of the same tracked person) avoids it.

    Args:
        quaternion: (..., 4) xyzw.
        reference: (..., 4) xyzw, broadcastable to ``quaternion``.

    Returns:
        (..., 4): ``q`` or ``-q``, whichever has a non-negative dot product with the reference.
    """
    dot = (quaternion * reference).sum(dim=-1, keepdim=True)
    return torch.where(dot < 0, -quaternion, quaternion)


def make_quaternions_continuous(quaternions: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Make a sequence of quaternions sign-continuous along ``dim`` (no Python loop).

    Each element is flipped so that its dot product with the (already corrected) previous
    element is non-negative; the first element is kept. Flips compose, so the sign to apply
    to element t is the cumulative product of the raw neighbour-to-neighbour signs.

    Args:
        quaternions: (..., T, ..., 4) xyzw, the sequence axis being ``dim``.
        dim: the sequence axis (must not be the last one).

    Returns:
        Same shape, sign-continuous along ``dim``.
    """
    axis = dim % quaternions.dim()
    if axis == quaternions.dim() - 1:
        raise ValueError('the sequence axis cannot be the quaternion axis (the last one)')
    length = quaternions.shape[axis]
    if length < 2:
        return quaternions
    later = quaternions.narrow(axis, 1, length - 1)
    earlier = quaternions.narrow(axis, 0, length - 1)
    step_sign = torch.where((later * earlier).sum(dim=-1, keepdim=True) < 0, -1.0, 1.0)
    first = torch.ones_like(quaternions.narrow(axis, 0, 1)[..., :1])
    signs = torch.cat((first, step_sign.to(quaternions.dtype)), dim=axis).cumprod(dim=axis)
    return quaternions * signs


def _skew(vector: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices [v]x, with [v]x @ u = v x u."""
    x, y, z = vector.unbind(dim=-1)
    zero = torch.zeros_like(x)
    rows = (torch.stack((zero, -z, y), dim=-1),
            torch.stack((z, zero, -x), dim=-1),
            torch.stack((-y, x, zero), dim=-1))
    return torch.stack(rows, dim=-2)
