"""ROS-free inference core: networks, body model, geometry, post-processing, tracking.

The public entry points are re-exported here lazily, so ``import romp_ros.core`` stays cheap
(torch is imported on first use of one of them)::

    from romp_ros.core import Estimator, EstimatorConfig
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    'EstimatorConfig': 'romp_ros.core.config',
    'ConfigError': 'romp_ros.core.config',
    'FrameResult': 'romp_ros.core.results',
    'CameraIntrinsics': 'romp_ros.core.results',
    'Estimator': 'romp_ros.core.estimator',
    'EstimatorError': 'romp_ros.core.estimator',
    'PendingPrediction': 'romp_ros.core.estimator',
    'build_model': 'romp_ros.core.nets.factory',
    'load_checkpoint': 'romp_ros.core.nets.checkpoint',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(module), name)
