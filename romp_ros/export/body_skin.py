"""The skinned body of an exported track: rest mesh, skinning weights, rest joints.

Results files hold pose and shape, not the body model; the mesh topology, skinning weights
and shape blend shapes come from the prepared models directory (``romp-ros prepare-models``).
A track's rest mesh is the body model's template deformed by the track's mean shape: the
same linear blend skinning as SMPL, without its pose-dependent corrective blend shapes,
which glTF cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from romp_ros.core.body.model_files import BodyModelArrays, ModelFilesError, load_body_model_arrays
from romp_ros.core.body.smpl import SMIL_AGE_THRESH
from romp_ros.export.errors import MotionExportError

INFLUENCES = 4  # glTF's JOINTS_0 / WEIGHTS_0 hold four joints per vertex


@dataclass(frozen=True)
class RestBody:
    """One track's body at rest.

    Attributes:
        kind: the body model used ('smpl', 'smpla' or 'smil').
        verts: (V, 3) float64 rest-pose vertices, metres, SMPL's canonical frame (y up).
        joints: (24, 3) float64 rest-pose joints, same frame.
    """

    kind: str
    verts: np.ndarray
    joints: np.ndarray


class BodyModels:
    """The prepared body models of a models directory, loaded on first use."""

    def __init__(self, models_dir: str | Path) -> None:
        """Remember ``models_dir``; nothing is read yet."""
        self.models_dir = Path(models_dir).expanduser()
        self._arrays: dict[str, BodyModelArrays | None] = {}

    def arrays(self, kind: str) -> BodyModelArrays:
        """The arrays of ``kind`` (ModelFilesError naming the missing file)."""
        if self._arrays.get(kind) is None:
            self._arrays[kind] = load_body_model_arrays(self.models_dir, kind)
        return self._arrays[kind]

    def kind_for(self, betas: np.ndarray) -> str:
        """The model a shape belongs to: SMPL (10 betas), SMPL-A or SMIL (11, BEV)."""
        if betas.shape[-1] == 10:
            return 'smpl'
        if float(betas[10]) > SMIL_AGE_THRESH:
            try:
                self.arrays('smil')
                return 'smil'
            except ModelFilesError:
                pass  # BEV poses infants with SMPL-A too when SMIL was not prepared
        return 'smpla'

    def rest_body(self, betas: np.ndarray) -> RestBody:
        """The rest mesh and joints of shape ``betas`` (B,)."""
        kind = self.kind_for(betas)
        arrays = self.arrays(kind)
        shape = np.asarray(betas, np.float64)[:arrays.num_betas]
        if shape.shape[0] != arrays.num_betas:
            raise MotionExportError(f'{kind} needs {arrays.num_betas} shape parameters, the '
                                    f'results hold {shape.shape[0]}: pass the models directory '
                                    'the results were made with')
        verts = arrays.v_template.astype(np.float64) + arrays.shapedirs.astype(np.float64) @ shape
        joints = arrays.j_regressor.astype(np.float64) @ verts  # (24, 3)
        return RestBody(kind=kind, verts=verts, joints=joints)


def top_influences(lbs_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4 strongest joints of each vertex and their weights, renormalised to sum 1.

    Args:
        lbs_weights: (V, 24) skinning weights.

    Returns:
        joints (V, 4) uint8 and weights (V, 4) float32.
    """
    order = np.argsort(-lbs_weights, axis=1, kind='stable')[:, :INFLUENCES]  # (V, 4)
    weights = np.take_along_axis(lbs_weights, order, axis=1).clip(min=0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0),
                       np.eye(1, INFLUENCES))  # a vertex without weight follows its first joint
    return order.astype(np.uint8), weights.astype(np.float32)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a mesh (float32)."""
    tri = verts[faces]  # (F, 3, 3)
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3)
    normals = np.zeros_like(verts)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    fallback = np.array([0.0, 1.0, 0.0])
    return np.where(length > 0, normals / np.where(length > 0, length, 1.0),
                    fallback).astype(np.float32)
