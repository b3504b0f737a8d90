"""SMPL-family body models in torch: SMPL (ROMP) and SMPL-A with SMIL infants (BEV).

Skinning is the reference's linear blend skinning (``smplx.lbs.lbs``), with the kinematic chain
walked level by level on the model's device (``skinning.py``: no value is read back, which
matters on a GPU). On top of it the reference's extra joints are gathered: 21 vertex picks and
9 + 17 regressed joints, when the models directory has them. Everything is batched over
people; N = 0 is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from romp_ros.core.body.kinematic_tree import kinematic_levels
from romp_ros.core.body.model_files import BodyModelArrays, ModelFilesError, load_body_model_arrays
from romp_ros.core.body.skinning import linear_blend_skinning

LOG = logging.getLogger(__name__)

NUM_THETAS = 72  # 24 joints x axis-angle
SMIL_AGE_THRESH = 0.8  # the reference's age offset above which BEV uses SMIL


@dataclass(frozen=True)
class BodyOutput:
    """Posed bodies of N people, metres, body frame (no translation applied).

    Attributes:
        verts: (N, V, 3) mesh vertices.
        joints: (N, J, 3) joints, J = 71 (24 SMPL + 21 vertex picks + 9 + 17 H36M) or 24.
        infant_mask: (N,) bool, True where the SMIL infant model was used; None for models
            that never switch (plain SMPL).
        kind: the body model of people not flagged by ``infant_mask`` ('smpl' or 'smpla').
    """

    verts: torch.Tensor
    joints: torch.Tensor
    infant_mask: torch.Tensor | None = None
    kind: str = 'smpl'

    @property
    def model_type(self) -> tuple[str, ...]:
        """Per person, the body model used: 'smpl', 'smpla' or 'smil' (host sync)."""
        if self.infant_mask is None:
            return (self.kind,) * int(self.verts.shape[0])
        return tuple('smil' if infant else self.kind for infant in self.infant_mask.tolist())


class BodyModel(nn.Module):
    """One SMPL-family body model (SMPL, SMPL-A or SMIL) with the reference's joint set.

    Buffers follow ``.to(device)``; they are not part of ``state_dict`` (they come from the
    models directory, not from network checkpoints).
    """

    def __init__(self, arrays: BodyModelArrays, dtype: torch.dtype = torch.float32) -> None:
        """Build the model from prepared arrays (see ``load_body_model_arrays``)."""
        super().__init__()
        self.kind = arrays.kind
        self.num_betas = arrays.num_betas
        self.num_vertices = arrays.num_vertices
        self.num_joints = arrays.num_joints
        self.joint_names = arrays.joint_names

        def buffer(name: str, value: np.ndarray, as_dtype: torch.dtype) -> None:
            self.register_buffer(name, torch.tensor(value, dtype=as_dtype), persistent=False)

        buffer('v_template', arrays.v_template, dtype)  # (V, 3)
        buffer('shapedirs', arrays.shapedirs, dtype)  # (V, 3, B)
        buffer('posedirs', arrays.posedirs, dtype)  # (207, 3V)
        buffer('j_regressor', arrays.j_regressor, dtype)  # (24, V)
        buffer('lbs_weights', arrays.lbs_weights, dtype)  # (V, 24)
        buffer('parents', arrays.parents, torch.int64)  # (24,)
        # the tree by depth, as index buffers on the model's device (see skinning.py)
        self._num_levels = 0
        for level, joints in enumerate(kinematic_levels(arrays.parents)):
            buffer(f'level{level}_joints', joints, torch.int64)
            buffer(f'level{level}_parents', np.asarray(arrays.parents)[joints], torch.int64)
            self._num_levels += 1
        buffer('faces', arrays.faces, torch.int64)  # (F, 3)
        if arrays.has_extra_joints:
            buffer('extra_joints_index', arrays.extra_joints_index, torch.int64)  # (21,)
            # both regressors stacked: one matmul for the 26 regressed joints
            regressors = np.concatenate([arrays.j_regressor_extra9, arrays.j_regressor_h36m17])
            buffer('j_regressor_extra', regressors, dtype)  # (26, V)

    @classmethod
    def from_models_dir(cls, models_dir: str | Path, kind: str = 'smpl') -> 'BodyModel':
        """Load ``kind`` from a prepared models directory (ModelFilesError if unusable)."""
        return cls(load_body_model_arrays(models_dir, kind))

    def forward(self, betas: torch.Tensor, thetas: torch.Tensor) -> BodyOutput:
        """Pose and shape N bodies.

        Args:
            betas: (N, B) shape parameters (B = ``num_betas``: 10, SMPL-A 11).
            thetas: (N, 72) axis-angle rotations of the 24 joints, radians; the first three
                are the global orientation.

        Returns:
            BodyOutput with verts (N, V, 3) and joints (N, J, 3), metres, body frame.
        """
        betas, thetas = self._check_inputs(betas, thetas)
        num = betas.shape[0]
        if num == 0:
            # smplx's reshapes cannot infer a dimension from 0 elements
            verts = self.v_template.new_zeros((0, self.num_vertices, 3))
            joints = self.v_template.new_zeros((0, self.num_joints, 3))
            return BodyOutput(verts, joints, kind=self.kind)
        levels = [(getattr(self, f'level{level}_joints'), getattr(self, f'level{level}_parents'))
                  for level in range(self._num_levels)]
        verts, joints = linear_blend_skinning(betas, thetas, self.v_template, self.shapedirs,
                                              self.posedirs, self.j_regressor, self.parents,
                                              levels, self.lbs_weights)
        # verts (N, V, 3), joints (N, 24, 3)
        if self.num_joints > joints.shape[1]:
            picked = verts[:, self.extra_joints_index]  # (N, 21, 3)
            regressed = torch.einsum('nvc,jv->njc', verts, self.j_regressor_extra)  # (N, 26, 3)
            joints = torch.cat([joints, picked, regressed], dim=1)  # (N, 71, 3)
        return BodyOutput(verts, joints, kind=self.kind)

    def _check_inputs(self, betas: torch.Tensor,
                      thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device, dtype = self.v_template.device, self.v_template.dtype
        betas = torch.as_tensor(betas, dtype=dtype, device=device)
        thetas = torch.as_tensor(thetas, dtype=dtype, device=device)
        if betas.dim() != 2 or betas.shape[1] != self.num_betas:
            raise ValueError(f'{self.kind} betas must have shape (N, {self.num_betas}), got '
                             f'{tuple(betas.shape)}')
        if thetas.dim() != 2 or thetas.shape[1] != NUM_THETAS:
            raise ValueError(f'thetas must have shape (N, {NUM_THETAS}), got '
                             f'{tuple(thetas.shape)}')
        if betas.shape[0] != thetas.shape[0]:
            raise ValueError(f'{betas.shape[0]} betas but {thetas.shape[0]} thetas')
        return betas, thetas


class SMPLAWithInfants(nn.Module):
    """BEV's body model: SMPL-A for adults and children, SMIL for infants.

    SMPL-A is SMPL with an 11th shape parameter, the age offset, that blends toward a child
    template. People whose age offset exceeds ``age_thresh`` are posed with SMIL (first 10
    betas) when SMIL was prepared; without it everyone uses SMPL-A and a warning is logged
    once. Both models run on their own subsets of people at once (masks, no per-person loop).
    """

    def __init__(self, smpla: BodyModelArrays, smil: BodyModelArrays | None = None,
                 age_thresh: float = SMIL_AGE_THRESH) -> None:
        """Build from SMPL-A arrays and, optionally, SMIL arrays of the same topology."""
        super().__init__()
        if smpla.num_betas != 11:
            raise ModelFilesError(f'SMPLAWithInfants needs SMPL-A arrays (11 shape '
                                  f'directions), got {smpla.kind} with {smpla.num_betas}')
        if smil is not None and (smil.num_vertices, smil.num_joints) != (
                smpla.num_vertices, smpla.num_joints):
            raise ModelFilesError(
                f'SMIL ({smil.num_vertices} vertices, {smil.num_joints} joints) does not match '
                f'SMPL-A ({smpla.num_vertices} vertices, {smpla.num_joints} joints): prepare '
                'both from the same --extra folder')
        self.smpla = BodyModel(smpla)
        self.smil = BodyModel(smil) if smil is not None else None
        self.age_thresh = float(age_thresh)
        self.kind = 'smpla'
        self.num_betas = 11
        self.num_vertices = smpla.num_vertices
        self.num_joints = smpla.num_joints
        self.joint_names = smpla.joint_names
        self._warned_no_smil = False

    @property
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangles (SMIL shares SMPL's topology)."""
        return self.smpla.faces

    @property
    def parents(self) -> torch.Tensor:
        """(24,) int64 parent joint indices."""
        return self.smpla.parents

    def note_infants(self, any_infant: bool) -> None:
        """Warn once when people with an infant's age offset meet a models dir without SMIL."""
        if any_infant and self.smil is None and not self._warned_no_smil:
            LOG.warning('a person has age offset > %.2f (an infant) but the SMIL model was not '
                        'prepared: using SMPL-A for everyone (add --smil to prepare-models)',
                        self.age_thresh)
            self._warned_no_smil = True

    def forward(self, betas: torch.Tensor, thetas: torch.Tensor, dense: bool = False
                ) -> BodyOutput:
        """Pose N bodies; betas (N, 11) with the age offset last, thetas (N, 72).

        Args:
            betas, thetas: as above.
            dense: pose everyone with both models and pick per person, instead of splitting
                the people between them: twice the work, but no shape depends on the data,
                so a GPU caller does not wait for the device (the padded post-processing).
                The missing-SMIL warning is then the caller's (:meth:`note_infants`).

        Returns:
            BodyOutput with verts (N, V, 3), joints (N, J, 3) and infant_mask (N,).
        """
        betas, thetas = self.smpla._check_inputs(betas, thetas)
        infant = betas[:, 10] > self.age_thresh  # (N,)
        if dense:
            out = self.smpla(betas, thetas)
            if self.smil is None:
                return BodyOutput(out.verts, out.joints, torch.zeros_like(infant), self.kind)
            baby = self.smil(betas[:, :10], thetas)
            pick = infant[:, None, None]
            return BodyOutput(torch.where(pick, baby.verts, out.verts),
                              torch.where(pick, baby.joints, out.joints), infant, self.kind)
        if self.smil is None:
            if not self._warned_no_smil:
                self.note_infants(bool(infant.any()))
            out = self.smpla(betas, thetas)
            return BodyOutput(out.verts, out.joints, torch.zeros_like(infant), self.kind)
        adult = ~infant
        # each model poses only its own people; results are scattered back by mask
        grown = self.smpla(betas[adult], thetas[adult])
        baby = self.smil(betas[infant, :10], thetas[infant])
        num = betas.shape[0]
        verts = grown.verts.new_empty((num, self.num_vertices, 3))  # (N, V, 3)
        joints = grown.joints.new_empty((num, self.num_joints, 3))  # (N, J, 3)
        verts[adult], joints[adult] = grown.verts, grown.joints
        verts[infant], joints[infant] = baby.verts, baby.joints
        return BodyOutput(verts, joints, infant, self.kind)
