"""The mesh renderer: geometry against projections, z-buffer order, depth, clipping, errors,
anti-aliasing, compositing and point visibility (CPU, small images)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from romp_ros.core.render import LightSpec, points_visible, render_meshes
from romp_ros.synthetic.body_model import build_synthetic_bodies

FLAT = LightSpec(ambient=1.0, diffuse=0.0, specular=0.0)  # colour = albedo exactly
_BOX_FACES = np.array([  # unit cube corners i = 4x + 2y + z; counter-clockwise from outside
    [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
    [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0)


def box(centre, size) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box; faces _BOX_FACES."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    return (corners - 0.5) * np.asarray(size, float) + np.asarray(centre, float)


def test_box_helper_is_outward():
    assert signed_volume(box((0, 0, 3), (1, 1, 1)), _BOX_FACES) == pytest.approx(1.0)


@pytest.fixture(scope='module')
def body():
    """The synthetic SMPL-topology figure, upright in the camera frame (y down), facing it."""
    smpl = build_synthetic_bodies(0)['smpl']
    verts = smpl.v_template * np.array([1.0, -1.0, -1.0])  # half turn about x
    assert signed_volume(verts, smpl.faces) > 0  # SMPL winding: outward, counter-clockwise
    return verts, smpl.faces.astype(np.int64)


def reference_silhouette(verts, faces, k, size) -> np.ndarray:
    """Independent silhouette: every projected triangle filled by OpenCV (sub-pixel, 8 bits).

    OpenCV puts pixel centres at integer coordinates; ours at +0.5, hence the shift.
    """
    fx, fy, cx, cy = k
    uv = np.stack([fx * verts[:, 0] / verts[:, 2] + cx, fy * verts[:, 1] / verts[:, 2] + cy], 1)
    fixed = np.round((uv - 0.5) * 256).astype(np.int32)
    mask = np.zeros(size, np.uint8)
    for tri in faces:
        cv2.fillConvexPoly(mask, fixed[tri], 1, lineType=cv2.LINE_8, shift=8)
    return mask.astype(bool)


def nearest_surface(verts: np.ndarray, faces: np.ndarray, k, point: np.ndarray) -> float:
    """Brute force, float64: z of the nearest triangle containing pixel point (inf if none)."""
    fx, fy, cx, cy = k
    uv = np.stack([fx * verts[:, 0] / verts[:, 2] + cx, fy * verts[:, 1] / verts[:, 2] + cy], 1)
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]

    def side(p, q):
        return (q[:, 0] - p[:, 0]) * (point[1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (point[0]
                                                                                  - p[:, 0])

    s1, s2, s3 = side(a, b), side(b, c), side(c, a)
    inside = ((s1 <= 0) & (s2 <= 0) & (s3 <= 0)) | ((s1 >= 0) & (s2 >= 0) & (s3 >= 0))
    if not inside.any():
        return np.inf
    p0, p1, p2 = (verts[faces[inside, i]] for i in range(3))
    normal = np.cross(p1 - p0, p2 - p0)
    ray = np.array([(point[0] - cx) / fx, (point[1] - cy) / fy, 1.0])
    return float(np.min(np.einsum('ij,ij->i', normal, p0) / (normal @ ray)))


def test_body_drawn_where_the_projection_says(body):
    verts, faces = body
    size = (150, 230)  # non-square
    k = (210.0, 150.0, 70.3, 96.8)  # off-centre principal point, fx != fy
    placed = verts + np.array([0.45, -0.3, 3.2])
    result = render_meshes(placed[None], faces, k, size)
    mask = result.person_index == 0
    fx, fy, cx, cy = k
    u = fx * placed[:, 0] / placed[:, 2] + cx
    v = fy * placed[:, 1] / placed[:, 2] + cy
    rows, cols = np.nonzero(mask)
    # The figure lies fully inside the image; its pixel-centre bbox matches the vertices'.
    assert 0 < u.min() and u.max() < size[1] and 0 < v.min() and v.max() < size[0]
    assert abs(cols.min() + 0.5 - u.min()) <= 1.0 and abs(cols.max() + 0.5 - u.max()) <= 1.0
    assert abs(rows.min() + 0.5 - v.min()) <= 1.0 and abs(rows.max() + 0.5 - v.max()) <= 1.0
    # OpenCV's fill is conservative (it takes pixels an edge merely touches): ours lies inside
    # it, and it lies within one pixel of ours.
    reference = reference_silhouette(placed, faces, k, size)
    assert not (mask & ~reference).any()
    assert not (reference & ~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3)))).any()
    # Exact: pixel centres near the outline, inside and anywhere, against every triangle.
    near_outline = np.argwhere(reference ^ cv2.erode(mask.astype(np.uint8), np.ones((3, 3))))
    rng = np.random.default_rng(0)
    interior = np.argwhere(mask)[rng.choice(int(mask.sum()), 100, replace=False)]
    others = np.concatenate([interior, rng.integers(0, size, (50, 2))])
    for row, col in np.concatenate([near_outline, others]):
        depth = nearest_surface(placed, faces, k, np.array([col + 0.5, row + 0.5]))
        assert mask[row, col] == np.isfinite(depth)
        if mask[row, col]:  # the z-buffer kept the nearest surface, at its exact depth
            assert result.depth[row, col] == pytest.approx(depth, rel=1e-5)
    assert set(np.unique(result.person_index)) == {-1, 0}
    assert np.isfinite(result.depth[mask]).all() and np.isinf(result.depth[~mask]).all()


@pytest.mark.parametrize('near_first', [True, False])
def test_nearer_person_occludes_farther(near_first):
    near_box = box((-0.1, 0.0, 3.0), (0.6, 1.2, 0.4))
    far_box = box((0.3, 0.0, 5.0), (1.0, 1.6, 0.4))
    colours = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # near red, far blue
    order = [0, 1] if near_first else [1, 0]
    verts = np.stack([near_box, far_box])[order]
    k, size = (200.0, 200.0, 80.0, 60.0), (120, 160)
    result = render_meshes(verts, _BOX_FACES, k, size, colors=colours[order], light=FLAT)
    near_index = order.index(0)
    # Pixel columns of the near box's front face (z = 2.8) and of the far one's (z = 4.8).
    u_near = 200 * np.array([-0.4, 0.2]) / 2.8 + 80
    u_far = 200 * np.array([-0.2, 0.8]) / 4.8 + 80
    overlap = slice(int(np.ceil(max(u_near[0], u_far[0]))), int(np.floor(min(u_near[1],
                                                                               u_far[1]))))
    rows = slice(50, 70)
    assert overlap.stop - overlap.start >= 5
    assert (result.person_index[rows, overlap] == near_index).all()
    assert (result.image[rows, overlap] == (255, 0, 0)).all()
    assert result.depth[rows, overlap] == pytest.approx(2.8, abs=1e-4)
    # Beyond the near box, the far one shows.
    far_only = slice(int(np.ceil(u_near[1])) + 1, int(np.floor(u_far[1])))
    assert (result.person_index[rows, far_only] == 1 - near_index).all()
    assert (result.image[rows, far_only] == (0, 0, 255)).all()


def plane_depth(normal, offset, k, rows, cols) -> np.ndarray:
    """z where the rays through pixel centres meet the plane normal . X = offset."""
    fx, fy, cx, cy = k
    ray = np.stack([(cols + 0.5 - cx) / fx, (rows + 0.5 - cy) / fy, np.ones_like(cols, float)],
                   -1)
    return offset / (ray @ normal)


def test_depth_is_the_analytic_depth_of_a_tilted_plane():
    normal = np.array([0.3, -0.2, -1.0])  # faces the camera (normal . view < 0)
    offset = normal @ np.array([0.0, 0.0, 4.0])  # passes through (0, 0, 4)
    # A quad on the plane: pick x, y and solve z.
    corners_xy = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    z = (offset - corners_xy @ normal[:2]) / normal[2]
    quad = np.concatenate([corners_xy, z[:, None]], 1)
    faces = np.array([[0, 2, 1], [0, 3, 2]])  # counter-clockwise seen from the camera side
    k, size = (90.0, 110.0, 41.0, 37.0), (80, 90)
    result = render_meshes(quad[None], faces, k, size)
    rows, cols = np.nonzero(result.person_index == 0)
    assert rows.size > 1000
    expected = plane_depth(normal, offset, k, rows, cols)
    np.testing.assert_allclose(result.depth[rows, cols], expected, rtol=2e-5)


def test_behind_camera_draws_nothing_and_straddling_triangles_are_dropped():
    k, size = (100.0, 100.0, 50.0, 50.0), (100, 100)
    background = np.full((*size, 3), 77, np.uint8)
    behind = box((0.0, 0.0, -3.0), (1.0, 1.0, 1.0))
    result = render_meshes(behind[None], _BOX_FACES, k, size, background=background)
    assert (result.person_index == -1).all() and (result.image == 77).all()
    # Triangle A wholly in front; triangle B has a vertex behind the camera and one at z = 0.
    verts = np.array([[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0],
                      [0.2, 0.2, 2.0], [0.3, 0.9, -1.0], [0.9, 0.3, 0.0]])
    faces = np.array([[0, 2, 1], [3, 5, 4]])
    both = render_meshes(verts[None], faces, k, size, light=FLAT)
    only_a = render_meshes(verts[None], faces[:1], k, size, light=FLAT)
    np.testing.assert_array_equal(both.person_index, only_a.person_index)
    assert (both.person_index == 0).sum() > 100
    assert np.isfinite(both.depth[both.person_index == 0]).all()
    # A box cut by the near plane: the part in front renders, nothing crosses z = 0.
    cut = box((0.0, 0.0, 0.3), (0.5, 0.5, 1.0))
    result = render_meshes(cut[None], _BOX_FACES, k, size, near=0.05)
    assert (result.depth[result.person_index == 0] >= 0.05).all()


def test_no_people_returns_the_background():
    background = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    result = render_meshes(np.zeros((0, 8, 3)), _BOX_FACES, (30.0, 30.0, 15.0, 10.0), (20, 30),
                           background=background)
    np.testing.assert_array_equal(result.image, background)
    assert result.image is not background
    assert (result.person_index == -1).all() and np.isinf(result.depth).all()
    assert result.person_index.dtype == np.int16 and result.depth.dtype == np.float32
    black = render_meshes(np.zeros((0, 8, 3)), _BOX_FACES, (30.0, 30.0, 15.0, 10.0), (20, 30))
    assert black.image.shape == (20, 30, 3) and black.image.dtype == np.uint8
    assert not black.image.any()


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'verts': np.zeros((8, 3))}, r'verts must have shape \(N, V, 3\)'),
    ({'faces': np.zeros((0, 3), int)}, 'faces is empty'),
    ({'faces': np.zeros((4, 4), int)}, r'faces must have shape \(F, 3\)'),
    ({'faces': _BOX_FACES + 10}, 'faces index vertices'),
    ({'faces': _BOX_FACES.astype(float)}, 'faces must be integer'),
    ({'k': (0.0, 50.0, 20.0, 20.0)}, 'focal lengths'),
    ({'k': np.eye(4)}, 'k must be'),
    ({'image_size': (0, 40)}, 'image_size'),
    ({'colors': np.ones((3, 3))}, 'colors must have shape'),
    ({'colors': np.full((2, 3), 200.0)}, r'within \[0, 1\]'),
    ({'background': np.zeros((40, 40, 3), np.float32)}, 'background must be'),
    ({'background': np.zeros((20, 40, 3), np.uint8)}, 'background must be'),
    ({'alpha': 1.5}, 'alpha'),
    ({'near': 0.0}, 'near'),
    ({'supersample': 0}, 'supersample'),
])
def test_bad_input_gets_a_clear_error(kwargs, message):
    args = {'verts': np.stack([box((0, 0, 3), (1, 1, 1)), box((1, 0, 4), (1, 1, 1))]),
            'faces': _BOX_FACES, 'k': (50.0, 50.0, 20.0, 20.0), 'image_size': (40, 40)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        render_meshes(args.pop('verts'), args.pop('faces'), args.pop('k'),
                      args.pop('image_size'), **args)


def test_non_finite_vertices_name_the_mesh():
    verts = np.stack([box((0, 0, 3), (1, 1, 1))] * 3)
    verts[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match=r'mesh\(es\) \[2\] contain NaN'):
        render_meshes(verts, _BOX_FACES, (50.0, 50.0, 20.0, 20.0), (40, 40))


def test_light_spec_is_validated():
    with pytest.raises(ValueError, match='zero vector'):
        LightSpec(direction=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match='ambient'):
        LightSpec(ambient=2.0)


def test_k_matrix_torch_input_and_numpy_agree():
    verts = np.stack([box((0.2, 0.1, 3), (1, 1.4, 0.6))])
    k = (60.0, 64.0, 25.0, 18.0)
    matrix = np.array([[60.0, 0, 25.0], [0, 64.0, 18.0], [0, 0, 1]])
    a = render_meshes(verts, _BOX_FACES, k, (40, 50))
    tensor = torch.tensor(verts, dtype=torch.float32, requires_grad=True)  # e.g. from a model
    b = render_meshes(tensor, torch.as_tensor(_BOX_FACES), matrix, (40, 50))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.person_index, b.person_index)


def test_supersampling_antialiases_edges_and_alpha_blends():
    # A square whose left edge sits at u = 10.25: with 4 sub-samples per side, column 10
    # keeps 3 of 4 sub-sample columns; column 9 none.
    fx = 100.0
    x_edge = (10.25 - 20.0) / fx * 2.0
    quad = np.array([[x_edge, -0.3, 2.0], [0.3, -0.3, 2.0], [0.3, 0.3, 2.0], [x_edge, 0.3, 2.0]])
    faces = np.array([[0, 2, 1], [0, 3, 2]])
    k, size = (fx, fx, 20.0, 20.0), (40, 40)
    grey = np.full((*size, 3), 100, np.uint8)
    colour = np.array([[0.8, 0.4, 0.2]])
    result = render_meshes(quad[None], faces, k, size, colors=colour, light=FLAT,
                           background=grey, supersample=4)
    expected = 0.75 * colour[0] * 255 + 0.25 * 100
    np.testing.assert_allclose(result.image[20, 10], expected, atol=1.0)
    assert (result.image[20, 9] == 100).all()
    np.testing.assert_allclose(result.image[20, 15], colour[0] * 255, atol=1.0)
    # Odd supersampling: depth / person_index sampled exactly at the pixel centre.
    odd = render_meshes(quad[None], faces, k, size, light=FLAT, supersample=3)
    plain = render_meshes(quad[None], faces, k, size, light=FLAT)
    np.testing.assert_array_equal(odd.person_index, plain.person_index)
    # Overlay opacity.
    half = render_meshes(quad[None], faces, k, size, colors=colour, light=FLAT,
                         background=grey, alpha=0.5)
    np.testing.assert_allclose(half.image[20, 15], 0.5 * colour[0] * 255 + 50, atol=1.0)


def screen_barycentrics(uv: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Barycentric weights of a 2D point in the 2D triangle uv (3, 2)."""
    matrix = np.array([uv[1] - uv[0], uv[2] - uv[0]]).T
    w1, w2 = np.linalg.solve(matrix, point - uv[0])
    return np.array([1 - w1 - w2, w1, w2])


def test_per_vertex_colours_are_interpolated():
    tri = np.array([[-1.0, -1.0, 3.0], [1.0, -1.0, 3.0], [0.0, 1.0, 3.0]])
    faces = np.array([[0, 2, 1]])
    k = (40.0, 40.0, 30.0, 30.0)
    # fronto-parallel: perspective-correct weights equal the screen-space ones
    uv = tri[:, :2] * 40.0 / 3.0 + 30.0
    result = render_meshes(tri[None], faces, k, (60, 60), colors=np.eye(3)[None], light=FLAT)
    for row, col in ((25, 29), (20, 20), (38, 30), (20, 38)):
        weights = screen_barycentrics(uv, np.array([col + 0.5, row + 0.5]))
        assert (weights > 0).all()
        np.testing.assert_allclose(result.image[row, col], 255 * weights, atol=1.0)


def sphere(centre, radius, rings=24, segments=48):
    """UV sphere with outward counter-clockwise faces."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing='ij')
    ring = np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radius + centre
    faces = []
    for j in range(segments):
        jn = (j + 1) % segments
        faces.append([0, 1 + jn, 1 + j])
        last = 1 + (rings - 2) * segments
        faces.append([len(verts) - 1, last + j, last + jn])
        for i in range(rings - 2):
            a, b = 1 + i * segments + j, 1 + i * segments + jn
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    faces = np.array(faces)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1]
    return verts, faces


def test_smooth_shading_matches_the_analytic_sphere():
    centre, radius = np.array([0.0, 0.0, 3.0]), 0.5
    verts, faces = sphere(centre, radius)
    to_light = np.array([-1.0, -1.0, -1.0]) / np.sqrt(3.0)  # up-left, towards the camera
    light = LightSpec(direction=tuple(to_light), ambient=0.1, diffuse=0.9, specular=0.0)
    k = (100.0, 100.0, 40.0, 40.0)
    result = render_meshes(verts[None], faces, k, (80, 80), colors=np.ones((1, 3)), light=light)
    grey = result.image.astype(float).mean(axis=2)
    # Exact normals of the true sphere where the pixel-centre rays hit it.
    rows, cols = np.mgrid[0:80, 0:80]
    ray = np.stack([(cols + 0.5 - 40) / 100, (rows + 0.5 - 40) / 100, np.ones((80, 80))], -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    along = ray @ centre
    miss = along ** 2 - (centre @ centre - radius ** 2)
    inner = miss > (0.6 * radius) ** 2  # rays passing within 0.8 r of the centre
    hit = ray * (along - np.sqrt(np.clip(miss, 0, None)))[..., None]
    normal = (hit - centre) / radius
    expected = 255 * (0.1 + 0.9 * np.clip(normal @ to_light, 0, None))
    error = np.abs(grey - expected)[inner]
    assert inner.sum() > 500
    assert np.median(error) < 2.0 and error.max() < 12.0
    # lit from the light side: upper-left brighter than lower-right
    assert grey[30, 30] > grey[50, 50] + 60


def test_points_visible_hidden_behind_another_person():
    front = box((0.0, 0.0, 3.0), (0.6, 1.0, 0.3))
    back = box((0.2, 0.0, 5.0), (1.4, 1.6, 0.3))
    k, size = (120.0, 120.0, 60.0, 50.0), (100, 120)
    result = render_meshes(np.stack([front, back]), _BOX_FACES, k, size)
    joints = np.array([
        [[0.0, 0.0, 3.0], [0.0, 0.0, 2.0], [0.0, 0.0, -3.0], [5.0, 0.0, 3.0]],
        # back person: centre hidden by the front one; one joint off to the side
        [[0.0, 0.0, 5.0], [0.8, -0.6, 5.0], [0.8, 0.6, 5.0], [0.05, 0.0, 5.1]],
    ])
    visible = points_visible(joints, None, result, k)
    np.testing.assert_array_equal(visible, [[True, True, False, False],
                                            [False, True, True, False]])
    # rows given as mesh indices explicitly, and the 3x3 K
    kmat = np.array([[120.0, 0, 60.0], [0, 120.0, 50.0], [0, 0, 1]])
    swapped = points_visible(joints[::-1], np.array([1, 0]), result, kmat)
    np.testing.assert_array_equal(swapped, visible[::-1])
    # Surface points: with self-occlusion the back face of the front box is hidden.
    surface = np.array([[[0.0, 0.0, 2.85], [0.0, 0.0, 3.15]]])
    hidden_side = points_visible(surface, None, result, k, self_occlusion=True)
    assert hidden_side.tolist() == [[True, False]]
    assert points_visible(surface, None, result, k).tolist() == [[True, True]]
    with pytest.raises(ValueError, match='points_cam'):
        points_visible(np.zeros((2, 3)), None, result, k)
