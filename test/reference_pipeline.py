"""The reference's full ROMP / BEV image pipelines, as the oracle tests use them.

The pipelines themselves are ``romp_ros.cli.reference_pipelines`` (simple-romp's own functions,
replayed call for call, as ``romp-ros bench --compare-reference`` runs them); this module gives
their outputs as NumPy arrays and skips the test when simple-romp is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from romp_ros.cli.reference_pipelines import (
    ReferenceBev,
    ReferenceNotInstalledError,
    ReferenceRomp,
    write_reference_body_files,
)

__all__ = ['ReferenceBEV', 'ReferenceROMP', 'write_reference_body_files']


def _numpy(out: dict | None) -> dict | None:
    if out is None:
        return None
    return {k: v.cpu().numpy() if torch.is_tensor(v) else v for k, v in out.items()}


class ReferenceROMP:
    """``romp.main.ROMP.forward`` (torch), calc_smpl on, rendering and filtering off."""

    def __init__(self, checkpoint, smpl_pth, center_thresh: float = 0.25) -> None:
        try:
            self._pipeline = ReferenceRomp(checkpoint, smpl_pth, center_thresh=center_thresh)
        except ReferenceNotInstalledError as err:
            pytest.skip(str(err))

    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        return _numpy(self._pipeline(image_bgr))


class ReferenceBEV:
    """``bev.main.BEV.process_normal_image``, calc_smpl on, rendering and tracking off.

    0.08: simple-romp's effective default threshold (its ``--crowd`` is ``store_false``: crowd
    mode is on unless turned off, and crowd mode sets 0.08), which is the package's too.
    """

    def __init__(self, checkpoint, smpla_pth, smil_pth, center_thresh: float = 0.08) -> None:
        try:
            self._pipeline = ReferenceBev(checkpoint, smpla_pth, smil_pth,
                                          center_thresh=center_thresh)
        except ReferenceNotInstalledError as err:
            pytest.skip(str(err))

    def __call__(self, image_bgr: np.ndarray) -> dict | None:
        return _numpy(self._pipeline(image_bgr))
