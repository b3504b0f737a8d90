"""Time of one training augmentation (``romp_ros.data.augment.augment``) per sample.

Run: ``python bench/augment_speed.py [--input-size 512] [--repeats 200] [--threads 1]``.
Prints a markdown table of milliseconds per sample (median wall time and median CPU time of
the process, which a busy machine does not inflate) with ``--threads`` OpenCV threads (1 is
what each DataLoader worker should use), for a VGA and a 1080p source image with three
people and three settings: no augmentation, the default :class:`AugmentConfig`, and
everything switched on. The figure in docs/datasets.md comes from this script.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time

import cv2
import numpy as np

from romp_ros.data.augment import AugmentConfig, augment
from romp_ros.data.dataset_format import CameraLabel, FrameLabel, PersonLabel
from romp_ros.data.joint_sets import TRAINING_71

LOG = logging.getLogger('bench.augment_speed')


def _frame(height: int, width: int, rng: np.random.Generator) -> FrameLabel:
    camera = CameraLabel(width, height, (0.8 * width, 0.8 * width, width / 2, height / 2))
    people = []
    for _ in range(3):
        joints = rng.normal(0, 0.3, (71, 3)) + [rng.uniform(-1, 1), 0, rng.uniform(3, 6)]
        uvw = joints @ camera.matrix().T
        keypoints = np.concatenate([uvw[:, :2] / uvw[:, 2:], np.full((71, 1), 2.0)], 1)
        people.append(PersonLabel(keypoints_2d=keypoints, joints_3d=joints,
                                  smpl_pose=rng.normal(0, 0.2, 72), smpl_shape=np.zeros(10),
                                  translation=joints[0] - [0.0, -0.2, 0.0]))
    return FrameLabel(0, 'bench.png', tuple(people), camera=camera)


def _time(image, frame, config, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process, milliseconds per sample."""
    mapping = TRAINING_71.mapping()
    augment(image, frame, mapping, config, np.random.default_rng(0))  # warm-up
    wall, cpu = [], []
    for seed in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        augment(image, frame, mapping, config, np.random.default_rng(seed))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall) * 1e3), float(np.median(cpu) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--input-size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=200)
    parser.add_argument('--threads', type=int, default=1, help='OpenCV threads (0: default)')
    args = parser.parse_args()
    if args.threads > 0:
        cv2.setNumThreads(args.threads)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    size = args.input_size
    configs = {
        'none (identity)': AugmentConfig.identity(size),
        'default AugmentConfig': AugmentConfig(input_size=size),
        'all on (rotation, flip, colour, blur, occlusion)': AugmentConfig(
            input_size=size, rotation_prob=1.0, flip_prob=1.0, colour_prob=1.0,
            blur_prob=1.0, occlusion_prob=1.0),
    }
    rng = np.random.default_rng(0)
    lines = [f'| augmentation | 640x480 -> {size} | 1920x1080 -> {size} |', '|---|---:|---:|']
    for name, config in configs.items():
        cells = []
        for height, width in ((480, 640), (1080, 1920)):
            image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            wall, cpu = _time(image, _frame(height, width, rng), config, args.repeats)
            cells.append(f'{wall:.1f} ms (CPU {cpu:.1f} ms)')
        lines.append(f'| {name} | {cells[0]} | {cells[1]} |')
    LOG.info('%s, Python %s, OpenCV %s, %d OpenCV thread(s)', platform.machine(),
             platform.python_version(), cv2.__version__, cv2.getNumThreads())
    LOG.info('\n'.join(lines))


if __name__ == '__main__':
    main()
