"""Z-buffer rasterisation of triangle meshes in pure torch (CPU or any torch device).

Scheme:

1. every vertex is projected once with the pinhole K;
2. triangles facing away, behind the near plane, or enclosing no pixel centre are dropped;
3. the rest are grouped by screen bounding-box size rounded up to powers of two, and each
   group is tested on a dense (triangles, h, w) grid of pixel centres by broadcasting (no
   per-candidate gathers);
4. the nearest triangle per pixel wins through one ``scatter_reduce(amin)`` of a packed int64
   key ``depth_bits << 32 | person << face_bits | face``. Positive float32 depths order like
   their bit patterns, so the key orders by depth first and, on exact ties, by (person, face):
   deterministic;
5. the winner's barycentrics and depth are recomputed once per covered pixel.

Pixel convention (the package's, see ``romp_ros.core.geometry.intrinsics``): the image spans
[0, W] x [0, H]; pixel (i, j) is sampled at its centre (j + 0.5, i + 0.5) in
u = fx * x / z + cx, v = fy * y / z + cy.

Depth is interpolated as 1/z linearly in screen space, which is exact for planar triangles
under perspective; the barycentrics handed to shading are perspective-correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Grid cells (triangle x pixel) tested per chunk: bounds the peak memory (~60 bytes each).
_CHUNK_CELLS = 1 << 20
# Pixel centres this far outside an edge (in barycentric units) still count as inside, so
# that a centre lying exactly on a shared edge is never missed by both neighbours.
_EDGE_EPS = 1e-6
_EMPTY_KEY = torch.iinfo(torch.int64).max
_ID_BITS = 31  # the (person, face) id must stay below 2**31 to leave the key's sign bit clear


@dataclass(frozen=True)
class Fragments:
    """The nearest surface at each of the P covered pixel centres of an (H, W) image.

    Only covered pixels are stored, so shading and compositing cost scales with the people's
    area on screen, not with the image's.

    Attributes:
        pixel: (P,) int64 flat pixel index row * W + col, ascending.
        person: (P,) int64 mesh index n.
        face: (P,) int64 face index f into the shared (F, 3) faces.
        depth: (P,) float32 z of the surface, metres.
        bary: (P, 3) float32 perspective-correct barycentric weights of the face's vertices.
        image_size: (H, W).
    """

    pixel: torch.Tensor
    person: torch.Tensor
    face: torch.Tensor
    depth: torch.Tensor
    bary: torch.Tensor
    image_size: tuple[int, int]

    def depth_map(self) -> torch.Tensor:
        """(H, W) float32 depth, inf where no mesh covers the pixel centre."""
        height, width = self.image_size
        out = torch.full((height * width,), float('inf'), device=self.depth.device)
        return out.index_copy_(0, self.pixel, self.depth).view(height, width)

    def person_map(self) -> torch.Tensor:
        """(H, W) int64 mesh index, -1 where no mesh covers the pixel centre."""
        height, width = self.image_size
        out = torch.full((height * width,), -1, dtype=torch.int64, device=self.person.device)
        return out.index_copy_(0, self.pixel, self.person).view(height, width)


@dataclass(frozen=True)
class _Setup:
    """Screen-space data of the T triangles that may cover a pixel centre.

    ``coef`` rows: 0-1 offset (du, dv) of the first bounding-box pixel centre from vertex 0;
    2-5 the inverse of the edge matrix [[u1-u0, u2-u0], [v1-v0, v2-v0]] (row-major), which
    maps an offset from vertex 0 to the barycentrics (w1, w2); 6-8 the vertices' 1/z.
    """

    ident: torch.Tensor  # (T,) int64 person << face_bits | face
    coef: torch.Tensor  # (9, T) float32
    first_pixel: torch.Tensor  # (T,) int64 flat index y0 * W + x0 of the box's first pixel
    box_w: torch.Tensor  # (T,) int64 bounding-box width, pixels
    box_h: torch.Tensor  # (T,) int64 bounding-box height, pixels


def face_bits(num_faces: int) -> int:
    """Bits of the face field in the packed (person, face) id."""
    return max(int(num_faces - 1).bit_length(), 1)


def pixel_centres(pix: torch.Tensor, image_size: tuple[int, int]) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """(u, v) float32 centres of flat pixel indices ``pix`` (P,) of an (H, W) image."""
    width = image_size[1]
    flat = pix.to(torch.float64)  # exact for any image size; float division beats int64's
    row = torch.floor((flat + 0.5) / width)
    return (flat - row * width + 0.5).float(), (row + 0.5).float()


def rasterize(verts: torch.Tensor, faces: torch.Tensor, k: tuple[float, float, float, float],
              image_size: tuple[int, int], near: float = 0.05,
              cull_backfaces: bool = True) -> Fragments:
    """Rasterise N meshes sharing one triangle list into a z-buffer.

    Triangles with any vertex nearer than ``near`` (or behind the camera) are dropped whole:
    nothing is drawn from behind the camera and nothing straddling it is projected through
    the singularity at z = 0. Inputs are assumed validated (``render_meshes`` does it).

    Args:
        verts: (N, V, 3) float, metres, camera optical frame (x right, y down, z forward).
        faces: (F, 3) int64, counter-clockwise seen from outside.
        k: (fx, fy, cx, cy) pixels.
        image_size: (H, W) pixels.
        near: near-plane depth, metres (> 0).
        cull_backfaces: skip triangles facing away from the camera. Exact for closed meshes
            with outward (counter-clockwise) winding, and about halves the work.

    Returns:
        :class:`Fragments` on ``verts``' device.
    """
    num, num_verts = verts.shape[:2]
    bits = face_bits(faces.shape[0])
    if num > 0 and (num - 1) >> (_ID_BITS - bits):
        raise ValueError(f'too many meshes to rasterise at once: {num} with {faces.shape[0]} '
                         f'faces each (at most {1 << (_ID_BITS - bits)})')
    height, width = image_size
    keys = torch.full((height * width,), _EMPTY_KEY, dtype=torch.int64, device=verts.device)
    projected = _project(verts, k, near)  # (3, N * V)
    setup = _setup_triangles(projected, num, num_verts, faces, image_size, cull_backfaces)
    for index, box_h, box_w in _size_classes(setup):
        pix, key = _covered_cells(setup, index, box_h, box_w, width)
        keys.scatter_reduce_(0, pix, key, reduce='amin', include_self=True)
    return _resolve(keys, projected, num_verts, faces, image_size)


def _project(verts: torch.Tensor, k: tuple[float, float, float, float],
             near: float) -> torch.Tensor:
    """(3, N * V) rows u, v (pixels) and 1/z per vertex; 1/z = 0 marks a vertex before ``near``."""
    fx, fy, cx, cy = k
    x, y, z = verts.reshape(-1, 3).float().unbind(-1)  # (N * V,) each
    front = z >= near
    inv_z = torch.where(front, 1.0 / torch.where(front, z, 1.0), 0.0)
    return torch.stack([fx * x * inv_z + cx, fy * y * inv_z + cy, inv_z])


def corner_ids(num: int, num_verts: int, faces: torch.Tensor) -> torch.Tensor:
    """(3, N * F) flat vertex index n * V + faces[f, c] of corner c of every triangle."""
    base = torch.arange(num, device=faces.device)[:, None] * num_verts  # (N, 1)
    return torch.stack([(base + faces[:, c]).reshape(-1) for c in range(3)])


def _setup_triangles(projected: torch.Tensor, num: int, num_verts: int, faces: torch.Tensor,
                     image_size: tuple[int, int], cull_backfaces: bool) -> _Setup:
    height, width = image_size
    corners = corner_ids(num, num_verts, faces)  # (3, T)
    # (3 corners, 3 rows u/v/inv_z, T): contiguous rows keep the arithmetic below fast
    tri = torch.stack([projected.index_select(1, corners[c]) for c in range(3)])
    (u0, u1, u2), (v0, v1, v2), (iz0, iz1, iz2) = tri.unbind(1)
    e1u, e2u, e1v, e2v = u1 - u0, u2 - u0, v1 - v0, v2 - v0
    det = e1u * e2v - e2u * e1v  # (T,) twice the signed screen area
    # Front faces have det < 0 in (u right, v down): det = fx fy n.P0 / (z0 z1 z2), and the
    # outward normal n of a face seen from outside points at the camera (n.P0 < 0).
    keep = (det < 0) if cull_backfaces else (det != 0)
    keep &= (torch.minimum(torch.minimum(iz0, iz1), iz2) > 0)  # all corners before near
    x0 = torch.ceil(torch.minimum(torch.minimum(u0, u1), u2) - 0.5).clamp(min=0)
    x1 = torch.floor(torch.maximum(torch.maximum(u0, u1), u2) - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(torch.minimum(torch.minimum(v0, v1), v2) - 0.5).clamp(min=0)
    y1 = torch.floor(torch.maximum(torch.maximum(v0, v1), v2) - 0.5).clamp(max=height - 1)
    keep &= (x1 >= x0) & (y1 >= y0)  # most small triangles enclose no pixel centre at all
    sel = torch.nonzero(keep).squeeze(1)  # (T',)
    inv_det = 1.0 / det
    coef = torch.stack([
        x0 + 0.5 - u0, y0 + 0.5 - v0,
        e2v * inv_det, -e2u * inv_det, -e1v * inv_det, e1u * inv_det,
        iz0, iz1, iz2,
    ]).index_select(1, sel)  # (9, T')
    x0, x1 = x0[sel].long(), x1[sel].long()
    y0, y1 = y0[sel].long(), y1[sel].long()
    device = faces.device
    ident = ((torch.arange(num, device=device)[:, None] << face_bits(faces.shape[0]))
             | torch.arange(faces.shape[0], device=device)).reshape(-1)  # (T,)
    return _Setup(ident=ident.index_select(0, sel), coef=coef, first_pixel=y0 * width + x0,
                  box_w=x1 - x0 + 1, box_h=y1 - y0 + 1)


def _size_classes(setup: _Setup) -> list[tuple[torch.Tensor, int, int]]:
    """Group triangles by bounding-box size rounded up to powers of two.

    Rounding up at most quadruples the tested area, while it lets each group be tested on a
    dense grid by broadcasting. Groups larger than ``_CHUNK_CELLS`` cells are split.

    Returns:
        (positions in ``setup``, grid height, grid width) per group.
    """
    if setup.ident.numel() == 0:
        return []
    log_w = torch.ceil(torch.log2(setup.box_w.float())).long()  # exact for small integers
    log_h = torch.ceil(torch.log2(setup.box_h.float())).long()
    group = log_h * 64 + log_w  # (T,)
    order = torch.argsort(group, stable=True)
    values, counts = torch.unique_consecutive(group[order], return_counts=True)
    out = []
    start = 0
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        box_h, box_w = 1 << (value // 64), 1 << (value % 64)
        per_chunk = max(_CHUNK_CELLS // (box_h * box_w), 1)
        for lo in range(start, start + count, per_chunk):
            out.append((order[lo:min(lo + per_chunk, start + count)], box_h, box_w))
        start += count
    return out


def _covered_cells(setup: _Setup, index: torch.Tensor, box_h: int, box_w: int,
                   width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat pixel indices and packed depth keys of the pixel centres the triangles cover.

    Args:
        index: (T_c,) positions in ``setup`` of triangles whose boxes fit box_h x box_w.
    """
    device = index.device
    c = setup.coef.index_select(1, index)[:, :, None, None]  # (9, T_c, 1, 1)
    ox = torch.arange(box_w, device=device, dtype=torch.float32)  # (w,)
    oy = torch.arange(box_h, device=device, dtype=torch.float32)[:, None]  # (h, 1)
    du = c[0] + ox  # (T_c, 1, w) pixel centre minus vertex 0
    dv = c[1] + oy  # (T_c, h, 1)
    w1 = c[2] * du + c[3] * dv  # (T_c, h, w)
    w2 = c[4] * du + c[5] * dv
    w0 = 1.0 - w1 - w2
    inside = torch.minimum(torch.minimum(w0, w1), w2) >= -_EDGE_EPS
    if box_w > 1:  # the padded grid reaches past the true box
        inside &= ox < setup.box_w[index][:, None, None]
    if box_h > 1:
        inside &= oy < setup.box_h[index][:, None, None]
    hit = torch.nonzero(inside.reshape(-1)).squeeze(1)  # (M,) flat cell index
    # grid sizes are powers of two: shifts and masks instead of integer division
    log_w, log_cell = box_w.bit_length() - 1, (box_h * box_w).bit_length() - 1
    tri = hit >> log_cell  # (M,) triangle within the group
    lx = hit & (box_w - 1)
    ly = (hit >> log_w) & (box_h - 1)
    inv_z = (w0.reshape(-1)[hit] * c[6].reshape(-1)[tri] + w1.reshape(-1)[hit]
             * c[7].reshape(-1)[tri] + w2.reshape(-1)[hit] * c[8].reshape(-1)[tri])
    group_pos = index[tri]
    pix = setup.first_pixel[group_pos] + ly * width + lx
    depth_bits = (1.0 / inv_z).view(torch.int32).long()  # monotonic for positive floats
    return pix, (depth_bits << 32) | setup.ident[group_pos]


def _resolve(keys: torch.Tensor, projected: torch.Tensor, num_verts: int, faces: torch.Tensor,
             image_size: tuple[int, int]) -> Fragments:
    """Decode the winner per pixel and recompute its barycentrics and depth there."""
    pix = torch.nonzero(keys != _EMPTY_KEY).squeeze(1)  # (P,)
    ident = keys[pix] & ((1 << 32) - 1)  # (P,)
    bits = face_bits(faces.shape[0])
    who = ident >> bits
    which = ident & ((1 << bits) - 1)
    corner = who[:, None] * num_verts + faces[which]  # (P, 3) flat vertex ids
    u, v, inv_z = projected.index_select(1, corner.reshape(-1)).view(3, -1, 3).unbind(0)
    pu, pv = pixel_centres(pix, image_size)  # (P,) each
    e1u, e2u = u[:, 1] - u[:, 0], u[:, 2] - u[:, 0]
    e1v, e2v = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    du, dv = pu - u[:, 0], pv - v[:, 0]
    inv_det = 1.0 / (e1u * e2v - e2u * e1v)
    w1 = (e2v * du - e2u * dv) * inv_det
    w2 = (e1u * dv - e1v * du) * inv_det
    weighted = torch.stack([1.0 - w1 - w2, w1, w2], dim=1) * inv_z  # (P, 3) w_i / z_i
    pix_inv_z = weighted.sum(dim=1)
    return Fragments(pixel=pix, person=who, face=which, depth=1.0 / pix_inv_z,
                     bary=weighted / pix_inv_z[:, None], image_size=tuple(image_size))
