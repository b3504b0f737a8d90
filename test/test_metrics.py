"""Metrics: per-person Procrustes (the VIBE-copied bug is not reproduced)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from romp_ros.evaluation.metrics import mpjpe, pa_mpjpe, procrustes_align, pve


def _people(n, j=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=(n, j, 3))


@pytest.mark.parametrize('n', [1, 2, 3, 5])
def test_pa_mpjpe_is_zero_for_similarity_transformed_people(n):
    gt = _people(n)
    rots = Rotation.random(n, random_state=1).as_matrix()
    scales = np.linspace(0.5, 2.0, n)
    pred = scales[:, None, None] * np.einsum('nik,njk->nji', rots, gt) + np.arange(n)[:, None,
                                                                                     None]
    np.testing.assert_allclose(pa_mpjpe(pred, gt), 0.0, atol=1e-6)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_three_people_with_three_joints_is_solved_per_person():
    """The shape the copied VIBE code mistakes for a transposed input: (3, 3, 3)."""
    gt = _people(3, j=3, seed=4)
    pred = gt.copy()
    pred[1] = gt[1] @ Rotation.from_euler('z', 40, degrees=True).as_matrix().T
    assert np.allclose(pa_mpjpe(pred, gt), 0.0, atol=1e-6)
    assert mpjpe(pred, gt)[1] > 1.0 and mpjpe(pred, gt)[0] == 0.0


def test_reflection_is_not_accepted_as_alignment():
    gt = _people(1, seed=2)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt)[0] > 10.0  # mm: a mirror image is not a rotation


def test_mpjpe_and_pve_units_and_root_alignment():
    gt = _people(2)
    pred = gt + np.array([0.0, 0.0, 0.010])  # 10 mm along z everywhere
    np.testing.assert_allclose(mpjpe(pred, gt, root_index=None), 10.0)
    np.testing.assert_allclose(mpjpe(pred, gt, root_index=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(pve(pred, gt), 10.0)
    with pytest.raises(ValueError, match=r'\(N, J, 3\)'):
        mpjpe(pred[:, :, :2], gt[:, :, :2])
