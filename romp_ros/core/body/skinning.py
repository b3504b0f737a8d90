"""Linear blend skinning in torch, walking the kinematic tree one level at a time.

The same model as ``smplx.lbs.lbs`` (shape and pose blend shapes, joints regressed from the
shaped mesh, rigid joint transforms, skinning), with one difference in how the chain of joint
transforms is built. smplx multiplies joint by joint and looks each parent up with
``parents[i]`` as a Python list index: with the model on a GPU that reads a device value back,
23 waits for the device per call. Here the joints are grouped by depth below the root
(``kinematic_tree.kinematic_levels``), and each level is one batched matrix product whose
parents are gathered with index tensors that live on the model's device: 8 products for SMPL,
nothing read back. ``test_body_model`` holds the result equal to ``smplx.lbs.lbs``.
"""

from __future__ import annotations

from smplx.lbs import batch_rodrigues, blend_shapes, vertices2joints
import torch
import torch.nn.functional as F  # noqa: N812


def chain_transforms(rot_mats: torch.Tensor, rest_joints: torch.Tensor, parents: torch.Tensor,
                     levels: list[tuple[torch.Tensor, torch.Tensor]]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed joints and skinning transforms of N bodies.

    Args:
        rot_mats: (N, K, 3, 3) each joint's rotation relative to its parent.
        rest_joints: (N, K, 3) joint positions of the shaped body at rest.
        parents: (K,) int64 parent of each joint, on the same device.
        levels: per tree level below the root, (joints, their parents): int64 index tensors
            on the same device (see :func:`~romp_ros.core.body.kinematic_tree.kinematic_levels`).

    Returns:
        posed joints (N, K, 3), and (N, K, 4, 4) transforms that move a rest-pose point bound
        to each joint to its posed place (smplx's ``rel_transforms``).
    """
    offsets = torch.cat([rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents[1:]]],
                        dim=1)  # (N, K, 3) each joint's rest offset from its parent
    local = torch.cat([F.pad(rot_mats, [0, 0, 0, 1]),
                       F.pad(offsets[..., None], [0, 0, 0, 1], value=1.0)],
                      dim=3)  # (N, K, 4, 4)
    world = local  # the root's local transform is its world transform
    for joints, joint_parents in levels:
        # out of place, so autograd (training) sees every level
        world = world.index_copy(1, joints, world[:, joint_parents] @ local[:, joints])
    posed = world[:, :, :3, 3]  # (N, K, 3)
    rest_homogeneous = F.pad(rest_joints[..., None], [0, 0, 0, 1])  # (N, K, 4, 1), w = 0
    skinning = world - F.pad(world @ rest_homogeneous, [3, 0])  # (N, K, 4, 4)
    return posed, skinning


def linear_blend_skinning(betas: torch.Tensor, thetas: torch.Tensor, v_template: torch.Tensor,
                          shapedirs: torch.Tensor, posedirs: torch.Tensor,
                          j_regressor: torch.Tensor, parents: torch.Tensor,
                          levels: list[tuple[torch.Tensor, torch.Tensor]],
                          lbs_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape, pose and skin N bodies (``smplx.lbs.lbs`` with the level-wise chain).

    Args:
        betas: (N, B) shape coefficients.
        thetas: (N, K * 3) axis-angle joint rotations, radians, root first.
        v_template: (V, 3) rest mesh; shapedirs (V, 3, B); posedirs (9 (K - 1), 3V);
            j_regressor (K, V); lbs_weights (V, K).
        parents, levels: the kinematic tree, on the model's device (:func:`chain_transforms`).

    Returns:
        verts (N, V, 3) and joints (N, K, 3), body frame, the model's units (metres).
    """
    num = betas.shape[0]
    num_joints = j_regressor.shape[0]
    shaped = v_template + blend_shapes(betas, shapedirs)  # (N, V, 3)
    rest_joints = vertices2joints(j_regressor, shaped)  # (N, K, 3)
    rot_mats = batch_rodrigues(thetas.reshape(-1, 3)).view(num, num_joints, 3, 3)
    identity = torch.eye(3, dtype=betas.dtype, device=betas.device)
    pose_feature = (rot_mats[:, 1:] - identity).view(num, -1)  # (N, 9 (K - 1))
    posed_rest = shaped + (pose_feature @ posedirs).view(num, -1, 3)  # (N, V, 3)
    joints, skinning = chain_transforms(rot_mats, rest_joints, parents, levels)
    per_vertex = (lbs_weights @ skinning.view(num, num_joints, 16)).view(
        num, -1, 4, 4)  # (N, V, 4, 4)
    homogeneous = F.pad(posed_rest, [0, 1], value=1.0)[..., None]  # (N, V, 4, 1)
    verts = (per_vertex @ homogeneous)[..., :3, 0]  # (N, V, 3)
    return verts, joints
