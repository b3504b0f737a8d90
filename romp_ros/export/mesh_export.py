"""Tracks -> per-frame mesh files (Wavefront OBJ or binary PLY).

Each track gets a folder next to the output path, ``<stem>_track<id>/``, holding one mesh per
frame in which it was present: ``frame_<index>.obj`` (or ``.ply``), numbered by the results
file's frame index. Untracked files get ``<stem>_frames/frame_<index>_person<k>.<ext>``
(k: the person's rank by confidence in that frame). Vertices are metres, in the y-up frame
(x, -y, -z of the camera frame; upright when imported with Y up) or, with ``axes='camera'``,
in the camera optical frame. Faces come from the prepared body model; vertices from the
results file, or posed with the body model when the file was written with ``--no-verts``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from romp_ros.core.body.smpl import BodyModel
from romp_ros.export.body_skin import BodyModels
from romp_ros.export.motion_source import MotionSource
from romp_ros.export.skeleton import AXES, to_yup

LOG = logging.getLogger(__name__)
MESH_FORMATS = ('obj', 'ply')


class _Poser:
    """Vertices from pose and shape with the body models, for files without vertices."""

    def __init__(self, models: BodyModels) -> None:
        self._models = models
        self._bodies: dict[str, BodyModel] = {}

    def verts(self, betas: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """(R, V, 3) body-frame vertices with the pelvis (joint 0) at the origin."""
        kinds = np.array([self._models.kind_for(b) for b in betas])
        out = None
        for kind in np.unique(kinds):
            if kind not in self._bodies:
                self._bodies[kind] = BodyModel(self._models.arrays(kind)).eval()
            body = self._bodies[kind]
            mine = kinds == kind
            with torch.inference_mode():
                posed = body(torch.as_tensor(betas[mine, :body.num_betas], dtype=torch.float32),
                             torch.as_tensor(thetas[mine], dtype=torch.float32))
            verts = (posed.verts - posed.joints[:, :1]).numpy()  # (R_k, V, 3)
            if out is None:
                out = np.empty((len(betas), *verts.shape[1:]), np.float32)
            out[mine] = verts
        return out


def write_meshes(source: MotionSource, models: BodyModels, out: Path, fmt: str,
                 track_ids: np.ndarray | None, axes: str = 'yup') -> list[Path]:
    """Write one mesh per person and frame; returns the folders written.

    Args:
        source: the results file.
        models: the prepared body models (faces; pose for files without vertices).
        out: the output path (its parent and stem name the folders).
        fmt: 'obj' or 'ply'.
        track_ids: the tracks to write, or None for an untracked file (every person).
        axes: 'yup' or 'camera'.
    """
    if fmt not in MESH_FORMATS or axes not in AXES:
        raise ValueError(f'fmt must be one of {MESH_FORMATS} and axes one of {AXES}')
    keys = ('smpl_betas', 'smpl_thetas', 'joints', 'cam_trans') + (
        ('verts',) if source.has_verts else ())
    poser = None if source.has_verts else _Poser(models)
    wanted = None if track_ids is None else {int(t) for t in track_ids}
    faces_of: dict[str, np.ndarray] = {}
    folders: set[Path] = set()
    skipped = 0
    rank_in_frame = _ranks(source.frame_index)
    for block in source.blocks(keys):
        mine = (np.ones(len(block.rows), bool) if wanted is None
                else np.isin(block.track_ids, list(wanted)))
        if not mine.any():
            continue
        arrays = {k: v[mine] for k, v in block.arrays.items()}
        pelvis = arrays['joints'][:, 0] + arrays['cam_trans']  # (R, 3) camera frame
        if poser is None:
            verts = (arrays['verts'] - arrays['joints'][:, :1]).astype(np.float32)
        else:
            verts = poser.verts(arrays['smpl_betas'], arrays['smpl_thetas'])
        verts = verts + pelvis[:, None].astype(np.float32)  # (R, V, 3) camera frame
        finite = np.isfinite(verts).all(axis=(1, 2))
        skipped += int((~finite).sum())
        rows = block.rows[mine]
        for r in np.flatnonzero(finite):
            kind = models.kind_for(arrays['smpl_betas'][r])
            if kind not in faces_of:
                faces_of[kind] = models.arrays(kind).faces
            mesh = to_yup(verts[r]) if axes == 'yup' else verts[r]
            frame = int(source.frame_index[rows[r]])
            if wanted is None:
                folder = out.with_name(f'{out.stem}_frames')
                name = f'frame_{frame:06d}_person{rank_in_frame[rows[r]]}.{fmt}'
            else:
                folder = out.with_name(f'{out.stem}_track{int(block.track_ids[mine][r])}')
                name = f'frame_{frame:06d}.{fmt}'
            if folder not in folders:
                folder.mkdir(parents=True, exist_ok=True)
                folders.add(folder)
            (write_obj if fmt == 'obj' else write_ply)(folder / name, mesh, faces_of[kind])
    if skipped:
        LOG.warning('%d mesh(es) with NaN/inf vertices were not written', skipped)
    LOG.info('%s: %d folder(s) next to %s', fmt.upper(), len(folders), out)
    return sorted(folders)


def _ranks(frame_index: np.ndarray) -> np.ndarray:
    """(N,) each person's position within its frame (rows are grouped by frame)."""
    if frame_index.size == 0:
        return frame_index.copy()
    starts = np.flatnonzero(np.concatenate([[True], np.diff(frame_index) != 0]))
    first = np.repeat(starts, np.diff(np.concatenate([starts, [frame_index.size]])))
    return np.arange(frame_index.size) - first


def write_obj(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """A Wavefront OBJ of one mesh: ``v`` lines (metres) then 1-based ``f`` lines."""
    text = ('v %.6f %.6f %.6f\n' * len(verts)) % tuple(verts.ravel().tolist())
    text += ('f %d %d %d\n' * len(faces)) % tuple((faces + 1).ravel().tolist())
    path.write_text(text)


def write_ply(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """A binary little-endian PLY of one mesh (float32 vertices, int32 triangle lists)."""
    header = ('ply\nformat binary_little_endian 1.0\ncomment romp_ros export-motion\n'
              f'element vertex {len(verts)}\nproperty float x\nproperty float y\n'
              f'property float z\nelement face {len(faces)}\n'
              'property list uchar int vertex_indices\nend_header\n')
    face_rows = np.zeros(len(faces), dtype=[('n', 'u1'), ('v', '<i4', (3,))])
    face_rows['n'] = 3
    face_rows['v'] = faces
    with open(path, 'wb') as handle:
        handle.write(header.encode('ascii'))
        handle.write(np.ascontiguousarray(verts, dtype='<f4').tobytes())
        handle.write(face_rows.tobytes())


def read_ply_vertices(path: Path) -> np.ndarray:
    """(V, 3) vertices of a PLY written by :func:`write_ply` (for round-trip checks)."""
    data = Path(path).read_bytes()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    count = int(next(line.split()[2] for line in data[:end].decode('ascii').splitlines()
                     if line.startswith('element vertex')))
    return np.frombuffer(data, dtype='<f4', count=count * 3, offset=end).reshape(count, 3)


