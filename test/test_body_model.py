"""BodyModel / SMPLAWithInfants against smplx and the reference (simple-romp)."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
from reference_oracle import reference_module
import smplx
import torch

from romp_ros.core.body.joint_names import (
    ALL_JOINT_NAMES,
    ROS4HRI_JOINTS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPL_SKELETON_EDGES,
    joint_index,
    joint_names,
)
from romp_ros.core.body.model_files import load_body_model_arrays
from romp_ros.core.body.prepare import prepare_models
from romp_ros.core.body.smpl import BodyModel, SMPLAWithInfants
from romp_ros.synthetic.body_model import write_synthetic_smpl_files

ATOL = 1e-5


@pytest.fixture(scope='module')
def src(tmp_path_factory):
    return write_synthetic_smpl_files(tmp_path_factory.mktemp('smpl_model_data'), seed=0)


@pytest.fixture(scope='module')
def models_dir(src, tmp_path_factory):
    out = tmp_path_factory.mktemp('models')
    prepare_models(src.smpl_pkl, out, smil=src.smil_pkl, extra=src.source_dir, progress=False)
    return out


@pytest.fixture(scope='module')
def arrays(models_dir):
    return {kind: load_body_model_arrays(models_dir, kind) for kind in ('smpl', 'smpla', 'smil')}


def _inputs(num, num_betas, seed=0):
    gen = torch.Generator().manual_seed(seed)
    betas = torch.randn(num, num_betas, generator=gen)
    thetas = 0.5 * torch.randn(num, 72, generator=gen)
    return betas, thetas


class _FakeCh:
    """Test-only chumpy stand-in so that plain pickle (smplx, the reference) can read."""

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def shape(self):
        return self.x.shape

    def __getitem__(self, index):
        return self.x[index]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.x, dtype=dtype)


@pytest.fixture
def fake_chumpy(monkeypatch):
    package, module = types.ModuleType('chumpy'), types.ModuleType('chumpy.ch')
    module.Ch = package.Ch = _FakeCh
    package.ch = module
    monkeypatch.setitem(sys.modules, 'chumpy', package)
    monkeypatch.setitem(sys.modules, 'chumpy.ch', module)


def write_reference_pth(arrays, path):
    """Write our arrays in the reference's packed format (SMPL_NEUTRAL.pth and friends)."""
    info = {
        'v_template': torch.from_numpy(arrays.v_template.copy()),
        'shapedirs': torch.from_numpy(arrays.shapedirs[:, :, :10].copy()),
        'posedirs': torch.from_numpy(arrays.posedirs.copy()),
        'J_regressor': torch.from_numpy(arrays.j_regressor.copy()),
        'weights': torch.from_numpy(arrays.lbs_weights.copy()),
        'kintree_table': torch.from_numpy(arrays.parents.copy()),
        'f': torch.from_numpy(arrays.faces.copy()),
        'extra_joints_index': torch.from_numpy(arrays.extra_joints_index.copy()),
        'J_regressor_extra9': torch.from_numpy(arrays.j_regressor_extra9.copy()),
        'J_regressor_h36m17': torch.from_numpy(arrays.j_regressor_h36m17.copy()),
    }
    if arrays.kind == 'smpla':
        info['smpla_shapedirs'] = torch.from_numpy(arrays.shapedirs.copy())
    torch.save(info, path)
    return path


# -- against smplx -----------------------------------------------------------------------------
@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_matches_smplx_loaded_from_the_same_pickle(arrays, src, fake_chumpy):
    betas, thetas = _inputs(5, 10)
    ours = BodyModel(arrays['smpl'])(betas, thetas)
    ref = smplx.SMPL(str(src.smpl_pkl), batch_size=5)
    expected = ref(betas=betas, global_orient=thetas[:, :3], body_pose=thetas[:, 3:])
    # the bodies really differ from the rest pose (a meaningful comparison)
    assert (ours.verts - ref.v_template).abs().max() > 0.1
    torch.testing.assert_close(ours.verts, expected.vertices, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.joints[:, :24], expected.joints[:, :24], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(BodyModel(arrays['smpl']).faces.numpy(), ref.faces)


def test_extra_joints_are_vertex_picks_and_regressions(arrays):
    model = BodyModel(arrays['smpl'])
    betas, thetas = _inputs(3, 10, seed=1)
    out = model(betas, thetas)
    assert model.joint_names == ALL_JOINT_NAMES and out.joints.shape == (3, 71, 3)
    picks = torch.tensor(arrays['smpl'].extra_joints_index)
    torch.testing.assert_close(out.joints[:, 24:45], out.verts[:, picks], atol=0, rtol=0)
    h36m = torch.tensor(arrays['smpl'].j_regressor_h36m17)
    torch.testing.assert_close(out.joints[:, 54:], torch.einsum('jv,nvc->njc', h36m, out.verts),
                               atol=ATOL, rtol=0)
    rest = model(torch.zeros(1, 10), torch.zeros(1, 72)).joints[0]
    assert rest[joint_index('nose'), 2] > rest[joint_index('head'), 2]
    assert rest[joint_index('l_wrist'), 0] > 0.5 > -0.5 > rest[joint_index('r_wrist'), 0]
    assert rest[joint_index('h36m_pelvis'), 1] == pytest.approx(float(rest[0, 1]), abs=0.1)


# -- against the reference ---------------------------------------------------------------------
@pytest.mark.oracle
def test_matches_reference_smpl(arrays, tmp_path):
    reference = reference_module('romp.smpl').SMPL(
        str(write_reference_pth(arrays['smpl'], tmp_path / 'SMPL_NEUTRAL.pth')))
    betas, thetas = _inputs(6, 10, seed=2)
    verts, joints, faces = reference(betas, thetas)
    ours = BodyModel(arrays['smpl'])(betas, thetas)
    assert joints.shape == (6, 71, 3)
    torch.testing.assert_close(ours.verts, verts, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.joints, joints, atol=ATOL, rtol=0)
    torch.testing.assert_close(BodyModel(arrays['smpl']).faces, faces.long())


@pytest.mark.oracle
def test_matches_reference_smpla(arrays, tmp_path):
    reference = reference_module('romp.smpl').SMPL(
        str(write_reference_pth(arrays['smpla'], tmp_path / 'SMPLA_NEUTRAL.pth')),
        model_type='smpla')
    betas, thetas = _inputs(6, 11, seed=3)
    verts, joints, _ = reference(betas, thetas)
    ours = BodyModel(arrays['smpla'])(betas, thetas)
    torch.testing.assert_close(ours.verts, verts, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.joints, joints, atol=ATOL, rtol=0)


@pytest.mark.oracle
@pytest.mark.parametrize('ages', [[0.0, 0.5, 0.9, 1.2, 0.81, 0.3], [0.0, 0.2], [0.9, 1.5]])
def test_smil_switch_matches_reference_parser(arrays, tmp_path, ages):
    parser = reference_module('bev.post_parser').SMPLA_parser(
        str(write_reference_pth(arrays['smpla'], tmp_path / 'SMPLA_NEUTRAL.pth')),
        str(write_reference_pth(arrays['smil'], tmp_path / 'smil_packed_info.pth')))
    betas, thetas = _inputs(len(ages), 11, seed=4)
    betas[:, 10] = torch.tensor(ages)
    verts, joints, _ = parser(betas, thetas, root_align=False)
    model = SMPLAWithInfants(arrays['smpla'], arrays['smil'])
    ours = model(betas, thetas)
    torch.testing.assert_close(ours.verts, verts, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.joints, joints, atol=ATOL, rtol=0)
    infants = [a > 0.8 for a in ages]
    assert ours.infant_mask.tolist() == infants
    assert ours.model_type == tuple('smil' if i else 'smpla' for i in infants)


def test_infants_use_smil_and_others_smpla(arrays):
    betas, thetas = _inputs(4, 11, seed=5)
    betas[:, 10] = torch.tensor([0.0, 1.0, 0.5, 2.0])
    out = SMPLAWithInfants(arrays['smpla'], arrays['smil'])(betas, thetas)
    adults = BodyModel(arrays['smpla'])(betas[[0, 2]], thetas[[0, 2]])
    babies = BodyModel(arrays['smil'])(betas[[1, 3], :10], thetas[[1, 3]])
    torch.testing.assert_close(out.verts[[0, 2]], adults.verts)
    torch.testing.assert_close(out.verts[[1, 3]], babies.verts)
    # an infant is much smaller than the SMPL-A body with the same parameters
    full = BodyModel(arrays['smpla'])(betas, thetas)
    assert (out.verts[1, :, 1].max() - out.verts[1, :, 1].min()) < \
        0.8 * (full.verts[1, :, 1].max() - full.verts[1, :, 1].min())


@pytest.mark.parametrize('with_smil', [True, False])
def test_dense_infants_equal_the_split_ones(arrays, with_smil, caplog):
    """dense=True (the padded post-processing) poses both models and picks: same bodies."""
    betas, thetas = _inputs(5, 11, seed=8)
    betas[:, 10] = torch.tensor([0.0, 1.0, 0.5, 2.0, 0.85])
    model = SMPLAWithInfants(arrays['smpla'], arrays['smil'] if with_smil else None)
    with caplog.at_level(logging.WARNING, logger='romp_ros.core.body.smpl'):
        dense = model(betas, thetas, dense=True)
    assert not caplog.records  # the caller warns, from the results on the host
    split = model(betas, thetas)
    assert dense.model_type == split.model_type
    assert dense.model_type.count('smil') == (3 if with_smil else 0)
    torch.testing.assert_close(dense.verts, split.verts, atol=ATOL, rtol=0)
    torch.testing.assert_close(dense.joints, split.joints, atol=ATOL, rtol=0)
    with caplog.at_level(logging.WARNING, logger='romp_ros.core.body.smpl'):
        model.note_infants(True)
    assert len([r for r in caplog.records if 'SMIL' in r.getMessage()]) == (0 if with_smil
                                                                            else 1)


def test_level_wise_skinning_equals_smplx_lbs_and_has_gradients(arrays):
    """skinning.py walks the tree by level on the device; smplx walks it joint by joint."""
    from smplx.lbs import lbs
    model = BodyModel(arrays['smpl']).double()
    betas, thetas = _inputs(6, 10, seed=9)
    betas, thetas = betas.double().requires_grad_(), thetas.double().requires_grad_()
    ours = model(betas, thetas)
    verts, joints = lbs(betas, thetas, model.v_template, model.shapedirs, model.posedirs,
                        model.j_regressor, model.parents, model.lbs_weights)
    torch.testing.assert_close(ours.verts, verts, atol=1e-12, rtol=0)
    torch.testing.assert_close(ours.joints[:, :24], joints, atol=1e-12, rtol=0)
    # training differentiates through it: the same gradients as smplx's
    grads = torch.autograd.grad(ours.verts.square().sum(), (betas, thetas))
    expected = torch.autograd.grad(verts.square().sum(), (betas, thetas))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
    # the kinematic tree travels as index buffers: 8 levels below SMPL's root
    levels = [name for name, _ in model.named_buffers() if name.endswith('_joints')]
    assert len(levels) == 8


def test_without_smil_everyone_is_smpla_and_it_warns_once(arrays, caplog):
    model = SMPLAWithInfants(arrays['smpla'], None)
    betas, thetas = _inputs(3, 11, seed=6)
    betas[:, 10] = torch.tensor([0.0, 1.0, 1.3])
    with caplog.at_level(logging.WARNING, logger='romp_ros.core.body.smpl'):
        first = model(betas, thetas)
        model(betas, thetas)
    assert len([r for r in caplog.records if 'SMIL' in r.getMessage()]) == 1
    torch.testing.assert_close(first.verts, BodyModel(arrays['smpla'])(betas, thetas).verts)
    assert first.model_type == ('smpla',) * 3


@pytest.mark.parametrize('with_smil', [True, False])
def test_empty_batch(arrays, with_smil):
    for model in (BodyModel(arrays['smpl']),
                  SMPLAWithInfants(arrays['smpla'], arrays['smil'] if with_smil else None)):
        out = model(torch.zeros(0, model.num_betas), torch.zeros(0, 72))
        assert out.verts.shape == (0, 6890, 3) and out.joints.shape == (0, 71, 3)
        assert out.model_type == ()


def test_input_validation(arrays):
    model = BodyModel(arrays['smpl'])
    with pytest.raises(ValueError, match=r'betas must have shape \(N, 10\)'):
        model(torch.zeros(2, 11), torch.zeros(2, 72))
    with pytest.raises(ValueError, match=r'thetas must have shape \(N, 72\)'):
        model(torch.zeros(2, 10), torch.zeros(2, 69))
    with pytest.raises(ValueError, match='2 betas but 3 thetas'):
        model(torch.zeros(2, 10), torch.zeros(3, 72))
    with pytest.raises(Exception, match='SMPL-A'):
        SMPLAWithInfants(arrays['smpl'])


def test_buffers_move_with_the_module_and_stay_out_of_state_dict(arrays):
    model = BodyModel(arrays['smpl'])
    assert model.state_dict() == {}  # body-model data never leaks into network checkpoints
    betas, thetas = _inputs(2, 10, seed=7)
    single = model(betas, thetas)
    model = model.double()
    assert model.v_template.dtype == torch.float64 and model.faces.dtype == torch.int64
    double = model(betas.double(), thetas.double())
    assert double.verts.dtype == torch.float64
    torch.testing.assert_close(double.verts.float(), single.verts, atol=ATOL, rtol=0)
    if torch.cuda.is_available():
        cuda = BodyModel(arrays['smpl']).cuda()
        torch.testing.assert_close(cuda(betas.cuda(), thetas.cuda()).verts.cpu(), single.verts,
                                   atol=ATOL, rtol=0)


def test_arrays_are_read_only(arrays):
    with pytest.raises(ValueError):
        arrays['smpl'].v_template[0, 0] = 1.0


# -- joint names -------------------------------------------------------------------------------
def test_joint_name_tables():
    assert joint_names(24) == SMPL_JOINT_NAMES and len(joint_names(71)) == 71
    assert len(set(ALL_JOINT_NAMES)) == 71  # unique: usable as TF frame prefixes
    assert all(name.replace('_', '').isalnum() and name.islower() for name in ALL_JOINT_NAMES)
    assert ALL_JOINT_NAMES[24] == 'nose' and ALL_JOINT_NAMES[45:47] == ('lsp_r_hip', 'lsp_l_hip')
    assert ALL_JOINT_NAMES[54 + 14] == 'h36m_pelvis'
    assert len(SMPL_SKELETON_EDGES) == 23
    assert all(SMPL_PARENTS[child] == parent for parent, child in SMPL_SKELETON_EDGES)
    assert set(ROS4HRI_JOINTS.values()) <= set(SMPL_JOINT_NAMES)
    assert {'head', 'l_wrist', 'r_ankle', 'torso'} <= set(ROS4HRI_JOINTS)
    with pytest.raises(ValueError):
        joint_names(54)
    with pytest.raises(ValueError):
        joint_index('nose', 24)
