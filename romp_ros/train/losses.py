"""Loss terms of ROMP and BEV, and their weights (docs/losses.md has every formula).

Each loss function takes predictions, targets and a mask of who has the label, and returns
a float32 scalar. Where the mask is empty the result is exactly 0 with a zero gradient (never
NaN): unlabelled entries are replaced before any arithmetic, so no NaN or infinity can reach
the backward pass through a masked-out branch. Every function computes in float32, whatever
autocast produced upstream.

Person-level terms average over the people that have the label; map terms average over the
images. The weights are :class:`LossWeights`, whose field names are also the log names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
import math
from typing import Callable

import torch

from romp_ros.core.body.joint_names import joint_index
from romp_ros.core.geometry.rotation import axis_angle_to_matrix

# The focal loss takes the raw center maps as probabilities (the reference applies no
# sigmoid, in training or inference); the logarithms see them clamped to this margin.
FOCAL_CLAMP = 1e-3
# The reference divides the beta distance by 20 before weighting.
SHAPE_NORM_DIVISOR = 20.0
# Root candidates of the root-relative 3D error, first fully labelled set wins: the hips of
# the 2D datasets (the reference's choice), SMPL's hips, H36M's hips, then single pelvises.
ROOT_JOINT_SETS: tuple[tuple[str, ...], ...] = (
    ('lsp_l_hip', 'lsp_r_hip'), ('l_hip', 'r_hip'), ('h36m_l_hip', 'h36m_r_hip'),
    ('pelvis',), ('h36m_pelvis',))
# Procrustes needs a few labelled joints to fix a rotation and a scale.
MIN_PROCRUSTES_JOINTS = 4
# SMPLify's bend prior: axis-angle components (of the 72-D pose) of the left elbow, right
# elbow, left knee and right knee, and the sign of bending the wrong way.
BEND_PRIOR_INDICES = (55, 58, 12, 15)
BEND_PRIOR_SIGNS = (1.0, -1.0, -1.0, -1.0)
BEND_PRIOR_DIVISOR = 5.0  # the reference's angle_prior(...) / 5
# Stand-in for the reference's 8-Gaussian pose GMM: an isotropic zero-mean Gaussian on the
# 63 body-joint axis-angle components, with the GMM term's / 100.
POSE_PRIOR_SIGMA = 0.5  # radians
POSE_PRIOR_DIVISOR = 100.0
# Relative depth: two people closer in depth than this (metres, assumed camera) are "equal".
DEPTH_EQUAL_MARGIN = 0.3


class LossWeightsError(ValueError):
    """An invalid loss weight; the message names the term."""


@dataclass(frozen=True)
class LossWeights:
    """Weight of each loss term; the names are the terms' log names.

    Defaults are the reference's training configs: ROMP's ``configs/v1.yml`` for the shared
    terms and BEV's ``configs/v6_train.yml`` for BEV's own terms. Where BEV's config differs
    (center 100, shape 60, shape prior 0.75) use :meth:`for_model`. A weight of 0 switches a
    term off (it is then not computed).

    Attributes:
        center: 2D center heatmap focal loss (ROMP's center map, BEV's front-view map).
        center_3d: BEV's 3D center focal loss.
        pose: SMPL rotations (global orientation + 21 body joints), rotation matrices.
        shape: SMPL betas (first 10).
        keypoints_2d: reprojected 2D keypoints, normalised units.
        joints_3d: root-relative 3D joints (MPJPE), metres.
        pa_joints_3d: Procrustes-aligned 3D joints (PA-MPJPE), metres.
        cam: camera [s, tx, ty] against the target from the 3D labels.
        prior_pose: pose prior (bend limits + Gaussian), every predicted person.
        prior_shape: betas towards the mean shape for people without shape labels.
        age: BEV's age offset (11th beta) against its label.
        relative_depth: BEV's depth ordering of pairs of people in an image.
    """

    center: float = 160.0
    center_3d: float = 1000.0
    pose: float = 80.0
    shape: float = 6.0
    keypoints_2d: float = 400.0
    joints_3d: float = 200.0
    pa_joints_3d: float = 360.0
    cam: float = 200.0
    prior_pose: float = 1.6
    prior_shape: float = 0.6
    age: float = 8000.0
    relative_depth: float = 400.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LossWeightsError(f'loss weight {item.name}={value!r} must be a number')
            if not math.isfinite(value) or value < 0:
                raise LossWeightsError(
                    f'loss weight {item.name}={value!r} must be finite and >= 0 (0 disables '
                    'the term)')

    @classmethod
    def for_model(cls, model_name: str, **overrides: float) -> 'LossWeights':
        """The reference's weights for 'romp' or 'bev', with ``overrides`` applied."""
        if model_name == 'romp':
            base = cls()
        elif model_name == 'bev':
            base = cls(center=100.0, shape=60.0, prior_shape=0.75)
        else:
            raise LossWeightsError(f"unknown model {model_name!r}; use 'romp' or 'bev'")
        return replace(base, **overrides)

    def as_dict(self) -> dict[str, float]:
        """Term name -> weight."""
        return {name: float(value) for name, value in asdict(self).items()}


def center_focal_loss(pred: torch.Tensor, target: torch.Tensor,
                      image_mask: torch.Tensor | None = None,
                      average_depth: bool = False, *,
                      sync: CountSync | None = None) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss on raw center maps, as ROMP and BEV train it.

    Per image, with p the raw score (no sigmoid) and t the target, positives where t == 1:

        L = -(1 / n_pos) [ sum_pos log(p') (1 - p)^2 + sum_neg log(1 - p') p^2 (1 - t)^4 ]

    where p' is p clamped to [1e-3, 1 - 1e-3] inside the logarithms only (so scores above 1
    or below 0 are still pulled back by the polynomial factors), and n_pos is replaced by 1
    for an image without people (the background term alone). The minimiser is the peak map
    (1 at the centers, 0 elsewhere); the Gaussian only lowers the penalty next to a peak.
    Scores are thus probabilities in [0, 1], which is what inference's 0.25 / 0.1 thresholds
    on the raw maps expect.

    Args:
        pred: (B, C, H, W) raw scores (C = 1 for 2D maps, C = D depth bins for BEV's volume).
        target: same shape, in [0, 1].
        image_mask: (B,) bool, images to supervise (default all).
        average_depth: divide the sums by C (the reference's 3D variant averages over depth
            bins; its weight 1000 assumes it).

    Returns:
        Mean over the supervised images, float32 scalar.
    """
    p = pred.float()
    t = target.float().to(p.device)
    positive = t == 1.0
    p_log = p.clamp(FOCAL_CLAMP, 1.0 - FOCAL_CLAMP)
    pos_term = torch.log(p_log) * (1.0 - p) ** 2
    neg_term = torch.log(1.0 - p_log) * p ** 2 * (1.0 - t) ** 4
    pos_sum = torch.where(positive, pos_term, torch.zeros_like(pos_term)).flatten(1).sum(1)
    neg_sum = torch.where(positive, torch.zeros_like(neg_term), neg_term).flatten(1).sum(1)
    if average_depth:
        pos_sum, neg_sum = pos_sum / p.shape[1], neg_sum / p.shape[1]
    num_pos = positive.flatten(1).sum(1).float().clamp(min=1.0)  # (B,)
    per_image = -(pos_sum + neg_sum) / num_pos
    if image_mask is None:
        image_mask = torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
    return masked_mean(per_image, image_mask, sync)


def pose_loss(pred_rotmats: torch.Tensor, target_pose: torch.Tensor,
              mask: torch.Tensor, *,
              sync: CountSync | None = None) -> torch.Tensor:
    """Rotation-matrix distance of the 22 predicted SMPL joints (the reference's Pose term).

    Per person: ``|R_0 - R*_0|_F + mean_{j=1..21} |R_j - R*_j|_F``, the global orientation
    and the body joints being two separately averaged parts as in the reference.

    Args:
        pred_rotmats: (N, 22, 3, 3) predicted rotations (from the 6D outputs directly).
        target_pose: (N, 72) labelled axis-angle pose, radians.
        mask: (N,) bool, ``has_pose``.
    """
    count = pred_rotmats.shape[1]
    target = _clean(target_pose[:, :count * 3].float(), mask[:, None])
    target_rot = axis_angle_to_matrix(target.reshape(-1, count, 3))  # (N, 22, 3, 3)
    error = torch.linalg.matrix_norm(pred_rotmats.float() - target_rot)  # (N, 22)
    per_person = error[:, 0] + error[:, 1:].mean(dim=1)
    return masked_mean(per_person, mask, sync)


def shape_loss(pred_betas: torch.Tensor, target_betas: torch.Tensor, mask: torch.Tensor,
               coefficient_weights: torch.Tensor | None = None, *,
               sync: CountSync | None = None) -> torch.Tensor:
    """``mean |w * (beta - beta*)|_2 / 20`` over people with shape labels (10 betas).

    Args:
        pred_betas: (N, K) predicted betas.
        target_betas: (N, K) labels.
        mask: (N,) bool, ``has_shape``.
        coefficient_weights: (K,) per-coefficient weights (BEV weighs the leading principal
            directions more); None = 1.
    """
    diff = pred_betas.float() - _clean(target_betas.float(), mask[:, None])
    if coefficient_weights is not None:
        diff = diff * coefficient_weights.to(diff)
    return masked_mean(torch.linalg.vector_norm(diff, dim=-1) / SHAPE_NORM_DIVISOR, mask, sync)


def shape_prior_loss(pred_betas: torch.Tensor, mask: torch.Tensor, *,
                     sync: CountSync | None = None) -> torch.Tensor:
    """Mean squared beta of the people in ``mask`` (those without shape labels).

    Args:
        pred_betas: (N, K) the coefficients to regularise.
        mask: (N,) bool.
    """
    return masked_mean((pred_betas.float() ** 2).mean(dim=-1), mask, sync)


def keypoints_2d_loss(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor, *,
                      sync: CountSync | None = None) -> torch.Tensor:
    """Weighted mean Euclidean distance of reprojected 2D keypoints (normalised units).

    Per person: ``sum_j w_j |p_j - p*_j| / sum_j w_j`` over its labelled joints (w > 0).

    Args:
        pred: (N, J, 2) projected keypoints, normalised.
        target: (N, J', 3) labels (u, v, weight); the first min(J, J') joints are compared.
        mask: (N,) bool, people to supervise.
    """
    joints = min(pred.shape[1], target.shape[1])
    tgt = target[:, :joints].float()
    weight = tgt[..., 2]
    ok = (weight > 0) & torch.isfinite(tgt).all(-1)  # (N, J)
    weight = torch.where(ok, weight, torch.zeros_like(weight))
    uv = _clean(tgt[..., :2], ok[..., None])
    dist = torch.linalg.vector_norm(pred[:, :joints].float() - uv, dim=-1)  # (N, J)
    total = weight.sum(-1)
    per_person = (weight * dist).sum(-1) / total.clamp(min=1e-6)
    return masked_mean(per_person, mask & (total > 0), sync)


def joints_3d_loss(pred: torch.Tensor, target: torch.Tensor,
                   mask: torch.Tensor, *,
                   sync: CountSync | None = None) -> torch.Tensor:
    """Root-relative mean per-joint position error (MPJPE), metres.

    Both skeletons are expressed relative to the same root (the first set of
    :data:`ROOT_JOINT_SETS` labelled for that person); the error is averaged over the
    labelled (finite) joints. People without any root set are left out.

    Args:
        pred: (N, J, 3) predicted joints, metres (any frame with camera axes).
        target: (N, J', 3) labelled joints, NaN where unknown.
        mask: (N,) bool, ``has_joints_3d``.
    """
    pred, tgt, labelled = _joint_pairs(pred, target)
    root_ok, pred_root, tgt_root = _roots(pred, tgt, labelled)
    dist = torch.linalg.vector_norm((pred - pred_root[:, None]) - (tgt - tgt_root[:, None]),
                                    dim=-1)  # (N, J)
    count = labelled.sum(-1)
    per_person = (dist * labelled).sum(-1) / count.clamp(min=1)
    return masked_mean(per_person, mask & root_ok & (count > 0), sync)


def pa_joints_3d_loss(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor, *,
                      sync: CountSync | None = None) -> torch.Tensor:
    """Procrustes-aligned MPJPE (PA-MPJPE), metres, solved per person on its labelled joints.

    The similarity transform (scale, rotation, translation) that best maps each prediction
    onto its labels in the least-squares sense is solved without gradient and then applied:
    at the optimum the gradient of the aligned squared error with respect to the prediction
    does not depend on how the transform moves (envelope theorem), and the SVD's unstable
    backward pass is avoided. The reference aligns on the joints labelled for every person
    of the batch; here each person uses all of its own.

    Args:
        pred: (N, J, 3).
        target: (N, J', 3), NaN where unknown.
        mask: (N,) bool, ``has_joints_3d``.
    """
    pred, tgt, labelled = _joint_pairs(pred, target)
    weight = labelled.float()  # (N, J)
    count = weight.sum(-1)  # (N,)
    with torch.no_grad():
        # a diverged prediction must give a NaN loss (which stops the run cleanly), not an
        # SVD error: the transform is solved on finite stand-ins, the loss on the prediction
        finite = torch.nan_to_num(pred.detach(), nan=0.0, posinf=0.0, neginf=0.0)
        scale, rotation, shift = _similarity_transform(finite, tgt, weight)
    aligned = scale[:, None, None] * pred @ rotation.transpose(1, 2) + shift[:, None]
    dist = torch.linalg.vector_norm(aligned - tgt, dim=-1)  # (N, J)
    per_person = (dist * weight).sum(-1) / count.clamp(min=1)
    return masked_mean(per_person, mask & (count >= MIN_PROCRUSTES_JOINTS), sync)


def camera_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                sync: CountSync | None = None) -> torch.Tensor:
    """Mean Euclidean distance of cameras (N, 3) to their targets over ``mask`` (N,)."""
    diff = pred.float() - _clean(target.float(), mask[:, None])
    return masked_mean(torch.linalg.vector_norm(diff, dim=-1), mask, sync)


def pose_prior_loss(thetas: torch.Tensor, mask: torch.Tensor, *,
                    sync: CountSync | None = None) -> torch.Tensor:
    """Pose prior per person: SMPLify's bend prior plus a Gaussian on the body joints.

    ``sum_k exp(sign_k theta_k)^2 / 5`` over the elbows' and knees' bending components
    (large when a joint bends the wrong way), plus ``0.5 |theta_body / sigma|^2 / 100`` over
    the 63 axis-angle components of the 21 body joints (sigma = 0.5 rad), a stand-in for the
    reference's 8-component GMM whose file is not available (docs/losses.md).

    Args:
        thetas: (N, 72) predicted axis-angle pose.
        mask: (N,) bool, people to regularise.
    """
    theta = thetas.float()
    signs = torch.tensor(BEND_PRIOR_SIGNS, dtype=theta.dtype, device=theta.device)
    bend = torch.exp(theta[:, list(BEND_PRIOR_INDICES)] * signs) ** 2  # (N, 4)
    body = theta[:, 3:66]  # (N, 63): joints 1..21
    gaussian = 0.5 * ((body / POSE_PRIOR_SIGMA) ** 2).sum(-1) / POSE_PRIOR_DIVISOR
    return masked_mean(bend.sum(-1) / BEND_PRIOR_DIVISOR + gaussian, mask, sync)


def age_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
             sync: CountSync | None = None) -> torch.Tensor:
    """Mean squared error of BEV's age offsets (N,) over people with age labels (N,)."""
    diff = pred.float() - _clean(target.float(), mask)
    return masked_mean(diff ** 2, mask, sync)


def relative_depth_loss(pred_depth: torch.Tensor, true_depth: torch.Tensor,
                        mask: torch.Tensor,
                        equal_margin: float = DEPTH_EQUAL_MARGIN, *,
                        sync: CountSync | None = None) -> torch.Tensor:
    """BEV's piecewise depth-ordering loss over pairs of people of the same image.

    For a pair (i, j) with true depths d*, predicted d, D* = d*_j - d*_i and D = d_j - d_i:

    * |D*| < margin (same depth layer): ``D^2``;
    * D* >= margin (j behind i): ``log(1 + exp(-D))`` while ``D < D*``, else 0;
    * D* <= -margin (j in front): ``log(1 + exp(D))`` while ``D > D*``, else 0.

    The reference compares ordinal depth-layer labels, with ``0.3 m x layer difference`` as
    the separation to reach; with metric labels the true separation takes that place. As in
    the reference, a pair counts only while it is penalised; each image's active pairs are
    averaged, then the images.

    Args:
        pred_depth: (B, P) predicted depths, metres.
        true_depth: (B, P) labelled depths, metres, same camera as the predictions.
        mask: (B, P) bool, people with a depth label.
        equal_margin: metres.
    """
    pred = pred_depth.float()
    true = _clean(true_depth.float(), mask)
    people = mask.shape[1]
    upper = torch.ones(people, people, dtype=torch.bool, device=mask.device).triu(1)
    pair = mask[:, :, None] & mask[:, None, :] & upper  # (B, P, P): i < j
    true_gap = true[:, None, :] - true[:, :, None]  # [b, i, j] = d*_j - d*_i
    gap = pred[:, None, :] - pred[:, :, None]
    equal = true_gap.abs() < equal_margin
    behind = ~equal & (true_gap > 0) & (gap < true_gap)
    front = ~equal & (true_gap < 0) & (gap > true_gap)
    loss = torch.where(equal, gap ** 2, torch.zeros_like(gap))
    loss = torch.where(behind, torch.nn.functional.softplus(-gap), loss)
    loss = torch.where(front, torch.nn.functional.softplus(gap), loss)
    active = pair & (equal | behind | front)
    per_image = (loss * active).flatten(1).sum(1) / active.flatten(1).sum(1).clamp(min=1)
    return masked_mean(per_image, active.flatten(1).any(1), sync)


@dataclass(frozen=True)
class CountSync:
    """Normalise loss terms by the count over all DDP processes, not this one's.

    DDP averages gradients over the W processes. A term computed on process r as
    ``sum_r / (C / W)``, C being the count summed over processes, therefore yields exactly the
    gradient of ``sum / C`` over the global batch: a torchrun job trains like one process on
    the same global batch, whatever the people per process.

    Attributes:
        all_reduce_sum: sums a tensor over the processes (returns a new tensor).
        world_size: W.
    """

    all_reduce_sum: Callable[[torch.Tensor], torch.Tensor]
    world_size: int

    def denominator(self, local_count: torch.Tensor) -> torch.Tensor:
        """C / W with C >= 1 (a term nobody has stays exactly 0)."""
        total = self.all_reduce_sum(local_count.detach().float())
        return total.clamp(min=1.0) / self.world_size


def masked_mean(values: torch.Tensor, mask: torch.Tensor,
                sync: CountSync | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` (same shape); exactly 0, zero gradient, if empty.

    With ``sync`` the count is the global one (see :class:`CountSync`).
    """
    values = values.float()
    mask = mask.to(values.device)
    kept = torch.where(mask, values, torch.zeros_like(values))
    if sync is not None:
        return kept.sum() / sync.denominator(mask.sum()).to(values.device)
    return kept.sum() / mask.sum().clamp(min=1).to(values.dtype)


def _clean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``values`` where ``keep`` (broadcast) and finite, else 0: labels safe for arithmetic."""
    keep = keep.to(values.device) & torch.isfinite(values)
    return torch.where(keep, values, torch.zeros_like(values))


def _joint_pairs(pred: torch.Tensor,
                 target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Common joints of predictions and labels: (N, J, 3) float32 each, (N, J) labelled."""
    joints = min(pred.shape[1], target.shape[1])
    tgt = target[:, :joints].float()
    labelled = torch.isfinite(tgt).all(-1)
    return pred[:, :joints].float(), _clean(tgt, labelled[..., None]), labelled


def _roots(pred: torch.Tensor, tgt: torch.Tensor,
           labelled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per person the first fully labelled :data:`ROOT_JOINT_SETS` entry: (N,) ok, roots."""
    count = labelled.shape[1]
    found = torch.zeros(labelled.shape[0], dtype=torch.bool, device=labelled.device)
    pred_root = torch.zeros_like(pred[:, 0])
    tgt_root = torch.zeros_like(tgt[:, 0])
    for names in ROOT_JOINT_SETS:
        index = [joint_index(n) for n in names]
        if max(index) >= count:
            continue
        usable = labelled[:, index].all(-1) & ~found  # (N,)
        pred_root = torch.where(usable[:, None], pred[:, index].mean(1), pred_root)
        tgt_root = torch.where(usable[:, None], tgt[:, index].mean(1), tgt_root)
        found = found | usable
    return found, pred_root, tgt_root


def _similarity_transform(pred: torch.Tensor, tgt: torch.Tensor, weight: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted Umeyama per person: s (N,), R (N, 3, 3), t (N, 3).

    They minimise ``sum_j w_j |s R p_j + t - g_j|^2`` with det R = +1; people without spread
    get scale 1.
    """
    total = weight.sum(-1).clamp(min=1e-6)[:, None]  # (N, 1)
    mu_p = (pred * weight[..., None]).sum(1) / total  # (N, 3)
    mu_g = (tgt * weight[..., None]).sum(1) / total
    p0 = (pred - mu_p[:, None]) * weight[..., None]
    g0 = (tgt - mu_g[:, None]) * weight[..., None]
    cov = g0.transpose(1, 2) @ p0  # (N, 3, 3) = sum_j w_j g_j p_j^T
    u, sig, vh = torch.linalg.svd(cov)
    det = torch.linalg.det(u @ vh)
    fix = torch.ones_like(sig)
    fix[:, -1] = torch.where(det < 0, -1.0, 1.0)
    rotation = u @ (fix[:, :, None] * vh)
    var_p = (p0 * (pred - mu_p[:, None])).sum((1, 2))  # sum_j w_j |p_j - mu|^2
    scale = (sig * fix).sum(-1) / var_p.clamp(min=1e-12)
    scale = torch.where(var_p > 1e-12, scale, torch.ones_like(scale))
    shift = mu_g - scale[:, None] * (rotation @ mu_p[..., None])[..., 0]
    return scale, rotation, shift
