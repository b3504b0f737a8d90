"""The package's mesh renderer: z-buffered, shaded SMPL-format bodies in pure torch.

``render_meshes`` draws N meshes (synthetic training images, the node's overlay);
``points_visible`` tells which joints or vertices of a render are visible. See
docs/rendering.md.
"""

from romp_ros.core.render.mesh_renderer import RenderResult, render_meshes
from romp_ros.core.render.shading import PALETTE, LightSpec
from romp_ros.core.render.visibility import VISIBILITY_TOL_M, points_visible

__all__ = ['LightSpec', 'PALETTE', 'RenderResult', 'VISIBILITY_TOL_M', 'points_visible',
           'render_meshes']
