"""The 2D views: camera-rate check of the mesh overlay, and the example pictures of the docs.

Run from the repository root (``make bench`` runs it through bench/run_all.py):

    python bench/visualization_bench.py             # rewrites docs/visualization.md and the
                                                    # docs/images/viz_*.png examples
    python bench/visualization_bench.py --no-write  # only log the speed table

Speed: ``draw_people_overlay`` (z-buffered shaded meshes, skeletons, ids) on 640x480 frames
with 1, 3, 5 and 8 walking synthetic SMPL-topology people at 2-8 m, a new pose every frame,
with one and two torch threads (``OMP_WAIT_POLICY=PASSIVE``, see docs/rendering.md), and the
bird's-eye view. The table replaces the text between ``<!-- viz-bench:begin -->`` and
``<!-- viz-bench:end -->`` of ``--out``.

Examples (into ``--examples DIR``): ``viz_overlay.png``, ``viz_birds_eye.png`` and
``viz_heatmaps.png`` of one synthetic street-like scene; the heatmaps come from the
package's seeded test weights (``romp_ros.testing``), not a trained network.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.core.render import (
    BirdsEyeConfig,
    BirdsEyePeople,
    TrailKeeper,
    draw_birds_eye,
    draw_people_overlay,
    render_meshes,
)
from romp_ros.core.results import CameraIntrinsics, FrameResult

LOG = logging.getLogger('bench.visualization')
DOC_SECTION = 'viz-bench'
SIZE = (480, 640)
K = CameraIntrinsics(500.0, 500.0, 320.0, 240.0)  # 65 degrees horizontal field of view
PEOPLE = (1, 3, 5, 8)
CAMERA_RATE_HZ = 30.0
PITCH = 0.08
CAMERA_HEIGHT = 1.5
DOCS = pathlib.Path(__file__).resolve().parents[1] / 'docs'


# -- scenes ----------------------------------------------------------------------------------

def body_model(workdir: pathlib.Path):
    """The synthetic SMPL model, prepared like the user's files would be."""
    from romp_ros.core.body.model_files import load_body_model_arrays
    from romp_ros.core.body.prepare import prepare_models
    from romp_ros.core.body.smpl import BodyModel
    from romp_ros.synthetic.body_model import write_synthetic_smpl_files

    files = write_synthetic_smpl_files(workdir / 'smpl_src')
    prepare_models(smpl=files.smpl_pkl, smil=files.smil_pkl, extra=files.source_dir,
                   models_dir=workdir / 'models', progress=False)
    return BodyModel(load_body_model_arrays(workdir / 'models', 'smpl')).eval()


class Walkers:
    """N people walking on a ground plane 1.5 m below a camera pitched down by 0.08 rad."""

    def __init__(self, model, count: int, seed: int) -> None:
        from romp_ros.synthetic import poses

        rng = np.random.default_rng(seed)
        self.model = model
        self.poses = poses
        self.cam_from_level = poses.camera_from_level(PITCH)
        self.start = np.stack([rng.uniform(-2.5, 2.5, count), rng.uniform(2.5, 8.0, count)], 1)
        speed = rng.uniform(0.6, 1.4, count)
        angle = rng.uniform(-np.pi, np.pi, count)
        self.velocity = np.stack([np.cos(angle), np.sin(angle)], 1) * speed[:, None]
        self.betas = torch.as_tensor(rng.normal(0, 0.8, (count, 10)), dtype=torch.float32)
        self.phase = rng.uniform(0, 2 * np.pi, count)
        self.speed = speed

    def at(self, t: float) -> FrameResult:
        """The people at time t seconds, as the estimator would report them."""
        xz = self.start + self.velocity * t
        # bounce inside the area so they stay around the camera
        xz[:, 0] = -2.5 + np.abs((xz[:, 0] + 2.5) % 10.0 - 5.0)
        xz[:, 1] = 2.5 + np.abs((xz[:, 1] - 2.5) % 11.0 - 5.5)
        count = len(xz)
        heading = self.poses.heading_from_velocity(self.velocity[:, 0], self.velocity[:, 1])
        thetas = np.zeros((count, 72))
        thetas[:, :3] = self.poses.global_orientation(heading, 0.05, self.cam_from_level)
        thetas[:, 3:] = self.poses.body_pose(self.phase + 2 * np.pi * 0.9 * self.speed * t,
                                             self.speed)
        with torch.inference_mode():
            out = self.model(self.betas, torch.as_tensor(thetas, dtype=torch.float32))
        joints, verts = out.joints.numpy(), out.verts.numpy()
        level = np.stack([xz[:, 0], np.full(count, CAMERA_HEIGHT - 0.95), xz[:, 1]], 1)
        trans = (level @ self.cam_from_level.T - joints[:, 0]).astype(np.float32)
        return FrameResult(
            cam=np.zeros((count, 3), np.float32), smpl_thetas=thetas.astype(np.float32),
            smpl_betas=self.betas.numpy(), cam_trans=trans, joints=joints, verts=verts,
            pj2d_org=np.zeros((count, joints.shape[1], 2), np.float32),
            center_confs=np.linspace(0.9, 0.5, count).astype(np.float32),
            joint_names=self.model.joint_names, image_size=SIZE, intrinsics=K)


def background(seed: int) -> np.ndarray:
    """A procedural wall over a perspective ground plane, (H, W, 3) uint8 RGB."""
    from romp_ros.synthetic import backgrounds, poses

    rng = np.random.default_rng(seed)
    height, width = SIZE
    v, u = np.mgrid[0:height, 0:width] + 0.5
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    rays_level = rays @ poses.camera_from_level(PITCH)  # camera -> level frame
    wall = backgrounds.procedural_texture(rng, height, width)
    ground, mask = backgrounds.ground_plane(rng, rays_level, CAMERA_HEIGHT, 1.0 / K.fx, 'tiles')
    return np.where(mask[..., None], ground, wall)


def camera_image(result: FrameResult, faces: np.ndarray, seed: int) -> np.ndarray:
    """The scene as a camera would see it: grey-clothed people over the background."""
    rng = np.random.default_rng(seed)
    clothes = rng.uniform(0.3, 0.7, (result.num_people, 3)).astype(np.float32)
    return render_meshes(result.verts_camera(), faces, (K.fx, K.fy, K.cx, K.cy), SIZE,
                         colors=clothes, background=background(seed), supersample=2).image


# -- speed -----------------------------------------------------------------------------------

def speed_worker(threads: int, frames: int, out: pathlib.Path) -> None:
    """Time the overlay and the bird's-eye view in this process (one thread setting)."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = body_model(pathlib.Path(tmp))
    faces = model.faces.numpy()
    image = background(0)
    rows = {}
    for count in PEOPLE:
        walkers = Walkers(model, count, seed=count)
        results = [walkers.at(0.1 * i) for i in range(frames + 1)]
        times = []
        for i, result in enumerate(results):
            start = time.perf_counter()
            draw_people_overlay(image, result, faces, ids=np.arange(count))
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
        bev_times = []
        keeper = TrailKeeper()
        for i, result in enumerate(results):
            start = time.perf_counter()
            people = BirdsEyePeople.from_result(result, np.arange(count))
            keeper.update(people.ids, people.positions, 0.1 * i)
            draw_birds_eye(people, BirdsEyeConfig(), intrinsics=K, image_width=SIZE[1],
                           trails=keeper.trails())
            if i:
                bev_times.append(time.perf_counter() - start)
        rows[count] = {'overlay_ms': 1000 * statistics.median(times),
                       'overlay_min_ms': 1000 * min(times),
                       'overlay_p90_ms': 1000 * float(np.percentile(times, 90)),
                       'birds_eye_ms': 1000 * statistics.median(bev_times)}
    out.write_text(json.dumps(rows))


def measure(frames: int, thread_counts: list[int]) -> dict[int, dict]:
    """Run one worker process per thread count (OpenMP is set up at import time)."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in thread_counts:
            out = pathlib.Path(tmp) / f'{threads}.json'
            env = {**os.environ, 'OMP_WAIT_POLICY': 'PASSIVE', 'OMP_NUM_THREADS': str(threads)}
            subprocess.run([sys.executable, __file__, '--worker', str(threads), '--frames',
                            str(frames), '--worker-out', str(out)], check=True, env=env)
            results[threads] = {int(k): v for k, v in json.loads(out.read_text()).items()}
    return results


def table(results: dict[int, dict]) -> str:
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    lines = [
        f'Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} logical '
        f'CPUs (load average {load:.1f} at the end: shared with other jobs), torch '
        f'{torch.__version__}; 640x480, a new pose every frame. Median, fastest and 90th '
        'percentile ms per frame; the fastest frame is the best estimate of the cost on an '
        'idle core, the median of what a shared machine gives:', '',
        '| threads | people | overlay ms: median / fastest / p90 | fps (median) | '
        "30 Hz (median)? | bird's-eye ms |",
        '|---|---|---|---|---|---|']
    for threads, rows in results.items():
        for count, row in rows.items():
            fps = 1000.0 / row['overlay_ms']
            ok = 'yes' if fps >= CAMERA_RATE_HZ else 'no'
            lines.append(f"| {threads} | {count} | {row['overlay_ms']:.1f} / "
                         f"{row['overlay_min_ms']:.1f} / {row['overlay_p90_ms']:.1f} | "
                         f"{fps:.0f} | {ok} | {row['birds_eye_ms']:.1f} |")
    return '\n'.join(lines)


# -- examples --------------------------------------------------------------------------------

def examples(out_dir: pathlib.Path) -> None:
    """Write viz_overlay.png, viz_birds_eye.png and viz_heatmaps.png."""
    import cv2

    from romp_ros.core.nets.coordmaps import cam3d_anchors
    from romp_ros.core.preprocess import prepare_batch
    from romp_ros.core.render.heatmaps import (
        birds_eye_depth_image,
        birds_eye_depth_map,
        center_map_overlay,
    )
    from romp_ros.testing.seeded_weights import seeded_model

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = body_model(pathlib.Path(tmp))
    faces = model.faces.numpy()
    walkers = Walkers(model, 5, seed=11)
    ids = np.array([3, 7, 12, 14, 21])
    keeper = TrailKeeper()
    frames = 25
    for i in range(frames):
        result = walkers.at(0.1 * i)
        people = BirdsEyePeople.from_result(result, ids)
        keeper.update(people.ids, people.positions, 0.1 * i)
    image = camera_image(result, faces, seed=5)
    overlay = draw_people_overlay(image, result, faces, ids=ids)
    _save(cv2, out_dir / 'viz_overlay.png', np.concatenate([image, overlay], axis=1))
    view = draw_birds_eye(people, BirdsEyeConfig(size=(480, 480), depth_range_m=10.0),
                          intrinsics=K, image_width=SIZE[1], trails=keeper.trails())
    _save(cv2, out_dir / 'viz_birds_eye.png', view)

    batch = prepare_batch([image], color_order='rgb')
    with torch.inference_mode():
        romp = seeded_model('romp').eval()(batch.tensor)
        bev = seeded_model('bev').eval().forward_maps(batch.tensor)
    center = center_map_overlay(romp.center_maps[0, 0], image, batch.pad_info[0])
    depths = 1.0 / (np.tan(np.radians(30.0)) * cam3d_anchors(60.0, 128).numpy())
    depth_view = birds_eye_depth_image(birds_eye_depth_map(bev.center_maps_3d[0]), depths,
                                       size=(480, 480))
    _save(cv2, out_dir / 'viz_heatmaps.png', np.concatenate([center, depth_view], axis=1))


def _save(cv2, path: pathlib.Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    LOG.info('wrote %s', path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=15)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--out', type=pathlib.Path, default=DOCS / 'visualization.md')
    parser.add_argument('--examples', type=pathlib.Path, default=DOCS / 'images')
    parser.add_argument('--no-write', action='store_true', help='only log the speed table')
    parser.add_argument('--worker', type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument('--worker-out', type=pathlib.Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.worker is not None:
        speed_worker(args.worker, args.frames, args.worker_out)
        return 0
    if not args.no_write:
        examples(args.examples)
    text = table(measure(args.frames, args.threads))
    LOG.info('\n%s', text)
    if not args.no_write:
        write_doc_section(args.out, text, name=DOC_SECTION)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
