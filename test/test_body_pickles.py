"""Body-model pickles as users really have them: every protocol (0-5), the Python-2 official
layout, and malicious pickles in each protocol (refused, nothing runs)."""

from __future__ import annotations

import codecs
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import scipy.sparse

from romp_ros.core.body.model_files import MODEL_FILE_NAMES, ModelFilesError
from romp_ros.core.body.prepare import prepare_models
from romp_ros.core.body.restricted_pickle import UnsafePickleError, restricted_load, to_plain
from romp_ros.synthetic.body_model import (
    build_synthetic_bodies,
    official_pickle_dict,
    write_synthetic_smpl_files,
)

PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))  # 0..5


@pytest.fixture(scope='module')
def body():
    return build_synthetic_bodies(seed=0)['smpl']


def resaved_dict(body) -> dict:
    """What a user's Python-3 re-save without chumpy holds: plain arrays, a real scipy matrix."""
    return {
        'J_regressor': scipy.sparse.csc_matrix(body.j_regressor),
        'f': body.faces.astype(np.uint32),
        'kintree_table': official_pickle_dict(body)['kintree_table'],
        'J': body.rest_joints.copy(),
        'weights': body.weights,
        'posedirs': body.posedirs,
        'v_template': body.v_template,
        'shapedirs': np.asfortranarray(body.shapedirs),  # a layout the buffer path must keep
        'bs_style': 'lbs',
        'bs_type': 'lrotmin',
        'vert_sym_idxs': np.zeros(0, np.int64),  # empty: bytes() in protocols 0-2
    }


def _npz(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope='module')
def official_models(tmp_path_factory):
    """The models directory made from the official-layout (Python 2, chumpy) file."""
    src = write_synthetic_smpl_files(tmp_path_factory.mktemp('official'), seed=0)
    out = tmp_path_factory.mktemp('models_official')
    prepare_models(src.smpl_pkl, out, progress=False)
    return _npz(out / MODEL_FILE_NAMES['smpl'])


# -- accepted ----------------------------------------------------------------------------------
@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_every_protocol_of_a_resaved_model_loads_unchanged(body, protocol):
    data = resaved_dict(body)
    loaded = restricted_load(io.BytesIO(pickle.dumps(data, protocol=protocol)), 'user.pkl')
    assert sorted(loaded) == sorted(data)
    for key, value in data.items():
        got = to_plain(loaded[key])
        if isinstance(value, str):
            assert got == value
            continue
        expected = value.toarray() if scipy.sparse.issparse(value) else value
        assert got.dtype == expected.dtype and got.shape == expected.shape, key
        np.testing.assert_array_equal(got, expected, err_msg=key)


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_prepare_models_gives_the_official_result_for_every_protocol(body, protocol, tmp_path,
                                                                     official_models):
    pkl = tmp_path / 'SMPL_NEUTRAL.pkl'
    pkl.write_bytes(pickle.dumps(resaved_dict(body), protocol=protocol))
    prepare_models(pkl, tmp_path / 'models', progress=False)
    got = _npz(tmp_path / 'models' / MODEL_FILE_NAMES['smpl'])
    assert sorted(got) == sorted(official_models)
    for key, expected in official_models.items():
        np.testing.assert_array_equal(got[key], expected, err_msg=key)


@pytest.mark.parametrize('protocol', PROTOCOLS)
@pytest.mark.parametrize('kind', ['csc_matrix', 'csr_matrix', 'csc_array', 'csr_array'])
def test_sparse_matrices_and_arrays_in_every_protocol(kind, protocol):
    dense = np.zeros((5, 7))
    dense[[0, 2, 4, 4], [1, 6, 0, 3]] = [0.5, -1.0, 2.0, 0.25]
    matrix = getattr(scipy.sparse, kind)(dense)
    loaded = restricted_load(io.BytesIO(pickle.dumps(matrix, protocol=protocol)))
    np.testing.assert_array_equal(to_plain(loaded), dense)


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_numpy_scalars_views_and_object_free_layouts(protocol):
    values = {'f64': np.float64(1.25), 'i64': np.int64(-3), 'strided': np.arange(12.0)[::3],
              'u8': np.arange(256, dtype=np.uint8), 'big_endian': np.arange(4, dtype='>i4'),
              'nested': [np.eye(2), (np.ones(3, np.float32), 'text')]}
    loaded = restricted_load(io.BytesIO(pickle.dumps(values, protocol=protocol)))
    for key in ('f64', 'i64', 'strided', 'u8', 'big_endian'):
        # numpy itself restores '>i4' as native int32 below protocol 5: compare the type only
        got, want = np.asarray(loaded[key]).dtype, np.asarray(values[key]).dtype
        assert (got.kind, got.itemsize) == (want.kind, want.itemsize), key
        np.testing.assert_array_equal(loaded[key], values[key], err_msg=key)
    np.testing.assert_array_equal(loaded['nested'][0], np.eye(2))
    np.testing.assert_array_equal(loaded['nested'][1][0], np.ones(3, np.float32))
    assert loaded['nested'][1][1] == 'text'


def test_python2_official_layout_still_loads(tmp_path, body):
    """The official layout (Python 2 names, byte strings, chumpy, copy_reg) converts as before."""
    src = write_synthetic_smpl_files(tmp_path, seed=0)
    with open(src.smpl_pkl, 'rb') as fh:
        head = fh.read(2)
        fh.seek(0)
        loaded = restricted_load(fh, str(src.smpl_pkl))
    assert head == b'\x80\x02'
    np.testing.assert_allclose(to_plain(loaded['v_template']), body.v_template)
    np.testing.assert_allclose(to_plain(loaded['J_regressor']), body.j_regressor)


# -- refused -----------------------------------------------------------------------------------
class _Exploit:
    def __init__(self, func, *args):
        self.call = (func, args)

    def __reduce__(self):
        return self.call


def _payloads(marker) -> dict[str, _Exploit]:
    return {
        'os.system': _Exploit(os.system, f'touch {marker}'),
        'subprocess.Popen': _Exploit(subprocess.Popen, ['touch', str(marker)]),
        'eval': _Exploit(eval, f'open({str(marker)!r}, "w").close()'),
    }


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_the_payloads_are_live_with_plain_pickle(tmp_path, protocol):
    """Unpickled normally, each payload creates the file (so its refusal below matters)."""
    for name, payload in _payloads(tmp_path / 'pwned').items():
        marker = tmp_path / 'pwned'
        result = pickle.loads(pickle.dumps(payload, protocol=protocol))
        if isinstance(result, subprocess.Popen):
            result.wait()
        assert marker.exists(), name
        marker.unlink()


def _hidden(body, payload, where: str) -> dict:
    data = resaved_dict(body)
    if where == 'value':
        data['weights_prior'] = payload
    elif where == 'nested':  # deep in a list of an otherwise harmless extra key
        data['extra'] = [np.zeros(3), {'inner': (1, payload)}]
    else:  # 'sparse_state': inside the state of the joint regressor
        regressor = data['J_regressor']
        regressor.maxprint = payload
    return data


@pytest.mark.parametrize('protocol', PROTOCOLS)
@pytest.mark.parametrize('where', ['top', 'value', 'nested', 'sparse_state'])
def test_malicious_pickles_are_refused_and_nothing_runs(body, tmp_path, protocol, where):
    marker = tmp_path / 'pwned'
    for name, payload in _payloads(marker).items():
        obj = payload if where == 'top' else _hidden(body, payload, where)
        stream = io.BytesIO(pickle.dumps(obj, protocol=protocol))
        with pytest.raises(UnsafePickleError, match='evil.pkl: refusing to load') as err:
            restricted_load(stream, 'evil.pkl')
        assert 'system' in str(err.value) or 'Popen' in str(err.value) \
            or 'eval' in str(err.value), name
        assert not marker.exists(), f'{name} ran ({where}, protocol {protocol})'


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_prepare_refuses_a_tampered_resave_and_writes_nothing(body, tmp_path, protocol):
    marker = tmp_path / 'pwned'
    bad = tmp_path / 'SMPL_NEUTRAL.pkl'
    bad.write_bytes(pickle.dumps(_hidden(body, _payloads(marker)['os.system'], 'nested'),
                                 protocol=protocol))
    with pytest.raises(ModelFilesError, match='refusing to load posix.system'):
        prepare_models(bad, tmp_path / 'models', progress=False)
    assert not marker.exists() and not (tmp_path / 'models').exists()


@pytest.mark.parametrize('protocol', [0, 2, 5])
@pytest.mark.parametrize('call', [
    (codecs.encode, ('import os', 'rot13')),  # a codec lookup other than latin1
    (codecs.encode, (b'abc', 'base64')),
    (bytes, (1 << 40,)),  # a terabyte allocation
])
def test_allowed_names_cannot_be_misused(call, protocol):
    """The protocol-0-2 helpers are narrow stand-ins, not the real callables."""
    stream = io.BytesIO(pickle.dumps(_Exploit(call[0], *call[1]), protocol=protocol))
    with pytest.raises(UnsafePickleError, match='evil.pkl: refusing'):
        restricted_load(stream, 'evil.pkl')


def test_out_of_band_buffers_are_refused():
    """Protocol 5 out-of-band buffers have no data in the file: an error, not a crash."""
    data = pickle.dumps(np.arange(4.0), protocol=5, buffer_callback=lambda _: False)
    with pytest.raises(pickle.UnpicklingError):
        restricted_load(io.BytesIO(data))
