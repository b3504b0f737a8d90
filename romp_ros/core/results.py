"""Typed outputs of the estimator.

Shapes use N people, J joints (71 with the extra regressors, else 24) and V mesh vertices.
Names and meanings follow simple-romp's result dict so users of the reference can switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from romp_ros.core.geometry.camera_model import CameraModel


@dataclass(frozen=True)
class CameraIntrinsics:
    """The camera of an image: pinhole intrinsics in pixels of that image, and its lens.

    ``source`` is 'camera' for a calibrated camera (CameraInfo, ``--intrinsics``,
    ``--camera-info``) and 'fov' when the default field of view was assumed.

    ``distortion_model`` and ``d`` describe the lens like ``sensor_msgs/CameraInfo`` does
    ('none', 'plumb_bob', 'rational_polynomial' or 'equidistant', and the coefficients in
    CameraInfo order; see :mod:`romp_ros.core.geometry.camera_model`). 'none' (the default) is
    an ideal pinhole: images that were rectified, or a camera given by K alone.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    source: str = 'camera'
    distortion_model: str = 'none'
    d: tuple[float, ...] = ()

    def as_matrix(self) -> np.ndarray:
        """The 3x3 K matrix (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def is_distorted(self) -> bool:
        """Whether the lens differs from the ideal pinhole (a fisheye always does)."""
        if self.distortion_model == 'equidistant':
            return True
        return self.distortion_model not in ('none', '') and any(self.d)

    def lens(self, image_size: tuple[int, int]) -> 'CameraModel':
        """This camera as a :class:`~romp_ros.core.geometry.camera_model.CameraModel`.

        Args:
            image_size: (height, width) of the image, pixels.

        Raises:
            CameraModelError: an unknown distortion model or coefficients that do not fit it.
        """
        # imported here: the geometry package imports this module
        from romp_ros.core.geometry.camera_model import CameraModel
        height, width = image_size
        return CameraModel(int(width), int(height), (self.fx, self.fy, self.cx, self.cy),
                           self.distortion_model or 'none', tuple(self.d))

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points, metres -> (..., 2) pixels, through the lens.

        Points the camera cannot see (behind a pinhole / polynomial lens) give NaN.
        """
        points = np.asarray(points_cam, dtype=np.float64)
        if self.is_distorted:
            # the image size does not enter the projection
            return self.lens((1, 1)).project(points)
        with np.errstate(divide='ignore', invalid='ignore'):
            depth = np.where(points[..., 2:3] > 0.0, points[..., 2:3], np.nan)
            xy = points[..., :2] / depth
        return xy * np.array([self.fx, self.fy]) + np.array([self.cx, self.cy])


@dataclass(frozen=True)
class FrameResult:
    """The people found in one image, ordered by descending ``center_confs``.

    Attributes:
        cam: (N, 3) weak-perspective camera [s, tx, ty] in the normalised [-1, 1] frame of the
            padded square network input; the 2D projection of a body point X is X[:2]*s+(tx,ty).
            The same order for ROMP and BEV (BEV's network predicts [s, ty, tx]; the estimator
            reorders it).
        smpl_thetas: (N, 72) SMPL pose, axis-angle, radians; the first 3 are the global
            orientation in the camera optical frame.
        smpl_betas: (N, 10) SMPL shape (ROMP) or (N, 11) SMPL-A shape (BEV, 11th = age offset).
        cam_trans: (N, 3) metres: body frame -> camera optical frame (x right, y down, z fwd).
        joints: (N, J, 3) metres, body frame (add ``cam_trans`` for the camera frame).
        verts: (N, V, 3) metres, body frame, or None when vertices were not requested.
        pj2d_org: (N, J, 2) pixels of the original image (u right, v down), as the network
            sees them: with a distorted lens, in the distorted (raw) image.
        center_confs: (N,) body-center scores.
        joint_names: the J joint names, SMPL's 24 first.
        image_size: (height, width) of the original image, pixels.
        intrinsics: the camera (K and lens) that ``cam_trans`` was solved with, where
            ``translation_solved`` is True.
        model_type: per person, the body model used: 'smpl', 'smpla' or 'smil'.
        translation_solved: (N,) bool, or None when not recorded. True: the person's
            ``cam_trans`` makes the joints project onto ``pj2d_org`` through ``intrinsics``
            (lens included). False: the network's own translation for the reference's
            60-degree camera was kept, because no camera was given (and the default field of
            view is 60 degrees) or because the solve failed for this person (degenerate
            keypoints, a solution behind the camera).
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
    translation_solved: np.ndarray | None = None

    @property
    def num_people(self) -> int:
        """N, the number of people."""
        return int(self.cam.shape[0])

    def select(self, rows: np.ndarray) -> 'FrameResult':
        """The same frame restricted to the people ``rows`` (indices, in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        types = tuple(self.model_type[i] for i in rows) if self.model_type else ()
        solved = None if self.translation_solved is None else self.translation_solved[rows]
        return replace(
            self, cam=self.cam[rows], smpl_thetas=self.smpl_thetas[rows],
            smpl_betas=self.smpl_betas[rows], cam_trans=self.cam_trans[rows],
            joints=self.joints[rows], verts=None if self.verts is None else self.verts[rows],
            pj2d_org=self.pj2d_org[rows], center_confs=self.center_confs[rows],
            model_type=types, translation_solved=solved)

    def translation_from_camera(self) -> np.ndarray:
        """(N,) bool: whose ``cam_trans`` was solved with a calibrated camera.

        True where ``intrinsics.source`` is 'camera' and the solve succeeded for the person;
        when ``translation_solved`` was not recorded, every person of a calibrated frame.
        """
        calibrated = self.intrinsics.source == 'camera'
        if self.translation_solved is None:
            return np.full(self.num_people, calibrated, dtype=bool)
        return np.asarray(self.translation_solved, dtype=bool) & calibrated

    def joints_camera(self) -> np.ndarray:
        """(N, J, 3) joints in the camera optical frame, metres."""
        return self.joints + self.cam_trans[:, None, :]

    def verts_camera(self) -> np.ndarray | None:
        """(N, V, 3) vertices in the camera optical frame, metres (None if not computed)."""
        if self.verts is None:
            return None
        return self.verts + self.cam_trans[:, None, :]
