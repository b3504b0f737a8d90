"""The package's mesh renderer: z-buffered, shaded SMPL-format bodies in pure torch.

``render_meshes`` draws N meshes (synthetic training images, the node's overlay);
``points_visible`` tells which joints or vertices of a render are visible. See
docs/rendering.md. On top of it (docs/visualization.md): ``draw_people_overlay`` (the mesh
overlay), ``draw_birds_eye`` with ``TrailKeeper`` (the bird's-eye view) and the network-map
colourings of ``heatmaps``; these draw with OpenCV, imported on first use.
"""

from romp_ros.core.render.birds_eye import (
    BirdsEyeConfig,
    BirdsEyePeople,
    TrailConfig,
    TrailKeeper,
    birds_eye_pixel,
    draw_birds_eye,
)
from romp_ros.core.render.id_colors import id_colors
from romp_ros.core.render.mesh_renderer import RenderResult, render_meshes
from romp_ros.core.render.overlay import OverlayStyle, draw_people_overlay
from romp_ros.core.render.shading import PALETTE, LightSpec
from romp_ros.core.render.visibility import VISIBILITY_TOL_M, points_visible

__all__ = ['BirdsEyeConfig', 'BirdsEyePeople', 'LightSpec', 'OverlayStyle', 'PALETTE',
           'RenderResult', 'TrailConfig', 'TrailKeeper', 'VISIBILITY_TOL_M', 'birds_eye_pixel',
           'draw_birds_eye', 'draw_people_overlay', 'id_colors', 'points_visible',
           'render_meshes']
