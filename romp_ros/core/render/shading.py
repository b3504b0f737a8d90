"""Lighting, colours and compositing of rasterised meshes (pure torch).

Shading is smooth: per-vertex normals (area-weighted face normals) are interpolated with the
perspective-correct barycentrics of the rasteriser, then lit with ambient + Lambert diffuse +
Blinn-Phong specular from one directional light fixed in the camera frame. Flat shading
shows every facet of the capsule-built synthetic body (and of SMPL at close range); smooth
shading reads as a body.

Colours are treated as display values (sRGB-like, 0..1); lighting multiplies them directly,
which is what the overlay and synthetic images need (no physically based pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
import torch.nn.functional as F

from romp_ros.core.render.rasterizer import Fragments, corner_ids, pixel_centres

# Distinct, fairly saturated body colours (RGB 0..1), used by person index when no colours
# are given; cycled for more people.
PALETTE = (
    (0.90, 0.55, 0.35), (0.35, 0.60, 0.90), (0.45, 0.80, 0.45), (0.90, 0.80, 0.35),
    (0.75, 0.45, 0.85), (0.35, 0.80, 0.80), (0.90, 0.45, 0.55), (0.60, 0.60, 0.60),
    (0.95, 0.65, 0.20), (0.55, 0.45, 0.30),
)


@dataclass(frozen=True)
class LightSpec:
    """One directional light in the camera optical frame, plus ambient light.

    Attributes:
        direction: (x, y, z) pointing from the scene TOWARDS the light, camera frame (x right,
            y down, z forward); normalised internally. The default sits above-left and
            behind the camera, so faces towards the camera are lit and tops are brighter.
        ambient: light reaching every surface, 0..1.
        diffuse: strength of the Lambert term, 0..1.
        specular: strength of a white Blinn-Phong highlight, 0..1 (0 disables it).
        shininess: Blinn-Phong exponent (> 0); larger is a tighter highlight.
    """

    direction: tuple[float, float, float] = (-0.3, -0.6, -1.0)
    ambient: float = 0.35
    diffuse: float = 0.7
    specular: float = 0.12
    shininess: float = 24.0

    def __post_init__(self) -> None:
        if len(self.direction) != 3 or not all(math.isfinite(c) for c in self.direction):
            raise ValueError(f'light direction must be 3 finite numbers, got {self.direction}')
        if math.hypot(*self.direction) < 1e-9:
            raise ValueError('light direction must not be the zero vector')
        for name in ('ambient', 'diffuse', 'specular'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f'light {name}={value} must be within [0, 1]')
        if not (math.isfinite(self.shininess) and self.shininess > 0.0):
            raise ValueError(f'light shininess={self.shininess} must be a positive number')


def palette_colors(num: int) -> torch.Tensor:
    """(num, 3) float32 colours from :data:`PALETTE`, by index, cycled."""
    table = torch.tensor(PALETTE, dtype=torch.float32)
    return table[torch.arange(num) % len(PALETTE)]


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(N, V, 3) unit normals: sum of the adjacent faces' area-weighted normals.

    Counter-clockwise faces give outward normals; unreferenced vertices get (0, 0, 0).
    """
    num, num_verts = verts.shape[:2]
    corners = corner_ids(num, num_verts, faces)  # (3, N * F) flat vertex ids
    flat = verts.reshape(-1, 3)  # (N * V, 3)
    p0, p1, p2 = (flat.index_select(0, corners[c]) for c in range(3))  # (N * F, 3) each
    face_n = torch.cross(p1 - p0, p2 - p0, dim=-1)  # (N * F, 3), |n| = twice the area
    normals = torch.zeros_like(flat)
    # one flat index_add over all corners (dim 0 of a 2D tensor is torch's fast path)
    normals.index_add_(0, corners.reshape(-1), face_n.repeat(3, 1))
    return F.normalize(normals, dim=-1, eps=1e-12).view(num, num_verts, 3)


def shade(fragments: Fragments, verts: torch.Tensor, faces: torch.Tensor,
          colors: torch.Tensor, k: tuple[float, float, float, float],
          light: LightSpec) -> torch.Tensor:
    """Colour every covered pixel of ``fragments``.

    Args:
        fragments: the rasteriser's output for ``verts`` / ``faces``.
        verts: (N, V, 3) metres, camera frame (those rasterised).
        faces: (F, 3) int64.
        colors: (N, 3) per-mesh or (N, V, 3) per-vertex albedo, float32 0..1.
        k: (fx, fy, cx, cy) of the rasterised image.
        light: the lighting.

    Returns:
        (P, 3) float32 RGB 0..1 of the fragments' pixels.
    """
    fx, fy, cx, cy = k
    device = verts.device
    if fragments.pixel.numel() == 0:
        return torch.zeros((0, 3), device=device)
    bary = fragments.bary  # (P, 3)
    num_verts = verts.shape[1]
    corner = fragments.person[:, None] * num_verts + faces[fragments.face]  # (P, 3) vertex ids

    normals = vertex_normals(verts.float(), faces).reshape(-1, 3)  # (N * V, 3)
    normal = F.normalize((normals[corner] * bary[..., None]).sum(dim=1), dim=-1)  # (P, 3)
    # Viewing ray through the pixel centre (camera at the origin), towards the scene.
    pu, pv = pixel_centres(fragments.pixel, fragments.image_size)  # (P,) each
    ray = F.normalize(torch.stack([(pu - cx) / fx, (pv - cy) / fy, torch.ones_like(pu)], dim=1),
                      dim=-1)  # (P, 3)
    # Two-sided: a normal that faces away (silhouette interpolation, open meshes) is flipped.
    facing = (normal * ray).sum(dim=1, keepdim=True)
    normal = torch.where(facing > 0, -normal, normal)

    to_light = F.normalize(torch.tensor(light.direction, dtype=torch.float32, device=device),
                           dim=0)  # (3,)
    lambert = (normal @ to_light).clamp(min=0.0)  # (P,)
    half = F.normalize(to_light - ray, dim=-1)  # (P, 3) halfway between light and viewer
    highlight = (normal * half).sum(dim=1).clamp(min=0.0) ** light.shininess

    if colors.dim() == 3:  # per-vertex albedo
        albedo = (colors.reshape(-1, 3)[corner] * bary[..., None]).sum(dim=1)  # (P, 3)
    else:
        albedo = colors[fragments.person]  # (P, 3)
    lit = albedo * (light.ambient + light.diffuse * lambert)[:, None]
    lit = lit + (light.specular * highlight)[:, None]
    return lit.clamp(0.0, 1.0)


def composite(fragments: Fragments, rgb: torch.Tensor, background: torch.Tensor | None,
              alpha: float, supersample: int) -> torch.Tensor:
    """Blend the shaded fragments over the background.

    Per output pixel, ``out = bg * (1 - alpha * cov) + alpha * mean(rgb)`` where ``cov`` is the
    covered share of its s x s sub-samples and the mean runs over all sub-samples (uncovered
    ones count as 0): edges are anti-aliased and the background is never resampled. Only
    pixels that a mesh touches are computed.

    Args:
        fragments: the rasteriser's output at the supersampled size (sH, sW).
        rgb: (P, 3) float32 0..1 shaded colours of the fragments.
        background: (H, W, 3) uint8 RGB, or None for black.
        alpha: mesh opacity, 0..1.
        supersample: s, the sub-samples per pixel side.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    fine_h, fine_w = fragments.image_size
    height, width = fine_h // supersample, fine_w // supersample
    device = rgb.device
    if background is None:
        image = torch.zeros((height * width, 3), dtype=torch.uint8, device=device)
    else:
        image = background.to(device).reshape(-1, 3).clone()
    if supersample == 1:
        target, colour_sum, coverage = fragments.pixel, rgb, torch.ones_like(rgb[:, :1])
    else:
        pu, pv = pixel_centres(fragments.pixel, fragments.image_size)  # fine pixel centres
        coarse = (torch.div(pv, supersample, rounding_mode='floor').long() * width
                  + torch.div(pu, supersample, rounding_mode='floor').long())  # (P,)
        sums = torch.zeros((height * width, 4), device=device)
        sums.index_add_(0, coarse, torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1))
        target = torch.unique(coarse)  # the touched output pixels
        scale = 1.0 / supersample ** 2
        colour_sum, coverage = sums[target, :3] * scale, sums[target, 3:] * scale
    bg = image[target].float() / 255.0  # (P', 3)
    out = bg * (1.0 - alpha * coverage) + alpha * colour_sum
    image[target] = (out * 255.0).round().clamp(0, 255).to(torch.uint8)
    return image.view(height, width, 3)
