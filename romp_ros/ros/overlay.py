"""The node's overlay image: the core's shaded, z-buffered mesh overlay in marker colours.

Drawing is ``romp_ros.core.render.draw_people_overlay`` (docs/visualization.md): meshes
through the package's rasteriser with the image as background, so the nearer person hides
the farther one pixel by pixel, and the skeleton of the estimator's own 2D keypoints where
the render says the joints are visible. Colours match the RViz markers
(:func:`romp_ros.ros.conversions.person_color`). The camera-rate figures are in
docs/visualization.md.
"""

from __future__ import annotations

import numpy as np

from romp_ros.core.render import OverlayStyle, draw_people_overlay
from romp_ros.core.results import FrameResult
from romp_ros.ros.conversions import person_color

MESH_ALPHA = 0.6
# the node shows what the network predicted in 2D; the 3D joints are in the markers and TF
NODE_STYLE = OverlayStyle(alpha=MESH_ALPHA, keypoints='estimated')


def draw_overlay(pixels: np.ndarray, result: FrameResult, ids, faces: np.ndarray | None,
                 color_order: str = 'rgb') -> np.ndarray:
    """A copy of ``pixels`` (H, W, 3 uint8) with every person's mesh, skeleton and id drawn.

    Args:
        pixels: the decoded input image.
        result: the estimator's result for it (vertices needed for meshes).
        ids: person ids in result order (colours, labels).
        faces: (F, 3) mesh triangles, or None for skeletons only.
        color_order: channel order of ``pixels`` ('rgb' or 'bgr'), kept in the copy.
    """
    ids = np.asarray(list(ids), dtype=np.int64)
    colors = np.array([person_color(pid) for pid in ids], np.float32).reshape(-1, 3)
    return draw_people_overlay(pixels, result, faces, ids, colors=colors, style=NODE_STYLE,
                               color_order=color_order)
