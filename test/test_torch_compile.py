"""`compile`: torch.compile of the network (runtime torch), compiled at start-up, kernels cached.

On the CPU the compiled network must give the eager results: joints, vertices and translations
within 1e-4 m (fp32; inductor fuses and reorders float sums, measured ~1e-7 on the maps). The
CUDA-graph modes ('reduce-overhead', 'max-autotune') only capture graphs on CUDA; their CPU
path is the same compiled code, so it is what runs here. Timing is benchmarked, not tested.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from romp_ros.core import Estimator, EstimatorConfig
from romp_ros.core.config import ConfigError

pytestmark = pytest.mark.slow
TOLERANCE_M = 1e-4


def test_compile_is_validated_in_the_config():
    with pytest.raises(ConfigError, match=r"compile='fast' is invalid; choose one of \['off'"):
        EstimatorConfig(compile='fast')
    with pytest.raises(ConfigError, match="runtime 'onnxruntime' has its own graph compiler"):
        EstimatorConfig(compile='default', runtime='onnxruntime')
    assert EstimatorConfig(compile='reduce-overhead').compile == 'reduce-overhead'


def test_compiled_network_matches_eager_and_fills_its_cache(models_dir, seeded_checkpoint,
                                                            tmp_path, caplog, monkeypatch):
    base = EstimatorConfig(model='romp', backbone='resnet50', input_size=128, device='cpu',
                           checkpoint=str(seeded_checkpoint('romp', 'resnet50')),
                           models_dir=str(models_dir))
    cache = tmp_path / 'inductor'
    # compiling points inductor's cache at the configured folder (process-wide, as inductor
    # reads it): restore the variable after the test
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', str(tmp_path / 'unused'))
    photos = [skimage.data.astronaut(), skimage.data.coffee()]
    eager = Estimator(base).predict(photos)
    with caplog.at_level('INFO'):
        compiled_est = Estimator(base.replace(compile='reduce-overhead',
                                              compile_cache_dir=str(cache)))
    # compiled while loading (not on the first frame), and it says so
    assert 'compiled in' in caplog.text
    assert 'compiled reduce-overhead' in compiled_est.runner.describe()
    assert 'CUDA graphs' not in compiled_est.runner.describe()  # CPU: no graphs to capture
    compiled = compiled_est.predict(photos)  # batch 2: a second graph, compiled on first use
    for want, got in zip(eager, compiled, strict=True):
        assert got.num_people == want.num_people > 0
        np.testing.assert_allclose(got.joints, want.joints, atol=TOLERANCE_M)
        np.testing.assert_allclose(got.verts, want.verts, atol=TOLERANCE_M)
        np.testing.assert_allclose(got.cam_trans, want.cam_trans, atol=TOLERANCE_M, rtol=1e-4)
    # the kernels are on disk for the next start
    assert cache.is_dir() and any(p.is_file() for p in cache.rglob('*'))
    assert not (tmp_path / 'unused').exists()  # the configured folder won over the variable
