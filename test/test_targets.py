"""Training targets: body centers, Gaussian heatmaps, collision handling, cameras, BEV depth."""

from __future__ import annotations

import math

import pytest
import torch

from romp_ros.core.body.joint_names import joint_index
from romp_ros.core.nets.coordmaps import cam3d_anchors
from romp_ros.train.targets import (
    COLLISION_DISTANCE,
    COLLISION_FACTOR,
    build_center_targets,
    build_center_targets_3d,
    camera_targets,
    center_cells,
    depth_bins,
    gaussian_heatmap_3d,
    heatmap_radius,
    reference_depth,
    separate_close_centers,
)

JOINTS = 71
TAN30 = math.tan(math.radians(30.0))


def _people(points: list[list[tuple[str, float, float]]], boxes=None):
    """(1, P, 71, 3) keypoints from named (u, v) points per person, boxes (1, P, 4), mask."""
    people = len(points)
    kps = torch.zeros(1, people, JOINTS, 3)
    for p, named in enumerate(points):
        for name, u, v in named:
            kps[0, p, joint_index(name)] = torch.tensor([u, v, 1.0])
    bbox = torch.full((1, people, 4), math.nan) if boxes is None else torch.tensor([boxes])
    return kps, bbox.float(), torch.ones(1, people, dtype=torch.bool)


def _upright_person(cx: float, cy: float, height: float = 1.0, width: float = 0.4):
    """Torso joints around (cx, cy) plus head and ankles spanning ``height`` x ``width``."""
    h, w = height / 2, width / 2
    return [('neck', cx, cy - 0.2 * h), ('pelvis', cx, cy + 0.2 * h),
            ('l_shoulder', cx + 0.5 * w, cy - 0.2 * h), ('r_shoulder', cx - 0.5 * w, cy - 0.2 * h),
            ('l_hip', cx + 0.3 * w, cy + 0.2 * h), ('r_hip', cx - 0.3 * w, cy + 0.2 * h),
            ('head', cx, cy - h), ('l_ankle', cx + w, cy + h), ('r_ankle', cx - w, cy + h)]


def test_center_is_the_torso_mean_and_the_heatmap_has_the_documented_radius():
    kps, bbox, mask = _people([_upright_person(0.1, -0.2, height=1.0, width=0.4)])
    size = 64
    targets = build_center_targets(kps, bbox, mask, size)
    torso = kps[0, 0, [joint_index(n) for n in ('neck', 'pelvis', 'l_shoulder', 'r_shoulder',
                                                 'l_hip', 'r_hip')], :2].mean(0)
    assert torch.allclose(targets.centers[0, 0], torso, atol=1e-6)
    # extent of the labelled keypoints: height 1.0, width 0.4
    radius = int(math.floor(math.hypot(0.5, 0.2) * size / 16 + size / 32))
    assert targets.radius[0, 0] == radius == 4
    row, col = targets.cells[0, 0].tolist()
    assert (row, col) == (int((torso[1] + 1) / 2 * size), int((torso[0] + 1) / 2 * size))
    heat = targets.heatmap[0, 0]
    assert heat[row, col] == 1.0 and (heat == 1.0).sum() == 1
    sigma = (2 * radius + 1) / 6
    for step in range(1, radius + 1):
        expected = math.exp(-step ** 2 / (2 * sigma ** 2))
        assert heat[row, col + step].item() == pytest.approx(expected, rel=1e-5)
        assert heat[row - step, col].item() == pytest.approx(expected, rel=1e-5)
    assert heat[row, col + radius + 1] == 0.0 and heat[row + radius + 1, col] == 0.0
    corner = math.exp(-2 * radius ** 2 / (2 * sigma ** 2))
    assert heat[row + radius, col + radius].item() == pytest.approx(corner, rel=1e-5)


def test_radius_grows_with_the_person_and_the_map():
    small = heatmap_radius(torch.tensor([0.0, 0.0]), 64)
    tall = heatmap_radius(torch.tensor([2.0, 2.0]), 64)
    assert small == 2 and tall == 7  # M/32, and floor(sqrt(2) * 4 + 2)
    assert heatmap_radius(torch.tensor([2.0, 2.0]), 128) == 15


def test_center_fallbacks_all_keypoints_then_box_then_none():
    # no torso joint: the mean of three other joints
    limbs = [('l_wrist', 0.2, 0.1), ('r_wrist', -0.2, 0.1), ('head', 0.0, -0.4)]
    # one torso joint only and two others: still the mean of all three
    one_torso = [('neck', 0.5, 0.5), ('l_knee', 0.6, 0.7), ('r_knee', 0.4, 0.7)]
    kps, _, mask = _people([limbs, one_torso, [], [], [('neck', 0.0, 0.0)]])
    bbox = torch.full((1, 5, 4), math.nan)
    bbox[0, 2] = torch.tensor([-0.5, -0.8, 0.1, 0.6])  # box-only person
    bbox[0, 3] = torch.tensor([0.2, 0.2, 0.2, 0.5])  # empty box: no center
    targets = build_center_targets(kps, bbox, mask, 64)
    assert targets.valid.tolist() == [[True, True, True, False, False]]
    assert torch.allclose(targets.centers[0, 0], torch.tensor([0.0, -0.2 / 3]), atol=1e-6)
    assert torch.allclose(targets.centers[0, 1], torch.tensor([0.5, 1.9 / 3]), atol=1e-6)
    # horizontally centred, 30 % of the height below the top
    assert torch.allclose(targets.centers[0, 2], torch.tensor([-0.2, -0.8 + 0.3 * 1.4]),
                          atol=1e-6)
    assert (targets.heatmap == 1.0).sum() == 3


def test_people_outside_the_input_or_padded_get_no_target():
    kps, bbox, mask = _people([_upright_person(0.0, 0.0), _upright_person(0.5, 0.5)])
    kps[0, 0, :, 0] += 1.5  # every keypoint of person 0 right of the input
    mask[0, 1] = False  # person 1 is padding
    targets = build_center_targets(kps, bbox, mask, 32)
    assert not targets.valid.any()
    assert targets.heatmap.sum() == 0


def _reference_pairs(centers, valid):
    """The reference's sequential pairing rule, written as the plain loop it is."""
    count = centers.shape[0]
    partner = [-1] * count
    for i in range(count):
        if not valid[i]:
            continue
        dists = [(float((centers[j] - centers[i]).norm()), j) for j in range(count)
                 if j != i and valid[j] and float((centers[j] - centers[i]).norm()) > 0]
        if not dists:
            continue
        dist, j = min(dists)
        if dist < COLLISION_DISTANCE and partner[j] < 0:
            partner[i] = j
    return partner


def test_collision_pushes_two_overlapping_centers_apart_into_two_peaks():
    size = 64
    people = [_upright_person(0.001, 0.0), _upright_person(0.004, 0.0)]
    kps, bbox, mask = _people(people)
    plain = build_center_targets(kps, bbox, mask, size, collision_aware=False)
    assert plain.cells[0, 0].tolist() == plain.cells[0, 1].tolist()  # one cell for both
    assert (plain.heatmap == 1.0).sum() == 1
    car = build_center_targets(kps, bbox, mask, size)
    assert car.cells[0, 0].tolist() != car.cells[0, 1].tolist()
    assert (car.heatmap == 1.0).sum() == 2
    # moved symmetrically along their line, by the reference's amount
    before, after = plain.centers[0], car.centers[0]
    shift = after - before
    assert torch.allclose(shift[0], -shift[1], atol=1e-7)
    gap = float((before[1] - before[0]).norm()) + 1e-4
    radius = car.radius[0]
    least = float(radius.sum() + 1) * 2 / size
    expected = abs((least - gap) / gap) * (0.003 + 1e-4) * COLLISION_FACTOR / 2
    assert shift[1, 0].item() == pytest.approx(expected, rel=1e-4)
    assert shift[0, 0] < 0 < shift[1, 0]


def test_collision_leaves_distant_people_and_follows_the_sequential_pairing():
    size = 64
    far = [_upright_person(-0.6, 0.0), _upright_person(0.6, 0.0)]
    kps, bbox, mask = _people(far)
    targets = build_center_targets(kps, bbox, mask, size)
    plain = build_center_targets(kps, bbox, mask, size, collision_aware=False)
    assert torch.equal(targets.centers, plain.centers)
    # a chain of close people: who gets paired must match the plain sequential loop
    gen = torch.Generator().manual_seed(3)
    centers = (torch.rand(4, 7, 2, generator=gen) - 0.5) * 0.4
    valid = torch.rand(4, 7, generator=gen) > 0.15
    radius = torch.full((4, 7), 3, dtype=torch.long)
    moved = separate_close_centers(centers, valid, radius, size)
    assert (moved - centers).abs().amax() > 0.01  # the layout does collide
    for b in range(4):
        partner = _reference_pairs(centers[b], valid[b])
        expected = centers[b].clone()
        for i, j in enumerate(partner):
            if j < 0:
                continue
            gap = float((centers[b, j] - centers[b, i]).norm()) + 1e-4
            least = float(radius[b, i] + radius[b, j] + 1) * 2 / size
            if gap < least:
                offset = abs((least - gap) / gap) * (centers[b, j] - centers[b, i] + 1e-4) \
                    * COLLISION_FACTOR
                expected[i] -= offset / 2
                expected[j] += offset / 2
        expected = torch.where(valid[b, :, None], expected.clamp(-0.96, 0.96), centers[b])
        assert torch.allclose(moved[b], expected, atol=1e-6)


def test_center_cells_clip_to_the_map():
    cells = center_cells(torch.tensor([[-1.0, -1.0], [0.999, 0.0], [0.0, 0.5]]), 16)
    assert cells.tolist() == [[0, 0], [8, 15], [12, 8]]  # (row, column)


def test_camera_target_is_the_projection_scale_and_position():
    size = 256
    k_mat = torch.tensor([[300.0, 0.0, 120.0], [0.0, 320.0, 140.0], [0.0, 0.0, 1.0]])
    root = torch.tensor([[0.4, -0.2, 5.0]])
    cams, ok = camera_targets(root, k_mat, size)
    assert ok.all()
    s, tx, ty = cams[0].tolist()
    assert s == pytest.approx((300 + 320) / (size * 5.0), abs=1e-6)
    assert tx == pytest.approx(2 * (300 * 0.4 / 5 + 120) / size - 1, abs=1e-6)
    assert ty == pytest.approx(2 * (320 * -0.2 / 5 + 140) / size - 1, abs=1e-6)
    # to first order, the weak-perspective camera reproduces the pinhole projection of points
    # near the root (square pixels here so one scale fits both axes)
    k_sq = torch.tensor([[300.0, 0.0, 120.0], [0.0, 300.0, 140.0], [0.0, 0.0, 1.0]])
    cams, _ = camera_targets(root, k_sq, size)
    body = torch.tensor([[0.05, 0.3, 0.0], [-0.1, -0.4, 0.0]])
    cam_pts = body + root
    pinhole = 2 * (cam_pts[:, :2] / cam_pts[:, 2:] * 300 + torch.tensor([120.0, 140.0])) \
        / size - 1
    weak = body[:, :2] * cams[0, 0] + cams[0, 1:]
    assert torch.allclose(weak, pinhole, atol=1e-6)


def test_camera_target_rejects_unknown_camera_and_bad_depth():
    k_mat = torch.tensor([[300.0, 0.0, 128.0], [0.0, 300.0, 128.0], [0.0, 0.0, 1.0]])
    nan_k = torch.full((3, 3), math.nan)
    points = torch.tensor([[0.0, 0.0, 4.0], [0.0, 0.0, -1.0], [math.nan, 0.0, 4.0]])
    cams, ok = camera_targets(points, k_mat, 256)
    assert ok.tolist() == [True, False, False]
    assert torch.isfinite(cams).all() and (cams[1:] == 0).all()
    _, ok = camera_targets(points[:1], nan_k, 256)
    assert not ok.any()


@pytest.mark.parametrize('focal_scale', [1.0, 1.7])
def test_bev_depth_bin_of_a_person_at_a_known_depth_and_focal(focal_scale):
    """A person at the depth of anchor k for the 60-degree camera, seen with focal f, sits
    at depth d_k * f / f60; its target bin must be k."""
    size, map_size = 256, 64
    anchors = cam3d_anchors(60.0, map_size)  # (32,)
    f60 = size / 2 / TAN30
    focal = f60 * focal_scale
    k_mat = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    wanted = torch.arange(1, anchors.numel())
    anchor_depth = 1.0 / (anchors[wanted] * TAN30)  # depth of each anchor, 60-degree camera
    points = torch.zeros(len(wanted), 3)
    points[:, 2] = anchor_depth * focal / f60
    cams, ok = camera_targets(points, k_mat, size)
    assert ok.all()
    assert torch.allclose(reference_depth(cams[:, 0]), anchor_depth, rtol=1e-5)
    assert depth_bins(cams[:, 0], anchors).tolist() == wanted.tolist()
    # between two anchors: the closer scale wins; nearer than bin 1 is still bin 1
    mid = (anchors[10] * 0.7 + anchors[11] * 0.3)[None]
    assert depth_bins(mid, anchors).item() == 10
    assert depth_bins(torch.tensor([50.0]), anchors).item() == 1


def test_bev_3d_heatmap_shape_and_image_validity():
    size, depth_count = 64, 32
    anchors = cam3d_anchors(60.0, size)
    kps, bbox, mask = _people([_upright_person(-0.5, 0.0), _upright_person(0.5, 0.1)])
    kps, bbox, mask = (torch.cat([kps, kps]), torch.cat([bbox, bbox]), torch.cat([mask, mask]))
    targets = build_center_targets(kps, bbox, mask, size)
    scales = torch.stack([anchors[[5, 25]], anchors[[5, 25]]])  # near and far people
    has_scale = torch.tensor([[True, True], [True, False]])  # image 1 lacks one depth
    t3d = build_center_targets_3d(targets, scales, has_scale, anchors)
    assert t3d.image_valid.tolist() == [True, False]
    assert t3d.valid.tolist() == [[True, True], [True, False]]
    heat = t3d.heatmap
    assert heat.shape == (2, depth_count, size, size)
    assert (heat[0] == 1.0).sum() == 2 and (heat[1] == 1.0).sum() == 1
    for person, (half_depth, bin_) in enumerate([(2, 5), (3, 25)]):
        z, y, x = t3d.cells[0, person].tolist()
        assert z == bin_
        assert heat[0, z, y, x] == 1.0
        assert heat[0, z + half_depth, y, x] > 0 and heat[0, z + half_depth + 1, y, x] == 0
        share = z / depth_count
        radius = math.floor((1 - share) / 2 * size / 16 + size / 32)
        assert heat[0, z, y, x + radius] > 0 and heat[0, z, y, x + radius + 1] == 0
        width, depth = 2 * radius + 1, 2 * half_depth + 1
        sigma = math.sqrt(2 * (width / 2) ** 2 + (depth / 2) ** 2) / 3
        assert heat[0, z + 1, y, x].item() == pytest.approx(math.exp(-1 / sigma ** 2), rel=1e-5)


def test_3d_heatmap_clips_at_the_volume_border():
    cells = torch.tensor([[[1, 0, 63]]])
    heat = gaussian_heatmap_3d(cells, torch.ones(1, 1, dtype=torch.bool), 32, 64)
    assert heat[0, 1, 0, 63] == 1.0 and torch.isfinite(heat).all()
    assert heat[0, 0, 0, 63] > 0 and heat[0, 3, 0, 63] > 0 and heat[0, 4, 0, 63] == 0


def test_empty_batch_has_empty_targets():
    kps = torch.zeros(2, 0, JOINTS, 3)
    targets = build_center_targets(kps, torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=bool), 16)
    assert targets.heatmap.shape == (2, 1, 16, 16) and targets.heatmap.sum() == 0
    t3d = build_center_targets_3d(targets, torch.zeros(2, 0), torch.zeros(2, 0, dtype=bool),
                                  cam3d_anchors(60.0, 16))
    assert not t3d.image_valid.any() and t3d.heatmap.sum() == 0
