"""One colour per person id, shared by the overlay, the bird's-eye view and RViz markers."""

from __future__ import annotations

import numpy as np

# 12 well-separated colours (RGB 0..1); id k gets ID_PALETTE[k % 12]. The same values as the
# ROS markers (romp_ros.ros.conversions.PALETTE) so a person has one colour everywhere.
ID_PALETTE = np.array([
    (0.90, 0.10, 0.29), (0.24, 0.71, 0.29), (1.00, 0.88, 0.10), (0.00, 0.51, 0.78),
    (0.96, 0.51, 0.19), (0.57, 0.12, 0.71), (0.27, 0.94, 0.94), (0.94, 0.20, 0.90),
    (0.82, 0.96, 0.24), (0.98, 0.75, 0.83), (0.00, 0.50, 0.50), (0.67, 0.43, 0.16),
], dtype=np.float32)


def id_colors(ids) -> np.ndarray:
    """(N, 3) float32 RGB colours (0..1) of N person ids (any integers)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    return ID_PALETTE[ids % len(ID_PALETTE)]


def to_bytes(rgb: np.ndarray, scale: float = 1.0) -> tuple[int, int, int]:
    """One colour (0..1) as an (r, g, b) tuple of ints 0..255, optionally brightened."""
    r, g, b = (int(round(min(255.0, 255.0 * c * scale))) for c in rgb)
    return r, g, b
