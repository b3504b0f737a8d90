"""Time the estimator on this machine (``romp-ros bench``).

The side-by-side comparison with the reference lives in ``bench/``; this is the user-facing
quick check of one configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
import statistics
import time

import numpy as np
import torch
from tqdm import tqdm

from romp_ros.core.config import EstimatorConfig
from romp_ros.core.estimator import Estimator
from romp_ros.core.preprocess import prepare_batch

WARMUP = 3


@dataclass(frozen=True)
class BenchReport:
    """Median seconds per call of each measured stage."""

    config: EstimatorConfig
    batch: int
    image_size: tuple[int, int]
    preprocess_s: float
    network_s: float
    pipeline_s: float
    people_per_frame: float

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        fps = self.batch / self.pipeline_s if self.pipeline_s > 0 else float('inf')
        return [
            f'{self.config.model}/{self.config.backbone} on {self.config.device} '
            f'({self.config.runtime}), '
            f'batch {self.batch}, {self.image_size[1]}x{self.image_size[0]} frames',
            f'  preprocess  {self.preprocess_s * 1e3:8.1f} ms',
            f'  network     {self.network_s * 1e3:8.1f} ms',
            f'  pipeline    {self.pipeline_s * 1e3:8.1f} ms  ({fps:.1f} frames/s, '
            f'{self.people_per_frame:.1f} people/frame)',
        ]


def _timed(fn, device: torch.device) -> float:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run_pipeline_bench(config: EstimatorConfig, frames: int = 20, height: int = 720,
                       width: int = 1280, batch: int = 1) -> BenchReport:
    """Median timings of preprocessing, the network alone and the full pipeline."""
    estimator = Estimator(config)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
              for _ in range(batch)]
    dev = estimator.device
    pre, net, full, people = [], [], [], []
    with torch.inference_mode():
        tensor = prepare_batch(images, color_order='rgb', device=dev).tensor
        forward = estimator.runner.maps  # the network call of the configured runtime
        for step in tqdm(range(WARMUP + frames), desc='bench', unit='call'):
            t_pre = _timed(lambda: prepare_batch(images, color_order='rgb', device=dev), dev)
            t_net = _timed(lambda: forward(tensor), dev)
            out: list = []
            t_full = _timed(lambda sink=out: sink.extend(estimator.predict(images)), dev)
            if step >= WARMUP:
                pre.append(t_pre)
                net.append(t_net)
                full.append(t_full)
                people.append(sum(r.num_people for r in out) / batch)
    return BenchReport(config=config, batch=batch, image_size=(height, width),
                       preprocess_s=statistics.median(pre), network_s=statistics.median(net),
                       pipeline_s=statistics.median(full),
                       people_per_frame=float(np.mean(people)))
