"""Splitting the sampled parameter vectors of ROMP / BEV into camera, pose and shape.

Layout of one person's parameter vector (the channels of the parameter map at its center):

    ======  =========  ==========================================================
    index   size       meaning
    ======  =========  ==========================================================
    0:3     3          camera: ROMP [s, tx, ty] weak perspective; BEV [s, ty, tx]
    3:9     6          global orientation, 6D
    9:135   21 * 6     body joints 1..21 of SMPL, 6D each
    135:    10 or 11   SMPL betas (ROMP, 145 channels) or SMPL-A betas (BEV, 146)
    ======  =========  ==========================================================

The network predicts 22 of SMPL's 24 joint rotations; the two hand joints (22, 23) are set to
the identity (zero axis-angle), as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from romp_ros.core.geometry.rotation import rot6d_to_axis_angle

CAM_DIM = 3
NUM_PREDICTED_JOINTS = 22  # global orientation + 21 body joints
NUM_SMPL_JOINTS = 24
ROT6D_DIM = 6
POSE_6D_DIM = NUM_PREDICTED_JOINTS * ROT6D_DIM  # 132
ROMP_PARAMS_DIM = CAM_DIM + POSE_6D_DIM + 10  # 145
BEV_PARAMS_DIM = CAM_DIM + POSE_6D_DIM + 11  # 146
# ROMP's raw camera scale is an exponent: s = 1.1 ** raw keeps the scale positive.
CAM_SCALE_BASE = 1.1


@dataclass(frozen=True)
class SMPLParams:
    """Per-person body model parameters, all on the input's device and dtype.

    Attributes:
        cam: (N, 3) camera parameters as predicted (see the module table for their order).
        smpl_thetas: (N, 72) SMPL pose, axis-angle, radians: 24 joints x 3, the first being
            the global orientation; joints 22 and 23 (hands) are zero.
        smpl_betas: (N, 10) SMPL or (N, 11) SMPL-A shape coefficients (unitless).
    """

    cam: torch.Tensor
    smpl_thetas: torch.Tensor
    smpl_betas: torch.Tensor

    @property
    def num_people(self) -> int:
        """N."""
        return int(self.cam.shape[0])


def unpack_params(params: torch.Tensor) -> SMPLParams:
    """Split (N, 145) ROMP or (N, 146) BEV parameter vectors into camera, pose and shape.

    Args:
        params: (N, 145 | 146) sampled parameter vectors; for ROMP, channel 0 must already
            hold the positive scale (see :func:`apply_cam_scale`).

    Returns:
        :class:`SMPLParams`.

    Raises:
        ValueError: for any other shape.
    """
    if params.dim() != 2 or params.shape[1] not in (ROMP_PARAMS_DIM, BEV_PARAMS_DIM):
        raise ValueError(
            f'expected (N, {ROMP_PARAMS_DIM}) ROMP or (N, {BEV_PARAMS_DIM}) BEV parameters, '
            f'got shape {tuple(params.shape)}')
    num = params.shape[0]
    pose_end = CAM_DIM + POSE_6D_DIM
    cam = params[:, :CAM_DIM]  # (N, 3)
    pose_6d = params[:, CAM_DIM:pose_end].reshape(num, NUM_PREDICTED_JOINTS, ROT6D_DIM)
    pose_aa = rot6d_to_axis_angle(pose_6d)  # (N, 22, 3)
    hands = pose_aa.new_zeros(num, NUM_SMPL_JOINTS - NUM_PREDICTED_JOINTS, 3)  # (N, 2, 3)
    thetas = torch.cat((pose_aa, hands), dim=1).reshape(num, NUM_SMPL_JOINTS * 3)  # (N, 72)
    betas = params[:, pose_end:]  # (N, 10 | 11)
    return SMPLParams(cam=cam.contiguous(), smpl_thetas=thetas, smpl_betas=betas.contiguous())


def apply_cam_scale(params: torch.Tensor) -> torch.Tensor:
    """Turn ROMP's raw camera-scale channel into the positive scale ``1.1 ** raw``.

    ROMP's head predicts the exponent; the reference applies the power after the network
    because ``pow`` with a tensor exponent was not supported by its TensorRT export, so it is
    kept out of the exported graph here too. The operation is elementwise, so applying it to
    the whole map (B, C, H, W) or only to the sampled people (N, C) gives identical values;
    the latter is cheaper. BEV's camera needs no such step.

    Args:
        params: (B, C, H, W) parameter maps or (N, C) sampled parameters; channel 0 (dim 1) is
            the raw scale.

    Returns:
        A new tensor of the same shape with channel 0 replaced; the input is not modified.
    """
    if params.dim() < 2 or params.shape[1] < 1:
        raise ValueError(f'expected the channels on dim 1, got shape {tuple(params.shape)}')
    # a Python base: no tensor uploaded to the device (which would wait for it)
    scale = torch.pow(CAM_SCALE_BASE, params[:, :1])
    return torch.cat((scale, params[:, 1:]), dim=1)
