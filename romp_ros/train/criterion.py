"""The training objective of ROMP and BEV: network forward, targets, every weighted term.

:class:`Criterion` runs the network on a :class:`~romp_ros.data.sample.TrainingBatch`, builds
the targets (:mod:`romp_ros.train.targets`), reads each labelled person's prediction at the
person's ground-truth center cell, poses the body model, projects, and adds up the terms of
:mod:`romp_ros.train.losses`. All people of the batch go through every step at once.

The network runs under the caller's autocast (bf16 / fp16 for speed); targets, body model,
projections and losses run in float32 with autocast off.

Per person, what is compared (N people with a center inside the input):

* ROMP: parameters sampled from the maps at the person's cell; the camera scale is
  ``1.1 ** raw``; 2D keypoints are the weak-perspective projection of the body-model joints.
* BEV: the camera sampled from the 3D camera volume at (depth bin, row, column), the depth
  bin being the target's (people with a 3D label) or the predicted center volume's most
  confident bin at that cell (others); the parameters regressed from it; bodies centred
  between the hips; 2D keypoints are the perspective projection through the networks'
  60-degree camera at the predicted translation, as at inference.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import math
from typing import Iterator

import torch
from torch import Tensor, nn

from romp_ros.core.body.joint_names import joint_index
from romp_ros.core.geometry.projection import project_weak
from romp_ros.core.geometry.rotation import rot6d_to_matrix
from romp_ros.core.geometry.translation import bev_translation
from romp_ros.core.postprocess.params import (
    CAM_DIM,
    NUM_PREDICTED_JOINTS,
    POSE_6D_DIM,
    apply_cam_scale,
    unpack_params,
)
from romp_ros.data.sample import TrainingBatch
from romp_ros.train import losses
from romp_ros.train.losses import CountSync, LossWeights
from romp_ros.train.targets import (
    REFERENCE_FOV_DEG,
    CenterTargets,
    CenterTargets3D,
    build_center_targets,
    build_center_targets_3d,
    camera_targets,
)

MODEL_NAMES = ('romp', 'bev')
# BEV centres bodies between the hips of the 2D datasets (as its inference does).
BEV_ROOT_JOINTS = (joint_index('lsp_l_hip'), joint_index('lsp_r_hip'))
# BEV's shape term weighs the leading principal shape directions more (reference values).
BEV_SHAPE_WEIGHTS = (1.0, 0.64, 0.32, 0.32, 0.16, 0.16, 0.16, 0.16, 0.16, 0.16)
# ROMP leaves beta 0 (overall size, which a child needs) out of the shape prior; BEV keeps it.
ROMP_SHAPE_PRIOR_FIRST = 1
SMPL_BETAS = 10
AGE_INDEX = 10  # SMPL-A's age offset, the 11th shape coefficient
# Joints nearer than this to the assumed camera are projected as if at this depth (metres),
# so a wild early prediction cannot divide by ~0.
MIN_PROJECTION_DEPTH = 0.05


@dataclass(frozen=True)
class LossOutput:
    """One batch's objective, its terms and what a visualiser needs.

    Attributes:
        total: () float32, the weighted sum (with gradient).
        terms: term name -> () float32 weighted value, detached (they add up to ``total``);
            only the model's terms with a non-zero weight are present.
        raw_terms: the same terms unweighted (metres for the 3D joints, normalised units for
            2D keypoints), detached.
        batch_ids: (N,) int64 image of each supervised person.
        person_ids: (N,) int64 its slot in the batch's person axis.
        pred_keypoints_2d: (N, J, 2) predicted 2D keypoints, normalised input frame, detached.
        pred_cams: (N, 3) predicted cameras, detached: ROMP [s, tx, ty] (s positive), BEV
            [s, ty, tx] (BEV's order).
        target_cams: (N, 3) camera targets in the same order, zeros where ``cam_mask`` False.
        cam_mask: (N,) bool, a camera target exists.
        center_maps: (B, 1, M, M) predicted 2D center scores (ROMP's map, BEV's front view),
            detached.
        target_center_maps: (B, 1, M, M) their targets.
    """

    total: Tensor
    terms: dict[str, Tensor]
    raw_terms: dict[str, Tensor]
    batch_ids: Tensor
    person_ids: Tensor
    pred_keypoints_2d: Tensor
    pred_cams: Tensor
    target_cams: Tensor
    cam_mask: Tensor
    center_maps: Tensor
    target_center_maps: Tensor


@dataclass(frozen=True)
class _People:
    """The labels of the N supervised people, gathered from the batch (N leading axis)."""

    batch_ids: Tensor  # (N,)
    person_ids: Tensor  # (N,)
    cells: Tensor  # (N, 2) (row, column)
    keypoints_2d: Tensor  # (N, 71, 3)
    joints_3d: Tensor  # (N, 71, 3)
    smpl_pose: Tensor  # (N, 72)
    smpl_shape: Tensor  # (N, 11)
    translation: Tensor  # (N, 3)
    camera_k: Tensor  # (N, 3, 3)
    has_pose: Tensor  # (N,)
    has_shape: Tensor
    has_age: Tensor
    has_translation: Tensor
    has_joints_3d: Tensor


@dataclass(frozen=True)
class _Prediction:
    """Per-person predictions, float32 (N leading axis)."""

    cams: Tensor  # (N, 3) as the network orders them, scale positive
    rotmats: Tensor  # (N, 22, 3, 3)
    thetas: Tensor  # (N, 72) axis-angle
    betas: Tensor  # (N, 10 | 11)
    joints: Tensor  # (N, J, 3) body frame (BEV: hip-centred)
    keypoints_2d: Tensor  # (N, J, 2) normalised


class Criterion:
    """ROMP's or BEV's weighted training loss (see the module doc and docs/losses.md)."""

    def __init__(self, model_name: str, body_model: nn.Module,
                 weights: LossWeights | None = None, sync: CountSync | None = None) -> None:
        """Set up the objective.

        Args:
            model_name: 'romp' or 'bev'.
            body_model: the caller's body model on the training device: SMPL
                (``BodyModel``) for ROMP; SMPL-A (``SMPLAWithInfants`` / ``BodyModel``
                'smpla') for BEV, or SMPL when SMPL-A was not prepared (the age offset is
                then only supervised through the age term).
            weights: term weights; default :meth:`LossWeights.for_model`.
            sync: with torchrun, normalise every term by its count over all processes
                (:class:`~romp_ros.train.losses.CountSync`), so DDP trains exactly like one
                process on the global batch; None for one process.

        Raises:
            ValueError: unknown model, or a body model without a ``num_betas`` of 10 / 11.
        """
        if model_name not in MODEL_NAMES:
            raise ValueError(f"unknown model {model_name!r}; use 'romp' or 'bev'")
        betas = getattr(body_model, 'num_betas', None)
        if betas not in (SMPL_BETAS, SMPL_BETAS + 1):
            raise ValueError(f'the body model must be SMPL (10 betas) or SMPL-A (11), got '
                             f'{type(body_model).__name__} with num_betas={betas!r}')
        if model_name == 'romp' and betas != SMPL_BETAS:
            raise ValueError('ROMP predicts 10 betas: give it the SMPL body model, not SMPL-A')
        self.model_name = model_name
        self.body_model = body_model
        self.weights = weights if weights is not None else LossWeights.for_model(model_name)
        self.sync = sync

    def __call__(self, model: nn.Module, batch: TrainingBatch) -> LossOutput:
        """Forward ``model`` on ``batch.images`` and compute the weighted loss."""
        if self.model_name == 'romp':
            return self._romp(model, batch)
        return self._bev(model, batch)

    # -- ROMP ---------------------------------------------------------------------------------
    def _romp(self, model: nn.Module, batch: TrainingBatch) -> LossOutput:
        maps = model(batch.images)
        device = maps.center_maps.device
        size = int(batch.images.shape[1])
        with _float32(device):
            center_maps = maps.center_maps.float()  # (B, 1, M, M)
            targets = build_center_targets(*_center_inputs(batch, device),
                                           map_size=center_maps.shape[-1])
            people = _gather_people(batch, targets, device)
            rows, cols = people.cells[:, 0], people.cells[:, 1]
            params = maps.params_maps[people.batch_ids, :, rows, cols].float()  # (N, 145)
            pred = self._romp_prediction(apply_cam_scale(params))
            cam_target, cam_ok = camera_targets(people.translation, people.camera_k, size)
            cam_ok = cam_ok & people.has_translation
            raw = {}
            if self.weights.center:
                raw['center'] = losses.center_focal_loss(center_maps, targets.heatmap,
                                                         sync=self.sync)
            raw.update(self._person_terms(pred, people, cam_target, cam_ok,
                                          shape_weights=None,
                                          prior_first=ROMP_SHAPE_PRIOR_FIRST))
            return self._output(raw, people, pred, cam_target, cam_ok, center_maps, targets)

    def _romp_prediction(self, params: Tensor) -> _Prediction:
        num = params.shape[0]
        cams = params[:, :CAM_DIM]
        rot6d = params[:, CAM_DIM:CAM_DIM + POSE_6D_DIM].reshape(num, NUM_PREDICTED_JOINTS, 6)
        thetas = unpack_params(params).smpl_thetas  # (N, 72)
        betas = params[:, CAM_DIM + POSE_6D_DIM:]  # (N, 10)
        joints = self.body_model(betas, thetas).joints.float()  # (N, J, 3)
        return _Prediction(cams=cams, rotmats=rot6d_to_matrix(rot6d), thetas=thetas,
                           betas=betas, joints=joints, keypoints_2d=project_weak(joints, cams))

    # -- BEV ----------------------------------------------------------------------------------
    def _bev(self, model: nn.Module, batch: TrainingBatch) -> LossOutput:
        maps = model(batch.images)  # BEVNet.forward = forward_maps (also through DDP)
        net = getattr(model, 'module', model)  # regress_params of a DDP-wrapped BEVNet
        device = maps.center_maps_fv.device
        size = int(batch.images.shape[1])
        anchors = net.cam3d_anchors.to(device)
        with _float32(device):
            center_maps = maps.center_maps_fv.float()  # (B, 1, M, M)
            targets = build_center_targets(*_center_inputs(batch, device),
                                           map_size=center_maps.shape[-1])
            people = _gather_people(batch, targets, device)
            root_cam, root_ok = self._bev_roots(people)
            cam_target, cam_ok = camera_targets(root_cam, people.camera_k, size)
            cam_ok = cam_ok & root_ok
            scales = _scatter_people(cam_target[:, 0], people, targets.valid.shape)
            has_scale = _scatter_people(cam_ok, people, targets.valid.shape)
            targets_3d = build_center_targets_3d(targets, scales, has_scale, anchors)
            bins = self._bev_bins(maps.center_maps_3d, people, targets_3d)
            rows, cols = people.cells[:, 0], people.cells[:, 1]
        # back under the caller's autocast: this is still the network
        cams = maps.cam_maps_3d[people.batch_ids, bins, rows, cols]  # (N, 3)
        params = net.regress_params(maps.param_features, cams, people.batch_ids)  # (N, 146)
        with _float32(device):
            pred = self._bev_prediction(params.float())
            cam_target = cam_target[:, [0, 2, 1]]  # BEV's order: [s, ty, tx]
            raw = {}
            if self.weights.center:
                raw['center'] = losses.center_focal_loss(center_maps, targets.heatmap,
                                                         sync=self.sync)
            if self.weights.center_3d:
                raw['center_3d'] = losses.center_focal_loss(
                    maps.center_maps_3d.float(), targets_3d.heatmap, targets_3d.image_valid,
                    average_depth=True, sync=self.sync)
            raw.update(self._person_terms(
                pred, people, cam_target, cam_ok,
                shape_weights=torch.tensor(BEV_SHAPE_WEIGHTS, device=device), prior_first=0))
            if self.weights.age:
                raw['age'] = losses.age_loss(pred.betas[:, AGE_INDEX],
                                             people.smpl_shape[:, AGE_INDEX], people.has_age,
                                             sync=self.sync)
            if self.weights.relative_depth:
                # both through BEV's own scale -> depth conversion (with its 1e-3), so that
                # a perfect camera gives a perfect ordering
                true_depth = bev_translation(cam_target, fov_deg=REFERENCE_FOV_DEG)[:, 2]
                pred_depth = bev_translation(pred.cams, fov_deg=REFERENCE_FOV_DEG)[:, 2]
                shape = targets.valid.shape
                raw['relative_depth'] = losses.relative_depth_loss(
                    _scatter_people(pred_depth, people, shape),
                    _scatter_people(true_depth, people, shape),
                    _scatter_people(cam_ok, people, shape), sync=self.sync)
            return self._output(raw, people, pred, cam_target, cam_ok, center_maps, targets)

    def _bev_roots(self, people: _People) -> tuple[Tensor, Tensor]:
        """(N, 3) camera position of each person's BEV root (hip mid-point) and (N,) ok.

        Labelled hips give it directly. Otherwise the translation (body-model origin) plus
        the origin-to-hips offset of the body posed with the labelled pose and shape (zeros
        where unlabelled: the rest template's offset).
        """
        hips = people.joints_3d[:, list(BEV_ROOT_JOINTS)].float()  # (N, 2, 3)
        hips_ok = torch.isfinite(hips).flatten(1).all(-1)
        betas = torch.where(people.has_shape[:, None], people.smpl_shape.float(),
                            torch.zeros_like(people.smpl_shape, dtype=torch.float32))
        thetas = torch.where(people.has_pose[:, None], people.smpl_pose.float(),
                             torch.zeros_like(people.smpl_pose, dtype=torch.float32))
        with torch.no_grad():
            joints = self._pose_body(betas, thetas)
        offset = _bev_root(joints)  # (N, 3)
        from_translation = people.translation.float() + offset
        roots = torch.where(hips_ok[:, None], torch.nan_to_num(hips).mean(1), from_translation)
        return roots, hips_ok | people.has_translation

    def _bev_bins(self, center_maps_3d: Tensor, people: _People,
                  targets_3d: CenterTargets3D) -> Tensor:
        """(N,) depth bin to read each person's camera at.

        The target's bin for people with a 3D label, else the predicted volume's most
        confident bin at the person's cell (at least 1, like the targets).
        """
        rows, cols = people.cells[:, 0], people.cells[:, 1]
        column = center_maps_3d.detach().float()[people.batch_ids, :, rows, cols]  # (N, D)
        guess = column.argmax(dim=-1).clamp(min=1) if column.shape[0] else column.new_zeros(
            0, dtype=torch.long)
        target = targets_3d.cells[people.batch_ids, people.person_ids, 0]
        has_target = targets_3d.valid[people.batch_ids, people.person_ids]
        return torch.where(has_target, target, guess)

    def _bev_prediction(self, params: Tensor) -> _Prediction:
        num = params.shape[0]
        cams = params[:, :CAM_DIM]  # [s, ty, tx]
        rot6d = params[:, CAM_DIM:CAM_DIM + POSE_6D_DIM].reshape(num, NUM_PREDICTED_JOINTS, 6)
        thetas = unpack_params(params).smpl_thetas
        betas = params[:, CAM_DIM + POSE_6D_DIM:]  # (N, 11)
        joints = self._pose_body(betas, thetas)
        joints = joints - _bev_root(joints)[:, None]
        trans = bev_translation(cams, fov_deg=REFERENCE_FOV_DEG)  # (N, 3)
        keypoints = _project_reference_camera(joints + trans[:, None])
        return _Prediction(cams=cams, rotmats=rot6d_to_matrix(rot6d), thetas=thetas,
                           betas=betas, joints=joints, keypoints_2d=keypoints)

    # -- shared -------------------------------------------------------------------------------
    def _pose_body(self, betas: Tensor, thetas: Tensor) -> Tensor:
        """(N, J, 3) float32 joints; SMPL-A age offsets are dropped for a plain SMPL."""
        betas = betas[:, :self.body_model.num_betas]
        return self.body_model(betas.contiguous(), thetas).joints.float()

    def _person_terms(self, pred: _Prediction, people: _People, cam_target: Tensor,
                      cam_ok: Tensor, shape_weights: Tensor | None,
                      prior_first: int) -> dict[str, Tensor]:
        """Unweighted per-person terms with a non-zero weight."""
        w = self.weights
        everyone = torch.ones_like(people.has_pose)
        terms = {}
        if w.pose:
            terms['pose'] = losses.pose_loss(pred.rotmats, people.smpl_pose, people.has_pose,
                                             sync=self.sync)
        if w.shape:
            terms['shape'] = losses.shape_loss(pred.betas[:, :SMPL_BETAS],
                                               people.smpl_shape[:, :SMPL_BETAS],
                                               people.has_shape, shape_weights, sync=self.sync)
        if w.keypoints_2d:
            terms['keypoints_2d'] = losses.keypoints_2d_loss(pred.keypoints_2d,
                                                             people.keypoints_2d, everyone,
                                                             sync=self.sync)
        if w.joints_3d:
            terms['joints_3d'] = losses.joints_3d_loss(pred.joints, people.joints_3d,
                                                       people.has_joints_3d, sync=self.sync)
        if w.pa_joints_3d:
            terms['pa_joints_3d'] = losses.pa_joints_3d_loss(pred.joints, people.joints_3d,
                                                             people.has_joints_3d, sync=self.sync)
        if w.cam:
            terms['cam'] = losses.camera_loss(pred.cams, cam_target, cam_ok, sync=self.sync)
        if w.prior_pose:
            terms['prior_pose'] = losses.pose_prior_loss(pred.thetas, everyone, sync=self.sync)
        if w.prior_shape:
            terms['prior_shape'] = losses.shape_prior_loss(
                pred.betas[:, prior_first:SMPL_BETAS], ~people.has_shape, sync=self.sync)
        return terms

    def _output(self, raw: dict[str, Tensor], people: _People, pred: _Prediction,
                cam_target: Tensor, cam_ok: Tensor, center_maps: Tensor,
                targets: CenterTargets) -> LossOutput:
        weights = self.weights.as_dict()
        weighted = {name: value * weights[name] for name, value in raw.items()}
        total = torch.stack(list(weighted.values())).sum() if weighted else \
            center_maps.sum() * 0.0
        return LossOutput(
            total=total,
            terms={name: value.detach() for name, value in weighted.items()},
            raw_terms={name: value.detach() for name, value in raw.items()},
            batch_ids=people.batch_ids, person_ids=people.person_ids,
            pred_keypoints_2d=pred.keypoints_2d.detach(), pred_cams=pred.cams.detach(),
            target_cams=torch.where(cam_ok[:, None], cam_target,
                                    torch.zeros_like(cam_target)),
            cam_mask=cam_ok, center_maps=center_maps.detach(),
            target_center_maps=targets.heatmap)


@contextmanager
def _float32(device: torch.device) -> Iterator[None]:
    """Autocast off: targets, body model and losses in float32."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def _center_inputs(batch: TrainingBatch, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    return (batch.keypoints_2d.to(device), batch.bbox.to(device),
            batch.person_mask.to(device))


def _gather_people(batch: TrainingBatch, targets: CenterTargets,
                   device: torch.device) -> _People:
    """Labels of the people with a valid center, in (image, slot) order."""
    b, p = targets.valid.nonzero(as_tuple=True)

    def take(value: Tensor) -> Tensor:
        return value.to(device)[b, p]

    return _People(
        batch_ids=b, person_ids=p, cells=targets.cells[b, p],
        keypoints_2d=take(batch.keypoints_2d), joints_3d=take(batch.joints_3d),
        smpl_pose=take(batch.smpl_pose), smpl_shape=take(batch.smpl_shape),
        translation=take(batch.translation), camera_k=batch.camera_k.to(device)[b],
        has_pose=take(batch.has_pose), has_shape=take(batch.has_shape),
        has_age=take(batch.has_age), has_translation=take(batch.has_translation),
        has_joints_3d=take(batch.has_joints_3d))


def _scatter_people(values: Tensor, people: _People, shape: torch.Size) -> Tensor:
    """(N,) per-person values back into the (B, P) layout (zeros / False elsewhere)."""
    out = torch.zeros(shape, dtype=values.dtype, device=values.device)
    return out.index_put((people.batch_ids, people.person_ids), values)


def _bev_root(joints: Tensor) -> Tensor:
    """(N, 3) BEV's body root: the hip mid-point; the origin for a 24-joint body model."""
    if joints.shape[1] <= max(BEV_ROOT_JOINTS):
        return torch.zeros_like(joints[:, 0])
    return joints[:, list(BEV_ROOT_JOINTS)].mean(dim=1)


def _project_reference_camera(points: Tensor) -> Tensor:
    """(N, J, 3) camera-frame points -> (N, J, 2) normalised pixels of the 60-degree camera.

    The networks' assumed pinhole has focal ``S / (2 tan 30 deg)`` and a centred principal
    point, so in normalised units ``uv = xy / (z tan 30 deg)``.
    """
    depth = points[..., 2:].clamp(min=MIN_PROJECTION_DEPTH)
    return points[..., :2] / (depth * math.tan(math.radians(REFERENCE_FOV_DEG) / 2.0))
