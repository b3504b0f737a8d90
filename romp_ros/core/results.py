"""Typed outputs of the estimator.

Shapes use N people, J joints (71 with the extra regressors, else 24) and V mesh vertices.
Names and meanings follow simple-romp's result dict so users of the reference can switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image, in pixels of that image.

    ``source`` is 'camera' for a calibrated K (CameraInfo, ``--intrinsics``) and 'fov' when the
    default field of view was assumed.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    source: str = 'camera'

    def as_matrix(self) -> np.ndarray:
        """The 3x3 K matrix (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class FrameResult:
    """The people found in one image, ordered by descending ``center_confs``.

    Attributes:
        cam: (N, 3) weak-perspective camera [s, tx, ty] in the normalised [-1, 1] frame of the
            padded square network input; the 2D projection of a body point X is X[:2]*s+(tx,ty).
        smpl_thetas: (N, 72) SMPL pose, axis-angle, radians; the first 3 are the global
            orientation in the camera optical frame.
        smpl_betas: (N, 10) SMPL shape (ROMP) or (N, 11) SMPL-A shape (BEV, 11th = age offset).
        cam_trans: (N, 3) metres: body frame -> camera optical frame (x right, y down, z fwd).
        joints: (N, J, 3) metres, body frame (add ``cam_trans`` for the camera frame).
        verts: (N, V, 3) metres, body frame, or None when vertices were not requested.
        pj2d_org: (N, J, 2) pixels of the original image (u right, v down).
        center_confs: (N,) body-center scores.
        joint_names: the J joint names, SMPL's 24 first.
        image_size: (height, width) of the original image, pixels.
        intrinsics: the intrinsics that ``cam_trans`` was solved with.
        model_type: per person, the body model used: 'smpl', 'smpla' or 'smil'.
    """

    cam: np.ndarray
    smpl_thetas: np.ndarray
    smpl_betas: np.ndarray
    cam_trans: np.ndarray
    joints: np.ndarray
    verts: np.ndarray | None
    pj2d_org: np.ndarray
    center_confs: np.ndarray
    joint_names: tuple[str, ...]
    image_size: tuple[int, int]
    intrinsics: CameraIntrinsics
    model_type: tuple[str, ...] = field(default=())

    @property
    def num_people(self) -> int:
        """N, the number of people."""
        return int(self.cam.shape[0])

    def select(self, rows: np.ndarray) -> 'FrameResult':
        """The same frame restricted to the people ``rows`` (indices, in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        types = tuple(self.model_type[i] for i in rows) if self.model_type else ()
        return replace(
            self, cam=self.cam[rows], smpl_thetas=self.smpl_thetas[rows],
            smpl_betas=self.smpl_betas[rows], cam_trans=self.cam_trans[rows],
            joints=self.joints[rows], verts=None if self.verts is None else self.verts[rows],
            pj2d_org=self.pj2d_org[rows], center_confs=self.center_confs[rows],
            model_type=types)

    def joints_camera(self) -> np.ndarray:
        """(N, J, 3) joints in the camera optical frame, metres."""
        return self.joints + self.cam_trans[:, None, :]

    def verts_camera(self) -> np.ndarray | None:
        """(N, V, 3) vertices in the camera optical frame, metres (None if not computed)."""
        if self.verts is None:
            return None
        return self.verts + self.cam_trans[:, None, :]
