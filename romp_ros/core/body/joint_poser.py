"""The joints of posed bodies, without the mesh, in NumPy on the host.

Tracking re-poses every published person from the smoothed pose and shape on every frame.
When no one reads the meshes, only the 71 joints are needed, and they depend on a small part of
the model:

* the 24 kinematic joints are linear in the shape, so their rest positions and shape directions
  are regressed once at construction;
* the 21 vertex picks and the 9 + 17 regressed joints read only a few hundred vertices (686 of
  6890 with SMPL's regressors), so only those are skinned.

The skinning is the body model's own (linear blend skinning with the pose blend shapes, as in
:class:`~romp_ros.core.body.smpl.BodyModel`). The result equals ``BodyModel(...).joints`` up to
float32 rounding, and ``test_joint_poser`` checks that. The kinematic chain runs level by level
(nine levels for SMPL's 24 joints), not joint by joint. With a few people per frame, NumPy's
per-call cost is a fraction of torch's, and the smoothed parameters are on the host already,
so a GPU estimator makes no device round trip here.
"""

from __future__ import annotations

import logging

import numpy as np

from romp_ros.core.body.kinematic_tree import kinematic_levels
from romp_ros.core.body.model_files import BodyModelArrays, ModelFilesError
from romp_ros.core.geometry.rotation_numpy import axis_angle_to_matrix

LOG = logging.getLogger(__name__)

NUM_THETAS = 72  # 24 joints x axis-angle


class JointPoser:
    """Poses the joints of one SMPL-family model (SMPL, SMPL-A or SMIL) for N people."""

    def __init__(self, arrays: BodyModelArrays) -> None:
        """Precompute the joint-only model from prepared arrays (``load_body_model_arrays``)."""
        self.kind = arrays.kind
        self.num_betas = arrays.num_betas
        self.num_joints = arrays.num_joints
        num_verts = arrays.num_vertices
        self._parents = np.asarray(arrays.parents, dtype=np.int64)  # (24,)
        self._levels = kinematic_levels(self._parents)
        j_reg = arrays.j_regressor.astype(np.float64)  # (24, V)
        self._joint_template = (j_reg @ arrays.v_template).astype(np.float32)  # (24, 3)
        joint_shapedirs = np.einsum('jv,vcb->jcb', j_reg, arrays.shapedirs)  # (24, 3, B)
        self._joint_shapedirs = joint_shapedirs.reshape(-1, self.num_betas).T.astype(
            np.float32)  # (B, 72)
        self._has_extra = arrays.has_extra_joints
        if not self._has_extra:
            return
        regressors = np.concatenate([arrays.j_regressor_extra9, arrays.j_regressor_h36m17])
        used = np.union1d(arrays.extra_joints_index,
                          np.flatnonzero(np.abs(regressors).sum(axis=0) > 0))  # (S,)
        posedirs = arrays.posedirs.reshape(-1, num_verts, 3)[:, used]  # (207, S, 3)
        self._sub_template = arrays.v_template[used].astype(np.float32)  # (S, 3)
        # shape and pose blend shapes stacked: one matmul with [betas, pose feature]
        self._sub_blenddirs = np.concatenate([
            arrays.shapedirs[used].reshape(-1, self.num_betas).T,
            posedirs.reshape(posedirs.shape[0], -1)]).astype(np.float32)  # (B + 207, 3S)
        self._sub_weights = arrays.lbs_weights[used].astype(np.float32)  # (S, 24)
        self._sub_pick = np.searchsorted(used, arrays.extra_joints_index)  # (21,) subset rows
        self._sub_regressor = regressors[:, used].astype(np.float32)  # (26, S)

    @property
    def num_skinned_vertices(self) -> int:
        """How many vertices are skinned per person (0 without the extra joints)."""
        return int(self._sub_template.shape[0]) if self._has_extra else 0

    def __call__(self, betas: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """Joints of N bodies.

        Args:
            betas: (N, B) shape parameters (B = ``num_betas``).
            thetas: (N, 72) axis-angle rotations of the 24 joints, radians.

        Returns:
            (N, J, 3) float32 joints, metres, body frame (J = ``num_joints``).
        """
        betas, thetas = _check_inputs(betas, thetas, self.num_betas, self.kind)
        num, kin = betas.shape[0], len(self._parents)  # explicit sizes: N may be 0
        rest = self._joint_template + (betas @ self._joint_shapedirs).reshape(num, kin, 3)
        rot = axis_angle_to_matrix(thetas.reshape(num, kin, 3))  # (N, 24, 3, 3)
        # each joint's transform to its parent: its rotation and its rest offset from the parent
        local = np.zeros((num, kin, 4, 4), dtype=np.float32)  # (N, 24, 4, 4)
        local[:, :, :3, :3] = rot
        local[:, :, :3, 3] = rest
        local[:, 1:, :3, 3] -= rest[:, self._parents[1:]]
        local[:, :, 3, 3] = 1.0
        world = local  # (N, 24, 4, 4) joint transforms in the body frame, filled level by level
        for level in self._levels:
            world[:, level] = world[:, self._parents[level]] @ local[:, level]
        posed = world[:, :, :3, 3]  # (N, 24, 3) posed joint positions
        if not self._has_extra:
            return np.ascontiguousarray(posed)
        # skinning transforms: rotate about the rest joint, then move it to its posed place
        skin = world[:, :, :3, :].copy()  # (N, 24, 3, 4)
        skin[..., 3] -= (skin[..., :3] @ rest[..., None])[..., 0]
        skinned = self._sub_template.shape[0]  # S
        pose_feature = (rot[:, 1:] - np.eye(3, dtype=np.float32)).reshape(
            num, 9 * (kin - 1))  # (N, 207)
        offsets = np.concatenate([betas, pose_feature], axis=1) @ self._sub_blenddirs
        shaped = self._sub_template + offsets.reshape(num, skinned, 3)  # (N, S, 3)
        blend = (self._sub_weights @ skin.reshape(num, kin, 12)).reshape(
            num, skinned, 3, 4)  # (N, S, 3, 4) per-vertex transforms
        verts = (np.einsum('nsij,nsj->nsi', blend[..., :3], shaped)
                 + blend[..., 3])  # (N, S, 3)
        return np.concatenate([posed, verts[:, self._sub_pick], self._sub_regressor @ verts],
                              axis=1)  # (N, 71, 3)


class JointPoserWithInfants:
    """BEV's joints: SMPL-A for adults and children, SMIL above the age threshold.

    The same split as :class:`~romp_ros.core.body.smpl.SMPLAWithInfants`: the 11th shape
    parameter is the age offset, and SMIL poses the people above ``age_thresh`` with the first
    10 betas. Without SMIL everyone uses SMPL-A.
    """

    def __init__(self, smpla: BodyModelArrays, smil: BodyModelArrays | None,
                 age_thresh: float) -> None:
        """Build from SMPL-A arrays and, optionally, SMIL arrays of the same topology."""
        if smpla.num_betas != 11:
            raise ModelFilesError(f'JointPoserWithInfants needs SMPL-A arrays (11 shape '
                                  f'directions), got {smpla.kind} with {smpla.num_betas}')
        self.kind = 'smpla'
        self.num_betas = 11
        self.num_joints = smpla.num_joints
        self._smpla = JointPoser(smpla)
        self._smil = JointPoser(smil) if smil is not None else None
        self._age_thresh = float(age_thresh)

    def __call__(self, betas: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """(N, 11) betas with the age offset last, (N, 72) thetas -> (N, J, 3) float32 joints."""
        betas, thetas = _check_inputs(betas, thetas, self.num_betas, self.kind)
        if self._smil is None:
            return self._smpla(betas, thetas)
        infant = betas[:, 10] > self._age_thresh  # (N,)
        joints = np.empty((betas.shape[0], self.num_joints, 3), dtype=np.float32)
        joints[~infant] = self._smpla(betas[~infant], thetas[~infant])
        joints[infant] = self._smil(betas[infant, :10], thetas[infant])
        return joints


def _check_inputs(betas: np.ndarray, thetas: np.ndarray, num_betas: int,
                  kind: str) -> tuple[np.ndarray, np.ndarray]:
    betas = np.asarray(betas, dtype=np.float32)
    thetas = np.asarray(thetas, dtype=np.float32)
    if betas.ndim != 2 or betas.shape[1] != num_betas:
        raise ValueError(f'{kind} betas must have shape (N, {num_betas}), got {betas.shape}')
    if thetas.ndim != 2 or thetas.shape[1] != NUM_THETAS:
        raise ValueError(f'thetas must have shape (N, {NUM_THETAS}), got {thetas.shape}')
    if betas.shape[0] != thetas.shape[0]:
        raise ValueError(f'{betas.shape[0]} betas but {thetas.shape[0]} thetas')
    return betas, thetas
