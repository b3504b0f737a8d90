"""Training targets of ROMP and BEV built from a batch's labels (batched torch, any device).

What the networks are supervised with, and where (docs/losses.md has the formulas):

* **Body centers** (:func:`body_centers`): the mean of the labelled torso keypoints; without
  two torso joints, the mean of all labelled keypoints (at least three); without those, a
  point of the bounding box (horizontally centred, 30 % of its height below the top, the
  reference's rule for box-only labels). A center must lie strictly inside the input.
* **Center heatmaps** (:func:`build_center_targets`): one Gaussian per person whose radius
  grows with the person's size, combined by maximum, with exactly 1 at each center cell.
  Centers closer than ROMP's collision distance are first pushed apart (ROMP's
  collision-aware representation), so two overlapping people keep two distinct peaks and
  two distinct cells.
* **Center cells**: the map cell of each person, where the predicted parameters are sampled
  during training (the same cell as the heatmap's peak).
* **Camera targets** (:func:`camera_targets`): the weak-perspective camera [s, tx, ty] that a
  labelled 3D point (the body root) has in the normalised frame of the S x S input, through
  the sample's real intrinsics.
* **BEV 3D centers** (:func:`build_center_targets_3d`): the depth bin of each person's
  camera scale among BEV's anchors and a 3D Gaussian at (bin, row, column).

Frames and units: normalised coordinates span the square input, (-1, -1) its top-left corner
and (1, 1) its bottom-right (x right, y down), a pixel u maps to ``2 u / S - 1`` (pixel edges,
as ``romp_ros.core.geometry.projection``); cells are (row, column) = (y, x) map indices.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch

from romp_ros.core.body.joint_names import joint_index

# Torso joints whose mean is the body center. The reference (BEV's image_base) uses the
# first twelve (its 'Neck', 'Neck_LSP', shoulders, 'Pelvis', the LSP and SMPL hips and pelvis,
# collars); the H36M torso joints are added so that sources labelled in that convention
# get the same center.
TORSO_JOINT_NAMES: tuple[str, ...] = (
    'neck', 'lsp_neck', 'r_shoulder', 'l_shoulder', 'mpii_pelvis', 'lsp_r_hip', 'lsp_l_hip',
    'pelvis', 'l_hip', 'r_hip', 'l_collar', 'r_collar',
    'h36m_neck', 'h36m_r_shoulder', 'h36m_l_shoulder', 'h36m_pelvis', 'h36m_r_hip',
    'h36m_l_hip',
)
# A center from torso joints needs more than this many of them; from any joints, more than
# MIN_ANY_JOINTS (the reference's rule).
MIN_TORSO_JOINTS = 1
MIN_ANY_JOINTS = 2
# Box-only people: the torso center sits this far down the box (reference: 0.7 top + 0.3 bottom).
BOX_CENTER_HEIGHT = 0.3

# ROMP's collision-aware representation (CAR): a person whose nearest neighbour's center is
# closer than this (normalised units; 2 * 64 / 512 in the reference) is pushed away from it
# when their Gaussians would overlap, by this share of the overlap.
COLLISION_DISTANCE = 0.25
COLLISION_FACTOR = 0.2
# Adjusted centers are clipped to the input and kept off its very border (reference: 0.96).
EDGE_LIMIT = 0.96

# Cameras closer than this (metres) give no camera target (the scale would explode).
MIN_TARGET_DEPTH = 0.05
REFERENCE_FOV_DEG = 60.0


@dataclass(frozen=True)
class CenterTargets:
    """2D body-center targets of a batch (B images, P person slots, M x M maps).

    Attributes:
        heatmap: (B, 1, M, M) float32 in [0, 1]; exactly 1 at each person's cell.
        centers: (B, P, 2) float32 normalised (x, y) centers, after the collision adjustment;
            undefined (zeros) where ``valid`` is False.
        cells: (B, P, 2) int64 (row, column) map cells of the centers.
        radius: (B, P) int64 Gaussian radius in cells.
        valid: (B, P) bool: a real person with a center inside the input.
    """

    heatmap: torch.Tensor
    centers: torch.Tensor
    cells: torch.Tensor
    radius: torch.Tensor
    valid: torch.Tensor


@dataclass(frozen=True)
class CenterTargets3D:
    """BEV's 3D center targets (D depth bins, M x M maps).

    Attributes:
        heatmap: (B, D, M, M) float32 in [0, 1]; exactly 1 at each person's (bin, row, col).
        cells: (B, P, 3) int64 (depth bin, row, column); undefined where ``valid`` is False.
        valid: (B, P) bool: the person has a 2D center and a camera target.
        image_valid: (B,) bool: the image has people and every one of them has a 3D
            target, the condition for supervising its 3D map (a person left out would be
            taught as background).
    """

    heatmap: torch.Tensor
    cells: torch.Tensor
    valid: torch.Tensor
    image_valid: torch.Tensor


def body_centers(keypoints_2d: torch.Tensor, bbox: torch.Tensor,
                 person_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The body center of each person, from its 2D labels.

    Args:
        keypoints_2d: (B, P, J, 3) normalised (u, v, weight); weight > 0 means labelled.
        bbox: (B, P, 4) normalised (u_min, v_min, u_max, v_max); non-finite or empty boxes
            are ignored.
        person_mask: (B, P) bool, real people.

    Returns:
        centers (B, P, 2) normalised (x, y), zeros where invalid, and valid (B, P) bool.
    """
    labelled = _labelled_keypoints(keypoints_2d)  # (B, P, J)
    points = torch.where(labelled[..., None], keypoints_2d[..., :2].float(),
                         torch.zeros_like(keypoints_2d[..., :2], dtype=torch.float32))
    torso = torch.tensor([joint_index(n) for n in TORSO_JOINT_NAMES
                          if joint_index(n) < keypoints_2d.shape[2]],
                         dtype=torch.long, device=keypoints_2d.device)
    torso_mask = torch.zeros_like(labelled)
    torso_mask[..., torso] = True
    torso_mask &= labelled
    torso_count = torso_mask.sum(-1)  # (B, P)
    any_count = labelled.sum(-1)
    torso_mean = _masked_point_mean(points, torso_mask)  # (B, P, 2)
    any_mean = _masked_point_mean(points, labelled)
    box, box_ok = _finite_boxes(bbox)
    box_center = torch.stack((0.5 * (box[..., 0] + box[..., 2]),
                              (1 - BOX_CENTER_HEIGHT) * box[..., 1]
                              + BOX_CENTER_HEIGHT * box[..., 3]), dim=-1)  # (B, P, 2)
    from_torso = torso_count > MIN_TORSO_JOINTS
    from_any = ~from_torso & (any_count > MIN_ANY_JOINTS)
    from_box = ~from_torso & ~from_any & box_ok
    centers = torch.where(from_torso[..., None], torso_mean,
                          torch.where(from_any[..., None], any_mean, box_center))
    inside = (centers > -1).all(-1) & (centers < 1).all(-1)
    valid = person_mask & (from_torso | from_any | from_box) & inside
    return torch.where(valid[..., None], centers, torch.zeros_like(centers)), valid


def person_extent(keypoints_2d: torch.Tensor, bbox: torch.Tensor) -> torch.Tensor:
    """(B, P, 2) normalised (height, width) of each person, the size its heatmap scales with.

    Like the reference, the extent of the labelled keypoints (at least two) comes first; the
    label box (clipped to the input) is the fallback; without either it is zero (the
    minimum radius).
    """
    labelled = _labelled_keypoints(keypoints_2d)  # (B, P, J)
    uv = keypoints_2d[..., :2].float()
    big = torch.finfo(torch.float32).max
    lo = torch.where(labelled[..., None], uv, torch.full_like(uv, big)).amin(dim=2)  # (B,P,2)
    hi = torch.where(labelled[..., None], uv, torch.full_like(uv, -big)).amax(dim=2)
    kp_ok = labelled.sum(-1) >= 2
    kp_hw = (hi - lo).flip(-1)  # (height, width)
    box, box_ok = _finite_boxes(bbox)
    box = box.clamp(-1.0, 1.0)
    box_hw = torch.stack((box[..., 3] - box[..., 1], box[..., 2] - box[..., 0]), dim=-1)
    zero = torch.zeros_like(box_hw)
    return torch.where(kp_ok[..., None], kp_hw,
                       torch.where(box_ok[..., None], box_hw, zero)).clamp(min=0.0)


def heatmap_radius(extent: torch.Tensor, map_size: int) -> torch.Tensor:
    """ROMP's Gaussian radius in cells: ``floor(|extent / 2| * M / 16 + M / 32)``.

    Args:
        extent: (...,  2) normalised (height, width).
        map_size: M.

    Returns:
        (...) int64; M / 32 for a point-sized person, about M / 8 for one filling the input.
    """
    half_diagonal = torch.linalg.vector_norm(extent.float() / 2.0, dim=-1)
    return torch.floor(half_diagonal * (map_size / 16.0) + map_size / 32.0).long()


def separate_close_centers(centers: torch.Tensor, valid: torch.Tensor, radius: torch.Tensor,
                           map_size: int) -> torch.Tensor:
    """ROMP's collision-aware representation: push apart centers whose Gaussians overlap.

    Each person whose nearest other person (same image) is closer than
    :data:`COLLISION_DISTANCE` is paired with that neighbour unless the neighbour, earlier in
    the label order, was already paired (the reference's sequential rule, solved here as a
    fixed point over whole batches). If the pair is closer than its radii allow,
    ``(r_i + r_j + 1) * 2 / M``, both centers move apart along their line by half of
    :data:`COLLISION_FACTOR` times the shortfall. All pairs move at once from the original
    positions (the reference moves them one after another; this only differs for chains of
    three or more close people). Centers are then clipped to the input, +-1 becoming
    +-:data:`EDGE_LIMIT`.

    Args:
        centers: (B, P, 2) normalised (x, y).
        valid: (B, P) bool.
        radius: (B, P) int64 heatmap radii in cells.
        map_size: M.

    Returns:
        (B, P, 2) adjusted centers (invalid rows unchanged).
    """
    batch, people = valid.shape
    if people < 2:
        return _clip_centers(centers, valid)
    eye = torch.eye(people, dtype=torch.bool, device=valid.device)
    toward = centers[:, None, :, :] - centers[:, :, None, :]  # (B, P, P, 2): c_j - c_i
    dist = torch.linalg.vector_norm(toward, dim=-1)  # (B, P, P)
    pair_ok = valid[:, :, None] & valid[:, None, :] & ~eye & (dist > 0)
    dist = torch.where(pair_ok, dist, torch.full_like(dist, math.inf))
    nearest_dist, nearest = dist.min(dim=-1)  # (B, P)
    close = valid & (nearest_dist < COLLISION_DISTANCE)
    order = torch.arange(people, device=valid.device).expand(batch, people)
    # paired[i] = close[i] and not (nearest[i] < i and paired[nearest[i]]): each entry only
    # depends on earlier ones, so iterating reaches the unique solution in at most P rounds.
    paired = close
    for _ in range(people):
        updated = close & ~((nearest < order) & paired.gather(1, nearest))
        if torch.equal(updated, paired):
            break
        paired = updated
    partner = centers.gather(1, nearest[..., None].expand(-1, -1, 2))  # (B, P, 2)
    gap = torch.linalg.vector_norm(partner - centers, dim=-1) + 1e-4  # (B, P)
    least = (radius + radius.gather(1, nearest) + 1).float() * 2.0 / map_size
    push = paired & (gap < least)
    offset = ((least - gap) / gap).abs()[..., None] * (partner - centers + 1e-4) \
        * COLLISION_FACTOR  # (B, P, 2)
    offset = torch.where(push[..., None], offset, torch.zeros_like(offset))
    moved = centers - offset / 2.0
    # the partner moves the other way: scatter each pair's half offset onto it
    moved = moved.scatter_add(1, nearest[..., None].expand(-1, -1, 2), offset / 2.0)
    return _clip_centers(moved, valid)


def center_cells(centers: torch.Tensor, map_size: int) -> torch.Tensor:
    """(..., 2) normalised (x, y) -> (..., 2) int64 (row, column) cells of an M x M map."""
    cells = torch.floor((centers.float() + 1.0) / 2.0 * map_size).long().clamp(0, map_size - 1)
    return cells.flip(-1)


def gaussian_heatmap_2d(cells: torch.Tensor, radius: torch.Tensor, valid: torch.Tensor,
                        map_size: int) -> torch.Tensor:
    """ROMP's center heatmap, one Gaussian per person combined by maximum.

    Each person contributes ``exp(-d^2 / (2 sigma^2))`` inside a square of half-side r around
    its cell, with sigma = (2 r + 1) / 6.

    Args:
        cells: (B, P, 2) int64 (row, column).
        radius: (B, P) int64.
        valid: (B, P) bool.
        map_size: M.

    Returns:
        (B, 1, M, M) float32, 1 at every valid cell.
    """
    batch_ids, person_ids = valid.nonzero(as_tuple=True)
    rad = radius[batch_ids, person_ids]  # (N,)
    sigma = (2 * rad + 1).float() / 6.0
    heat = _splat_max((valid.shape[0], map_size, map_size), batch_ids,
                      cells[batch_ids, person_ids], torch.stack((rad, rad), dim=-1),
                      2.0 * sigma * sigma)
    return heat[:, None]


def build_center_targets(keypoints_2d: torch.Tensor, bbox: torch.Tensor,
                         person_mask: torch.Tensor, map_size: int,
                         collision_aware: bool = True) -> CenterTargets:
    """Body centers, their cells and the center heatmap of a batch (see the module doc).

    Args:
        keypoints_2d: (B, P, J, 3) normalised (u, v, weight).
        bbox: (B, P, 4) normalised boxes.
        person_mask: (B, P) bool.
        map_size: M, read from the network's center map.
        collision_aware: apply :func:`separate_close_centers` (ROMP and BEV train with it).
    """
    centers, valid = body_centers(keypoints_2d, bbox, person_mask)
    radius = heatmap_radius(person_extent(keypoints_2d, bbox), map_size)
    if collision_aware:
        centers = separate_close_centers(centers, valid, radius, map_size)
    cells = center_cells(centers, map_size)
    heatmap = gaussian_heatmap_2d(cells, radius, valid, map_size)
    return CenterTargets(heatmap=heatmap, centers=centers, cells=cells, radius=radius,
                         valid=valid)


def camera_targets(points_cam: torch.Tensor, camera_k: torch.Tensor,
                   input_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weak-perspective camera [s, tx, ty] of a camera-frame point, in the normalised frame.

    A body whose reference point (ROMP: the body-model origin; BEV: the hip mid-point) sits
    at (X, Y, Z) in front of a pinhole (fx, fy, cx, cy) of the S x S input projects, to
    first order around Z, as ``uv = s * body_xy + (tx, ty)`` with

        s = (fx + fy) / (S * Z),  tx = 2 (fx X / Z + cx) / S - 1,  ty = 2 (fy Y / Z + cy) / S - 1

    i.e. (tx, ty) is where the point projects and s the normalised focal length over depth.
    The networks assume a 60-degree field of view (focal ``f60 = S / (2 tan 30 deg)``, centred
    principal point); the same camera is what that assumed pinhole sees for a person at depth
    ``Z * f60 / f`` (see :func:`reference_depth`), so depth and scale are converted, not
    distorted, by a sample's real focal length.

    Args:
        points_cam: (..., 3) metres, camera optical frame.
        camera_k: (..., 3, 3) K of the S x S input, pixels (broadcast against the points).
        input_size: S.

    Returns:
        cams (..., 3) float32 [s, tx, ty] and ok (...) bool: finite point and K, positive
        focal lengths, depth above :data:`MIN_TARGET_DEPTH`. Rows that are not ok are zeros.
    """
    points = points_cam.float()
    k_mat = camera_k.float()
    fx, fy = k_mat[..., 0, 0], k_mat[..., 1, 1]
    cx, cy = k_mat[..., 0, 2], k_mat[..., 1, 2]
    depth = points[..., 2]
    ok = (torch.isfinite(points).all(-1) & torch.isfinite(k_mat).flatten(-2).all(-1)
          & (fx > 0) & (fy > 0) & (depth > MIN_TARGET_DEPTH))
    safe_depth = torch.where(ok, depth, torch.ones_like(depth))
    safe = torch.where(ok[..., None], points, torch.zeros_like(points))
    size = float(input_size)
    scale = (fx + fy) / (size * safe_depth)
    tx = 2.0 * (fx * safe[..., 0] / safe_depth + cx) / size - 1.0
    ty = 2.0 * (fy * safe[..., 1] / safe_depth + cy) / size - 1.0
    cams = torch.stack((scale, tx, ty), dim=-1)
    cams = torch.where(ok[..., None] & torch.isfinite(cams), cams, torch.zeros_like(cams))
    return cams, ok & torch.isfinite(cams).all(-1)


def reference_depth(scale: torch.Tensor, fov_deg: float = REFERENCE_FOV_DEG) -> torch.Tensor:
    """Depth (metres) at which the networks' assumed camera sees a weak-perspective scale.

    With the field of view ``fov_deg`` over the S-pixel square, ``f60 = S / (2 tan(fov/2))``
    and ``s = 2 f60 / (S Z')``, so ``Z' = 1 / (s tan(fov / 2))``. For a camera target built
    from a real focal f (:func:`camera_targets`) this is ``Z * f60 / f``: what BEV's depth
    bins and relative-depth term compare.
    """
    return 1.0 / (scale.float() * math.tan(math.radians(fov_deg) / 2.0))


def depth_bins(scale: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """BEV depth bin of camera scales: the anchor with the closest scale, at least 1.

    Args:
        scale: (...) camera scales.
        anchors: (D,) the network's anchor scales (``BEVNet.cam3d_anchors``).

    Returns:
        (...) int64 in [1, D - 1]. Bin 0 is never a target: the reference maps it to 1 when
        it converts bins to cells, and so does inference (``cams_to_czyx``).
    """
    anchors = anchors.to(device=scale.device, dtype=torch.float32)
    distance = (scale.float()[..., None] - anchors).abs()  # (..., D)
    return distance.argmin(dim=-1).clamp(1, anchors.numel() - 1)


def gaussian_heatmap_3d(cells: torch.Tensor, valid: torch.Tensor, depth_count: int,
                        map_size: int) -> torch.Tensor:
    """BEV's 3D center heatmap: per person ``exp(-d^2 / sigma^2)`` in a box around its cell.

    With a = bin / D (0 near, 1 far): the box is 5 bins deep in the near half and 7 in the
    far half, and ``2 r + 1`` cells wide with ``r = floor((1 - a) / 2 * M / 16 + M / 32)``
    (nearer people look bigger); sigma is one sixth of the box diagonal.

    Args:
        cells: (B, P, 3) int64 (bin, row, column).
        valid: (B, P) bool.
        depth_count: D.
        map_size: M.

    Returns:
        (B, D, M, M) float32, 1 at every valid cell.
    """
    batch_ids, person_ids = valid.nonzero(as_tuple=True)
    zyx = cells[batch_ids, person_ids]  # (N, 3)
    depth_share = zyx[:, 0].float() / depth_count
    half_depth = torch.floor(4.0 + 4.0 * depth_share).long() // 2  # 2 or 3 bins
    radius = torch.floor((1.0 - depth_share) / 2.0 * (map_size / 16.0)
                         + map_size / 32.0).long()
    width = (2 * radius + 1).float()
    depth = (2 * half_depth + 1).float()
    sigma = torch.sqrt(2.0 * (width / 2.0) ** 2 + (depth / 2.0) ** 2) * 2.0 / 6.0
    half = torch.stack((half_depth, radius, radius), dim=-1)  # (N, 3)
    return _splat_max((valid.shape[0], depth_count, map_size, map_size), batch_ids, zyx,
                      half, sigma * sigma)


def build_center_targets_3d(centers: CenterTargets, scales: torch.Tensor,
                            has_scale: torch.Tensor, anchors: torch.Tensor) -> CenterTargets3D:
    """BEV's 3D center targets: the 2D center cell at the depth bin of the camera scale.

    Args:
        centers: the batch's 2D targets (their map size is BEV's front-view size M).
        scales: (B, P) camera-target scales (:func:`camera_targets`).
        has_scale: (B, P) bool, where ``scales`` is a target.
        anchors: (D,) the network's depth anchors.
    """
    map_size = centers.heatmap.shape[-1]
    valid = centers.valid & has_scale
    bins = depth_bins(torch.where(valid, scales.float(), torch.ones_like(scales.float())),
                      anchors)  # (B, P)
    cells = torch.cat((bins[..., None], centers.cells), dim=-1)  # (B, P, 3)
    heatmap = gaussian_heatmap_3d(cells, valid, anchors.numel(), map_size)
    image_valid = centers.valid.any(-1) & (valid == centers.valid).all(-1)
    return CenterTargets3D(heatmap=heatmap, cells=cells, valid=valid, image_valid=image_valid)


def _labelled_keypoints(keypoints_2d: torch.Tensor) -> torch.Tensor:
    """(B, P, J) bool: positive weight and finite coordinates."""
    weight = keypoints_2d[..., 2]
    return (weight > 0) & torch.isfinite(keypoints_2d).all(-1)


def _masked_point_mean(points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, P, J, 2) points over the joints where mask (B, P, J); zeros if none."""
    count = mask.sum(-1, keepdim=True).clamp(min=1).float()  # (B, P, 1)
    return (points * mask[..., None]).sum(-2) / count


def _finite_boxes(bbox: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P, 4) boxes with non-finite ones zeroed, and (B, P) bool for usable boxes."""
    box = bbox.float()
    ok = (torch.isfinite(box).all(-1) & (box[..., 2] > box[..., 0])
          & (box[..., 3] > box[..., 1]))
    return torch.where(ok[..., None], box, torch.zeros_like(box)), ok


def _clip_centers(centers: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    clipped = centers.clamp(-1.0, 1.0)
    clipped = torch.where(clipped.abs() >= 1.0, clipped.sign() * EDGE_LIMIT, clipped)
    return torch.where(valid[..., None], clipped, centers)


def _splat_max(shape: tuple[int, ...], batch_ids: torch.Tensor, cells: torch.Tensor,
               half: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Draw N Gaussian boxes into a zero grid of ``shape`` = (B, *dims), keeping the maximum.

    Person n gets ``exp(-|offset|^2 / denominator[n])`` at ``cells[n] + offset`` for every
    integer offset with ``|offset_k| <= half[n, k]`` that falls inside the grid.

    Args:
        shape: (B, d1, ..., dk).
        batch_ids: (N,) int64.
        cells: (N, k) int64 centres.
        half: (N, k) int64 half extents.
        denominator: (N,) float.

    Returns:
        float32 tensor of ``shape``.
    """
    device = cells.device
    dims = torch.tensor(shape[1:], dtype=torch.long, device=device)  # (k,)
    volume = int(torch.tensor(shape[1:]).prod())
    out = torch.zeros(shape[0] * volume, dtype=torch.float32, device=device)
    if batch_ids.numel() == 0:
        return out.view(shape)
    reach = half.amax(dim=0).tolist()  # one patch size for everybody: max half extent
    axes = [torch.arange(-r, r + 1, device=device) for r in reach]
    offsets = torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1).reshape(-1, len(reach))
    pos = cells[:, None, :] + offsets[None]  # (N, K, k)
    inside = ((offsets.abs()[None] <= half[:, None]).all(-1)
              & (pos >= 0).all(-1) & (pos < dims).all(-1))  # (N, K)
    values = torch.exp(-(offsets.float() ** 2).sum(-1)[None] / denominator.float()[:, None])
    strides = torch.ones_like(dims)
    if dims.numel() > 1:
        strides[:-1] = torch.flip(torch.cumprod(torch.flip(dims[1:], [0]), 0), [0])
    flat = batch_ids[:, None] * volume + (pos * strides).sum(-1)  # (N, K)
    flat = torch.where(inside, flat, torch.zeros_like(flat))
    values = torch.where(inside, values, torch.zeros_like(values))
    out.scatter_reduce_(0, flat.reshape(-1), values.reshape(-1), reduce='amax')
    return out.view(shape)
