"""The 24 SMPL joints of a body model in numpy: rest joints from betas, posed joints by FK.

Loaders use it to turn a dataset's own SMPL conventions into the package's
(``camera point = body-model point + translation``, the global orientation about the root
joint): 3DPW gives joint positions in the world, AGORA gives camera-frame joints and a body
pose without a camera-frame orientation. SMPL's joints depend only on the shaped rest joints
and the rotations (pose blend shapes move vertices, not joints), so no mesh is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.model_files import BodyModelArrays, load_body_model_arrays


@dataclass(frozen=True)
class RestSkeleton:
    """A body model's joint regressor applied to its shape space.

    Attributes:
        joints_template: (24, 3) rest joints at zero betas, metres, body frame.
        joints_shapedirs: (24, 3, B) change of the rest joints per unit beta.
        parents: (24,) int64 parent of each joint (-1 for the root).
    """

    joints_template: np.ndarray
    joints_shapedirs: np.ndarray
    parents: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: BodyModelArrays) -> 'RestSkeleton':
        """Regress the rest joints of prepared body-model arrays."""
        regressor = np.asarray(arrays.j_regressor, dtype=np.float64)  # (24, V)
        template = regressor @ np.asarray(arrays.v_template, dtype=np.float64)  # (24, 3)
        shapedirs = np.einsum('jv,vcb->jcb', regressor,
                              np.asarray(arrays.shapedirs, dtype=np.float64))  # (24, 3, B)
        return cls(template, shapedirs, np.asarray(arrays.parents, dtype=np.int64))

    @classmethod
    def from_models_dir(cls, models_dir: str | Path, kind: str = 'smpl') -> 'RestSkeleton':
        """Load ``kind`` from a prepared models directory (ModelFilesError if unusable)."""
        return cls.from_arrays(load_body_model_arrays(models_dir, kind))

    @property
    def num_betas(self) -> int:
        """B."""
        return int(self.joints_shapedirs.shape[2])

    def rest_joints(self, betas: np.ndarray) -> np.ndarray:
        """(N, 24, 3) shaped rest joints; betas (N, B') with extra or missing betas 0."""
        betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
        used = np.zeros((betas.shape[0], self.num_betas))
        count = min(self.num_betas, betas.shape[1])
        used[:, :count] = betas[:, :count]
        return self.joints_template + np.einsum('jcb,nb->njc', self.joints_shapedirs, used)

    def root_joint(self, betas: np.ndarray) -> np.ndarray:
        """(N, 3) the rest root joint (the centre of the global rotation)."""
        return self.rest_joints(betas)[:, 0]

    def posed_joints(self, betas: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(N, 24, 3) joints posed by forward kinematics, body frame, no translation.

        Args:
            betas: (N, B').
            pose: (N, 72) axis-angle, joint 0 the global orientation (about the root joint,
                which therefore stays at its rest position).
        """
        rest = self.rest_joints(betas)  # (N, 24, 3)
        pose = np.atleast_2d(np.asarray(pose, dtype=np.float64))
        num = rest.shape[0]
        local = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(num, 24, 3, 3)
        world_rot = np.empty_like(local)  # (N, 24, 3, 3)
        posed = np.empty_like(rest)  # (N, 24, 3)
        for joint, parent in enumerate(self.parents):
            if parent < 0:
                world_rot[:, joint] = local[:, joint]
                posed[:, joint] = rest[:, joint]
                continue
            offset = rest[:, joint] - rest[:, parent]  # (N, 3)
            world_rot[:, joint] = world_rot[:, parent] @ local[:, joint]
            posed[:, joint] = posed[:, parent] + np.einsum('nij,nj->ni', world_rot[:, parent],
                                                           offset)
        return posed


def fit_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotations best mapping centred ``source`` point sets onto centred ``target`` ones.

    Kabsch's least squares with the reflection excluded.

    Args:
        source, target: (N, J, 3) corresponding points.

    Returns:
        (N, 3, 3) rotation matrices R minimising sum |R (s - mean s) - (t - mean t)|^2.
    """
    src = source - source.mean(axis=1, keepdims=True)
    tgt = target - target.mean(axis=1, keepdims=True)
    cov = np.einsum('nji,njk->nik', tgt, src)  # (N, 3, 3)
    u, _, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))  # (N,)
    fix = np.ones((source.shape[0], 3))
    fix[:, 2] = sign
    return np.einsum('nij,nj,njk->nik', u, fix, vt)
