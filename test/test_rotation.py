"""Rotation conversions: the reference's 6D and matrix -> axis-angle routes, scipy, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference_oracle import reference_module
from scipy.spatial.transform import Rotation
import torch

from romp_ros.core.geometry import rotation as rot


def _random_axis_angle(n: int, seed: int, min_angle: float = 0.0,
                       max_angle: float = math.pi) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64),
                                         dim=-1)
    angle = min_angle + (max_angle - min_angle) * torch.rand(n, 1, generator=gen,
                                                             dtype=torch.float64)
    return axis * angle


def _is_rotation(mats: torch.Tensor, atol: float) -> bool:
    eye = torch.eye(3, dtype=mats.dtype)
    ortho = torch.allclose(mats @ mats.transpose(-1, -2), eye.expand_as(mats), atol=atol)
    return ortho and torch.allclose(torch.linalg.det(mats), torch.ones(mats.shape[:-2],
                                                                        dtype=mats.dtype),
                                    atol=atol)


@pytest.mark.oracle
def test_rot6d_to_matrix_matches_reference_gram_schmidt():
    utils = reference_module('romp.utils')
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=gen)
    ours = rot.rot6d_to_matrix(x)
    ref = utils.rot6d_to_rotmat(x.clone())
    assert torch.allclose(ours, ref, atol=1e-6)
    assert _is_rotation(ours, atol=1e-5)
    # Leading dimensions are kept: (2, 250, 6) -> (2, 250, 3, 3), same values.
    assert torch.allclose(rot.rot6d_to_matrix(x.reshape(2, 250, 6)), ref.reshape(2, 250, 3, 3),
                          atol=1e-6)


@pytest.mark.oracle
def test_matrix_to_axis_angle_matches_reference_quaternion_route():
    utils = reference_module('romp.utils')
    # Away from the singular angles 0 and pi, where both are well defined.
    aa = _random_axis_angle(2000, seed=1, min_angle=1e-3, max_angle=math.pi - 1e-3)
    mats = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
    ours = rot.matrix_to_axis_angle(mats)
    ref = utils.rotation_matrix_to_angle_axis(mats.clone())
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(ours, aa, atol=1e-8)
    # float32, the dtype the network runs in.
    ours32 = rot.matrix_to_axis_angle(mats.float())
    ref32 = utils.rotation_matrix_to_angle_axis(mats.float().clone())
    assert torch.allclose(ours32, ref32, atol=1e-5)


@pytest.mark.oracle
def test_rot6d_to_axis_angle_matches_reference_on_network_like_outputs():
    utils = reference_module('romp.utils')
    gen = torch.Generator().manual_seed(2)
    # Network 6D outputs are near the identity's [1, 0, 0, 1, 0, 0] plus noise.
    x = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]) + 0.4 * torch.randn(300, 6, generator=gen)
    ours = rot.rot6d_to_axis_angle(x)
    ref = utils.rot6D_to_angular(x.clone()).reshape(300, 3)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_axis_angle_to_matrix_matches_scipy_including_tiny_and_half_turn_angles():
    aa = torch.cat([
        _random_axis_angle(500, seed=3),
        _random_axis_angle(50, seed=4, min_angle=0.0, max_angle=1e-6),
        _random_axis_angle(50, seed=5, min_angle=math.pi - 1e-6, max_angle=math.pi),
        torch.zeros(1, 3, dtype=torch.float64),
    ])
    ours = rot.axis_angle_to_matrix(aa)
    expected = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
    assert torch.allclose(ours, expected, atol=1e-12)


@pytest.mark.parametrize('angle_range', [(0.0, 1e-7), (1e-7, 1e-3), (1e-3, 3.0),
                                         (math.pi - 1e-4, math.pi)])
def test_matrix_axis_angle_round_trip_is_stable_near_singularities(angle_range):
    aa = _random_axis_angle(400, seed=6, min_angle=angle_range[0], max_angle=angle_range[1])
    mats = rot.axis_angle_to_matrix(aa)
    back = rot.matrix_to_axis_angle(mats)
    assert torch.isfinite(back).all()
    # Compare rotations (at pi, r and -r are the same rotation).
    assert torch.allclose(rot.axis_angle_to_matrix(back), mats, atol=1e-10)
    assert (back.norm(dim=-1) <= math.pi + 1e-9).all()
    if angle_range[1] < 3.0:
        assert torch.allclose(back, aa, atol=1e-10, rtol=1e-6)


def test_quaternions_are_xyzw_like_ros_and_scipy():
    aa = _random_axis_angle(300, seed=7)
    mats = rot.axis_angle_to_matrix(aa)
    quat = rot.matrix_to_quaternion(mats)
    expected = torch.from_numpy(Rotation.from_matrix(mats.numpy()).as_quat())  # xyzw
    expected = rot.standardize_quaternion(expected)
    assert torch.allclose(quat, expected, atol=1e-10)
    assert (quat[..., 3] >= 0).all()
    assert torch.allclose(rot.quaternion_to_matrix(quat), mats, atol=1e-12)
    assert torch.allclose(rot.axis_angle_to_quaternion(aa), quat, atol=1e-10)
    assert torch.allclose(rot.quaternion_to_axis_angle(quat), aa, atol=1e-9)
    # A 90 degree turn about z is (0, 0, sin 45, cos 45) in xyzw.
    quarter = rot.axis_angle_to_quaternion(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(quarter, torch.tensor([0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)]))


def test_matrix_to_quaternion_handles_every_shepperd_branch():
    # Half turns about each axis make x, y or z the largest component; identity makes w.
    mats = torch.stack([torch.diag(torch.tensor(d, dtype=torch.float64)) for d in
                        ([1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1])])
    quat = rot.matrix_to_quaternion(mats)
    expected = torch.tensor([[0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
                            dtype=torch.float64)
    assert torch.allclose(quat, expected, atol=1e-12)


def test_matrix_rot6d_round_trip_and_leading_dims():
    mats = rot.axis_angle_to_matrix(_random_axis_angle(60, seed=8)).reshape(3, 4, 5, 3, 3)
    six = rot.matrix_to_rot6d(mats)
    assert six.shape == (3, 4, 5, 6)
    assert torch.allclose(rot.rot6d_to_matrix(six), mats, atol=1e-12)


def test_degenerate_6d_input_gives_finite_output():
    out = rot.rot6d_to_matrix(torch.zeros(4, 6))
    assert torch.isfinite(out).all()
    assert torch.isfinite(rot.rot6d_to_axis_angle(torch.zeros(4, 6))).all()


def test_align_quaternion_signs_picks_the_closest_representative():
    quat = rot.axis_angle_to_quaternion(_random_axis_angle(100, seed=9))
    gen = torch.Generator().manual_seed(10)
    flips = torch.where(torch.rand(100, 1, generator=gen) < 0.5, -1.0, 1.0).double()
    aligned = rot.align_quaternion_signs(quat * flips, quat)
    assert torch.allclose(aligned, quat)


def test_make_quaternions_continuous_removes_sign_jumps_along_time():
    # A smooth rotation about a fixed axis through more than a full turn: standardised
    # quaternions (w >= 0) jump sign when the angle passes pi.
    angles = torch.linspace(0.0, 3.5 * math.pi, 200, dtype=torch.float64)
    axes = torch.nn.functional.normalize(torch.tensor([[0.2, -1.0, 0.3], [1.0, 0.0, 0.0]],
                                                      dtype=torch.float64), dim=-1)
    half = angles[:, None, None] / 2
    quat = torch.cat((axes[None] * torch.sin(half), torch.cos(half).expand(-1, 2, 1)), dim=-1)
    jumpy = rot.standardize_quaternion(quat)  # (T=200, 2 people, 4)
    step_dots = (jumpy[1:] * jumpy[:-1]).sum(-1)
    assert (step_dots < 0).any()  # the test input has jumps
    smooth = rot.make_quaternions_continuous(jumpy, dim=0)
    assert ((smooth[1:] * smooth[:-1]).sum(-1) > 0).all()
    # Same rotations, first frame untouched.
    assert torch.allclose(smooth.abs(), jumpy.abs())
    assert torch.equal(smooth[0], jumpy[0])
    # Sequence axis elsewhere (people first) gives the same answer.
    assert torch.allclose(rot.make_quaternions_continuous(jumpy.transpose(0, 1), dim=1),
                          smooth.transpose(0, 1))
    with pytest.raises(ValueError):
        rot.make_quaternions_continuous(jumpy, dim=-1)


def test_conversions_keep_float32_and_device():
    aa = _random_axis_angle(10, seed=11).float()
    assert rot.axis_angle_to_matrix(aa).dtype == torch.float32
    assert rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa)).dtype == torch.float32
    assert np.allclose(rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa)).numpy(),
                       aa.numpy(), atol=1e-5)
