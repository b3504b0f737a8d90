"""JointPoser (NumPy, host) against the torch body model, and the NumPy rotation helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from romp_ros.core.body.joint_names import SMPL_PARENTS
from romp_ros.core.body.joint_poser import JointPoser, JointPoserWithInfants
from romp_ros.core.body.kinematic_tree import kinematic_levels
from romp_ros.core.body.model_files import load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel, SMPLAWithInfants
from romp_ros.core.geometry import rotation as rotation_torch
from romp_ros.core.geometry import rotation_numpy

ATOL = 1e-5  # metres


@pytest.fixture(scope='module')
def arrays(models_dir):
    return {kind: load_body_model_arrays(models_dir, kind) for kind in ('smpl', 'smpla', 'smil')}


def _inputs(num, num_betas, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    betas = rng.normal(size=(num, num_betas)).astype(np.float32)
    thetas = (scale * rng.normal(size=(num, 72))).astype(np.float32)
    return betas, thetas


def _forward_joints(model, betas, thetas):
    with torch.no_grad():
        return model(torch.as_tensor(betas), torch.as_tensor(thetas)).joints.numpy()


def test_smpl_joints_equal_the_full_forward(arrays):
    betas, thetas = _inputs(5, 10, seed=11)
    # extreme rotations too: zero, tiny and close to a half turn
    thetas[0] = 0.0
    thetas[1, :3] = [1e-8, 0.0, 0.0]
    thetas[2, :3] = [0.0, np.pi - 1e-4, 0.0]
    poser = JointPoser(arrays['smpl'])
    joints = poser(betas, thetas)
    assert joints.shape == (5, 71, 3) and joints.dtype == np.float32
    np.testing.assert_allclose(joints, _forward_joints(BodyModel(arrays['smpl']), betas, thetas),
                               atol=ATOL, rtol=0)
    # it skins a small part of the mesh (686 of 6890 vertices for the synthetic regressors)
    assert 0 < poser.num_skinned_vertices < arrays['smpl'].num_vertices / 4


def test_model_without_extra_joints_gives_the_24(arrays):
    plain = dataclasses.replace(arrays['smpl'], extra_joints_index=None, j_regressor_extra9=None,
                                j_regressor_h36m17=None)
    betas, thetas = _inputs(3, 10, seed=12)
    joints = JointPoser(plain)(betas, thetas)
    assert joints.shape == (3, 24, 3)
    np.testing.assert_allclose(joints, _forward_joints(BodyModel(plain), betas, thetas),
                               atol=ATOL, rtol=0)


@pytest.mark.parametrize('with_smil', [True, False])
def test_bev_splits_adults_and_infants_like_the_torch_model(arrays, with_smil):
    smil = arrays['smil'] if with_smil else None
    betas, thetas = _inputs(4, 11, seed=13)
    betas[:, 10] = [0.0, 1.0, 0.5, 2.0]  # two adults, two infants
    joints = JointPoserWithInfants(arrays['smpla'], smil, age_thresh=0.8)(betas, thetas)
    expected = _forward_joints(SMPLAWithInfants(arrays['smpla'], smil, age_thresh=0.8),
                               betas, thetas)
    np.testing.assert_allclose(joints, expected, atol=ATOL, rtol=0)
    if with_smil:  # the infants really went through SMIL: SMPL-A alone differs
        adult_only = JointPoser(arrays['smpla'])(betas, thetas)
        assert np.abs(adult_only[[1, 3]] - joints[[1, 3]]).max() > 1e-3
        np.testing.assert_allclose(adult_only[[0, 2]], joints[[0, 2]], atol=ATOL, rtol=0)


def test_no_people_and_bad_shapes(arrays):
    poser = JointPoser(arrays['smpl'])
    assert poser(np.zeros((0, 10)), np.zeros((0, 72))).shape == (0, 71, 3)
    infants = JointPoserWithInfants(arrays['smpla'], arrays['smil'], age_thresh=0.8)
    assert infants(np.zeros((0, 11)), np.zeros((0, 72))).shape == (0, 71, 3)
    with pytest.raises(ValueError, match=r'betas must have shape \(N, 10\)'):
        poser(np.zeros((2, 11)), np.zeros((2, 72)))
    with pytest.raises(ValueError, match=r'thetas must have shape \(N, 72\)'):
        poser(np.zeros((2, 10)), np.zeros((2, 69)))
    with pytest.raises(ValueError, match='2 betas but 3 thetas'):
        poser(np.zeros((2, 10)), np.zeros((3, 72)))
    with pytest.raises(Exception, match='SMPL-A'):
        JointPoserWithInfants(arrays['smpl'], None, age_thresh=0.8)


def test_kinematic_levels_cover_the_tree_parent_before_child():
    levels = kinematic_levels(np.array(SMPL_PARENTS))
    assert sorted(np.concatenate(levels).tolist()) == list(range(1, 24))
    seen = {0}
    for level in levels:
        assert all(SMPL_PARENTS[j] in seen for j in level)  # every parent is placed already
        seen.update(level.tolist())
    assert len(levels) < 23  # what batching buys: far fewer steps than joints
    with pytest.raises(ValueError, match='parents must come before their children'):
        kinematic_levels(np.array([-1, 2, 0]))


def test_numpy_rotations_match_the_torch_ones():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 3))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # unit axes, then the angles:
    vectors[:50] *= 1e-7  # the small-angle series
    vectors[50:100] *= np.pi - 1e-3  # near a half turn
    vectors[100:] *= rng.uniform(0.0, np.pi, size=(100, 1))
    matrices = rotation_numpy.axis_angle_to_matrix(vectors)
    expected = rotation_torch.axis_angle_to_matrix(torch.as_tensor(vectors)).numpy()
    np.testing.assert_allclose(matrices, expected, atol=1e-12)
    assert rotation_numpy.axis_angle_to_matrix(vectors.astype(np.float32)).dtype == np.float32
    quats = rotation_numpy.axis_angle_to_quaternion(vectors)
    np.testing.assert_allclose(
        quats, rotation_torch.axis_angle_to_quaternion(torch.as_tensor(vectors)).numpy(),
        atol=1e-12)
    np.testing.assert_allclose(rotation_numpy.quaternion_to_axis_angle(quats), vectors,
                               atol=1e-9)
    # the product composes rotations: q(R_a R_b) = q_a q_b
    a, b = vectors[100:150], vectors[150:200]
    product = rotation_numpy.quaternion_multiply(rotation_numpy.axis_angle_to_quaternion(a),
                                                 rotation_numpy.axis_angle_to_quaternion(b))
    composed = torch.as_tensor(rotation_numpy.axis_angle_to_matrix(a)
                               @ rotation_numpy.axis_angle_to_matrix(b))
    expected = rotation_torch.matrix_to_quaternion(composed).numpy()
    np.testing.assert_allclose(rotation_numpy.standardize_quaternions(product), expected,
                               atol=1e-9)
    assert np.all(rotation_numpy.standardize_quaternions(-product)[:, 3] >= 0)
    np.testing.assert_allclose(rotation_numpy.geodesic_angle(a, a), 0.0, atol=1e-6)
