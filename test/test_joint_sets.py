"""Joint sets of the source formats, their mapping into the training joints, left/right flips."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES, SMPL_JOINT_NAMES
from romp_ros.core.body.smpl import BodyModel
from romp_ros.data import joint_sets as js
from romp_ros.data.rest_skeleton import RestSkeleton, fit_rotation


def _target(joint_set: js.JointSet, name: str) -> str | None:
    return joint_set.targets[joint_set.names.index(name)]


def test_every_known_set_maps_into_distinct_training_joints():
    for joint_set in js.JOINT_SETS.values():
        mapping = joint_set.mapping()
        mapped = mapping.target_index[mapping.target_index >= 0]
        assert len(set(mapped.tolist())) == len(mapped), joint_set.name
        assert all(0 <= i < js.NUM_TRAIN_JOINTS for i in mapped)
        assert len(mapped) >= 10, f'{joint_set.name} maps only {len(mapped)} joints'


def test_annotation_conventions_pick_the_matching_body_model_joint():
    # 2D datasets' hips are the regressed LSP-style hips, not SMPL's hip joints
    for joint_set in (js.COCO_17, js.CROWDPOSE_14, js.MPII_16, js.LSP_14):
        assert _target(joint_set, 'left_hip') == 'lsp_l_hip'
        assert _target(joint_set, 'right_hip') == 'lsp_r_hip'
    assert _target(js.CROWDPOSE_14, 'head') == 'lsp_head_top'
    assert _target(js.MPII_16, 'upper_neck') == 'neck'
    assert _target(js.MPII_16, 'thorax') == 'mpii_thorax'
    assert _target(js.COCO_17, 'nose') == 'nose'
    # Human3.6M goes to the joints regressed for Human3.6M, same side
    assert _target(js.H36M_17, 'right_hip') == 'h36m_r_hip'
    assert _target(js.H36M_32, 'right_hip') == 'h36m_r_hip'
    assert js.H36M_32.names[1] == 'right_hip' and js.H36M_32.names[25] == 'right_shoulder'
    # unknown conventions stay unmapped rather than wrong
    assert _target(js.MPI_INF_3DHP_28, 'left_clavicle') is None
    assert _target(js.MUCO_21, 'thorax') is None
    assert js.SMPL_45.targets == ALL_JOINT_NAMES[:45]


def _side(name: str) -> str:
    if name.startswith(('left_', 'l_')) or '_l_' in name or '_left_' in name:
        return 'left'
    if name.startswith(('right_', 'r_')) or '_r_' in name or '_right_' in name:
        return 'right'
    return ''


def test_sides_agree_between_source_and_training_names():
    # a source's left joint must land on a training joint of the person's left
    for joint_set in js.JOINT_SETS.values():
        for name, target in zip(joint_set.names, joint_set.targets, strict=True):
            if target is None:
                continue
            assert _side(name) == _side(target), (joint_set.name, name, target)


def test_identify_and_map_by_names(caplog):
    coco = js.mapping_for_names(js.COCO_17.names)
    assert coco.joint_set == 'coco17'
    # normalisation: spaces, capitals, short sides
    mpii = js.mapping_for_names(['R Ankle', 'r-knee', 'r_hip', 'l_hip', 'l_knee', 'l_ankle',
                                 'pelvis', 'thorax', 'upper_neck', 'head_top', 'r_wrist',
                                 'r_elbow', 'r_shoulder', 'l_shoulder', 'l_elbow', 'l_wrist'])
    assert mpii.joint_set == 'mpii16'
    with caplog.at_level(logging.WARNING):
        partial = js.mapping_for_names(['pelvis', 'l_knee', 'my_marker'])
    assert 'my_marker' in caplog.text
    assert partial.target_index.tolist() == [0, ALL_JOINT_NAMES.index('l_knee'), -1]
    with pytest.raises(ValueError, match='none of the keypoint names'):
        js.mapping_for_names(['a', 'b'])
    with pytest.raises(ValueError, match='has 17 keypoints'):
        js.mapping_for_names(['a', 'b'], joint_set='coco17')
    forced = js.mapping_for_names([f'k{i}' for i in range(14)], joint_set='crowdpose14')
    assert forced.mapped_names[-2:] == ('lsp_head_top', 'lsp_neck')


def test_to_training_scatters_rows_and_fills_the_rest():
    mapping = js.COCO_17.mapping()
    values = np.arange(17 * 3, dtype=float).reshape(1, 17, 3)
    out = mapping.to_training(values, np.nan)
    assert out.shape == (1, 71, 3)
    assert np.array_equal(out[0, ALL_JOINT_NAMES.index('lsp_l_hip')], values[0, 11])
    assert np.isnan(out[0, ALL_JOINT_NAMES.index('l_hip')]).all()
    with pytest.raises(ValueError, match='rows for a source of 17'):
        mapping.to_training(np.zeros((1, 16, 3)), 0.0)


def test_flip_permutation_swaps_every_sided_joint_and_is_an_involution():
    perm = js.FLIP_PERMUTATION
    assert np.array_equal(perm[perm], np.arange(len(perm)))
    for i, name in enumerate(ALL_JOINT_NAMES):
        twin = ALL_JOINT_NAMES[perm[i]]
        if name.startswith('l_') or '_l_' in name:
            assert twin == name.replace('l_', 'r_', 1) if name.startswith('l_') else \
                twin == name.replace('_l_', '_r_', 1)
        elif not (name.startswith('r_') or '_r_' in name):
            assert twin == name  # pelvis, spine, nose, ...
    assert len(js.FLIP_PAIRS) == 26
    with pytest.raises(ValueError, match='no mirror twin'):
        js.flip_permutation(['l_knee', 'pelvis'])


def test_flip_pose_twice_is_identity():
    pose = np.random.default_rng(0).normal(0, 0.5, (5, 72))
    assert np.allclose(js.flip_smpl_pose(js.flip_smpl_pose(pose)), pose)
    assert not np.allclose(js.flip_smpl_pose(pose), pose)


def test_flipped_pose_poses_the_mirrored_body(models_dir):
    """Mirror (x -> -x) the joints of pose p: the body posed with flip(p) has them."""
    body = BodyModel.from_models_dir(models_dir)
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.4, (6, 72))
    betas = torch.zeros(6, 10)
    joints = body(betas, torch.tensor(pose, dtype=torch.float32)).joints.numpy()
    flipped = body(betas, torch.tensor(js.flip_smpl_pose(pose), dtype=torch.float32))
    mirrored = joints[:, js.FLIP_PERMUTATION] * [-1.0, 1.0, 1.0]
    err = np.abs(flipped.joints.numpy() - mirrored)
    assert err[:, :24].max() < 1e-5  # the SMPL joints: exact
    assert err.max() < 0.03  # vertex picks of the synthetic mesh are mirrored to ~2 cm
    # the other sign convention (negate x instead) does not mirror the body
    wrong = pose.reshape(6, 24, 3)[:, js.SMPL_FLIP_PERMUTATION] * [-1.0, 1.0, 1.0]
    posed_wrong = body(betas, torch.tensor(wrong.reshape(6, 72), dtype=torch.float32))
    assert np.abs(posed_wrong.joints.numpy()[:, :24] - mirrored[:, :24]).max() > 0.05


def test_rest_skeleton_matches_the_torch_body_model(models_dir):
    body = BodyModel.from_models_dir(models_dir)
    skeleton = RestSkeleton.from_models_dir(models_dir)
    rng = np.random.default_rng(2)
    betas, pose = rng.normal(0, 1, (3, 10)), rng.normal(0, 0.4, (3, 72))
    joints = body(torch.tensor(betas, dtype=torch.float32),
                  torch.tensor(pose, dtype=torch.float32)).joints.numpy()[:, :24]
    assert np.abs(skeleton.posed_joints(betas, pose) - joints).max() < 1e-5
    assert np.allclose(skeleton.root_joint(betas), joints[:, 0], atol=1e-5)
    assert len(SMPL_JOINT_NAMES) == skeleton.joints_template.shape[0]


def test_fit_rotation_recovers_a_rotation():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(2, 24, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    moved = points @ rot.T + [1.0, 2.0, 3.0]
    fitted = fit_rotation(points, moved)
    assert np.allclose(fitted, rot, atol=1e-9)
    assert np.allclose(np.linalg.det(fitted), 1.0)
