"""The ROMP / BEV training objective end to end: targets, sampling, body model, every term.

Labels are made with the real (synthetic) body model, so a prediction built from the labels
must score ~0 on the label terms. The "painted" networks below are stand-ins whose output
maps are parameters chosen by the test (the criterion, body model and losses are the real
ones); the real ROMP and BEV networks are trained on one batch at reduced input size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from romp_ros.core.body.model_files import load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel, SMPLAWithInfants
from romp_ros.core.geometry.projection import project_weak
from romp_ros.core.geometry.rotation import axis_angle_to_matrix, matrix_to_rot6d
from romp_ros.core.nets.bev_net import BEVMaps
from romp_ros.core.nets.coordmaps import cam3d_anchors
from romp_ros.core.nets.factory import build_model
from romp_ros.core.nets.romp_net import ROMPMaps
from romp_ros.data.sample import TrainingSample, collate_samples, empty_people
from romp_ros.train.criterion import BEV_ROOT_JOINTS, Criterion
from romp_ros.train.losses import LossWeights
from romp_ros.train.targets import build_center_targets, camera_targets, depth_bins

ROMP_SIZE = 128  # ROMP maps S / 8 = 16
BEV_SIZE = 256  # BEV maps S / 4 = 64, 32 depth bins
LABEL_TERMS = ('pose', 'shape', 'keypoints_2d', 'joints_3d', 'pa_joints_3d', 'cam')
TAN30 = math.tan(math.radians(30.0))


@pytest.fixture(scope='module')
def smpl(models_dir):
    return BodyModel(load_body_model_arrays(models_dir, 'smpl'))


@pytest.fixture(scope='module')
def smpla(models_dir):
    return SMPLAWithInfants(load_body_model_arrays(models_dir, 'smpla'),
                            load_body_model_arrays(models_dir, 'smil'))


def _k_matrix(size: int, focal: float) -> np.ndarray:
    return np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], np.float32)


def _make_sample(body, seed: int, size: int, xs: tuple[float, ...], depths: tuple[float, ...],
                 focal: float, weak_keypoints: bool = True, age: float = 0.0,
                 labels: bool = True) -> TrainingSample:
    """People at horizontal offsets ``xs`` (metres) and ``depths``, labelled by ``body``.

    2D keypoints are the weak-perspective projection of the joints with the camera target
    (``weak_keypoints``, what ROMP predicts) or their pinhole projection through K (BEV).
    ``labels=False`` keeps only the 2D keypoints and boxes (a 2D-only dataset).
    """
    rng = np.random.default_rng(seed)
    count = len(xs)
    lab = empty_people(count)
    pose = (rng.normal(size=(count, 72)) * 0.15).astype(np.float32)
    pose[:, :3] = [math.pi, 0.0, 0.0]  # upright in the camera frame (y down)
    pose[:, 66:] = 0.0  # the hands are not predicted
    shape = np.zeros((count, 11), np.float32)
    shape[:, :10] = rng.normal(size=(count, 10)) * 0.5
    shape[:, 10] = age
    trans = np.stack([np.array(xs), rng.uniform(-0.1, 0.1, count), np.array(depths)], 1)
    trans = trans.astype(np.float32)
    k_mat = _k_matrix(size, focal)
    with torch.no_grad():
        joints = body(torch.from_numpy(shape[:, :body.num_betas]),
                      torch.from_numpy(pose)).joints  # (P, 71, 3)
    cam_pts = joints + torch.from_numpy(trans)[:, None]
    if weak_keypoints:
        cams, _ = camera_targets(torch.from_numpy(trans), torch.from_numpy(k_mat), size)
        uv = project_weak(joints, cams)
    else:
        pix = cam_pts[..., :2] / cam_pts[..., 2:] * focal + size / 2
        uv = pix / size * 2 - 1
    lab['keypoints_2d'][..., :2] = uv.numpy()
    lab['keypoints_2d'][..., 2] = 1.0
    lab['bbox'] = np.concatenate([uv.amin(1).numpy(), uv.amax(1).numpy()], 1)
    if labels:
        lab['joints_3d'] = cam_pts.numpy().astype(np.float32)
        lab['smpl_pose'], lab['smpl_shape'], lab['translation'] = pose, shape, trans
        for flag in ('has_pose', 'has_shape', 'has_translation', 'has_joints_3d', 'has_age'):
            lab[flag][:] = True
    else:
        k_mat = np.full((3, 3), np.nan, np.float32)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    sample = TrainingSample(image=image, camera_k=k_mat, **lab, dataset='synthetic',
                            source=f'test {seed}')
    sample.check()
    return sample


def _romp_batch(body, labels: bool = True):
    return collate_samples([
        _make_sample(body, 0, ROMP_SIZE, (-0.9, 0.8), (6.0, 9.0), 160.0, labels=labels),
        _make_sample(body, 1, ROMP_SIZE, (0.1, -1.2, 1.5), (5.0, 8.0, 11.0), 200.0,
                     labels=labels)])


class PaintedROMP(nn.Module):
    """A stand-in ROMP network whose output maps are learnable tensors set by the test."""

    def __init__(self, center_maps: torch.Tensor, params_maps: torch.Tensor) -> None:
        super().__init__()
        self.center = nn.Parameter(center_maps.clone())
        self.params = nn.Parameter(params_maps.clone())

    def forward(self, images: torch.Tensor) -> ROMPMaps:
        return ROMPMaps(center_maps=self.center * 1.0, params_maps=self.params * 1.0)


def _perfect_romp(batch) -> PaintedROMP:
    """Maps that hold each person's labelled camera, pose and shape at its center cell."""
    size = ROMP_SIZE // 8
    targets = build_center_targets(batch.keypoints_2d, batch.bbox, batch.person_mask, size)
    cams, _ = camera_targets(batch.translation, batch.camera_k[:, None], ROMP_SIZE)
    b, p = targets.valid.nonzero(as_tuple=True)
    rot6d = matrix_to_rot6d(axis_angle_to_matrix(batch.smpl_pose[b, p, :66].reshape(-1, 22, 3)))
    params = torch.cat([torch.log(cams[b, p, :1]) / math.log(1.1), cams[b, p, 1:],
                        rot6d.reshape(-1, 132), batch.smpl_shape[b, p, :10]], dim=1)
    maps = torch.zeros(batch.batch_size, 145, size, size)
    rows, cols = targets.cells[b, p, 0], targets.cells[b, p, 1]
    maps[b, :, rows, cols] = params
    return PaintedROMP((targets.heatmap == 1).float(), maps)


def _raw(criterion, model, batch) -> dict[str, float]:
    return {k: float(v) for k, v in criterion(model, batch).raw_terms.items()}


def test_romp_perfect_prediction_scores_zero_on_every_label_term(smpl):
    batch = _romp_batch(smpl)
    out = Criterion('romp', smpl)(_perfect_romp(batch), batch)
    assert set(out.terms) == set(LABEL_TERMS) | {'center', 'prior_pose', 'prior_shape'}
    for name in LABEL_TERMS + ('center',):
        assert out.raw_terms[name] == pytest.approx(0.0, abs=2e-4), name
    assert out.raw_terms['prior_shape'] == 0.0  # everybody has a shape label
    assert out.batch_ids.tolist() == [0, 0, 1, 1, 1]
    assert out.pred_keypoints_2d.shape == (5, 71, 2)
    assert torch.allclose(out.pred_cams, out.target_cams, atol=1e-5)
    assert out.center_maps.shape == out.target_center_maps.shape == (2, 1, 16, 16)
    total = sum(out.terms.values())
    assert out.total.item() == pytest.approx(float(total), rel=1e-6)


def test_romp_perturbations_move_the_right_terms(smpl):
    batch = _romp_batch(smpl)
    criterion = Criterion('romp', smpl)
    model = _perfect_romp(batch)
    base = _raw(criterion, model, batch)
    occupied = model.params.detach().abs().sum(1, keepdim=True) > 0  # (B, 1, M, M)

    def perturbed(channel: slice, delta) -> dict[str, float]:
        with torch.no_grad():
            saved = model.params.clone()
            model.params[:, channel] += torch.as_tensor(delta).view(1, -1, 1, 1) * occupied
        try:
            return _raw(criterion, model, batch)
        finally:
            with torch.no_grad():
                model.params.copy_(saved)

    # shifting the camera: only the 2D keypoints and the camera
    moved = perturbed(slice(1, 2), 0.1)
    assert moved['keypoints_2d'] == pytest.approx(0.1, rel=1e-3)
    assert moved['cam'] == pytest.approx(0.1, rel=1e-3)
    for name in ('pose', 'shape', 'joints_3d', 'pa_joints_3d'):
        assert moved[name] == pytest.approx(base[name], abs=1e-6), name
    # a different shape: the shape term (and the joints it moves), not pose or camera
    fatter = perturbed(slice(135, 136), 1.5)
    assert fatter['shape'] == pytest.approx(1.5 / 20, rel=1e-3)
    assert fatter['joints_3d'] > base['joints_3d'] + 1e-3
    for name in ('pose', 'cam'):
        assert fatter[name] == pytest.approx(base[name], abs=1e-6), name
    # a rotated global orientation: pose and root-relative 3D, but not PA-MPJPE
    turn = matrix_to_rot6d(axis_angle_to_matrix(torch.tensor([0.0, 0.4, 0.0])))
    rot = perturbed(slice(3, 9), turn - matrix_to_rot6d(torch.eye(3)))
    assert rot['pose'] > base['pose'] + 0.1 and rot['joints_3d'] > base['joints_3d'] + 1e-2
    assert rot['pa_joints_3d'] == pytest.approx(base['pa_joints_3d'], abs=1e-4)
    assert rot['shape'] == pytest.approx(base['shape'], abs=1e-6)


@pytest.mark.parametrize('term', LABEL_TERMS)
def test_romp_2d_only_batch_gives_exact_zero_terms_with_zero_gradient(smpl, term):
    batch = _romp_batch(smpl, labels=False)
    model = _perfect_romp(_romp_batch(smpl))  # any maps: nobody here has the labels
    with torch.no_grad():
        model.params[:, 1] += 0.1  # keypoints off by 0.1
    zero = dict.fromkeys(LossWeights().as_dict(), 0.0)
    criterion = Criterion('romp', smpl, LossWeights(**{**zero, term: 1.0}))
    out = criterion(model, batch)
    if term == 'keypoints_2d':  # the one label this batch has
        assert out.total.item() > 0
        return
    assert out.total.item() == 0.0 and out.raw_terms[term].item() == 0.0
    out.total.backward()
    assert model.params.grad is not None and (model.params.grad == 0).all()
    assert model.center.grad is None  # the center term is off: its map is not even used


def test_romp_partial_labels_are_finite_with_default_weights(smpl):
    labelled = _make_sample(smpl, 4, ROMP_SIZE, (0.3, -0.6), (5.0, 7.0), 180.0)
    flat = _make_sample(smpl, 5, ROMP_SIZE, (0.5,), (6.0,), 180.0, labels=False)
    empty = dataclasses.replace(flat, **empty_people(0))  # an image without people
    batch = collate_samples([labelled, flat, empty])
    gen = torch.Generator().manual_seed(0)
    model = PaintedROMP(torch.rand(3, 1, 16, 16, generator=gen),
                        torch.randn(3, 145, 16, 16, generator=gen) * 0.1)
    out = Criterion('romp', smpl)(model, batch)
    assert torch.isfinite(out.total) and all(torch.isfinite(v) for v in out.terms.values())
    assert out.cam_mask.tolist() == [True, True, False]
    out.total.backward()
    assert torch.isfinite(model.params.grad).all() and torch.isfinite(model.center.grad).all()


def test_batch_without_people_trains_the_background_only(smpl):
    flat = _make_sample(smpl, 5, ROMP_SIZE, (0.5,), (6.0,), 180.0, labels=False)
    batch = collate_samples([dataclasses.replace(flat, **empty_people(0))] * 2)
    model = PaintedROMP(torch.full((2, 1, 16, 16), 0.2), torch.zeros(2, 145, 16, 16))
    out = Criterion('romp', smpl)(model, batch)
    assert out.raw_terms['center'] > 0 and out.batch_ids.numel() == 0
    assert all(out.raw_terms[name] == 0 for name in LABEL_TERMS + ('prior_pose',))
    out.total.backward()
    assert (model.center.grad > 0).all()  # every score pushed down to 0
    assert (model.params.grad == 0).all()


def test_romp_network_gradients_reach_the_backbone_under_bf16_autocast(smpl):
    torch.manual_seed(0)
    batch = collate_samples([_make_sample(smpl, 0, ROMP_SIZE, (-0.9, 0.8), (6.0, 9.0), 160.0)])
    model = build_model('romp', 'resnet50', input_size=ROMP_SIZE)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = Criterion('romp', smpl)(model, batch)
    assert out.total.dtype == torch.float32 and torch.isfinite(out.total)
    assert all(v.dtype == torch.float32 for v in out.terms.values())
    out.total.backward()
    stem = model.backbone.conv1.weight.grad
    assert stem is not None and torch.isfinite(stem).all() and stem.abs().sum() > 0


@pytest.mark.slow
def test_romp_network_overfits_one_batch(smpl):
    torch.manual_seed(0)
    batch = collate_samples([_make_sample(smpl, 0, ROMP_SIZE, (-0.9, 0.8), (6.0, 9.0), 160.0)])
    model = build_model('romp', 'resnet50', input_size=ROMP_SIZE)
    criterion = Criterion('romp', smpl)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    totals = []
    for _ in range(4):
        optimizer.zero_grad()
        out = criterion(model, batch)
        out.total.backward()
        optimizer.step()
        totals.append(out.total.item())
    assert totals[-1] < 0.8 * totals[0], totals


# -- BEV ---------------------------------------------------------------------------------------
class PaintedBEV(nn.Module):
    """A stand-in BEV network: maps and per-person parameters set by the test.

    ``regress_params`` returns the stored parameters of the people in the criterion's order
    (image, then person slot), after the cameras it is given, like BEVNet's.
    """

    def __init__(self, maps: BEVMaps, params: torch.Tensor, anchors: torch.Tensor) -> None:
        super().__init__()
        self.center_fv = nn.Parameter(maps.center_maps_fv.clone())
        self.center_3d = nn.Parameter(maps.center_maps_3d.clone())
        self.cams = nn.Parameter(maps.cam_maps_3d.clone())
        self.params = nn.Parameter(params.clone())
        self.cam3d_anchors = anchors

    def forward(self, images: torch.Tensor) -> BEVMaps:
        return BEVMaps(center_maps_3d=self.center_3d * 1.0, cam_maps_3d=self.cams * 1.0,
                       center_maps_fv=self.center_fv * 1.0,
                       param_features=torch.zeros(images.shape[0], 1, 1, 1))

    def regress_params(self, features, cams, batch_ids):
        return torch.cat([cams, self.params[:cams.shape[0]]], dim=1)


def _bev_batch(body, focal: float):
    return collate_samples([
        _make_sample(body, 2, BEV_SIZE, (-1.0, 0.7), (5.0, 8.0), focal, weak_keypoints=False,
                     age=0.3),
        _make_sample(body, 3, BEV_SIZE, (0.2,), (6.5,), focal, weak_keypoints=False)])


def _perfect_bev(batch) -> PaintedBEV:
    size, bins = BEV_SIZE // 4, BEV_SIZE // 8
    anchors = cam3d_anchors(60.0, size)
    targets = build_center_targets(batch.keypoints_2d, batch.bbox, batch.person_mask, size)
    hips = batch.joints_3d[:, :, list(BEV_ROOT_JOINTS)].mean(2)  # (B, P, 3)
    cams, _ = camera_targets(hips, batch.camera_k[:, None], BEV_SIZE)
    b, p = targets.valid.nonzero(as_tuple=True)
    z = depth_bins(cams[b, p, 0], anchors)
    rows, cols = targets.cells[b, p, 0], targets.cells[b, p, 1]
    center_3d = torch.zeros(batch.batch_size, bins, size, size)
    center_3d[b, z, rows, cols] = 1.0
    cam_maps = torch.zeros(batch.batch_size, bins, size, size, 3)
    cam_maps[b, z, rows, cols] = cams[b, p][:, [0, 2, 1]]
    rot6d = matrix_to_rot6d(axis_angle_to_matrix(batch.smpl_pose[b, p, :66].reshape(-1, 22, 3)))
    params = torch.cat([rot6d.reshape(-1, 132), batch.smpl_shape[b, p]], dim=1)
    maps = BEVMaps(center_maps_3d=center_3d, cam_maps_3d=cam_maps,
                   center_maps_fv=(targets.heatmap == 1).float(), param_features=None)
    return PaintedBEV(maps, params, anchors)


def test_bev_perfect_prediction_through_the_60_degree_camera(smpla):
    """Labels seen with the networks' own 60-degree camera: BEV's perspective keypoints,
    hip-centred root, depth bins and age must all agree with the painted prediction."""
    batch = _bev_batch(smpla, focal=BEV_SIZE / 2 / TAN30)
    out = Criterion('bev', smpla)(_perfect_bev(batch), batch)
    assert set(out.terms) == set(LossWeights().as_dict())
    for name in ('pose', 'shape', 'joints_3d', 'pa_joints_3d', 'cam', 'age', 'center',
                 'center_3d', 'relative_depth'):
        assert out.raw_terms[name] == pytest.approx(0.0, abs=2e-4), name
    # BEV's depth is 1 / (s tan 30 + 1e-3): 0.5 % short at 5 m, the 2D error stays tiny
    assert out.raw_terms['keypoints_2d'] < 3e-3
    assert out.pred_cams.shape == (3, 3)


def test_bev_depth_target_follows_the_real_focal_length(smpla):
    """The same people seen with a longer lens look nearer to the networks' camera: the 3D
    center targets move to nearer bins and the perfect painted prediction still fits."""
    wide = _bev_batch(smpla, focal=BEV_SIZE / 2 / TAN30)
    tele = _bev_batch(smpla, focal=2.0 * BEV_SIZE / 2 / TAN30)
    bins = []
    for batch in (wide, tele):
        model = _perfect_bev(batch)
        out = Criterion('bev', smpla)(model, batch)
        assert out.raw_terms['center_3d'] == pytest.approx(0.0, abs=2e-4)
        assert out.raw_terms['cam'] == pytest.approx(0.0, abs=1e-5)
        bins.append(model.center_3d.detach().nonzero()[:, 1])
    assert (bins[1] < bins[0]).all()


def test_bev_without_3d_labels_reads_the_predicted_depth_and_skips_3d_terms(smpla):
    def make(labels):
        return collate_samples([_make_sample(smpla, 6, BEV_SIZE, (0.0, 1.0), (6.0, 8.0), 300.0,
                                             weak_keypoints=False, labels=labels)])

    model = _perfect_bev(make(labels=True))
    out = Criterion('bev', smpla)(model, make(labels=False))
    for name in ('pose', 'shape', 'joints_3d', 'pa_joints_3d', 'cam', 'age', 'center_3d',
                 'relative_depth'):
        assert out.raw_terms[name].item() == 0.0, name
    assert not out.cam_mask.any()
    # the cameras were read at the predicted volume's best bin, where the right ones are
    assert out.raw_terms['keypoints_2d'] < 3e-3
    out.total.backward()
    assert torch.isfinite(model.cams.grad).all() and model.cams.grad.abs().sum() > 0


@pytest.mark.slow
def test_bev_network_trains_on_one_batch(smpla):
    torch.manual_seed(0)
    batch = collate_samples([_make_sample(smpla, 2, BEV_SIZE, (-1.0, 0.7), (5.0, 8.0), 300.0,
                                          weak_keypoints=False)])
    model = build_model('bev', 'hrnet32', input_size=BEV_SIZE)
    criterion = Criterion('bev', smpla)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    totals = []
    for step in range(4):
        optimizer.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = criterion(model, batch)
        assert torch.isfinite(out.total)
        out.total.backward()
        if step == 0:
            grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)
            assert sum(float(g.abs().sum()) for g in grads) > 0
            assert model.transformer[0].weight.grad.abs().sum() > 0  # the regressor too
        optimizer.step()
        totals.append(out.total.item())
    # randomly initialised BEV heads start with huge center scores: a steady descent
    steady = all(b < a for a, b in zip(totals[:-1], totals[1:], strict=True))
    assert steady and totals[-1] < 0.9 * totals[0], totals


def test_criterion_rejects_mismatched_setups(smpl, smpla):
    with pytest.raises(ValueError, match='unknown model'):
        Criterion('hmr', smpl)
    with pytest.raises(ValueError, match='10 betas'):
        Criterion('romp', smpla)
    with pytest.raises(ValueError, match='num_betas'):
        Criterion('bev', nn.Linear(2, 2))
