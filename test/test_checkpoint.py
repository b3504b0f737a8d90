"""Checkpoint loading: layouts, strictness, helpful errors, corrupt and unsafe files."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest
import torch

from romp_ros.core.nets.checkpoint import (
    CheckpointError,
    LoadReport,
    describe_keys,
    load_checkpoint,
    load_into,
)
from romp_ros.core.nets.factory import build_model
from romp_ros.testing.seeded_weights import write_seeded_checkpoint


@pytest.fixture(scope='module')
def romp_file(seeded_checkpoint) -> pathlib.Path:
    """Seeded ROMP weights in the official inference layout (session-cached)."""
    return seeded_checkpoint('romp', 'hrnet32')


@pytest.fixture(scope='module')
def romp_state(romp_file) -> dict:
    return load_checkpoint(romp_file)


@pytest.fixture(scope='module')
def bev_random_state() -> dict:
    """A BEV state dict (random init: only its keys and shapes matter here)."""
    torch.manual_seed(0)
    return build_model('bev').state_dict()


def _same_weights(model: torch.nn.Module, state: dict) -> bool:
    ours = model.state_dict()
    return all(torch.equal(ours[k], v) for k, v in state.items())


def test_inference_layout_loads_every_tensor(romp_file, romp_state):
    model = build_model('romp')
    report = load_into(model, romp_file)
    assert isinstance(report, LoadReport)
    assert report.loaded == len(model.state_dict()) == len(romp_state)
    assert report.kept_default == report.dropped == report.missing == report.unexpected == ()
    assert report.source == str(romp_file)
    assert _same_weights(model, romp_state)


def test_training_layout_is_unwrapped(tmp_path, romp_state):
    path = write_seeded_checkpoint(tmp_path / 'train.pth', 'romp', layout='training',
                                   state=romp_state)
    raw = torch.load(path, map_location='cpu', weights_only=True)
    assert set(raw) >= {'model_state_dict', 'epoch'}
    assert all(k.startswith('module.') for k in raw['model_state_dict'])

    model = build_model('romp')
    report = load_into(model, path)
    assert report.loaded == len(romp_state)
    assert report.dropped and all(k.startswith(('_result_parser.', '_calc_loss.'))
                                  for k in report.dropped)
    assert _same_weights(model, romp_state)
    # load_checkpoint gives the flat, prefix-free dict of the network alone.
    assert load_checkpoint(path).keys() == romp_state.keys()


def test_in_memory_state_dict_with_prefix_loads(romp_state):
    wrapped = {'state_dict': {f'module.{k}': v for k, v in romp_state.items()}}
    model = build_model('romp')
    report = load_into(model, wrapped)
    assert report.source == '<state dict>' and report.loaded == len(romp_state)
    assert _same_weights(model, romp_state)


def test_bev_checkpoint_into_romp_names_the_mismatch(tmp_path, bev_random_state):
    path = tmp_path / 'BEV.pth'
    torch.save(bev_random_state, path)
    with pytest.raises(CheckpointError) as info:
        load_into(build_model('romp'), path)
    message = str(info.value)
    assert 'looks like a BEV checkpoint' in message and 'ROMP model' in message
    assert 'missing keys (' in message and 'final_layers.1.0.0.weight' in message
    assert 'unexpected keys (' in message and 'det_head.0.0.conv1.weight' in message
    assert '(+' in message  # long lists are cut, with the remaining count


def test_non_strict_loads_the_shared_backbone_and_reports_the_rest(bev_random_state):
    model = build_model('romp')
    report = load_into(model, bev_random_state, strict=False)
    backbone = {k: v for k, v in bev_random_state.items() if k.startswith('backbone.')}
    assert report.loaded == len(backbone)
    assert any(k.startswith('final_layers.') for k in report.missing)
    assert 'transformer.0.weight' in report.unexpected
    assert _same_weights(model, backbone)


def test_shape_mismatch_is_reported_even_when_not_strict(romp_state):
    broken = dict(romp_state)
    broken['final_layers.2.2.weight'] = torch.zeros(2, 64, 1, 1)
    for strict in (True, False):
        with pytest.raises(CheckpointError, match=r'shape mismatches \(1\).*final_layers\.2\.2'
                                                  r'\.weight file \(2, 64, 1, 1\) vs model '
                                                  r'\(1, 64, 1, 1\)'):
            load_into(build_model('romp'), broken, strict=strict)


def test_buffers_rebuilt_at_construction_may_be_absent(bev_random_state):
    state = {k: v for k, v in bev_random_state.items()
             if k != 'coordmap_3d' and not k.endswith('num_batches_tracked')}
    model = build_model('bev')
    report = load_into(model, state)
    assert 'coordmap_3d' in report.kept_default
    assert any(k.endswith('num_batches_tracked') for k in report.kept_default)
    assert report.missing == ()
    # Any other absent key is an error.
    del state['transformer.6.bias']
    with pytest.raises(CheckpointError, match=r'missing keys \(1\): transformer\.6\.bias'):
        load_into(build_model('bev'), state)


def test_non_finite_weights_are_refused(romp_state):
    broken = dict(romp_state)
    broken['final_layers.2.2.bias'] = torch.tensor([float('nan')])
    with pytest.raises(CheckpointError, match=r'(?s)NaN or infinite.*final_layers\.2\.2\.bias'):
        load_into(build_model('romp'), broken)


@pytest.mark.parametrize('keep', [0.5, 0.0])
def test_truncated_file_names_file_size_and_fix(tmp_path, romp_file, keep):
    data = romp_file.read_bytes()
    path = tmp_path / 'ROMP.pkl'
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and 'truncated or corrupt' in message
    assert ('MiB' in message) if keep else ('0 bytes' in message)
    assert 'romp-ros download' in message


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='does not exist.*romp-ros download'):
        load_checkpoint(tmp_path / 'nope.pth')


class _Payload:
    """An object whose unpickling would create a marker file (stand-in for malicious code)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (os.fspath(self.marker), 'w'))


def test_pickled_code_is_never_executed(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'conv.weight': torch.zeros(1), 'payload': _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match='refusing to load'):
        load_checkpoint(path)
    assert not marker.exists()


def test_file_without_a_state_dict(tmp_path):
    path = tmp_path / 'odd.pth'
    torch.save({'epoch': 3, 'notes': 'hello'}, path)
    with pytest.raises(CheckpointError, match='no state dict.*top-level keys: epoch, notes'):
        load_checkpoint(path)


def test_safetensors(tmp_path):
    path = tmp_path / 'w.safetensors'
    state = {'a.weight': torch.arange(6.0).view(2, 3)}
    if importlib.util.find_spec('safetensors') is None:
        path.write_bytes(b'\x00' * 16)
        with pytest.raises(CheckpointError, match='pip install safetensors'):
            load_checkpoint(path)
    else:
        from safetensors.torch import save_file
        save_file(state, os.fspath(path))
        assert torch.equal(load_checkpoint(path)['a.weight'], state['a.weight'])


def test_describe_keys():
    assert describe_keys(['backbone.transition1.0.0.weight', 'final_layers.1.2.weight']) == \
        'a ROMP checkpoint with a HRNet-32 backbone'
    assert describe_keys(['backbone.layer4.0.conv1.weight', 'final_layers.1.2.weight']) == \
        'a ROMP checkpoint with a ResNet-50 backbone'
    assert describe_keys(['det_head.0.0.conv1.weight']).startswith('a BEV checkpoint')
