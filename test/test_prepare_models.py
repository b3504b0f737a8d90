"""prepare-models: official-format inputs -> models directory, safely; clear errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest
from reference_oracle import reference_module

from romp_ros.core.body.joint_names import H36M_TO_J17, SMPL_JOINT_NAMES
from romp_ros.core.body.model_files import (
    MODEL_FILE_NAMES,
    ModelFilesError,
    load_body_model_arrays,
    read_manifest,
)
from romp_ros.core.body.prepare import prepare_models
from romp_ros.core.body.restricted_pickle import (
    ChumpyArrayState,
    UnsafePickleError,
    restricted_load,
)
from romp_ros.core.body.smpl import BodyModel
from romp_ros.synthetic.body_model import (
    SMPL_ZIP_MEMBER,
    build_synthetic_bodies,
    dump_official_pickle,
    official_pickle_dict,
    write_synthetic_smpl_files,
)

NPZ_KEYS = {'format_version', 'kind', 'v_template', 'shapedirs', 'posedirs', 'j_regressor',
            'lbs_weights', 'parents', 'faces', 'extra_joints_index', 'j_regressor_extra9',
            'j_regressor_h36m17'}


@pytest.fixture(scope='module')
def src(tmp_path_factory):
    return write_synthetic_smpl_files(tmp_path_factory.mktemp('smpl_model_data'), seed=0,
                                      with_zip=True)


@pytest.fixture(scope='module')
def models(src, tmp_path_factory):
    out = tmp_path_factory.mktemp('models')
    report = prepare_models(src.smpl_pkl, out, smil=src.smil_pkl, extra=src.source_dir,
                            progress=False)
    return out, report


def _npz(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _FakeCh:
    """Test-only chumpy stand-in so that plain pickle (the reference packers) can read."""

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


# -- conversion --------------------------------------------------------------------------------
def test_writes_documented_npz_files_and_manifest(models, src):
    out, report = models
    assert report.kinds == ('smpl', 'smpla', 'smil') and not report.up_to_date
    assert report.num_joints == 71 and report.num_vertices == 6890 and report.notes == ()
    for kind in report.kinds:
        arrays = _npz(out / MODEL_FILE_NAMES[kind])
        assert set(arrays) == NPZ_KEYS
        assert str(arrays['kind']) == kind and int(arrays['format_version']) == 1
        assert arrays['shapedirs'].shape == (6890, 3, 11 if kind == 'smpla' else 10)
        assert arrays['posedirs'].shape == (207, 3 * 6890)
        assert arrays['parents'].dtype == np.int64 and arrays['faces'].dtype == np.int64
        assert arrays['v_template'].dtype == np.float32
    manifest = read_manifest(out)
    assert manifest['num_joints'] == 71 and manifest['num_vertices'] == 6890
    assert manifest['sources']['smpl']['sha256'] == _sha(src.smpl_pkl)
    assert manifest['sources']['smil']['sha256'] == _sha(src.smil_pkl)
    assert manifest['sources']['smpl_kid_template.npy']['sha256'] == _sha(src.kid_template)
    for entry in manifest['models'].values():
        assert entry['sha256'] == _sha(out / entry['file'])
    assert not [p for p in out.iterdir() if p.name.startswith('.')]  # no temp files left


def test_conversion_follows_the_reference_formulas(models):
    out, _ = models
    bodies = build_synthetic_bodies(seed=0)
    adult = bodies['smpl']
    smpl, smpla = _npz(out / 'smpl_neutral.npz'), _npz(out / 'smpla_neutral.npz')
    np.testing.assert_array_equal(smpl['v_template'], adult.v_template.astype(np.float32))
    np.testing.assert_array_equal(smpl['shapedirs'], adult.shapedirs[:, :, :10].astype(np.float32))
    # posedirs (V, 3, 207) -> (207, 3V): entry [p, 3v + c] is posedirs[v, c, p]
    np.testing.assert_array_equal(smpl['posedirs'][5, 3 * 100 + 2],
                                  np.float32(adult.posedirs[100, 2, 5]))
    assert smpl['parents'][0] == -1 and smpl['parents'][16] == 13
    kid = bodies['kid_template'] - bodies['kid_template'].mean(axis=0)
    np.testing.assert_allclose(smpla['shapedirs'][:, :, 10],
                               kid - adult.v_template.astype(np.float32), atol=1e-6)
    np.testing.assert_array_equal(smpla['shapedirs'][:, :, :10], smpl['shapedirs'])
    np.testing.assert_allclose(smpl['j_regressor_h36m17'],
                               bodies['j_regressor_h36m'][list(H36M_TO_J17)], atol=1e-7)
    assert smpl['extra_joints_index'].tolist()[:3] == [332, 6260, 2800]  # nose, r/l eye
    smil = _npz(out / 'smil.npz')
    np.testing.assert_array_equal(smil['v_template'],
                                  bodies['smil'].v_template.astype(np.float32))


@pytest.mark.oracle
@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # their plain pickle.load
def test_matches_the_reference_packers(models, src, tmp_path, monkeypatch, fake_chumpy):
    out, _ = models
    for module, argv in (('romp.pack_smpl_info', []), ('bev.pack_smil_info', [])):
        monkeypatch.setattr(sys, 'argv', ['pack', '-source_dir', str(src.source_dir),
                                          '--save_dir', str(tmp_path), *argv])
        reference_module(module).main()
    torch = pytest.importorskip('torch')
    renames = {'shapedirs': 'shapedirs', 'posedirs': 'posedirs', 'v_template': 'v_template',
               'j_regressor': 'J_regressor', 'lbs_weights': 'weights', 'faces': 'f',
               'extra_joints_index': 'extra_joints_index',
               'j_regressor_extra9': 'J_regressor_extra9',
               'j_regressor_h36m17': 'J_regressor_h36m17', 'parents': 'kintree_table'}
    for ours, theirs in (('smpl_neutral.npz', 'SMPL_NEUTRAL.pth'),
                         ('smpla_neutral.npz', 'SMPLA_NEUTRAL.pth'),
                         ('smil.npz', 'smil_packed_info.pth')):
        mine = _npz(out / ours)
        ref = torch.load(tmp_path / theirs)
        for key, ref_key in renames.items():
            if ours == 'smpla_neutral.npz' and key == 'shapedirs':
                ref_key = 'smpla_shapedirs'
            np.testing.assert_allclose(mine[key], ref[ref_key].numpy(), atol=1e-6, rtol=0,
                                       err_msg=f'{ours}:{key}')


def test_zip_input_gives_identical_models(models, src, tmp_path):
    out, _ = models
    report = prepare_models(src.smpl_zip, tmp_path, smil=src.smil_pkl, extra=src.source_dir,
                            progress=False)
    assert report.kinds == ('smpl', 'smpla', 'smil')
    for name in MODEL_FILE_NAMES.values():
        assert _sha(tmp_path / name) == _sha(out / name)
    assert read_manifest(tmp_path)['sources']['smpl']['member'] == SMPL_ZIP_MEMBER


def test_zip_without_a_neutral_model_is_refused(src, tmp_path):
    archive_path = tmp_path / 'SMPL_python_v.1.1.0.zip'
    with zipfile.ZipFile(archive_path, 'w') as archive:
        archive.writestr('SMPL_python_v.1.1.0/smpl/models/basicmodel_m_lbs_10_207_0_v1.1.0.pkl',
                         b'x')
    with pytest.raises(ModelFilesError, match='no neutral SMPL model.*basicmodel_m_lbs'):
        prepare_models(archive_path, tmp_path / 'models', progress=False)
    assert not (tmp_path / 'models').exists()


def test_extra_as_zip_like_the_romp_release(models, src, tmp_path):
    out, _ = models
    extra_zip = tmp_path / 'smpl_model_data.zip'
    with zipfile.ZipFile(extra_zip, 'w') as archive:
        for path in (src.j_regressor_extra, src.j_regressor_h36m, src.kid_template):
            archive.write(path, f'smpl_model_data/{path.name}')
    prepare_models(src.smpl_pkl, tmp_path / 'm', extra=extra_zip, progress=False)
    for name in ('smpl_neutral.npz', 'smpla_neutral.npz'):
        assert _sha(tmp_path / 'm' / name) == _sha(out / name)


def test_rerun_is_idempotent_and_stale_models_are_removed(src, tmp_path):
    first = prepare_models(src.smpl_pkl, tmp_path, smil=src.smil_pkl, extra=src.source_dir,
                           progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = prepare_models(src.smpl_pkl, tmp_path, smil=src.smil_pkl, extra=src.source_dir,
                           progress=False)
    assert again.up_to_date and again.written == () and again.kinds == first.kinds
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
    without_smil = prepare_models(src.smpl_pkl, tmp_path, extra=src.source_dir, progress=False)
    assert not without_smil.up_to_date
    assert without_smil.removed == (tmp_path / 'smil.npz',)
    assert not (tmp_path / 'smil.npz').exists()
    assert 'smil' not in read_manifest(tmp_path)['models']


def test_without_extras_the_model_has_24_joints(src, tmp_path):
    report = prepare_models(src.smpl_pkl, tmp_path, progress=False)
    assert report.kinds == ('smpl',) and report.num_joints == 24
    assert any('24 joints' in note for note in report.notes)
    assert any('SMPL-A' in note for note in report.notes)
    manifest = read_manifest(tmp_path)
    assert manifest['num_joints'] == 24 and manifest['notes'] == list(report.notes)
    arrays = load_body_model_arrays(tmp_path, 'smpl')
    assert arrays.num_joints == 24 and arrays.joint_names == SMPL_JOINT_NAMES
    assert 'extra_joints_index' not in _npz(tmp_path / 'smpl_neutral.npz')
    out = BodyModel(arrays)(np.zeros((2, 10)), np.zeros((2, 72)))
    assert tuple(out.joints.shape) == (2, 24, 3)
    with pytest.raises(ModelFilesError, match='smpl_kid_template.npy.*smpl_model_data.zip'):
        load_body_model_arrays(tmp_path, 'smpla')


def test_half_of_the_regressor_pair_is_refused(src, tmp_path):
    extra = tmp_path / 'extra'
    extra.mkdir()
    shutil.copy(src.j_regressor_extra, extra)
    with pytest.raises(ModelFilesError, match='J_regressor_h36m.npy'):
        prepare_models(src.smpl_pkl, tmp_path / 'm', extra=extra, progress=False)


# -- errors of the models directory ------------------------------------------------------------
def test_missing_directory_gives_one_actionable_message(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(ModelFilesError) as err:
        load_body_model_arrays(missing, 'smpl')
    text = str(err.value)
    assert '\n' not in text
    assert str(missing / 'smpl_neutral.npz') in text and 'directory does not exist' in text
    assert 'https://smpl.is.tue.mpg.de' in text and 'v1.1.0' in text
    assert (f'romp-ros prepare-models --smpl <SMPL_NEUTRAL.pkl or zip> [--smil smil_web.pkl] '
            f'[--extra DIR] --models-dir {missing}') in text


def test_missing_smil_names_its_origin(models, tmp_path):
    out, _ = models
    shutil.copy(out / 'smpl_neutral.npz', tmp_path)
    with pytest.raises(ModelFilesError, match='smil.npz.*smil_web.pkl.*--smil'):
        load_body_model_arrays(tmp_path, 'smil')
    with pytest.raises(ModelFilesError, match='unknown body model'):
        load_body_model_arrays(tmp_path, 'smplx')


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'shape', 'version', 'objects'])
def test_corrupt_or_malformed_npz_is_a_clear_error(models, tmp_path, damage):
    out, _ = models
    path = tmp_path / 'smpl_neutral.npz'
    good = _npz(out / 'smpl_neutral.npz')
    if damage == 'garbage':
        path.write_bytes(b'this is not a zip file at all')
        expected = 'corrupt'
    elif damage == 'truncated':
        data = (out / 'smpl_neutral.npz').read_bytes()
        path.write_bytes(data[:len(data) // 2])
        expected = 'corrupt'
    elif damage == 'shape':
        np.savez(path, **{**good, 'posedirs': good['posedirs'][:100]})
        expected = r'posedirs has shape \(100, 20670\), expected \(207, 20670\)'
    elif damage == 'version':
        np.savez(path, **{**good, 'format_version': np.int64(99)})
        expected = 'format version 99'
    else:
        np.savez(path, **{**good, 'faces': np.array([object()] * 3)})
        expected = 'corrupt'
    with pytest.raises(ModelFilesError, match=expected) as err:
        load_body_model_arrays(tmp_path, 'smpl')
    assert str(path) in str(err.value)


# -- the restricted unpickler ------------------------------------------------------------------
class _Exploit:
    def __init__(self, func, *args):
        self.call = (func, args)

    def __reduce__(self):
        return self.call


def _payloads(marker, protocol=4):
    return {
        'os.system': pickle.dumps(_Exploit(os.system, f'touch {marker}'), protocol=protocol),
        'subprocess.Popen': pickle.dumps(_Exploit(subprocess.Popen, ['touch', str(marker)]),
                                         protocol=protocol),
        'builtins.eval': pickle.dumps(
            _Exploit(eval, f'open({str(marker)!r}, "w").close()'), protocol=protocol),
    }


def test_eval_payload_is_live_with_plain_pickle(tmp_path):
    """The payloads below really run code when unpickled normally (so the refusal matters)."""
    marker = tmp_path / 'pwned'
    pickle.loads(_payloads(marker)['builtins.eval'])
    assert marker.exists()


@pytest.mark.parametrize('protocol', [2, 4])
@pytest.mark.parametrize('name', ['os.system', 'subprocess.Popen', 'builtins.eval'])
def test_restricted_unpickler_refuses_code_execution(tmp_path, name, protocol):
    marker = tmp_path / 'pwned'
    # protocol 2 writes Python 2 names (commands.Popen, __builtin__.eval): refused as well
    refused = {'os.system': 'posix.system',
               'subprocess.Popen': 'subprocess.Popen' if protocol > 2 else 'commands.Popen',
               'builtins.eval': 'builtins.eval' if protocol > 2 else '__builtin__.eval'}[name]
    with pytest.raises(UnsafePickleError, match=f'evil.pkl: refusing to load {refused}'):
        restricted_load(io.BytesIO(_payloads(marker, protocol)[name]), 'evil.pkl')
    assert not marker.exists()


def test_prepare_refuses_a_tampered_model_and_writes_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    data = official_pickle_dict(build_synthetic_bodies(seed=0)['smpl'])
    data['weights_prior'] = _Exploit(os.system, f'touch {marker}')
    bad = tmp_path / 'SMPL_NEUTRAL.pkl'
    with open(bad, 'wb') as fh:
        dump_official_pickle(data, fh)
    with pytest.raises(ModelFilesError, match='refusing to load posix.system'):
        prepare_models(bad, tmp_path / 'models', progress=False)
    assert not marker.exists() and not (tmp_path / 'models').exists()


def test_truncated_pickle_is_a_clear_error(src, tmp_path):
    bad = tmp_path / 'SMPL_NEUTRAL.pkl'
    data = src.smpl_pkl.read_bytes()
    bad.write_bytes(data[:len(data) // 3])
    with pytest.raises(ModelFilesError, match='SMPL model .*truncated'):
        prepare_models(bad, tmp_path / 'models', progress=False)
    with pytest.raises(ModelFilesError, match='does not exist'):
        prepare_models(tmp_path / 'absent.pkl', tmp_path / 'models', progress=False)


def test_protocol0_chumpy_object_becomes_an_inert_placeholder():
    # copy_reg._reconstructor(chumpy.ch.Ch, object, None) + BUILD {'x': [1.0, 2.0]}, as old
    # text-protocol pickles store it
    stream = (b"ccopy_reg\n_reconstructor\n(cchumpy.ch\nCh\nc__builtin__\nobject\nNtR"
              b"(dS'x'\n(lF1.0\naF2.0\nasb.")
    loaded = restricted_load(io.BytesIO(stream))
    assert isinstance(loaded, ChumpyArrayState)
    np.testing.assert_array_equal(loaded.to_array(), [1.0, 2.0])
    assert 'chumpy' not in sys.modules


def test_manifest_is_json_and_models_listed(models):
    out, report = models
    manifest = json.loads((out / 'manifest.json').read_text())
    assert sorted(manifest['models']) == sorted(report.kinds)
    assert manifest['format_version'] == 1 and 'romp_ros' in manifest['generator']
