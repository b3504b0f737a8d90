"""Access to the reference implementation (simple-romp) as a test-only oracle.

Importing ``romp`` or ``bev`` normally runs a settings function that tries to pip-install
packages and download checkpoints. ``romp_ros.cli.reference_pipelines.reference_module`` (the
loader behind ``romp-ros bench --compare-reference``) registers empty package modules whose
``__path__`` points at the installed folders, so that only the submodules asked for (model,
post_parser, smpl, utils) are imported. Here a missing simple-romp skips the test instead.
"""

from __future__ import annotations

import types

import pytest

from romp_ros.cli.reference_pipelines import ReferenceNotInstalledError
from romp_ros.cli.reference_pipelines import reference_module as _load


def reference_module(qualname: str) -> types.ModuleType:
    """Import e.g. ``romp.model`` or ``bev.post_parser`` without the package side effects."""
    try:
        return _load(qualname)
    except ReferenceNotInstalledError as err:
        pytest.skip(f'{err} (`make setup` installs it)')
