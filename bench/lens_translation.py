"""Translations through distorted lenses: K only, undistort-then-K, and through the lens.

Run from anywhere (``make bench`` runs it too):

    python bench/lens_translation.py           # table -> docs/geometry.md, figure -> docs/images
    python bench/lens_translation.py --no-write  # only log the table

People (the synthetic skeleton of ``romp_ros.synthetic.sequences`` in random upright poses and
headings) stand with their pelvis anywhere across the image width; OpenCV projects their 24
joints through the lens (``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``; for the 190
degree fisheye, whose sides see behind the camera plane where OpenCV's fisheye mirrors the
points, the package's ``CameraModel.project``, tested against OpenCV in front of that plane),
optionally with Gaussian pixel noise. Each person's translation is then solved three ways:

* ``K only``: the lens ignored (what the package did before it read D);
* ``undistort, then K``: the keypoints undistorted (``CameraModel.undistort_pixels``), then the
  pinhole solve (joints beyond 90 degrees off-axis cannot be undistorted and are dropped);
* ``through the lens``: ``solve_translation_with_camera`` (rays start, robust LM on the
  distorted pixels): what the estimator does.

Reported: |t_error| / |t| per person, median and 90th percentile, for people in the central
30 % of the width ("centre") and beyond 70 % of the half-width from the centre ("edge").
With ``--out`` the table replaces the text between ``<!-- lens-bench:begin -->`` and
``<!-- lens-bench:end -->`` of that file.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
import torch

from romp_ros.cli.doc_section import write_doc_section
from romp_ros.core.geometry import solve_translation_with_camera, solve_translation_with_intrinsics
from romp_ros.core.geometry.camera_model import CameraModel
from romp_ros.synthetic.sequences import forward_kinematics

LOG = logging.getLogger('bench.lens_translation')
ROOT = Path(__file__).resolve().parents[1]
W, H = 640, 480
PEOPLE = 512
NOISE_PX = (0.0, 0.5, 2.0)
METHODS = ('K only', 'undistort, then K', 'through the lens')
DOC_SECTION = 'lens-bench'


def cameras() -> dict[str, tuple[CameraModel, tuple[float, float]]]:
    """name -> (camera, depth range in metres)."""
    f90 = W / 2 / math.tan(math.radians(45))
    return {
        'plumb_bob, 90 deg, k1=-0.3 k2=0.1': (CameraModel(
            W, H, (f90, f90, 320.0, 240.0), 'plumb_bob', (-0.3, 0.1, 0.0, 0.0, 0.0)),
            (2.0, 8.0)),
        'rational_polynomial, ~110 deg': (CameraModel(
            W, H, (300.0, 301.0, 318.0, 243.0), 'rational_polynomial',
            (0.8, 0.12, 0.0006, -0.0004, 0.002, 1.1, 0.3, 0.01)), (2.0, 8.0)),
        'equidistant, 125 deg': (CameraModel(
            W, H, ((W / 2) / math.radians(62.5),) * 2 + (321.0, 239.5), 'equidistant',
            (0.05, -0.01, 0.003, -0.0005)), (2.0, 8.0)),
        'equidistant, 190 deg': (CameraModel(
            W, H, ((W / 2) / math.radians(95),) * 2 + (320.0, 240.0), 'equidistant',
            (0.02, -0.005, 0.001, 0.0)), (1.0, 4.0)),
    }


def people(count: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 24, 3) skeletons, upright, any heading, limbs moved a little, 0.9-1.1 x size."""
    thetas = rng.normal(0.0, 0.15, (count, 72))
    heading = rng.uniform(-math.pi, math.pi, count)
    upright = Rotation.from_rotvec([math.pi, 0.0, 0.0])
    thetas[:, :3] = (Rotation.from_rotvec(heading[:, None] * [0.0, 1.0, 0.0])
                     * upright).as_rotvec()
    return forward_kinematics(thetas, rng.uniform(0.9, 1.1, count))


def project(camera: CameraModel, points: np.ndarray, use_opencv: bool) -> np.ndarray:
    """(..., 3) -> (..., 2) pixels through the lens."""
    if not use_opencv:
        return camera.project(points)
    flat = points.reshape(-1, 3)
    zero, dist = np.zeros(3), np.asarray(camera.d)
    if camera.distortion_model == 'equidistant':
        out, _ = cv2.fisheye.projectPoints(flat.reshape(1, -1, 3), zero, zero, camera.matrix(),
                                           dist)
    else:
        out, _ = cv2.projectPoints(flat.reshape(-1, 1, 3), zero, zero, camera.matrix(), dist)
    return out.reshape(points.shape[:-1] + (2,))


def solve(method: str, camera: CameraModel, joints: np.ndarray,
          keypoints: np.ndarray) -> np.ndarray:
    joints_t = torch.as_tensor(joints)
    k = torch.as_tensor(camera.matrix())
    if method == 'K only':
        return solve_translation_with_intrinsics(joints_t, torch.as_tensor(keypoints),
                                                 k).trans.numpy()
    if method == 'undistort, then K':
        with np.errstate(invalid='ignore'):
            ideal = camera.undistort_pixels(keypoints)
        return solve_translation_with_intrinsics(joints_t, torch.as_tensor(ideal),
                                                 k).trans.numpy()
    return solve_translation_with_camera(joints_t, torch.as_tensor(keypoints),
                                         camera).trans.numpy()


def measure(seed: int = 0) -> list[dict]:
    """One row per (camera, noise, method): error statistics at the centre and the edge."""
    rows = []
    for c, (name, (camera, depth)) in enumerate(cameras().items()):
        rng = np.random.default_rng(seed + c)
        joints = people(PEOPLE, rng)
        uv = rng.uniform([0.08 * W, 0.3 * H], [0.92 * W, 0.7 * H], (PEOPLE, 2))
        rays = camera.pixel_rays(uv)
        trans = rays * rng.uniform(*depth, PEOPLE)[:, None]
        off_centre = np.abs(uv[:, 0] - camera.k[2]) / (W / 2)
        clean = project(camera, joints + trans[:, None], use_opencv='190' not in name)
        for sigma in NOISE_PX:
            keypoints = clean + rng.normal(0.0, sigma, clean.shape)
            for method in METHODS:
                found = solve(method, camera, joints, keypoints)
                error = np.linalg.norm(found - trans, axis=1) / np.linalg.norm(trans, axis=1)
                error = np.where(np.isfinite(error), error, np.inf)  # a failed solve
                row = {'camera': name, 'noise': sigma, 'method': method,
                       'off_centre': off_centre, 'error': error}
                for part, sel in (('centre', off_centre < 0.3), ('edge', off_centre > 0.7)):
                    row[f'{part}_median'] = float(np.median(error[sel]))
                    row[f'{part}_p90'] = float(np.percentile(error[sel], 90))
                rows.append(row)
    return rows


def _pct(value: float) -> str:
    if not math.isfinite(value):
        return 'fails'
    return f'{100 * value:.2g} %' if value >= 1e-4 else f'{100 * value:.0e} %'


def table(rows: list[dict]) -> str:
    lines = ['| camera | noise (px) | method | centre: median / p90 | edge: median / p90 |',
             '|---|---|---|---|---|']
    for row in rows:
        lines.append(f"| {row['camera']} | {row['noise']:g} | {row['method']} | "
                     f"{_pct(row['centre_median'])} / {_pct(row['centre_p90'])} | "
                     f"{_pct(row['edge_median'])} / {_pct(row['edge_p90'])} |")
    return '\n'.join(lines)


def figure(rows: list[dict], path: Path, noise: float = 0.5) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(row['camera'] for row in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), sharey=True)
    bins = np.linspace(0.0, 0.84, 8)
    for ax, name in zip(axes, names, strict=True):
        for row in rows:
            if row['camera'] != name or row['noise'] != noise:
                continue
            which = np.digitize(row['off_centre'], bins) - 1
            centres = 0.5 * (bins[1:] + bins[:-1])
            medians = [np.median(row['error'][which == b]) * 100 if np.any(which == b)
                       else np.nan for b in range(len(centres))]
            ax.plot(centres, medians, marker='o', label=row['method'])
        ax.set_title(name, fontsize=9)
        ax.set_yscale('log')
        ax.set_xlabel('pelvis distance from the image centre (half-widths)')
        ax.grid(True, which='both', alpha=0.3)
    axes[0].set_ylabel(f'median |t error| / |t| (%), {noise:g} px noise')
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'geometry.md',
                        help=f'markdown file for the table (<!-- {DOC_SECTION}:begin/end -->)')
    parser.add_argument('--figure', type=Path,
                        default=ROOT / 'docs' / 'images' / 'lens_translation.png',
                        help='PNG of the error across the image')
    parser.add_argument('--no-write', action='store_true', help='only log the table')
    args = parser.parse_args()
    rows = measure()
    text = table(rows)
    LOG.info('%s', text)
    if args.no_write:
        return 0
    if args.out:
        write_doc_section(args.out, text, name=DOC_SECTION)
    if args.figure:
        figure(rows, args.figure)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
