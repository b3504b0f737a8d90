"""Access to the reference implementation (simple-romp) as a test-only oracle.

Importing ``romp`` or ``bev`` normally runs a settings function that tries to pip-install
packages and download checkpoints. We register empty package modules whose ``__path__`` points
at the installed folders, so that only the submodules we ask for (model, post_parser, smpl,
utils) are imported. Never import this module from the product.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest


def _register_empty_package(name: str) -> None:
    if name in sys.modules and getattr(sys.modules[name], '__romp_ros_oracle__', False):
        return
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f'simple-romp ({name}) is not installed: run `make setup`')
    module = types.ModuleType(name)
    module.__path__ = list(spec.submodule_search_locations)
    module.__romp_ros_oracle__ = True
    sys.modules[name] = module


def reference_module(qualname: str) -> types.ModuleType:
    """Import e.g. ``romp.model`` or ``bev.post_parser`` without the package side effects."""
    _register_empty_package('romp')
    _register_empty_package('bev')
    return importlib.import_module(qualname)
