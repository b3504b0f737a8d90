"""Camera-frame translations of the people, batched over N, closed form plus Gauss-Newton.

Three ways to place a body in the camera frame (units: metres, optical frame x right, y down,
z forward; pixels u right, v down):

* :func:`romp_reference_translation` - ROMP's default. The reference projects the first 24
  joints with the weak-perspective camera into the 512-pixel network square and finds the
  translation that makes a pinhole of focal 443.4 px (60 degrees over 512 px) centred on the
  square reproduce those points. It uses cv2.solvePnPRansac (EPnP) per person, which also
  fits a rotation; here the rotation is fixed to the identity (the joints are already
  oriented) and the translation is the linear least-squares solution, for all people at once.
* :func:`solve_translation_with_intrinsics` - re-solve with the real camera K of the original
  image, so that the body projects onto its predicted 2D keypoints: linear least squares,
  then robust (iteratively re-weighted, Huber then Cauchy) Levenberg-Marquardt on the pixel
  reprojection error. Use this whenever the camera is known.
* :func:`solve_translation_with_camera` - the same through a camera with lens distortion
  (plumb_bob, rational_polynomial, equidistant): a linear start from the keypoints' viewing
  rays, then the robust Levenberg-Marquardt on the reprojection error in the distorted
  pixels, through the lens (docs/geometry.md says why this, not undistorting first).
* :func:`bev_translation` - BEV's closed form from its (scale, y, x) camera.

The linear system: a joint X (body frame) seen at pixel p = (u, v) satisfies, for each image
row i of K, (K_i - p_i e_3) . (X + t) = 0. Each joint gives two equations linear in t; with
per-joint weights w the normal equations are sum_j w_j A_j^T A_j t = -sum_j w_j A_j^T A_j X_j.
This is the reference's fallback (estimate_translation_np) for any upper-triangular K.
The algebraic error it minimises is the pixel error times depth, so it is refined on the
true pixel error when the camera matters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
from typing import Sequence

import numpy as np
import torch

from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.core.geometry.lens_projection import LensBatch, lens_batch, project_through_lens

# The reference's constants: 512-pixel network square, f = 256 / tan(30 deg) rounded.
REFERENCE_INPUT_SIZE = 512
REFERENCE_FOCAL = 443.4
REFERENCE_NUM_JOINTS = 24
DEFAULT_FOV_DEG = 60.0
# BEV adds this to the scale * tan(fov / 2) denominator so that s = 0 maps to 1000 m, not inf.
BEV_DEPTH_EPS = 1e-3

# Fewer usable joints than this leaves the 3-dof translation barely constrained.
MIN_JOINTS = 3
# Relative eigenvalue floor of the 3x3 normal matrix below which the system is singular
# (all keypoints equal, collinear degenerate cases).
_RCOND = 1e-10
# 3D joints spanning less than this (metres) cannot fix a depth.
_MIN_SPREAD_M = 1e-6
# Robust loss scale, in medians of the person's residual norms (for isotropic Gaussian pixel
# noise sigma the median norm is 1.18 sigma, so 2 medians ~ 2.4 sigma), and its floor.
_ROBUST_MEDIANS = 2.0
_MIN_ROBUST_SCALE_PX = 1.0
_LM_INIT = 1e-3
_LM_UP, _LM_DOWN = 10.0, 0.1


@dataclass(frozen=True)
class TranslationSolution:
    """Per-person translations solved against a camera.

    Attributes:
        trans: (N, 3) metres, body frame -> camera optical frame; NaN where the input was
            degenerate (see ``valid``).
        valid: (N,) bool. False for: non-finite K, fewer than 3 usable joints (finite joint,
            keypoint and positive weight), joints all at one point, a singular system (e.g.
            all keypoints equal), or a linear solution behind the camera (``depth_clamped``).
        reproj_rmse_px: (N,) root mean square pixel distance between the projected joints and
            the keypoints over the usable joints (unweighted, outliers included); NaN when
            ``trans`` is.
        depth_clamped: (N,) bool. The linear solution put some usable joint at a depth below
            ``min_depth``; it was pushed forward to ``min_depth`` before refinement and the
            person is marked invalid, but ``trans`` is finite and usable for display.
    """

    trans: torch.Tensor
    valid: torch.Tensor
    reproj_rmse_px: torch.Tensor
    depth_clamped: torch.Tensor


def romp_reference_translation(joints: torch.Tensor, cam: torch.Tensor,
                               weights: torch.Tensor | None = None) -> torch.Tensor:
    """ROMP's default translation: the pinhole that reproduces the weak-perspective joints.

    Targets are the weak-perspective projections of the first 24 joints in pixels of the
    512-pixel network square, ((X[:2] * s + (tx, ty)) + 1) * 256; the camera has f = 443.4 px
    and principal point (256, 256). Unlike the reference's EPnP, no rotation is fitted.

    Args:
        joints: (N, J >= 24, 3) body-frame joints, metres.
        cam: (N, 3) ROMP camera [s, tx, ty] (s already positive, 1.1 ** raw).
        weights: optional (N, 24) non-negative per-joint weights.

    Returns:
        (N, 3) translations, metres, input dtype; NaN rows where the system is degenerate
        (the reference returns -1s when RANSAC fails).
    """
    body = joints[:, :REFERENCE_NUM_JOINTS]  # (N, 24, 3)
    half = REFERENCE_INPUT_SIZE / 2.0
    normalised = body[..., :2] * cam[:, None, :1] + cam[:, None, 1:3]  # (N, 24, 2)
    targets = (normalised + 1.0) * half  # pixels of the network square
    # filled on the device, not uploaded: an upload from pageable memory waits for the device
    k_mat = torch.zeros((3, 3), dtype=joints.dtype, device=joints.device)
    k_mat[0, 0] = k_mat[1, 1] = REFERENCE_FOCAL
    k_mat[:2, 2] = half
    k_mat[2, 2] = 1.0
    dtype = _solve_dtype(joints)
    prepared = _prepare(body.to(dtype), targets.to(dtype), k_mat.to(dtype),
                        None if weights is None else weights.to(device=joints.device,
                                                                dtype=dtype))
    trans, ok = _linear_solve(prepared)
    trans = torch.where(ok[:, None], trans, torch.full_like(trans, math.nan))
    return trans.to(joints.dtype)


def solve_translation_with_intrinsics(
        joints: torch.Tensor, keypoints_px: torch.Tensor, intrinsics: torch.Tensor,
        weights: torch.Tensor | None = None, *, iterations: int = 10,
        min_depth: float = 0.05, robust: bool = True) -> TranslationSolution:
    """Translations that make each body project onto its 2D keypoints through the real K.

    Steps, all batched over people with a fixed iteration count (no data-dependent control
    flow, so nothing waits for the device inside the loop):

    1. Linear least squares (see the module docstring), weights from ``weights``. If it puts
       a usable joint closer than ``min_depth``, it is pushed forward and flagged.
    2. ``iterations`` Levenberg-Marquardt steps on the pixel reprojection error. With
       ``robust``, joints are re-weighted each step (IRLS) with a scale of twice the person's
       median residual norm (at least 1 px): Huber weights for the first half (convex, safe
       from a start that outliers dragged away), then Cauchy weights, which fade gross
       outliers out entirely. Steps that raise the robust cost or put a usable joint closer
       than ``min_depth`` are rejected (and the damping raised).

    Computed in float64 (float32 on devices without it) and returned in the joints' dtype.

    Args:
        joints: (N, J, 3) body-frame joints, metres (e.g. the regressed SMPL joints).
        keypoints_px: (N, J, 2) the 2D keypoints in ORIGINAL image pixels (e.g. pj2d_org).
        intrinsics: (N, 3, 3) or (3, 3) K of the original image: any fx, fy, cx, cy (and
            skew); the last row must be [0, 0, 1].
        weights: optional (N, J) non-negative per-joint weights (e.g. 0 for joints to ignore).
            Non-finite joints or keypoints are ignored whatever their weight.
        iterations: refinement steps (0 returns the linear solution).
        min_depth: smallest acceptable depth of a usable joint, metres.
        robust: use the robust re-weighting (else plain least squares).

    Returns:
        :class:`TranslationSolution`.
    """
    if joints.dim() != 3 or joints.shape[-1] != 3:
        raise ValueError(f'joints must be (N, J, 3), got {tuple(joints.shape)}')
    if keypoints_px.shape != joints.shape[:2] + (2,):
        raise ValueError(f'keypoints_px must be (N, J, 2) = {tuple(joints.shape[:2]) + (2,)}, '
                         f'got {tuple(keypoints_px.shape)}')
    dtype = _solve_dtype(joints)
    prepared = _prepare(joints.to(dtype), keypoints_px.to(device=joints.device, dtype=dtype),
                        intrinsics.to(device=joints.device, dtype=dtype),
                        None if weights is None else weights.to(device=joints.device,
                                                                dtype=dtype))
    trans, ok = _linear_solve(prepared)
    trans, clamped = _push_in_front(prepared, trans, min_depth)
    return _refine(prepared, trans, ok, clamped, iterations, min_depth, robust, joints.dtype)


def solve_translation_with_camera(
        joints: torch.Tensor, keypoints_px: torch.Tensor,
        cameras: CameraModel | Sequence[CameraModel], camera_index: torch.Tensor | None = None,
        weights: torch.Tensor | None = None, *, iterations: int = 10,
        min_depth: float = 0.05, robust: bool = True) -> TranslationSolution:
    """Translations that make each body project onto its 2D keypoints through a real lens.

    The keypoints are in the camera's own (distorted) pixels, as a network that saw the raw
    image predicts them. Steps:

    1. Linear start from viewing rays: each keypoint's unit ray b (``CameraModel.pixel_rays``,
       valid for fisheye rays beyond 90 degrees too) and the joint X must satisfy
       (I - b b^T)(X + t) = 0, i.e. the joint lies on its ray; weighted least squares over
       the joints (the squared distance of each joint from its ray). A usable joint closer
       than ``min_depth`` along its ray pushes the person out along the mean ray (flagged as
       in :func:`solve_translation_with_intrinsics`).
    2. The robust Levenberg-Marquardt of :func:`solve_translation_with_intrinsics` on the
       pixel error in the DISTORTED image, with the lens's analytic Jacobian
       (:mod:`~romp_ros.core.geometry.lens_projection`): the network's keypoint noise is in
       those pixels, so this is the maximum-likelihood fit, wherever the person is in the
       image.

    An undistorted pinhole camera gives the same answer as
    :func:`solve_translation_with_intrinsics` (up to rounding); call that one for them.

    Args:
        joints: (N, J, 3) body-frame joints, metres.
        keypoints_px: (N, J, 2) keypoints in pixels of the camera's (raw) image.
        cameras: one camera for everyone, or a list of C cameras with ``camera_index``.
        camera_index: (N,) int64 index into ``cameras`` of each person's camera (None: all 0).
        weights, iterations, min_depth, robust: as in
            :func:`solve_translation_with_intrinsics` (``min_depth`` applies along each
            joint's ray; for the fisheye it is the distance from the camera).

    Returns:
        :class:`TranslationSolution`; ``reproj_rmse_px`` in the distorted pixels.
    """
    cameras = [cameras] if isinstance(cameras, CameraModel) else list(cameras)
    if joints.dim() != 3 or joints.shape[-1] != 3:
        raise ValueError(f'joints must be (N, J, 3), got {tuple(joints.shape)}')
    if keypoints_px.shape != joints.shape[:2] + (2,):
        raise ValueError(f'keypoints must be (N, J, 2) = {joints.shape[:2] + (2,)}, '
                         f'got {tuple(keypoints_px.shape)}')
    num = joints.shape[0]
    if camera_index is None:
        camera_index = torch.zeros(num, dtype=torch.long)
    camera_index = camera_index.to(device=joints.device, dtype=torch.long)
    if camera_index.shape != (num,):
        raise ValueError(f'camera_index must be (N,) = ({num},), '
                         f'got {tuple(camera_index.shape)}')
    if num and (int(camera_index.min()) < 0 or int(camera_index.max()) >= len(cameras)):
        raise ValueError(f'camera_index must be in [0, {len(cameras)})')
    dtype = _solve_dtype(joints)
    device = joints.device
    keypoints = keypoints_px.to(device=device, dtype=dtype)
    lens = lens_batch(cameras, camera_index, dtype=dtype, device=device)
    rays = _keypoint_rays(keypoints, cameras, camera_index)  # (N, J, 3)
    rays_ok = torch.isfinite(rays).all(dim=-1)  # (N, J)
    weights = (joints.new_ones(joints.shape[:2], dtype=dtype) if weights is None
               else weights.to(device=device, dtype=dtype))
    if weights.shape != joints.shape[:2]:
        raise ValueError(f'weights must be (N, J) = {tuple(joints.shape[:2])}, '
                         f'got {tuple(weights.shape)}')
    weights = torch.where(rays_ok, weights, torch.zeros_like(weights))
    base = _prepare(joints.to(dtype), keypoints, lens.matrices(), weights)
    rays = torch.where(base.usable[..., None], rays, torch.zeros_like(rays))
    prepared = dataclasses.replace(base, lens=lens, rays=rays)
    trans, ok = _bearing_solve(prepared)
    trans, clamped = _push_along_rays(prepared, trans, min_depth)
    return _refine(prepared, trans, ok, clamped, iterations, min_depth, robust, joints.dtype)


def _refine(prepared: '_Prepared', trans: torch.Tensor, ok: torch.Tensor,
            clamped: torch.Tensor, iterations: int, min_depth: float, robust: bool,
            out_dtype: torch.dtype) -> TranslationSolution:
    """The robust Levenberg-Marquardt refinement from a linear start, and the result."""
    damping = torch.full_like(trans[:, 0], _LM_INIT)  # (N,)
    for step in range(max(iterations, 0)):
        # Huber first (convex: safe from a linear start that outliers dragged away), then
        # Cauchy, whose weights vanish for gross outliers instead of merely bounding them.
        if not robust:
            loss = 'l2'
        else:
            loss = 'huber' if step < iterations // 2 else 'cauchy'
        trans, damping = _lm_step(prepared, trans, damping, min_depth, loss)
    rmse = _rmse(prepared, trans)
    valid = ok & ~clamped
    nan = torch.full_like(trans, math.nan)
    trans = torch.where(ok[:, None], trans, nan)
    rmse = torch.where(ok, rmse, nan[:, 0])
    return TranslationSolution(trans=trans.to(out_dtype), valid=valid,
                               reproj_rmse_px=rmse.to(out_dtype), depth_clamped=clamped & ok)


def bev_translation(cam: torch.Tensor, fov_deg: float = DEFAULT_FOV_DEG,
                    positive_only: bool = False) -> torch.Tensor:
    """BEV's translation from its camera parameters.

    BEV's camera is (s, y, x): its last two channels come from a (z, y, x) coordinate map, so
    they are the VERTICAL then the HORIZONTAL offset in the normalised square (the reference
    flips them). With T = tan(fov / 2):

        depth = 1 / (s * T + 1e-3),  (x, y) = (cam[2], cam[1]) * depth * T

    Args:
        cam: (N, 3) BEV camera [s, ty, tx].
        fov_deg: the field of view the network was trained for (60 degrees).
        positive_only: zero non-positive scales first (the reference's optional constraint;
            such people land at 1000 m).

    Returns:
        (N, 3) translations, metres.
    """
    tan_half = math.tan(math.radians(fov_deg) / 2.0)
    scale = cam[:, 0]
    if positive_only:
        scale = torch.where(scale > 0, scale, torch.zeros_like(scale))
    depth = 1.0 / (scale * tan_half + BEV_DEPTH_EPS)  # (N,)
    xy = cam[:, 1:].flip(1) * (depth * tan_half)[:, None]  # (N, 2): (tx, ty)
    return torch.cat((xy, depth[:, None]), dim=1)


@dataclass(frozen=True)
class _Prepared:
    """Sanitised solver inputs: non-finite values zeroed and given zero weight."""

    joints: torch.Tensor  # (N, J, 3)
    keypoints: torch.Tensor  # (N, J, 2)
    k_mat: torch.Tensor  # (N, 3, 3)
    weights: torch.Tensor  # (N, J), zero for unusable joints
    usable: torch.Tensor  # (N, J) bool
    ok_inputs: torch.Tensor  # (N,) bool: finite K, enough joints, non-degenerate 3D spread
    lens: LensBatch | None = None  # per-person lenses (None: the pinhole K of k_mat)
    rays: torch.Tensor | None = None  # (N, J, 3) unit viewing rays of the keypoints (lens)


def _solve_dtype(reference: torch.Tensor) -> torch.dtype:
    # float64 makes the 3x3 normal equations exact enough for tiny / distant people; MPS has
    # no float64.
    return torch.float32 if reference.device.type == 'mps' else torch.float64


def _prepare(joints: torch.Tensor, keypoints: torch.Tensor, k_mat: torch.Tensor,
             weights: torch.Tensor | None) -> _Prepared:
    num, num_joints = joints.shape[:2]
    if k_mat.shape == (3, 3):
        k_mat = k_mat.unsqueeze(0).expand(num, 3, 3)
    if k_mat.shape != (num, 3, 3):
        raise ValueError(f'intrinsics must be (3, 3) or (N, 3, 3), got {tuple(k_mat.shape)}')
    if weights is None:
        weights = joints.new_ones(num, num_joints)
    elif weights.shape != (num, num_joints):
        raise ValueError(f'weights must be (N, J) = {(num, num_joints)}, '
                         f'got {tuple(weights.shape)}')
    k_ok = torch.isfinite(k_mat).flatten(1).all(dim=1)  # (N,)
    usable = (torch.isfinite(joints).all(dim=-1) & torch.isfinite(keypoints).all(dim=-1)
              & torch.isfinite(weights) & (weights > 0))  # (N, J)
    zero = torch.zeros((), dtype=joints.dtype, device=joints.device)
    joints = torch.where(usable[..., None], joints, zero)
    keypoints = torch.where(usable[..., None], keypoints, zero)
    weights = torch.where(usable, weights, zero)
    k_mat = torch.where(k_ok[:, None, None], k_mat,
                        torch.eye(3, dtype=k_mat.dtype, device=k_mat.device))
    count = usable.sum(dim=1)  # (N,)
    # Spread of the usable 3D joints around their mean: zero when they coincide.
    mean = (joints * usable[..., None]).sum(dim=1) / count.clamp_min(1)[:, None]  # (N, 3)
    spread = ((joints - mean[:, None]).norm(dim=-1) * usable).amax(dim=1)  # (N,)
    ok_inputs = k_ok & (count >= MIN_JOINTS) & (spread > _MIN_SPREAD_M)
    return _Prepared(joints=joints, keypoints=keypoints, k_mat=k_mat, weights=weights,
                     usable=usable, ok_inputs=ok_inputs)


def _linear_solve(prep: _Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted linear least squares for t; returns (N, 3) and an (N,) success mask."""
    # A_j rows: K_i - p_i e_3 for the two image rows i (u, v): (N, J, 2, 3).
    e3 = _unit_z(prep.k_mat)
    rows = prep.k_mat[:, None, :2, :] - prep.keypoints[..., None] * e3
    rhs = -(rows @ prep.joints[..., None]).squeeze(-1)  # (N, J, 2)
    weighted_rows = rows * prep.weights[..., None, None]
    normal = torch.einsum('njik,njil->nkl', weighted_rows, rows)  # (N, 3, 3)
    moment = torch.einsum('njik,nji->nk', weighted_rows, rhs)  # (N, 3)
    ok = prep.ok_inputs & _well_conditioned(normal)
    # Solve a harmless identity system for the rows already known to be bad, so that
    # the batched solve never sees a singular matrix.
    eye = torch.eye(3, dtype=normal.dtype, device=normal.device)
    normal = torch.where(ok[:, None, None], normal, eye)
    moment = torch.where(ok[:, None], moment, torch.zeros_like(moment))
    trans, info = torch.linalg.solve_ex(normal, moment)  # (N, 3); no host sync on errors
    return trans, ok & (info == 0) & torch.isfinite(trans).all(dim=1)


def _keypoint_rays(keypoints: torch.Tensor, cameras: list[CameraModel],
                   camera_index: torch.Tensor) -> torch.Tensor:
    """(N, J, 3) unit viewing rays of the keypoints, each through its person's camera.

    The lens is inverted on the host in float64 (:meth:`CameraModel.pixel_rays`); a handful of
    cameras per batch, 2 x J values per person.
    """
    pixels = keypoints.detach().cpu().numpy().astype(np.float64)  # (N, J, 2)
    index = camera_index.cpu().numpy()
    rays = np.full(pixels.shape[:-1] + (3,), np.nan)
    for cam_id in np.unique(index):
        rows = index == cam_id
        with np.errstate(invalid='ignore', divide='ignore', over='ignore'):
            rays[rows] = cameras[int(cam_id)].pixel_rays(pixels[rows])
    return torch.as_tensor(rays, dtype=keypoints.dtype, device=keypoints.device)


def _bearing_solve(prep: _Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least squares for t with every joint on its viewing ray; (N, 3), (N,) ok."""
    eye = torch.eye(3, dtype=prep.joints.dtype, device=prep.joints.device)
    # (I - b b^T): the projection onto the plane normal to the ray, (N, J, 3, 3)
    across = eye - prep.rays[..., :, None] * prep.rays[..., None, :]
    weighted = across * prep.weights[..., None, None]
    normal = weighted.sum(dim=1)  # (N, 3, 3)
    moment = -(weighted @ prep.joints[..., None]).squeeze(-1).sum(dim=1)  # (N, 3)
    ok = prep.ok_inputs & _well_conditioned(normal)
    normal = torch.where(ok[:, None, None], normal, eye)
    moment = torch.where(ok[:, None], moment, torch.zeros_like(moment))
    trans, info = torch.linalg.solve_ex(normal, moment)
    return trans, ok & (info == 0) & torch.isfinite(trans).all(dim=1)


def _push_along_rays(prep: _Prepared, trans: torch.Tensor,
                     min_depth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Move solutions with a usable joint nearer than ``min_depth`` (along its ray) outwards.

    A polynomial lens also needs every joint at a positive depth; the fisheye sees sideways,
    so only the distance along the ray counts there.
    """
    points = prep.joints + trans[:, None, :]  # (N, J, 3)
    along = (points * prep.rays).sum(dim=-1)  # (N, J)
    front = torch.where(prep.lens.fisheye[:, None], along, torch.minimum(along, points[..., 2]))
    nearest = torch.where(prep.usable, front, torch.full_like(front, math.inf)).amin(dim=1)
    clamped = nearest < min_depth  # (N,)
    mean_ray = (prep.rays * prep.usable[..., None]).sum(dim=1)  # (N, 3)
    mean_ray = mean_ray / mean_ray.norm(dim=1, keepdim=True).clamp_min(1e-12)
    shift = torch.where(clamped, min_depth - nearest, torch.zeros_like(nearest))
    shift = torch.nan_to_num(shift, nan=0.0, posinf=0.0, neginf=0.0)
    return trans + mean_ray * shift[:, None], clamped


def _well_conditioned(normal: torch.Tensor) -> torch.Tensor:
    finite = torch.isfinite(normal).flatten(1).all(dim=1)
    safe = torch.where(finite[:, None, None], normal, torch.eye(3, dtype=normal.dtype,
                                                                   device=normal.device))
    # smallest eigenvalue above _RCOND x the trace (the largest, up to 3x), tested as
    # "A - _RCOND trace(A) I is positive definite": a Cholesky that reports failure instead
    # of raising, so on a GPU nothing waits for the device (eigvalsh checks its errors there)
    trace = safe.diagonal(dim1=1, dim2=2).sum(dim=1)  # (N,)
    shifted = safe - (_RCOND * trace)[:, None, None] * torch.eye(3, dtype=safe.dtype,
                                                                 device=safe.device)
    _, info = torch.linalg.cholesky_ex(shifted)
    return finite & (info == 0) & (trace > 0)


def _push_in_front(prep: _Prepared, trans: torch.Tensor,
                   min_depth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Move solutions with a usable joint closer than ``min_depth`` forward along z."""
    depths = prep.joints[..., 2] + trans[:, None, 2]  # (N, J)
    nearest = torch.where(prep.usable, depths, torch.full_like(depths, math.inf)).amin(dim=1)
    clamped = nearest < min_depth  # (N,)
    shift = torch.where(clamped, min_depth - nearest, torch.zeros_like(nearest))
    shift = torch.nan_to_num(shift, nan=0.0, posinf=0.0, neginf=0.0)
    return trans + torch.stack((torch.zeros_like(shift), torch.zeros_like(shift), shift),
                               dim=1), clamped


def _evaluate(prep: _Prepared, trans: torch.Tensor, jacobian: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Pixel residuals (N, J, 2), how far in front (N, J) and d pixel / d t (N, J, 2, 3).

    "In front" is the depth for pinhole and polynomial lenses and the distance from the
    camera for the fisheye (see ``LensProjection.front``).
    """
    points = prep.joints + trans[:, None, :]  # (N, J, 3) camera frame
    if prep.lens is not None:
        projected = project_through_lens(points, prep.lens)
        return (projected.pixels - prep.keypoints, projected.front,
                projected.jacobian if jacobian else None)
    homog = points @ prep.k_mat.transpose(-1, -2)  # (N, J, 3)
    depth = points[..., 2]
    safe_depth = torch.where(depth.abs() > 1e-12, depth, torch.ones_like(depth))
    proj = homog[..., :2] / safe_depth[..., None]
    jac = None
    if jacobian:
        # d proj_i / d t = (K_i - proj_i e_3) / z for the image rows i: (N, J, 2, 3).
        e3 = _unit_z(prep.k_mat)
        jac = (prep.k_mat[:, None, :2, :] - proj[..., None] * e3) / safe_depth[..., None, None]
    return proj - prep.keypoints, depth, jac


def _unit_z(like: torch.Tensor) -> torch.Tensor:
    """(0, 0, 1) on ``like``'s device, filled there (an upload would wait for the device)."""
    e3 = torch.zeros(3, dtype=like.dtype, device=like.device)
    e3[2] = 1.0
    return e3


def _robust_cost(norms: torch.Tensor, scale: torch.Tensor, weights: torch.Tensor,
                 loss: str) -> torch.Tensor:
    """(N,) sum over joints of w * rho(|r|) for the loss 'l2', 'huber' or 'cauchy'."""
    if loss == 'huber':
        rho = torch.where(norms <= scale, 0.5 * norms ** 2, scale * (norms - 0.5 * scale))
    elif loss == 'cauchy':
        rho = 0.5 * scale ** 2 * torch.log1p((norms / scale) ** 2)
    else:
        rho = 0.5 * norms ** 2
    return (weights * rho).sum(dim=1)


def _irls_weights(norms: torch.Tensor, scale: torch.Tensor, loss: str) -> torch.Tensor:
    """(N, J) iteratively re-weighted least squares weights rho'(e) / e."""
    if loss == 'huber':
        return torch.where(norms > scale, scale / norms.clamp_min(1e-12), torch.ones_like(norms))
    if loss == 'cauchy':
        return 1.0 / (1.0 + (norms / scale) ** 2)
    return torch.ones_like(norms)


def _robust_scale(norms: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """(N, 1) per-person loss scale: a multiple of the median residual norm, >= 1 px."""
    masked = torch.where(usable, norms, torch.full_like(norms, math.nan))
    median = torch.nanmedian(masked, dim=1).values  # (N,)
    median = torch.nan_to_num(median, nan=1.0)
    return (_ROBUST_MEDIANS * median).clamp_min(_MIN_ROBUST_SCALE_PX)[:, None]


def _lm_step(prep: _Prepared, trans: torch.Tensor, damping: torch.Tensor, min_depth: float,
             loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One damped, robustly weighted Gauss-Newton step for every person.

    Returns the new (N, 3) translations and (N,) damping factors: accepted steps keep the
    candidate and relax the damping, rejected ones keep the estimate and stiffen it.
    """
    resid, _, jac = _evaluate(prep, trans)
    norms = resid.norm(dim=-1)  # (N, J)
    scale = _robust_scale(norms, prep.usable)
    weights = prep.weights * _irls_weights(norms, scale, loss)  # (N, J)
    weighted_jac = jac * weights[..., None, None]
    hess = torch.einsum('njik,njil->nkl', weighted_jac, jac)  # (N, 3, 3)
    grad = torch.einsum('njik,nji->nk', weighted_jac, resid)  # (N, 3)
    # Levenberg-Marquardt: scale the diagonal, so that a poorly constrained depth direction
    # cannot produce a huge step.
    diag = torch.diagonal(hess, dim1=-2, dim2=-1)  # (N, 3)
    damped = hess + torch.diag_embed(diag * damping[:, None] + 1e-12)
    step = -_batched_solve(damped, grad)
    candidate = trans + step
    new_resid, new_depth, _ = _evaluate(prep, candidate, jacobian=False)
    old_cost = _robust_cost(norms, scale, prep.weights, loss)
    new_cost = _robust_cost(new_resid.norm(dim=-1), scale, prep.weights, loss)
    in_front = torch.where(prep.usable, new_depth, torch.full_like(new_depth, math.inf))
    accept = (new_cost <= old_cost) & (in_front.amin(dim=1) >= min_depth)
    accept = accept & torch.isfinite(candidate).all(dim=1)
    new_damping = torch.where(accept, damping * _LM_DOWN, damping * _LM_UP).clamp(1e-9, 1e9)
    return torch.where(accept[:, None], candidate, trans), new_damping


def _batched_solve(matrix: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Solve (N, 3, 3) x = (N, 3) without raising on singular rows (they give zeros)."""
    solution, info = torch.linalg.solve_ex(matrix, vector)
    bad = (info != 0) | ~torch.isfinite(solution).all(dim=1)
    return torch.where(bad[:, None], torch.zeros_like(solution), solution)


def _rmse(prep: _Prepared, trans: torch.Tensor) -> torch.Tensor:
    resid, _, _ = _evaluate(prep, trans, jacobian=False)
    sq = (resid ** 2).sum(dim=-1) * prep.usable  # (N, J)
    count = prep.usable.sum(dim=1).clamp_min(1)
    return (sq.sum(dim=1) / count).sqrt()
