"""Mesh renderer speed: the package's torch rasteriser side by side with the other candidates.

Run from the repository root:

    python bench/render_speed.py                        # log the tables
    python bench/render_speed.py --out docs/rendering.md --example docs/images/render_example.png

Scenes: 1, 5 and 10 walking synthetic SMPL-topology people (6890 vertices; the synthetic body's
13668 faces padded to SMPL's 13776 with repeated faces) at 2-8 m, rendered at 256x256 and
512x512 with a new pose every frame, so every candidate pays for its per-frame uploads.

Candidates, each in its own process (OpenGL platforms are chosen at import time):

* ``torch``: ``romp_ros.core.render.render_meshes`` (image, depth and person index), also
  as ``torch-omp-passive`` with ``OMP_WAIT_POLICY=PASSIVE``;
* ``moderngl-egl``: a minimal OpenGL 3.3 shader doing the same shading, headless EGL;
* ``pyrender-osmesa`` / ``pyrender-egl``: pyrender scenes (colour + depth; the person index
  would need a second, segmentation pass);
* ``embree``: trimesh + embreex ray casting, one ray per pixel (visibility only: depth and
  person index, no shading).

Candidates whose packages are missing are skipped with the install command. The optional
packages (none is a dependency of romp_ros): ``pip install moderngl pyrender trimesh embreex``
and, for OpenGL without a GPU, Mesa: ``apt-get install libegl1 libgl1-mesa-dri libosmesa6``.
With ``--out`` the tables replace the text between ``<!-- render-bench:begin -->`` and
``<!-- render-bench:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import logging
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.core.render import render_meshes
from romp_ros.core.render.mesh_renderer import intrinsics_tuple
from romp_ros.core.render.rasterizer import rasterize
from romp_ros.core.render.shading import LightSpec, composite, palette_colors, shade

LOG = logging.getLogger('bench.render_speed')
DOC_SECTION = 'render-bench'
PEOPLE = (1, 5, 10)
SIZES = (256, 512)
SMPL_FACES = 13776
CANDIDATES = {  # name -> (modules needed, environment, what it produces)
    'torch': ((), {}, 'image + depth + person index'),
    # OpenMP threads that sleep instead of spinning while they wait (see docs/rendering.md)
    'torch-omp-passive': ((), {'OMP_WAIT_POLICY': 'PASSIVE'}, 'same, OMP_WAIT_POLICY=PASSIVE'),
    'moderngl-egl': (('moderngl',), {}, 'image + depth + person index'),
    'pyrender-osmesa': (('pyrender', 'trimesh'), {'PYOPENGL_PLATFORM': 'osmesa'},
                        'image + depth'),
    'pyrender-egl': (('pyrender', 'trimesh'), {'PYOPENGL_PLATFORM': 'egl'}, 'image + depth'),
    'embree': (('trimesh', 'embreex'), {}, 'depth + person index (no shading)'),
}


# -- scenes ----------------------------------------------------------------------------------

def _body_model(workdir: pathlib.Path):
    """The synthetic SMPL model, prepared like the user's files would be."""
    from romp_ros.core.body.model_files import load_body_model_arrays
    from romp_ros.core.body.prepare import prepare_models
    from romp_ros.core.body.smpl import BodyModel
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files

    files = write_synthetic_smpl_files(workdir / 'smpl_src')
    prepare_models(smpl=files.smpl_pkl, models_dir=workdir / 'models', progress=False)
    return BodyModel(load_body_model_arrays(workdir / 'models', 'smpl'))


def walking_people(model, rng: np.random.Generator, num: int, *, depth=(2.0, 8.0),
                   spread: float = 1.6, pitch: float = 0.08,
                   headings: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, V, 3) vertices and (N, 71, 3) joints of walking people standing on a ground plane
    1.4 m below a camera pitched down by ``pitch``; metres, camera optical frame."""
    from romp_ros.synthetic import poses

    cam_from_level = poses.camera_from_level(pitch)
    if headings is None:
        headings = rng.uniform(-np.pi, np.pi, num)
    thetas = np.zeros((num, 72))
    thetas[:, :3] = poses.global_orientation(headings, 0.04, cam_from_level)
    thetas[:, 3:] = poses.body_pose(rng.uniform(0, 2 * np.pi, num), rng.uniform(0.5, 1.5, num))
    out = model(torch.as_tensor(rng.normal(0, 0.8, (num, 10)), dtype=torch.float32),
                torch.as_tensor(thetas, dtype=torch.float32))
    z = rng.uniform(*depth, num)
    pelvis_level = np.stack([rng.uniform(-spread, spread, num) * z / 5.0,
                             np.full(num, 1.4 - 0.95), z], axis=1)
    trans = pelvis_level @ cam_from_level.T - out.joints[:, 0].numpy()
    return out.verts.numpy() + trans[:, None], out.joints.numpy() + trans[:, None]


def smpl_sized_faces(faces: np.ndarray) -> np.ndarray:
    """Pad the synthetic body's faces to SMPL's count with repeats (they draw nothing new)."""
    extra = SMPL_FACES - faces.shape[0]
    return np.concatenate([faces, faces[:extra]]) if extra > 0 else faces


def intrinsics(size: int) -> tuple[float, float, float, float]:
    return (float(size), float(size), size / 2.0, size / 2.0)  # 53 degrees field of view


# -- candidates (run in a worker process) -----------------------------------------------------

def _timed(fn, frames: list) -> tuple[float, object]:
    """Median milliseconds of fn(frame) over the frames after one warm-up call."""
    last = fn(frames[0])
    times = []
    for frame in frames:
        start = time.perf_counter()
        last = fn(frame)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)), last


def _torch_worker(frames: list, faces: np.ndarray, size: int) -> tuple[dict, np.ndarray]:
    k = intrinsics(size)
    faces_t = torch.as_tensor(faces)
    ms, result = _timed(lambda v: render_meshes(v, faces_t, k, (size, size)), frames)
    # the stages, timed one by one on the same frames
    light = LightSpec()
    split = {'rasterise': [], 'shade': [], 'composite': []}
    for verts in frames:
        verts_t = torch.as_tensor(verts)
        colors = palette_colors(verts.shape[0])
        start = time.perf_counter()
        fragments = rasterize(verts_t, faces_t, k, (size, size))
        mid = time.perf_counter()
        rgb = shade(fragments, verts_t, faces_t, colors, k, light)
        mid2 = time.perf_counter()
        composite(fragments, rgb, None, 1.0, 1).numpy()
        end = time.perf_counter()
        split['rasterise'].append(mid - start)
        split['shade'].append(mid2 - mid)
        split['composite'].append(end - mid2)
    ms2, _ = _timed(lambda v: render_meshes(v, faces_t, k, (size, size), supersample=2), frames)
    stats = {'ms': ms, 'ms_supersample2': ms2}
    stats.update({f'ms_{name}': 1000.0 * float(np.median(t)) for name, t in split.items()})
    return stats, result.person_index >= 0


_VERTEX_SHADER = """
#version 330
uniform vec4 K;     // fx, fy, cx, cy
uniform vec2 size;  // W, H
uniform vec2 clip;  // near, far
in vec3 in_pos;
in vec3 in_normal;
in float in_person;
out vec3 v_normal;
out vec3 v_pos;
flat out int v_person;
void main() {
    float z = in_pos.z;
    float n = clip.x, f = clip.y;
    // window x = u, window y = H - v (OpenGL rows count from the bottom)
    gl_Position = vec4(2.0 * (K.x * in_pos.x + K.z * z) / size.x - z,
                       z - 2.0 * (K.y * in_pos.y + K.w * z) / size.y,
                       (z * (f + n) - 2.0 * f * n) / (f - n), z);
    v_normal = in_normal;
    v_pos = in_pos;
    v_person = int(in_person + 0.5);
}
"""
_FRAGMENT_SHADER = """
#version 330
uniform vec3 to_light;
uniform vec3 albedo[10];
in vec3 v_normal;
in vec3 v_pos;
flat in int v_person;
layout(location = 0) out vec4 out_color;
layout(location = 1) out int out_person;
void main() {
    vec3 n = normalize(v_normal);
    vec3 ray = normalize(v_pos);
    if (dot(n, ray) > 0.0) n = -n;
    vec3 h = normalize(to_light - ray);
    float spec = pow(max(dot(n, h), 0.0), 24.0);
    vec3 c = albedo[v_person % 10] * (0.35 + 0.7 * max(dot(n, to_light), 0.0)) + 0.12 * spec;
    out_color = vec4(c, 1.0);
    out_person = v_person + 1;
}
"""


def _moderngl_worker(frames: list, faces: np.ndarray, size: int) -> tuple[dict, np.ndarray]:
    import moderngl

    from romp_ros.core.render.shading import vertex_normals

    ctx = moderngl.create_standalone_context(backend='egl')
    LOG.info('moderngl renderer: %s', ctx.info['GL_RENDERER'])
    prog = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
    fx, fy, cx, cy = intrinsics(size)
    prog['K'].value = (fx, fy, cx, cy)
    prog['size'].value = (size, size)
    prog['clip'].value = (0.05, 100.0)
    light = np.array(LightSpec().direction)
    prog['to_light'].value = tuple(light / np.linalg.norm(light))
    prog['albedo'].value = [tuple(c) for c in palette_colors(10).tolist()]
    fbo = ctx.framebuffer(
        color_attachments=[ctx.renderbuffer((size, size), 4),
                           ctx.renderbuffer((size, size), 1, dtype='i4')],
        depth_attachment=ctx.depth_renderbuffer((size, size)))
    ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
    num, num_verts = frames[0].shape[:2]
    index = (faces[None] + num_verts * np.arange(num)[:, None, None]).astype(np.int32)
    ibo = ctx.buffer(index.tobytes())
    vbo = ctx.buffer(reserve=num * num_verts * 7 * 4)
    vao = ctx.vertex_array(prog, [(vbo, '3f 3f 1f', 'in_pos', 'in_normal', 'in_person')], ibo)
    faces_t = torch.as_tensor(faces)

    def render(verts: np.ndarray):
        verts_t = torch.as_tensor(verts)
        normals = vertex_normals(verts_t, faces_t)
        person = torch.arange(num, dtype=torch.float32)[:, None, None].expand(num, num_verts, 1)
        vbo.write(torch.cat([verts_t, normals, person], dim=2).numpy().tobytes())
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        vao.render()
        image = np.frombuffer(fbo.read(components=3), np.uint8).reshape(size, size, 3)[::-1]
        ndc = np.frombuffer(fbo.read(attachment=-1, components=1, dtype='f4'), np.float32)
        person = np.frombuffer(fbo.read(components=1, attachment=1, dtype='i4'), np.int32)
        return image, ndc.reshape(size, size)[::-1], person.reshape(size, size)[::-1] - 1

    ms, (_, _, person) = _timed(render, frames)
    return {'ms': ms}, person >= 0


def _pyrender_worker(frames: list, faces: np.ndarray, size: int) -> tuple[dict, np.ndarray]:
    import pyrender
    import trimesh

    renderer = pyrender.OffscreenRenderer(size, size)
    fx, fy, cx, cy = intrinsics(size)
    camera = pyrender.IntrinsicsCamera(fx, fy, cx, cy, znear=0.05, zfar=100.0)
    gl_from_optical = np.array([1.0, -1.0, -1.0])  # OpenGL cameras look along -z, y up
    colours = palette_colors(10).numpy()

    def render(verts: np.ndarray):
        scene = pyrender.Scene(bg_color=(0, 0, 0, 0), ambient_light=(0.35, 0.35, 0.35))
        for n, person in enumerate(verts):
            mesh = trimesh.Trimesh(person * gl_from_optical, faces, process=False)
            material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*colours[n % 10], 1))
            scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True))
        scene.add(camera)
        scene.add(pyrender.DirectionalLight(intensity=3.0))
        return renderer.render(scene)

    ms, (_, depth) = _timed(render, frames)
    return {'ms': ms}, depth > 0


def _embree_worker(frames: list, faces: np.ndarray, size: int) -> tuple[dict, np.ndarray]:
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    fx, fy, cx, cy = intrinsics(size)
    rows, cols = np.mgrid[0:size, 0:size]
    rays = np.stack([(cols + 0.5 - cx) / fx, (rows + 0.5 - cy) / fy, np.ones((size, size))],
                    axis=-1).reshape(-1, 3)
    origins = np.zeros_like(rays)

    def render(verts: np.ndarray):
        num, num_verts = verts.shape[:2]
        all_faces = (faces[None] + num_verts * np.arange(num)[:, None, None]).reshape(-1, 3)
        mesh = trimesh.Trimesh(verts.reshape(-1, 3), all_faces, process=False)
        hits, ray_index, tri = RayMeshIntersector(mesh).intersects_location(
            origins, rays, multiple_hits=False)
        depth = np.full(size * size, np.inf, np.float32)
        person = np.full(size * size, -1, np.int16)
        depth[ray_index] = hits[:, 2]
        person[ray_index] = tri // faces.shape[0]
        return depth.reshape(size, size), person.reshape(size, size)

    ms, (_, person) = _timed(render, frames)
    return {'ms': ms}, person >= 0


_WORKERS = {'torch': _torch_worker, 'torch-omp-passive': _torch_worker,
            'moderngl-egl': _moderngl_worker,
            'pyrender-osmesa': _pyrender_worker, 'pyrender-egl': _pyrender_worker,
            'embree': _embree_worker}


def run_worker(name: str, scenes: pathlib.Path, result: pathlib.Path, threads: int) -> None:
    """Time one candidate on every stored scene; write JSON stats and silhouettes."""
    torch.set_num_threads(threads)
    data = np.load(scenes)
    faces = data['faces']
    stats, masks = {}, {}
    for num in PEOPLE:
        frames = list(data[f'verts_{num}'].astype(np.float32))
        for size in SIZES:
            key = f'{size}_{num}'
            stats[key], masks[key] = _WORKERS[name](frames, faces, size)
            LOG.info('%-16s %3dx%-3d %2d people: %7.1f ms', name, size, size, num,
                     stats[key]['ms'])
    result.write_text(json.dumps(stats))
    np.savez_compressed(result.with_suffix('.npz'), **masks)


# -- the comparison (parent process) ----------------------------------------------------------

def _missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def compare(frames_per_scene: int, thread_counts: list[int],
            seed: int) -> tuple[dict, dict, dict]:
    """Run every installed candidate in its own process, once per thread count; returns
    stats and silhouette agreement with ours keyed by (candidate, threads), and the reasons of
    skipped candidates."""
    rng = np.random.default_rng(seed)
    stats, agreement, skipped = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        model = _body_model(tmp_path)
        scenes = {'faces': smpl_sized_faces(model.faces.numpy())}
        for num in PEOPLE:
            scenes[f'verts_{num}'] = np.stack([walking_people(model, rng, num)[0]
                                               for _ in range(frames_per_scene)])
        np.savez(tmp_path / 'scenes.npz', **scenes)
        runs = [(name, threads) for threads in thread_counts for name in CANDIDATES]
        for name, threads in runs:
            modules, env, _ = CANDIDATES[name]
            missing = _missing(modules)
            if missing:
                skipped[name] = f'not installed: pip install {" ".join(missing)}'
                LOG.warning('%s skipped (%s)', name, skipped[name])
                continue
            out = tmp_path / f'{name}_{threads}.json'
            cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), '--worker', name,
                   '--scenes', str(tmp_path / 'scenes.npz'), '--result', str(out),
                   '--threads', str(threads)]
            env_threads = {'OMP_NUM_THREADS': str(threads), 'LP_NUM_THREADS': str(threads),
                           'MKL_NUM_THREADS': str(threads)}
            proc = subprocess.run(cmd, env={**os.environ, **env_threads, **env},  # noqa: S603
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not out.exists():
                skipped[name] = f'failed: {proc.stderr.strip().splitlines()[-1:]}'
                LOG.warning('%s failed:\n%s', name, proc.stderr[-2000:])
                continue
            stats[name, threads] = json.loads(out.read_text())
            agreement[name, threads] = np.load(out.with_suffix('.npz'))
        agree = {}
        for (name, threads), masks in agreement.items():
            ours = agreement.get(('torch', threads))
            if ours is not None:
                agree[name, threads] = min(float((masks[key] == ours[key]).mean())
                                           for key in ours.files)
    return stats, agree, skipped


def tables(stats: dict, agree: dict, skipped: dict, frames: int) -> str:
    """The markdown that goes between the markers."""
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    lines = [f'Measured {datetime.date.today().isoformat()} on {platform.machine()}, '
             f'{os.cpu_count()} logical CPUs (load average {load:.1f} at the end: shared with '
             f'other jobs), torch {torch.__version__}; median of {frames} frames (new poses each '
             'frame) after a warm-up. Renders per second (higher is better):', '']
    thread_counts = sorted({threads for _, threads in stats}) or [1]
    header = ['candidate', 'threads', 'output'] + [f'{s}² {n}p' for s in SIZES for n in PEOPLE]
    lines += ['| ' + ' | '.join(header) + ' | pixels agreeing with torch |',
              '|' + '---|' * (len(header) + 1)]
    for (name, threads), stat in stats.items():
        cells = [f'{1000.0 / stat[f"{s}_{n}"]["ms"]:.1f}' for s in SIZES for n in PEOPLE]
        lines.append(f'| {name} | {threads} | {CANDIDATES[name][2]} | ' + ' | '.join(cells)
                     + f' | {100 * agree.get((name, threads), float("nan")):.2f} % |')
        if name.startswith('torch'):
            cells = [f'{1000.0 / stat[f"{s}_{n}"]["ms_supersample2"]:.1f}'
                     for s in SIZES for n in PEOPLE]
            lines.append(f'| {name}, supersample=2 | {threads} | anti-aliased image + depth + '
                         'person index | ' + ' | '.join(cells) + ' | |')
    for name, why in skipped.items():
        lines.append(f'| {name} | | {why} |' + ' |' * (len(header) - 2))
    for (name, threads), stat in stats.items():
        # plain torch with several threads mostly measures OpenMP spinning on a busy machine
        if (name, threads) not in (('torch', 1), ('torch-omp-passive', max(thread_counts))):
            continue
        lines += ['', f'Where {name} spends its time, {threads} thread(s) (ms per frame, stage '
                  'by stage; the total also holds input checks and the full-size depth / '
                  'person maps):', '',
                  '| image | people | rasterise | shade | composite | total |',
                  '|---|---|---|---|---|---|']
        for s in SIZES:
            for n in PEOPLE:
                st = stat[f'{s}_{n}']
                lines.append(f'| {s}² | {n} | {st["ms_rasterise"]:.1f} | {st["ms_shade"]:.1f} '
                             f'| {st["ms_composite"]:.1f} | {st["ms"]:.1f} |')
    return '\n'.join(lines)


def write_example(path: pathlib.Path, seed: int = 3) -> None:
    """Three overlapping people at 2-8 m over a textured background, with the depth and
    person-index maps beside the image."""
    import cv2

    from romp_ros.core.render import points_visible
    from romp_ros.synthetic import backgrounds

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = _body_model(pathlib.Path(tmp))
    height, width = 360, 480
    k = (430.0, 430.0, 250.0, 170.0)
    verts, joints = walking_people(model, rng, 3, headings=np.array([0.5, -1.2, 2.6]))
    # deterministic placement: overlapping, at about 2.5, 4.5 and 7.5 m
    verts, joints = verts.copy(), joints.copy()
    for n, (x, z) in enumerate(((-0.1, 2.6), (0.35, 4.6), (0.95, 7.6))):
        shift = np.array([x, 0.0, z]) - joints[n, 0] * np.array([1.0, 0.0, 1.0])
        verts[n] += shift
        joints[n] += shift
    background = backgrounds.procedural_texture(rng, height, width, 'bricks')
    result = render_meshes(verts, model.faces, k, (height, width), background=background,
                           supersample=2)
    visible = points_visible(joints[:, :24], None, result, k)
    fx, fy, cx, cy = intrinsics_tuple(k)
    image = result.image.copy()
    for n in range(3):  # joints: white = visible, red = hidden by someone else
        for j in range(24):
            u = fx * joints[n, j, 0] / joints[n, j, 2] + cx
            v = fy * joints[n, j, 1] / joints[n, j, 2] + cy
            colour = (255, 255, 255) if visible[n, j] else (255, 0, 0)
            cv2.circle(image, (int(u), int(v)), 2, colour, -1, cv2.LINE_AA)
    finite = np.isfinite(result.depth)
    depth = np.zeros((height, width), np.uint8)
    near, far = result.depth[finite].min(), result.depth[finite].max()
    depth[finite] = (255 * (1.0 - 0.85 * (result.depth[finite] - near) / (far - near))).astype(
        np.uint8)
    depth_rgb = cv2.applyColorMap(depth, cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()
    depth_rgb[~finite] = 0
    index_rgb = np.zeros((height, width, 3), np.uint8)
    palette = (palette_colors(3).numpy() * 255).astype(np.uint8)
    for n in range(3):
        index_rgb[result.person_index == n] = palette[n]
    gap = np.full((height, 6, 3), 255, np.uint8)
    panel = np.concatenate([image, gap, depth_rgb, gap, index_rgb], axis=1)
    for text, x in (('image', 8), ('depth', width + 14), ('person_index', 2 * width + 20)):
        cv2.putText(panel, text, (x, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), panel[..., ::-1])
    LOG.info('wrote %s (hidden joints: %d of %d)', path, int((~visible).sum()), visible.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=pathlib.Path, help='markdown file to update')
    parser.add_argument('--example', type=pathlib.Path, help='write the example render here')
    parser.add_argument('--frames', type=int, default=5, help='timed frames per setting')
    parser.add_argument('--threads', default='1,2',
                        help='comma-separated CPU thread counts to run every candidate with')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--worker', choices=sorted(_WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('--scenes', type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument('--result', type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.worker:
        run_worker(args.worker, args.scenes, args.result, int(args.threads))
        return
    if args.example:
        write_example(args.example)
    thread_counts = [int(t) for t in args.threads.split(',')]
    stats, agree, skipped = compare(args.frames, thread_counts, args.seed)
    text = tables(stats, agree, skipped, args.frames)
    LOG.info('\n%s', text)
    if args.out:
        write_doc_section(args.out, text, name=DOC_SECTION)
        LOG.info('updated %s', args.out)


if __name__ == '__main__':
    main()
