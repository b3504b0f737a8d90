"""Per-frame detections, the tracker's input, and their extraction from a ``FrameResult``."""

from __future__ import annotations

from dataclasses import dataclass, replace
import logging

import numpy as np

from romp_ros.core.results import FrameResult

_LOG = logging.getLogger(__name__)

#: SMPL's pelvis, the joint used as each person's root.
ROOT_JOINT_INDEX = 0


@dataclass(frozen=True)
class Detections:
    """The N people detected in one image.

    Attributes:
        root: (N, 3) m, root (pelvis) position in the camera optical frame (x right, y down,
            z forward).
        bbox: (N, 4) px, [u_min, v_min, u_max, v_max] in the original image.
        betas: (N, B) shape coefficients (B = 10 for SMPL, 11 for BEV's SMPL-A).
        confs: (N,) detection confidences (ROMP/BEV centre scores), in [0, 1].
        thetas: (N, 72) SMPL pose, axis-angle, radians.
        cam: (N, 3) weak-perspective camera [s, tx, ty] (normalised padded-square frame).
        center_px: (N, 2) px, optional body-centre pixel of each person.
        image_size: (height, width) px of the image, optional; lets the tracker retire
            coasting tracks that have walked out of the image.
        intrinsics: (3, 3) K of the image, optional; lets the tracker move a coasting
            track's box with its 3D motion.
        num_invalid: rows dropped by :meth:`create` because they held NaN/inf values.
        source_index: (N,) int64 row of each detection in the producer's output (the
            ``FrameResult`` row for :func:`detections_from_frame`), set when rows were dropped;
            None means row i is source row i.
    """

    root: np.ndarray
    bbox: np.ndarray
    betas: np.ndarray
    confs: np.ndarray
    thetas: np.ndarray
    cam: np.ndarray
    center_px: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    intrinsics: np.ndarray | None = None
    num_invalid: int = 0
    source_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.root.shape[0] if self.root.ndim == 2 else -1
        expected = {'root': (n, 3), 'bbox': (n, 4), 'confs': (n,), 'thetas': (n, 72),
                    'cam': (n, 3)}
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise ValueError(f'Detections.{name}: expected shape {shape}, got {value.shape}')
        if self.betas.ndim != 2 or self.betas.shape[0] != n:
            raise ValueError(f'Detections.betas: expected (N={n}, B), got {self.betas.shape}')
        if self.center_px is not None and self.center_px.shape != (n, 2):
            raise ValueError(f'Detections.center_px: expected ({n}, 2), '
                             f'got {self.center_px.shape}')
        if self.source_index is not None and self.source_index.shape != (n,):
            raise ValueError(f'Detections.source_index: expected ({n},), '
                             f'got {self.source_index.shape}')
        if self.intrinsics is not None and self.intrinsics.shape != (3, 3):
            raise ValueError(f'Detections.intrinsics: expected (3, 3), '
                             f'got {self.intrinsics.shape}')

    def __len__(self) -> int:
        return int(self.root.shape[0])

    @classmethod
    def create(cls, root: np.ndarray, bbox: np.ndarray, betas: np.ndarray, confs: np.ndarray,
               thetas: np.ndarray, cam: np.ndarray, center_px: np.ndarray | None = None,
               image_size: tuple[int, int] | None = None,
               intrinsics: np.ndarray | None = None) -> Detections:
        """Build validated detections (float64 copies); rows with any NaN/inf are dropped.

        The number of dropped rows is kept in ``num_invalid`` and logged at debug level.
        """
        arrays = {
            'root': np.array(root, dtype=np.float64).reshape(-1, 3),
            'bbox': np.array(bbox, dtype=np.float64).reshape(-1, 4),
            'confs': np.array(confs, dtype=np.float64).reshape(-1),
            'thetas': np.array(thetas, dtype=np.float64).reshape(-1, 72),
            'cam': np.array(cam, dtype=np.float64).reshape(-1, 3),
        }
        betas = np.array(betas, dtype=np.float64)
        arrays['betas'] = betas.reshape(1, -1) if betas.ndim == 1 else betas
        center = None if center_px is None else np.array(center_px, np.float64).reshape(-1, 2)
        k = None if intrinsics is None else np.array(intrinsics, dtype=np.float64)
        dets = cls(center_px=center, image_size=image_size, intrinsics=k, **arrays)
        return dets.finite()

    @classmethod
    def empty(cls, num_betas: int = 10, image_size: tuple[int, int] | None = None,
              intrinsics: np.ndarray | None = None) -> Detections:
        """No people."""
        return cls(root=np.zeros((0, 3)), bbox=np.zeros((0, 4)), betas=np.zeros((0, num_betas)),
                   confs=np.zeros(0), thetas=np.zeros((0, 72)), cam=np.zeros((0, 3)),
                   image_size=image_size, intrinsics=intrinsics)

    def source_rows(self) -> np.ndarray:
        """(N,) int64 producer row of each detection (see ``source_index``)."""
        if self.source_index is None:
            return np.arange(len(self), dtype=np.int64)
        return self.source_index

    def valid_mask(self) -> np.ndarray:
        """(N,) bool: rows whose every value is finite (and whose box is not inverted)."""
        ok = (np.isfinite(self.root).all(1) & np.isfinite(self.bbox).all(1)
              & np.isfinite(self.betas).all(1) & np.isfinite(self.confs)
              & np.isfinite(self.thetas).all(1) & np.isfinite(self.cam).all(1))
        if self.center_px is not None:
            ok &= np.isfinite(self.center_px).all(1)
        ok &= (self.bbox[:, 2] >= self.bbox[:, 0]) & (self.bbox[:, 3] >= self.bbox[:, 1])
        return ok

    def select(self, mask_or_index: np.ndarray) -> Detections:
        """A subset of the rows (boolean mask or integer indices), same metadata."""
        idx = np.asarray(mask_or_index)
        return replace(
            self, root=self.root[idx], bbox=self.bbox[idx], betas=self.betas[idx],
            confs=self.confs[idx], thetas=self.thetas[idx], cam=self.cam[idx],
            center_px=None if self.center_px is None else self.center_px[idx],
            source_index=self.source_rows()[idx])

    def finite(self) -> Detections:
        """These detections without invalid rows; ``num_invalid`` grows by the count removed."""
        mask = self.valid_mask()
        dropped = int((~mask).sum())
        if dropped == 0:
            return self
        _LOG.debug('dropping %d of %d detections with non-finite values', dropped, len(self))
        return replace(self.select(mask), num_invalid=self.num_invalid + dropped)


def detections_from_frame(result: FrameResult) -> Detections:
    """The tracker's input from one estimator output.

    root = pelvis (joint 0, body frame) + ``cam_trans``; bbox = min/max of ``pj2d_org`` over all
    joints; ``center_px`` = the projected pelvis. NaN rows are dropped (``num_invalid``).
    """
    joints = np.asarray(result.joints, dtype=np.float64)
    cam_trans = np.asarray(result.cam_trans, dtype=np.float64)
    image_size = (int(result.image_size[0]), int(result.image_size[1]))
    if result.num_people == 0:
        betas = np.asarray(result.smpl_betas)
        return Detections.empty(num_betas=betas.shape[1] if betas.ndim == 2 else 10,
                                image_size=image_size, intrinsics=result.intrinsics.as_matrix())
    pj2d = np.asarray(result.pj2d_org, dtype=np.float64)
    root = joints[:, ROOT_JOINT_INDEX] + cam_trans
    # nanmin/nanmax would hide a broken row; plain min/max lets NaN reach the validity check.
    bbox = np.concatenate([pj2d.min(axis=1), pj2d.max(axis=1)], axis=1)
    return Detections.create(
        root=root, bbox=bbox, betas=result.smpl_betas, confs=result.center_confs,
        thetas=result.smpl_thetas, cam=result.cam, center_px=pj2d[:, ROOT_JOINT_INDEX],
        image_size=image_size, intrinsics=result.intrinsics.as_matrix())
