"""The synthetic body model: official file formats, body-likeness, determinism, speed."""

from __future__ import annotations

import hashlib
import pickletools
import sys
import zipfile

import numpy as np
import pytest
from smplx.vertex_ids import vertex_ids

from romp_ros.core.body.joint_names import H36M_TO_J17, SMPL_PARENTS, VERTEX_PICK_SMPLX_KEYS
from romp_ros.core.body.restricted_pickle import (
    ChumpyArrayState,
    CscMatrixState,
    restricted_load,
    to_plain,
)
from romp_ros.synthetic.body_model import (
    NUM_VERTICES,
    SMPL_ZIP_MEMBER,
    build_synthetic_bodies,
    figure_height,
    write_synthetic_smpl_files,
)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    return write_synthetic_smpl_files(tmp_path_factory.mktemp('synthetic'), seed=0,
                                      with_zip=True)


@pytest.fixture(scope='module')
def bodies():
    return build_synthetic_bodies(seed=0)


def _globals_in(path):
    with open(path, 'rb') as fh:
        ops = list(pickletools.genops(fh.read()))
    names = {arg.replace(' ', '.') for op, arg, _ in ops if op.name == 'GLOBAL'}
    return names, {op.name for op, _, _ in ops}


def test_pickle_looks_like_the_official_python2_file(files):
    names, opcodes = _globals_in(files.smpl_pkl)
    assert 'chumpy.ch.Ch' in names
    assert 'scipy.sparse.csc.csc_matrix' in names
    assert 'numpy.core.multiarray._reconstruct' in names
    # Python 2 byte strings, no Python 3 bytes helper: needs encoding='latin1' like the real one
    assert '_codecs.encode' not in names
    assert 'BINSTRING' in opcodes and 'BINUNICODE' not in opcodes
    assert 'chumpy' not in sys.modules


def test_pickle_content_and_shapes(files):
    with open(files.smpl_pkl, 'rb') as fh:
        data = restricted_load(fh, str(files.smpl_pkl))
    assert isinstance(data['shapedirs'], ChumpyArrayState)
    assert isinstance(data['J_regressor'], CscMatrixState)
    assert to_plain(data['v_template']).shape == (NUM_VERTICES, 3)
    assert to_plain(data['shapedirs']).shape[:2] == (NUM_VERTICES, 3)
    assert data['posedirs'].shape == (NUM_VERTICES, 3, 207)
    regressor = to_plain(data['J_regressor'])
    assert regressor.shape == (24, NUM_VERTICES)
    np.testing.assert_allclose(regressor.sum(axis=1), 1.0)
    assert data['kintree_table'][0, 0] == 4294967295
    assert tuple(data['kintree_table'][0, 1:]) == SMPL_PARENTS[1:]
    assert data['f'].dtype == np.uint32 and data['f'].max() < NUM_VERTICES
    # the joints stored in 'J' are what the regressor gives on the template
    np.testing.assert_allclose(to_plain(data['J']), regressor @ to_plain(data['v_template']))


def test_zip_holds_the_same_pickle_under_the_official_path(files):
    with zipfile.ZipFile(files.smpl_zip) as archive:
        assert archive.namelist() == [SMPL_ZIP_MEMBER]
        assert archive.read(SMPL_ZIP_MEMBER) == files.smpl_pkl.read_bytes()


def test_extra_files_shapes(files):
    assert np.load(files.j_regressor_extra).shape == (9, NUM_VERTICES)
    assert np.load(files.j_regressor_h36m).shape == (17, NUM_VERTICES)
    assert np.load(files.kid_template).shape == (NUM_VERTICES, 3)
    assert files.smil_pkl.parent.name == 'smil'  # the reference's folder layout


def test_mesh_is_closed_outward_and_every_vertex_used(bodies):
    body = bodies['smpl']
    faces = body.faces
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = edges[:, 0] * NUM_VERTICES + edges[:, 1]
    reverse = edges[:, 1] * NUM_VERTICES + edges[:, 0]
    assert len(np.unique(directed)) == len(directed)  # consistent orientation
    assert np.isin(reverse, directed).all()  # closed: every edge has its twin
    assert len(np.unique(faces)) == NUM_VERTICES
    for verts in (body.v_template, bodies['smil'].v_template, bodies['kid_template']):
        a, b, c = (verts[faces[:, k]] for k in range(3))
        volume = np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0
        assert volume > 0  # normals point outwards


def test_body_like_proportions(bodies):
    body = bodies['smpl']
    joints = body.rest_joints
    assert 1.6 < figure_height(body.v_template) < 1.9
    assert 0.4 < figure_height(bodies['smil'].v_template) < 0.9
    assert figure_height(body.v_template) > figure_height(bodies['kid_template']) > \
        figure_height(bodies['smil'].v_template)
    assert np.linalg.norm(joints[0]) < 0.3  # pelvis near the origin
    assert joints[15, 1] > joints[12, 1] > joints[0, 1] > joints[4, 1] > joints[7, 1]  # y up
    assert joints[16, 0] > 0 > joints[17, 0]  # the person's left is +x
    assert joints[20, 0] > 0.6 and joints[21, 0] < -0.6  # T-pose arms
    np.testing.assert_allclose(body.weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(body.j_regressor @ body.v_template, joints, atol=1e-12)


def test_vertex_picks_sit_on_the_named_body_parts(bodies):
    verts = bodies['smpl'].v_template
    joints = bodies['smpl'].rest_joints
    pick = {k: verts[vertex_ids['smplh'][k]] for k in VERTEX_PICK_SMPLX_KEYS}
    assert pick['nose'][2] > joints[15, 2] + 0.05  # in front of the head
    assert pick['leye'][0] > 0 > pick['reye'][0] and pick['leye'][1] > pick['nose'][1]
    assert pick['lear'][0] > pick['leye'][0] and pick['rear'][0] < pick['reye'][0]
    for side, ankle, wrist, sign in (('L', 7, 20, 1), ('R', 8, 21, -1)):
        low = side.lower()
        assert pick[f'{side}BigToe'][2] > joints[ankle, 2] + 0.1
        assert pick[f'{side}Heel'][2] < joints[ankle, 2]
        for finger in ('thumb', 'index', 'middle', 'ring', 'pinky'):
            assert sign * pick[f'{low}{finger}'][0] > sign * joints[wrist, 0] + 0.05
        assert pick[f'{low}thumb'][2] > pick[f'{low}pinky'][2]


def test_extra_regressors_follow_the_reference_conventions(bodies):
    verts, joints = bodies['smpl'].v_template, bodies['smpl'].rest_joints
    extra9 = bodies['j_regressor_extra'] @ verts
    j17 = (bodies['j_regressor_h36m'] @ verts)[list(H36M_TO_J17)]
    assert extra9[0, 0] < 0 < extra9[1, 0]  # LSP right hip, left hip
    assert extra9[3, 1] > verts[:, 1].max() - 0.02  # head top
    np.testing.assert_allclose(j17[0], joints[8], atol=1e-12)  # right ankle first (LSP)
    np.testing.assert_allclose(j17[14], (joints[1] + joints[2]) / 2, atol=1e-12)  # pelvis


def test_deterministic_for_a_seed_and_seed_dependent(tmp_path):
    digest = [hashlib.sha256(write_synthetic_smpl_files(tmp_path / str(k), seed=s)
                             .smpl_pkl.read_bytes()).hexdigest()
              for k, s in enumerate((3, 3, 4))]
    assert digest[0] == digest[1] != digest[2]
