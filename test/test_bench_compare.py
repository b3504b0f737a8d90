"""`romp-ros bench --compare-*`: the side-by-side runner, its table, its docs section, and the
clear error when the reference (simple-romp) is not installed. No duration is asserted."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import skimage.data

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.cli.reference_pipelines import ReferenceNotInstalledError, reference_module
from romp_ros.cli.runtime_compare import (
    Variant,
    compare,
    default_variants,
    table_header,
)
from romp_ros.core import EstimatorConfig
from romp_ros.core.runtime import runtime_available, runtime_runs_on


def test_missing_reference_is_one_clear_error(monkeypatch):
    for name in ('romp', 'bev'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *args: None)
    with pytest.raises(ReferenceNotInstalledError, match='pip install simple-romp'):
        reference_module('romp.model')


def test_cli_reports_a_missing_reference_in_one_line(monkeypatch, caplog, models_dir,
                                                     tmp_path):
    from romp_ros.cli.main import main
    for name in ('romp', 'bev'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *args: (
        None if name in ('romp', 'bev') else real_find_spec(name, *args)))
    ckpt = tmp_path / 'missing_is_fine_here.pth'
    status = main(['--quiet', 'bench', '--compare-reference', '--models-dir', str(models_dir),
                   '--checkpoint', str(ckpt), '--device', 'cpu', '--frames', '1',
                   '--no-memory'])
    assert status == 2
    assert 'simple-romp' in caplog.text and 'Traceback' not in caplog.text


def test_default_variants_follow_the_device_and_what_is_installed():
    cpu = default_variants('romp', 'cpu', reference=True, bf16=True)
    labels = [v.label for v in cpu]
    assert labels[0] == 'reference torch' and 'ours torch fp32' in labels
    assert ('reference ONNX Runtime' in labels) == runtime_available('onnxruntime')
    assert ('ours openvino bf16' in labels) == runtime_available('openvino')
    bev = [v.label for v in default_variants('bev', 'cpu', reference=True, bf16=False)]
    assert 'reference ONNX Runtime' not in bev, 'the reference has no BEV ONNX path'
    gpu = default_variants('romp', 'cuda:0', reference=False, bf16=True)
    labels = [v.label for v in gpu]
    assert 'ours torch fp16' in labels and not any('openvino' in label for label in labels)
    graphs = [v for v in gpu if 'CUDA graph' in v.label]
    assert [v.compile for v in graphs] == ['reduce-overhead'] * 2
    # the padded post-processing beside the compact one, all else equal
    assert [v.postprocess for v in graphs] == [None, 'padded']  # None: --postprocess's
    assert all(v.compile == 'off' and v.postprocess is None for v in cpu)


@pytest.mark.skipif(not runtime_available('onnxruntime'), reason='onnxruntime not installed')
@pytest.mark.parametrize('providers', [['CPUExecutionProvider'],
                                       ['CUDAExecutionProvider', 'CPUExecutionProvider']])
def test_gpu_rows_leave_out_an_onnxruntime_that_cannot_use_the_gpu(monkeypatch, providers):
    # a GPU machine with the CPU-only onnxruntime must not build (and fail on, or time on the
    # CPU) the ONNX Runtime rows of a --device cuda:0 comparison
    import onnxruntime
    monkeypatch.setattr(onnxruntime, 'get_available_providers', lambda: providers)
    on_gpu = 'CUDAExecutionProvider' in providers
    assert runtime_runs_on('onnxruntime', 'cuda:0') == on_gpu
    assert runtime_runs_on('onnxruntime', 'cpu') and runtime_runs_on('torch', 'cuda:1')
    assert not runtime_runs_on('openvino', 'cuda:0')
    labels = [v.label for v in default_variants('romp', 'cuda:0', reference=True, bf16=False)]
    assert ('ours onnxruntime fp32' in labels) == on_gpu
    assert ('reference ONNX Runtime' in labels) == on_gpu
    assert 'reference torch' in labels and 'ours torch fp16' in labels
    cpu = [v.label for v in default_variants('romp', 'cpu', reference=True, bf16=False)]
    assert 'ours onnxruntime fp32' in cpu and 'reference ONNX Runtime' in cpu


@pytest.mark.slow
def test_compare_runs_each_variant_and_writes_the_table(models_dir, seeded_checkpoint,
                                                        tmp_path):
    config = EstimatorConfig(model='romp', backbone='resnet50', device='cpu', input_size=256,
                             checkpoint=str(seeded_checkpoint('romp', 'resnet50')),
                             models_dir=str(models_dir))
    variants = [Variant('ours torch fp32', 'ours', 'torch')]
    if runtime_available('onnxruntime'):
        variants.append(Variant('ours onnxruntime fp32', 'ours', 'onnxruntime'))
    # a predicate picks whose memory is measured (the GPU session skips compiled variants)
    unmeasured = Variant('ours torch fp32, memory not measured', 'ours', 'torch')
    variants.append(unmeasured)
    frame = np.ascontiguousarray(skimage.data.astronaut())
    result = compare(config, frame, variants, repeats=1, memory=lambda v: v != unmeasured)
    assert [r.variant for r in result.results] == variants
    people = {r.people for r in result.results}
    assert len(people) == 1 and people.pop() > 0, 'every runtime finds the same people'
    for r in result.results:
        assert r.median_ms > 0 and r.peak_gpu_mb is None
        if r.variant == unmeasured:
            assert r.peak_rss_mb is None
        else:
            assert r.peak_rss_mb is not None and r.peak_rss_mb > 100
    rows = result.table_rows()
    assert rows[-1].endswith('| - |'), rows[-1]
    assert len(rows) == len(variants) and rows[0].startswith('| romp/resnet50 | ours torch')
    doc = tmp_path / 'perf.md'
    doc.write_text('# Performance\n\nintro\n\n<!-- compare-bench:begin -->\nold\n'
                   '<!-- compare-bench:end -->\n\ntail\n')
    write_doc_section(doc, '\n'.join([*table_header(), *rows]))
    text = doc.read_text()
    assert 'old' not in text and 'intro' in text and text.rstrip().endswith('tail')
    assert text.count('| romp/resnet50 |') == len(variants)
