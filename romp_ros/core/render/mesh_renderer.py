"""``render_meshes``: shaded SMPL-format bodies over a background, with depth and person maps.

The one renderer of the package (synthetic training images, the node's mesh overlay). Pure
torch: it runs wherever the vertices live (CPU, or a CUDA tensor's device) and needs no
OpenGL. See docs/rendering.md for the design, conventions and measured speed.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import torch

from romp_ros.core.render.rasterizer import rasterize
from romp_ros.core.render.shading import LightSpec, composite, palette_colors, shade

_MAX_MESHES = int(np.iinfo(np.int16).max)


@dataclass(frozen=True)
class RenderResult:
    """One rendered image.

    Attributes:
        image: (H, W, 3) uint8 RGB, the shaded meshes composited over the background.
        depth: (H, W) float32 z (metres along the optical axis) of the nearest mesh surface at
            each pixel centre; np.inf where no mesh covers it.
        person_index: (H, W) int16 index n of the nearest mesh at each pixel centre, -1 for
            background.
    """

    image: np.ndarray
    depth: np.ndarray
    person_index: np.ndarray


def intrinsics_tuple(k: tuple[float, float, float, float] | np.ndarray) -> tuple[float, ...]:
    """(fx, fy, cx, cy) from a 4-sequence or a 3x3 K (no skew); ValueError when unusable."""
    arr = np.asarray(k, dtype=np.float64)
    if arr.shape == (3, 3):
        if arr[0, 1] != 0.0 or np.any(arr[2] != (0.0, 0.0, 1.0)) or arr[1, 0] != 0.0:
            raise ValueError(f'k must be a pinhole K [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] '
                             f'without skew, got {arr.tolist()}')
        arr = arr[[0, 1, 0, 1], [0, 1, 2, 2]]
    if arr.shape != (4,):
        raise ValueError(f'k must be (fx, fy, cx, cy) or a 3x3 K, got shape {arr.shape}')
    fx, fy, cx, cy = (float(x) for x in arr)
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise ValueError(f'focal lengths fx={fx}, fy={fy} must be finite and positive (pixels)')
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError(f'principal point cx={cx}, cy={cy} must be finite')
    return fx, fy, cx, cy


def _image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in image_size)
    except (TypeError, ValueError) as err:
        raise ValueError(f'image_size must be (H, W), got {image_size!r}') from err
    if height <= 0 or width <= 0 or (height, width) != tuple(image_size):
        raise ValueError(f'image_size (H, W) must be positive integers, got {image_size!r}')
    return height, width


def _as_verts(verts: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(verts)
    if tensor.dim() != 3 or tensor.shape[2] != 3:
        raise ValueError(f'verts must have shape (N, V, 3), got {tuple(tensor.shape)}')
    if not tensor.is_floating_point():
        raise ValueError(f'verts must be floating point metres, got dtype {tensor.dtype}')
    bad = ~torch.isfinite(tensor).all(dim=2).all(dim=1)  # (N,)
    if bool(bad.any()):
        people = torch.nonzero(bad).squeeze(1).tolist()
        raise ValueError(f'verts of mesh(es) {people} contain NaN or inf; drop those people '
                         'before rendering')
    return tensor.float()


def _as_faces(faces: np.ndarray | torch.Tensor, num_verts: int,
              device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(faces, device=device)
    if tensor.dim() != 2 or tensor.shape[1] != 3:
        raise ValueError(f'faces must have shape (F, 3), got {tuple(tensor.shape)}')
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise ValueError(f'faces must be integer vertex indices, got dtype {tensor.dtype}')
    if tensor.shape[0] == 0:
        raise ValueError("faces is empty: pass the body model's (F, 3) triangle indices")
    tensor = tensor.long()
    low, high = int(tensor.min()), int(tensor.max())
    if low < 0 or high >= num_verts:
        raise ValueError(f'faces index vertices {low}..{high} but the meshes have '
                         f'{num_verts} vertices')
    return tensor


def _as_colors(colors: np.ndarray | torch.Tensor | None, num: int, num_verts: int,
               device: torch.device) -> torch.Tensor:
    if colors is None:
        return palette_colors(num).to(device)
    tensor = torch.as_tensor(colors, device=device).float()
    if tuple(tensor.shape) not in ((num, 3), (num, num_verts, 3)):
        raise ValueError(f'colors must have shape (N, 3) or (N, V, 3) = ({num}, 3) or '
                         f'({num}, {num_verts}, 3), got {tuple(tensor.shape)}')
    if not bool(((tensor >= 0) & (tensor <= 1)).all()):
        raise ValueError('colors must be RGB floats within [0, 1] (not 0..255)')
    return tensor


def _as_background(background: np.ndarray | None, size: tuple[int, int]) -> torch.Tensor | None:
    if background is None:
        return None
    arr = np.asarray(background)
    if arr.shape != (*size, 3) or arr.dtype != np.uint8:
        raise ValueError(f'background must be a ({size[0]}, {size[1]}, 3) uint8 RGB image, got '
                         f'shape {arr.shape} dtype {arr.dtype}')
    return torch.from_numpy(np.ascontiguousarray(arr))


@torch.no_grad()
def render_meshes(verts: np.ndarray | torch.Tensor, faces: np.ndarray | torch.Tensor,
                  k: tuple[float, float, float, float] | np.ndarray,
                  image_size: tuple[int, int], *, colors: np.ndarray | None = None,
                  background: np.ndarray | None = None, light: LightSpec | None = None,
                  alpha: float = 1.0, near: float = 0.05, supersample: int = 1) -> RenderResult:
    """Render N meshes sharing one triangle list, with a per-pixel z-buffer.

    Args:
        verts: (N, V, 3) metres, camera optical frame (x right, y down, z forward); numpy or
            torch (a CUDA tensor renders on its GPU). N = 0 returns the background.
        faces: (F, 3) int vertex indices shared by all meshes, counter-clockwise seen from
            outside (SMPL's winding). Faces seen from behind are culled, so a mesh with the
            opposite winding would vanish.
        k: (fx, fy, cx, cy) pixels, or a 3x3 K without skew. Pixel (i, j) is sampled at its
            centre (j + 0.5, i + 0.5) of u = fx x / z + cx, v = fy y / z + cy.
        image_size: (H, W) pixels.
        colors: (N, 3) per-mesh or (N, V, 3) per-vertex albedo, floats 0..1; None gives a
            fixed palette by mesh index (``shading.PALETTE``).
        background: (H, W, 3) uint8 RGB; None is black.
        light: the lighting; None is ``LightSpec()``.
        alpha: mesh opacity over the background, 0..1 (e.g. 0.7 for an overlay).
        near: triangles with a vertex nearer than this (metres, > 0) are dropped whole.
        supersample: s >= 1 sub-samples per pixel side for anti-aliased edges in ``image``
            (cost ~ s^2). ``depth`` and ``person_index`` are taken at the sub-sample nearest
            the pixel centre (exactly the centre for odd s).

    Returns:
        :class:`RenderResult` (numpy arrays on the host).

    Raises:
        ValueError: wrong shapes or dtypes, non-finite vertices (naming the meshes), empty or
            out-of-range faces, unusable K, image size, alpha, near or supersample, more than
            32767 meshes.

    Memory: about 30 bytes per (sub-)pixel, 150 per covered one, and at most ~60 MB of work
    buffers. Not differentiable (runs under ``torch.no_grad``).
    """
    fx, fy, cx, cy = intrinsics_tuple(k)
    size = _image_size(image_size)
    if not (isinstance(supersample, int) and supersample >= 1):
        raise ValueError(f'supersample must be an integer >= 1, got {supersample!r}')
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(f'alpha={alpha} must be within [0, 1]')
    if not (math.isfinite(near) and near > 0.0):
        raise ValueError(f'near={near} must be a positive distance in metres')
    light = LightSpec() if light is None else light
    mesh_verts = _as_verts(verts)  # (N, V, 3)
    device = mesh_verts.device
    mesh_faces = _as_faces(faces, mesh_verts.shape[1], device)  # (F, 3)
    num = mesh_verts.shape[0]
    if num > _MAX_MESHES:
        raise ValueError(f'{num} meshes exceed the {_MAX_MESHES} that person_index (int16) can '
                         'label; render them in batches')
    albedo = _as_colors(colors, num, mesh_verts.shape[1], device)
    bg = _as_background(background, size)
    height, width = size
    if num == 0:
        image = (bg.numpy().copy() if bg is not None
                 else np.zeros((height, width, 3), dtype=np.uint8))
        return RenderResult(image=image,
                            depth=np.full((height, width), np.inf, dtype=np.float32),
                            person_index=np.full((height, width), -1, dtype=np.int16))

    s = supersample
    k_fine = (fx * s, fy * s, cx * s, cy * s)  # sub-sample (a, b) centre = ((b + .5) / s, ...)
    fine_size = (height * s, width * s)
    fragments = rasterize(mesh_verts, mesh_faces, k_fine, fine_size, near=near)
    rgb = shade(fragments, mesh_verts, mesh_faces, albedo, k_fine, light)
    image = composite(fragments, rgb, bg, alpha, s)
    centre = s // 2
    depth = fragments.depth_map()[centre::s, centre::s]
    person = fragments.person_map()[centre::s, centre::s]
    return RenderResult(image=image.cpu().numpy(), depth=depth.cpu().numpy(),
                        person_index=person.to(torch.int16).cpu().numpy())
