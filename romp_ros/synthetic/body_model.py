"""A synthetic SMPL-family body model written in the official file formats.

The real SMPL / SMIL files are licence-gated and cannot be shipped or downloaded in CI, so
tests and ``make demo`` use this stand-in: a T-posed stick figure (about 1.75 m, y up, metres,
facing +z, the person's left at +x) made of one closed capsule per bone, with SMPL's 6890
vertices and 24-joint kinematic tree. It is written exactly like the official downloads:

* ``SMPL_NEUTRAL.pkl``: a Python-2 style protocol-2 pickle (byte strings, ``copy_reg`` era
  module paths) with a ``scipy.sparse.csc.csc_matrix`` joint regressor and ``chumpy.ch.Ch``
  arrays, produced without chumpy by pickling stand-in classes under those names;
* ``smil/smil_web.pkl``: an infant (about 0.65 m) of the same topology;
* ``J_regressor_extra.npy`` (9, V), ``J_regressor_h36m.npy`` (17, V) and
  ``smpl_kid_template.npy`` (V, 3), as in ROMP's smpl_model_data release;
* optionally ``SMPL_python_v.1.1.0.zip`` holding the pickle under the official inner path.

The vertices that the reference picks as extra joints (nose, eyes, ears, toes, heels, finger
tips; smplx's SMPL vertex ids) are placed where those body parts are, so the 71 joints make
sense. Joints are regressed from vertex rings centred on each joint, skinning weights follow
the bones and blend near joints, shape directions change height, girth, limb lengths and head
size, and pose blend shapes are small bulges. Deterministic for a given seed.
"""

from __future__ import annotations

import copyreg
from dataclasses import dataclass
from pathlib import Path
import pickle
import struct
from types import MappingProxyType
from typing import Any, BinaryIO
import zipfile

import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from romp_ros.core.body.joint_names import H36M_TO_J17, SMPL_PARENTS, VERTEX_PICK_SMPLX_KEYS

NUM_VERTICES = 6890  # SMPL's vertex count, so that the reference's vertex ids are valid
NUM_SHAPE_DIRS = 20  # the real files have 300 (SMPL) / 20 (SMIL); the model uses 10
SMPL_ZIP_NAME = 'SMPL_python_v.1.1.0.zip'
SMPL_ZIP_MEMBER = 'SMPL_python_v.1.1.0/smpl/models/basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl'
_ROOT_PARENT = 4294967295  # the official kintree_table stores the root's parent as uint32 -1


def _adult_joints() -> np.ndarray:
    """(24, 3) rest joints of the adult figure, metres, close to SMPL's neutral T-pose."""
    left = {  # joint index -> (x, y, z) of left-side and central joints
        0: (0.0, -0.23, 0.02), 1: (0.075, -0.32, 0.01), 3: (0.0, -0.11, -0.01),
        4: (0.10, -0.70, 0.01), 6: (0.0, 0.03, 0.0), 7: (0.09, -1.09, -0.03),
        9: (0.0, 0.09, 0.02), 10: (0.11, -1.15, 0.09), 12: (0.0, 0.29, -0.01),
        13: (0.07, 0.20, -0.005), 15: (0.0, 0.37, 0.03), 16: (0.18, 0.23, -0.02),
        18: (0.44, 0.22, -0.03), 20: (0.70, 0.23, -0.02), 22: (0.78, 0.22, -0.03),
    }
    right_of = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 23: 22}
    joints = np.zeros((24, 3))
    for index, xyz in left.items():
        joints[index] = xyz
    for right, mirror in right_of.items():
        joints[right] = joints[mirror] * (-1.0, 1.0, 1.0)
    return joints


@dataclass(frozen=True)
class _Capsule:
    """One closed capsule of the figure, from joint ``start`` to joint ``end``.

    ``end == -1`` marks an end segment (head, hand, toes) that reaches ``tip`` (an offset
    from ``start``, adult metres) instead of a joint. Vertices belong to joint ``start``.
    """

    start: int
    end: int
    radius: float
    segments: int
    tip: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _capsules() -> tuple[_Capsule, ...]:
    radius = {1: 0.095, 2: 0.095, 3: 0.11, 4: 0.07, 5: 0.07, 6: 0.12, 7: 0.05, 8: 0.05,
              9: 0.125, 10: 0.04, 11: 0.04, 12: 0.09, 13: 0.065, 14: 0.065, 15: 0.05,
              16: 0.06, 17: 0.06, 18: 0.045, 19: 0.045, 20: 0.038, 21: 0.038, 22: 0.033,
              23: 0.033}
    torso = {3, 6, 9, 12}
    bones = tuple(_Capsule(SMPL_PARENTS[c], c, radius[c], 20 if c in torso else 16)
                  for c in range(1, 24))
    ends = (
        _Capsule(15, -1, 0.095, 24, (0.0, 0.10, 0.0)),  # head
        _Capsule(22, -1, 0.03, 16, (0.07, 0.0, 0.0)),  # left hand to finger tips
        _Capsule(23, -1, 0.03, 16, (-0.07, 0.0, 0.0)),
        _Capsule(10, -1, 0.033, 16, (0.0, 0.0, 0.06)),  # left toes
        _Capsule(11, -1, 0.033, 16, (0.0, 0.0, 0.06)),
    )
    return bones + ends


_HEAD = 23  # index of the head capsule in _capsules()
_L_HAND, _R_HAND, _L_TOES, _R_TOES = 24, 25, 26, 27
_L_FOOT, _R_FOOT = 9, 10  # capsules ankle -> foot (bone index = child joint - 1)


@dataclass(frozen=True)
class _Proportions:
    """A body size: joints, radius factor, and head radius / tip length factors."""

    joints: np.ndarray  # (24, 3)
    radius_scale: float
    head_radius: float
    tip_scale: float


def _proportions(age: str) -> _Proportions:
    adult = _adult_joints()
    if age == 'adult':
        return _Proportions(adult, 1.0, 0.095, 1.0)
    if age == 'kid':  # about 1.1 m, relatively bigger head
        return _Proportions(adult * 0.62, 0.66, 0.085, 0.75)
    # infant, about 0.65 m: big head, chubby limbs
    return _Proportions(adult * 0.37, 0.5, 0.068, 0.45)


@dataclass(frozen=True)
class _Layout:
    """Ring counts of every capsule: identical for all sizes, so the topology is shared."""

    caps: tuple[int, ...]  # rings per end cap (the last one lies on the joint)
    cylinders: tuple[int, ...]  # rings strictly inside the cylinder part


def _layout() -> tuple[_Layout, int]:
    """Ring counts of every capsule and the head's ring size, 6890 vertices in all."""
    capsules = _capsules()
    joints = _adult_joints()
    lengths = [_segment(c, joints, 1.0)[2] for c in capsules]
    caps = [4 if c.radius >= 0.06 else 3 for c in capsules]
    caps[_HEAD] = 5
    # The densest ring spacing whose total, with a head of some ring size, is exactly 6890.
    for spacing in np.arange(0.015, 0.06, 0.001):
        cylinders = [max(1, round(length / spacing)) for length in lengths]
        used = sum(c.segments * (2 * caps[i] + cylinders[i]) + 2
                   for i, c in enumerate(capsules) if i != _HEAD)
        rest = NUM_VERTICES - used - 2
        for segments in range(20, 41):
            rings = rest // segments
            if rest > 0 and rest % segments == 0 and 2 <= rings - 2 * caps[_HEAD] <= 12:
                cylinders[_HEAD] = rings - 2 * caps[_HEAD]
                return _Layout(tuple(caps), tuple(cylinders)), segments
    raise RuntimeError('no ring layout with 6890 vertices')  # pragma: no cover


def _segment(capsule: _Capsule, joints: np.ndarray,
             tip_scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    start = joints[capsule.start]
    if capsule.end >= 0:
        end = joints[capsule.end]
    else:
        end = start + np.asarray(capsule.tip) * tip_scale
    return start, end, float(np.linalg.norm(end - start))


@dataclass(frozen=True)
class _Mesh:
    """A figure in construction order (before the vertex-id permutation)."""

    verts: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    radial: np.ndarray  # (V, 3) vertex minus its closest point on the bone axis
    capsule: np.ndarray  # (V,) capsule index of each vertex
    weights: np.ndarray  # (V, 24) skinning weights
    joint_rings: tuple[np.ndarray, ...]  # per SMPL joint, ids of the rings centred on it
    head_mid_ring: np.ndarray  # ids of the ring at the middle of the head
    head_top: np.ndarray  # ids of the head's top pole and the ring below it


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _build_mesh(props: _Proportions, layout: _Layout, head_segments: int) -> _Mesh:
    verts, faces, radial, owner, weights = [], [], [], [], []
    joint_rings: list[list[np.ndarray]] = [[] for _ in range(24)]
    head_mid = head_top = np.zeros(0, np.int64)
    offset = 0
    for index, capsule in enumerate(_capsules()):
        start, end, length = _segment(capsule, props.joints, props.tip_scale)
        radius = props.head_radius if index == _HEAD else capsule.radius * props.radius_scale
        segments = head_segments if index == _HEAD else capsule.segments
        n_cap, n_cyl = layout.caps[index], layout.cylinders[index]
        axis = (end - start) / length
        # u, v span the ring plane with u x v = axis, so the faces below point outwards
        helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0, 0])
        u = np.cross(helper, axis)
        u /= np.linalg.norm(u)
        v = np.cross(axis, u)

        # ring profile: heights along the axis (0 at start, length at end), radii, bone t
        phi = 0.5 * np.pi * np.arange(1, n_cap + 1) / n_cap  # from the pole to the equator
        z = np.concatenate([-radius * np.cos(phi), length * np.arange(1, n_cyl + 1) / (n_cyl + 1),
                            length + radius * np.cos(phi[::-1])])
        rho = np.concatenate([radius * np.sin(phi), np.full(n_cyl, radius),
                              radius * np.sin(phi[::-1])])
        theta = 2.0 * np.pi * np.arange(segments) / segments
        ring_dirs = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * v  # (S, 3)
        axis_points = start + np.clip(z, 0.0, length)[:, None] * axis  # (R, 3)
        # offset of each vertex from its closest axis point (caps: also along the axis)
        beyond = (z - np.clip(z, 0.0, length))[:, None, None] * axis  # (R, 1, 3)
        offsets = rho[:, None, None] * ring_dirs[None] + beyond  # (R, S, 3)
        ring_verts = (axis_points[:, None] + offsets).reshape(-1, 3)
        pole_start, pole_end = start - radius * axis, end + radius * axis
        cap_verts = np.concatenate([pole_start[None], ring_verts, pole_end[None]])
        cap_radial = np.concatenate([-radius * axis[None], offsets.reshape(-1, 3),
                                     radius * axis[None]])
        num_rings = len(z)
        t = np.concatenate([[0.0], np.repeat(np.clip(z / length, 0.0, 1.0), segments), [1.0]])

        # skinning: the start joint, blending to the end joint near the end and to the start
        # joint's parent near the start, 50/50 exactly at each joint
        w = np.zeros((len(cap_verts), 24))
        to_end = 0.5 * _smoothstep((t - 0.7) / 0.3) if capsule.end >= 0 else 0.0 * t
        parent = SMPL_PARENTS[capsule.start]
        to_parent = 0.5 * (1.0 - _smoothstep(t / 0.3)) if parent >= 0 else 0.0 * t
        w[:, capsule.start] = 1.0 - to_end - to_parent
        if capsule.end >= 0:
            w[:, capsule.end] += to_end
        if parent >= 0:
            w[:, parent] += to_parent

        def ring(r: int, first: int = offset, size: int = segments) -> np.ndarray:
            return first + 1 + r * size + np.arange(size)  # vertex ids of ring r

        joint_rings[capsule.start].append(ring(n_cap - 1))
        if capsule.end >= 0:
            joint_rings[capsule.end].append(ring(n_cap + n_cyl))
        if index == _HEAD:
            head_mid = ring(n_cap + (n_cyl - 1) // 2)
            head_top = np.concatenate([[offset + len(cap_verts) - 1], ring(num_rings - 1)])

        j = np.arange(segments)
        k = (j + 1) % segments
        tri = [np.stack([np.zeros(segments, int), 1 + k, 1 + j], axis=1)]  # start cap
        for r in range(num_rings - 1):
            a, b = 1 + r * segments, 1 + (r + 1) * segments
            tri.append(np.stack([a + j, a + k, b + j], axis=1))
            tri.append(np.stack([a + k, b + k, b + j], axis=1))
        last, pole = 1 + (num_rings - 1) * segments, len(cap_verts) - 1
        tri.append(np.stack([last + j, last + k, np.full(segments, pole)], axis=1))
        faces.append(np.concatenate(tri) + offset)
        verts.append(cap_verts)
        radial.append(cap_radial)
        owner.append(np.full(len(cap_verts), index))
        weights.append(w)
        offset += len(cap_verts)
    return _Mesh(np.concatenate(verts), np.concatenate(faces).astype(np.int64),
                 np.concatenate(radial), np.concatenate(owner), np.concatenate(weights),
                 tuple(np.concatenate(r) for r in joint_rings), head_mid, head_top)


def _pick_targets(joints: np.ndarray) -> dict[str, tuple[int, np.ndarray]]:
    """Map each smplx vertex-id key to (capsule to search, body point where it belongs)."""
    head_r = 0.095
    head = joints[15] + (0.0, 0.05, 0.0)
    hand_tip = joints[22] + (0.07 + 0.03, 0.0, 0.0)
    toe_tip = joints[10] + (0.0, 0.0, 0.06 + 0.033)
    left = {
        'eye': (_HEAD, head + (0.035, 0.03, head_r)),
        'ear': (_HEAD, head + (head_r, 0.0, 0.0)),
        'BigToe': (_L_TOES, toe_tip + (-0.015, 0.0, 0.0)),
        'SmallToe': (_L_TOES, toe_tip + (0.02, 0.0, -0.01)),
        'Heel': (_L_FOOT, joints[7] + (0.0, -0.04, -0.045)),
        'thumb': (_L_HAND, joints[22] + (0.04, 0.0, 0.03)),
        'index': (_L_HAND, hand_tip + (-0.008, 0.0, 0.02)),
        'middle': (_L_HAND, hand_tip),
        'ring': (_L_HAND, hand_tip + (-0.005, 0.0, -0.015)),
        'pinky': (_L_HAND, hand_tip + (-0.012, 0.0, -0.025)),
    }
    mirror = {_L_TOES: _R_TOES, _L_FOOT: _R_FOOT, _L_HAND: _R_HAND, _HEAD: _HEAD}
    flip = np.array([-1.0, 1.0, 1.0])
    targets = {'nose': (_HEAD, head + (0.0, -0.01, head_r))}
    for part, (capsule, point) in left.items():
        lower = part[0].islower()
        targets[('l' if lower else 'L') + part] = (capsule, point)
        targets[('r' if lower else 'R') + part] = (mirror[capsule], point * flip)
    return targets


def _vertex_order(mesh: _Mesh, joints: np.ndarray) -> np.ndarray:
    """(V,) construction index of each final vertex id, putting the picks at smplx's ids."""
    order = np.arange(len(mesh.verts))
    where = np.arange(len(mesh.verts))  # final id of each construction vertex
    chosen: set[int] = set()
    targets = _pick_targets(joints)
    for key in VERTEX_PICK_SMPLX_KEYS:
        capsule, point = targets[key]
        candidates = np.flatnonzero(mesh.capsule == capsule)
        candidates = candidates[[c not in chosen for c in candidates]]
        best = int(candidates[np.argmin(np.linalg.norm(mesh.verts[candidates] - point, axis=1))])
        chosen.add(best)
        want = SMPLX_VERTEX_IDS['smplh'][key]
        # swap so that final id `want` holds construction vertex `best`
        here = where[best]
        displaced = order[want]
        order[want], order[here] = best, displaced
        where[best], where[displaced] = want, here
    return order


def _shape_dirs(mesh: _Mesh, joints: np.ndarray, rng: np.random.Generator,
                num: int) -> np.ndarray:
    """(V, 3, num) shape directions: height, girth, legs, arms, shoulders, belly, head."""
    verts, radial = mesh.verts, mesh.radial
    x, y = verts[:, 0], verts[:, 1]
    dirs = np.zeros(verts.shape + (num,))
    dirs[:, :, 0] = 0.06 * verts  # overall size
    dirs[:, :, 1] = 0.25 * radial  # girth
    hip_y = joints[1, 1]
    dirs[:, 1, 2] = 0.06 * np.minimum(y - hip_y, 0.0)  # leg length
    shoulder_x = joints[16, 0]
    dirs[:, 0, 3] = 0.06 * np.sign(x) * np.maximum(np.abs(x) - shoulder_x, 0.0)  # arm span
    upper = _smoothstep((y - joints[6, 1]) / (joints[12, 1] - joints[6, 1]))
    dirs[:, 0, 4] = 0.08 * x * upper  # shoulder width
    torso = np.isin(mesh.capsule, (2, 5))  # capsules pelvis -> spine1 -> spine2
    dirs[:, :, 5] = 0.3 * radial * (torso & (radial[:, 2] > 0))[:, None]  # belly
    head = mesh.capsule == _HEAD
    dirs[:, :, 6] = 0.12 * (verts - (joints[15] + (0, 0.05, 0))) * head[:, None]  # head size
    # the remaining directions: random thickness of each capsule
    coeffs = rng.normal(0.0, 0.05, size=(num - 7, int(mesh.capsule.max()) + 1))
    dirs[:, :, 7:] = radial[:, :, None] * coeffs[:, mesh.capsule].T[:, None, :]
    return dirs


def _pose_dirs(mesh: _Mesh, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 207) small pose-dependent bulges: each rotation entry swells a bone's flesh."""
    coeffs = rng.normal(0.0, 1.0, size=(23, 9))  # per non-root joint and (R - I) entry
    unit = mesh.radial / np.maximum(np.linalg.norm(mesh.radial, axis=1, keepdims=True), 1e-9)
    scale = 0.004 * mesh.weights[:, 1:, None] * coeffs[None]  # (V, 23, 9)
    return unit[:, :, None] * scale.reshape(len(unit), 1, 207)


def _regressor_rows(mesh: _Mesh, num_verts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint regressor (24, V), extra regressor (9, V), H36M regressor in H36M order (17, V)."""
    reg = np.zeros((24, num_verts))
    for joint, ids in enumerate(mesh.joint_rings):
        reg[joint, ids] = 1.0 / len(ids)  # rings centred on the joint: their mean is the joint

    def ring_row(ids: np.ndarray) -> np.ndarray:
        row = np.zeros(num_verts)
        row[ids] = 1.0 / len(ids)
        return row

    head_top = ring_row(mesh.head_top)
    head_mid = ring_row(mesh.head_mid_ring)
    pelvis = 0.5 * (reg[1] + reg[2])
    neck = 0.7 * reg[12] + 0.3 * reg[9]
    extra9 = np.stack([
        0.8 * reg[2] + 0.2 * reg[5], 0.8 * reg[1] + 0.2 * reg[4], neck, head_top, pelvis,
        0.6 * reg[12] + 0.4 * reg[9], 0.5 * reg[6] + 0.5 * reg[9], 0.75 * reg[15] + 0.25 * reg[12],
        head_mid,
    ])
    j17 = np.stack([
        reg[8], reg[5], 0.9 * reg[2] + 0.1 * reg[5], 0.9 * reg[1] + 0.1 * reg[4], reg[4], reg[7],
        reg[21], reg[19], reg[17], reg[16], reg[18], reg[20], neck, head_top, pelvis,
        0.5 * reg[3] + 0.5 * reg[6], head_mid,
    ])
    h36m = np.zeros_like(j17)
    h36m[list(H36M_TO_J17)] = j17  # the file is in H36M's own order; the packer reorders it
    return reg, extra9, h36m


@dataclass(frozen=True)
class SyntheticBody:
    """The arrays of a synthetic model in official layout (float64, construction done)."""

    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, 20)
    posedirs: np.ndarray  # (V, 3, 207)
    j_regressor: np.ndarray  # (24, V)
    weights: np.ndarray  # (V, 24)
    faces: np.ndarray  # (F, 3)
    rest_joints: np.ndarray  # (24, 3)


@dataclass(frozen=True)
class SyntheticBodyFiles:
    """Paths written by :func:`write_synthetic_smpl_files`.

    ``source_dir`` has the layout of ROMP's smpl_model_data folder (pass it as ``--extra``).
    """

    source_dir: Path
    smpl_pkl: Path
    smil_pkl: Path
    j_regressor_extra: Path
    j_regressor_h36m: Path
    kid_template: Path
    smpl_zip: Path | None
    num_vertices: int
    num_faces: int


def build_synthetic_bodies(seed: int = 0) -> dict[str, Any]:
    """Build the adult, kid and infant figures and the extra regressors (nothing written).

    Returns:
        dict with 'smpl' and 'smil' (:class:`SyntheticBody`), 'kid_template' (V, 3),
        'j_regressor_extra' (9, V) and 'j_regressor_h36m' (17, V, H36M order), float64.
    """
    rng = np.random.default_rng(seed)
    layout, head_segments = _layout()
    adult_props, kid_props, baby_props = (_proportions(a) for a in ('adult', 'kid', 'infant'))
    adult = _build_mesh(adult_props, layout, head_segments)
    order = _vertex_order(adult, adult_props.joints)
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    reg, extra9, h36m = _regressor_rows(adult, len(order))

    def body(mesh: _Mesh, props: _Proportions) -> SyntheticBody:
        shapedirs = _shape_dirs(mesh, props.joints, rng, NUM_SHAPE_DIRS)
        posedirs = _pose_dirs(mesh, rng)
        return SyntheticBody(
            v_template=mesh.verts[order], shapedirs=shapedirs[order], posedirs=posedirs[order],
            j_regressor=reg[:, order], weights=mesh.weights[order], faces=where[mesh.faces],
            rest_joints=reg[:, order] @ mesh.verts[order])

    kid = _build_mesh(kid_props, layout, head_segments)
    # the official kid template is not centred; the packer centres it
    kid_template = kid.verts[order] + (0.01, 0.25, 0.02)
    return {
        'smpl': body(adult, adult_props),
        'smil': body(_build_mesh(baby_props, layout, head_segments), baby_props),
        'kid_template': kid_template,
        'j_regressor_extra': extra9[:, order],
        'j_regressor_h36m': h36m[:, order],
    }


class _ChumpyStandIn:
    """Pickled under the name ``chumpy.ch.Ch`` with chumpy's attribute-dict state."""

    def __init__(self, value: np.ndarray) -> None:
        self.state = {'x': value, '_dirty_vars': set(), '_itr': None, '_depends_on_deps': {},
                      '_make_dense': False, '_make_sparse': False}

    def __reduce_ex__(self, protocol: int) -> tuple:
        return copyreg.__newobj__, (type(self),), self.state


class _CscStandIn:
    """Pickled under the name ``scipy.sparse.csc.csc_matrix`` with scipy's old state."""

    def __init__(self, dense: np.ndarray) -> None:
        rows, cols = dense.shape
        nonzero = dense.T != 0  # column-major order
        indices = np.nonzero(nonzero)[1].astype(np.int32)
        indptr = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int32)
        self.state = {'_shape': (rows, cols), 'maxprint': 50, 'format': 'csc',
                      'indices': indices, 'indptr': indptr, 'data': dense.T[nonzero]}

    def __reduce_ex__(self, protocol: int) -> tuple:
        return copyreg.__newobj__, (type(self),), self.state


def _py2_names() -> dict[Any, tuple[str, str]]:
    reconstruct = np.zeros(0).__reduce__()[0]
    return {
        _ChumpyStandIn: ('chumpy.ch', 'Ch'),
        _CscStandIn: ('scipy.sparse.csc', 'csc_matrix'),
        reconstruct: ('numpy.core.multiarray', '_reconstruct'),
    }


def _save_py2_str(pickler: pickle._Pickler, obj: bytes | str) -> None:
    # Python 2's str is a byte string: BINSTRING opcodes, read back with encoding='latin1'
    data = obj.encode('latin1') if isinstance(obj, str) else obj
    if len(data) < 256:
        pickler.write(pickle.SHORT_BINSTRING + bytes([len(data)]))
    else:
        pickler.write(pickle.BINSTRING + struct.pack('<i', len(data)))
    pickler.write(data)  # separately: no copy of a large array buffer
    pickler.memoize(obj)


class _Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler writing what Python 2 + numpy 1.x + scipy + chumpy wrote.

    The pure-Python pickler is used because it lets us rename globals (the stand-ins above
    are written under chumpy's and old scipy's names, which need not be importable).
    """

    dispatch = MappingProxyType({**pickle._Pickler.dispatch, bytes: _save_py2_str,
                                 str: _save_py2_str})

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, protocol=2)
        self._names = _py2_names()

    def save_global(self, obj: Any, name: str | None = None) -> None:
        renamed = self._names.get(obj)
        if renamed is None:
            super().save_global(obj, name)
            return
        module, qualname = renamed
        self.write(pickle.GLOBAL + f'{module}\n{qualname}\n'.encode('ascii'))
        self.memoize(obj)


def official_pickle_dict(body: SyntheticBody) -> dict[str, Any]:
    """The dict an official SMPL/SMIL pickle holds, with stand-ins for chumpy and scipy."""
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = _ROOT_PARENT
    return {
        'J_regressor_prior': _CscStandIn(body.j_regressor),
        'f': body.faces.astype(np.uint32),
        'J_regressor': _CscStandIn(body.j_regressor),
        'kintree_table': kintree,
        'J': _ChumpyStandIn(body.rest_joints),
        'weights_prior': body.weights.copy(),
        'weights': body.weights,
        'posedirs': body.posedirs,
        'bs_style': 'lbs',
        'v_template': _ChumpyStandIn(body.v_template),
        'shapedirs': _ChumpyStandIn(body.shapedirs),
        'bs_type': 'lrotmin',
    }


def dump_official_pickle(data: dict[str, Any], file: BinaryIO) -> None:
    """Write ``data`` as an official-style (Python 2, protocol 2) pickle."""
    _Py2StylePickler(file).dump(data)


def write_synthetic_smpl_files(out_dir: str | Path, seed: int = 0, *,
                               with_zip: bool = False) -> SyntheticBodyFiles:
    """Write a synthetic body model in the official SMPL / SMIL / ROMP file formats.

    Layout (that of ROMP's smpl_model_data folder, usable as ``--extra``)::

        out_dir/SMPL_NEUTRAL.pkl  J_regressor_extra.npy  J_regressor_h36m.npy
        out_dir/smpl_kid_template.npy  smil/smil_web.pkl  [SMPL_python_v.1.1.0.zip]

    Args:
        out_dir: created if needed; existing files of these names are overwritten.
        seed: seed of the random shape and pose directions (same seed, same bytes).
        with_zip: also write the SMPL pickle inside a zip under the official inner path.
    """
    out = Path(out_dir)
    (out / 'smil').mkdir(parents=True, exist_ok=True)
    bodies = build_synthetic_bodies(seed)
    files = SyntheticBodyFiles(
        source_dir=out, smpl_pkl=out / 'SMPL_NEUTRAL.pkl', smil_pkl=out / 'smil' / 'smil_web.pkl',
        j_regressor_extra=out / 'J_regressor_extra.npy',
        j_regressor_h36m=out / 'J_regressor_h36m.npy',
        kid_template=out / 'smpl_kid_template.npy',
        smpl_zip=out / SMPL_ZIP_NAME if with_zip else None,
        num_vertices=NUM_VERTICES, num_faces=int(bodies['smpl'].faces.shape[0]))
    for kind, path in (('smpl', files.smpl_pkl), ('smil', files.smil_pkl)):
        with open(path, 'wb') as fh:
            dump_official_pickle(official_pickle_dict(bodies[kind]), fh)
    np.save(files.j_regressor_extra, bodies['j_regressor_extra'])
    np.save(files.j_regressor_h36m, bodies['j_regressor_h36m'])
    np.save(files.kid_template, bodies['kid_template'])
    if files.smpl_zip is not None:
        # a fixed timestamp keeps the zip byte-identical for a seed
        info = zipfile.ZipInfo(SMPL_ZIP_MEMBER, date_time=(2020, 1, 1, 0, 0, 0))
        with zipfile.ZipFile(files.smpl_zip, 'w', zipfile.ZIP_STORED) as archive:
            archive.writestr(info, files.smpl_pkl.read_bytes())
    return files


def figure_height(verts: np.ndarray) -> float:
    """Height (extent along y) of a mesh, metres; a convenience for tests and the demo."""
    return float(verts[:, 1].max() - verts[:, 1].min())

