"""Shared set-up of the runtime benchmarks: frames, seeded weights, docs sections, memory.

Imported by bench/runtime_accuracy.py, bench/runtime_speed.py and bench/node_latency.py: Python
puts a script's own folder first on its path, so `python bench/NAME.py` finds this module.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path
import resource

import cv2
import numpy as np
import skimage.data

from romp_ros.core.body.prepare import prepare_models
from romp_ros.synthetic.body_model import write_synthetic_smpl_files
from romp_ros.testing.seeded_weights import write_seeded_checkpoint

LOG = logging.getLogger('bench.runtime')
ROOT = Path(__file__).resolve().parents[1]
PERFORMANCE_DOC = ROOT / 'docs' / 'performance.md'
# photos bundled with scikit-image (no download); the first three are the oracle tests' ones
EVAL_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'cat', 'immunohistochemistry')
CALIBRATION_PHOTOS = ('hubble_deep_field', 'camera', 'brick', 'grass', 'gravel', 'coins',
                      'horse', 'clock', 'moon', 'page')


def _photo(name: str) -> np.ndarray:
    """A bundled photo as H x W x 3 uint8 RGB (grey ones replicated, alpha dropped)."""
    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def frame_1280x720() -> np.ndarray:
    """The oracle tests' 1280x720 frame: two photos side by side on black, RGB."""
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[:, :640] = cv2.resize(_photo('astronaut'), (640, 720))
    canvas[104:616, 640:] = cv2.resize(_photo('coffee'), (640, 512))
    return canvas


def eval_frames() -> dict[str, np.ndarray]:
    """RGB frames the accuracy is measured on (the oracle frames first)."""
    frames = {name: _photo(name) for name in EVAL_PHOTOS}
    frames['frame_1280x720'] = frame_1280x720()
    return frames


def calibration_frames() -> list[np.ndarray]:
    """RGB frames for int8 calibration, disjoint from :func:`eval_frames`."""
    return [_photo(name) for name in CALIBRATION_PHOTOS]


@dataclass(frozen=True)
class SeededSetup:
    """Synthetic body models and seeded checkpoints (official layouts) under one folder."""

    root: Path

    @property
    def models_dir(self) -> Path:
        return self.root / 'models'

    def prepare(self) -> 'SeededSetup':
        if not (self.models_dir / 'manifest.json').exists():
            files = write_synthetic_smpl_files(self.root / 'src')
            prepare_models(smpl=files.smpl_pkl, smil=files.smil_pkl, extra=files.source_dir,
                           models_dir=self.models_dir, progress=False)
        return self

    def checkpoint(self, model: str, backbone: str = 'hrnet32') -> Path:
        path = self.root / f'{model}_{backbone}_seed0.pth'
        if not path.exists():
            LOG.info('writing seeded %s/%s weights', model, backbone)
            write_seeded_checkpoint(path, model, backbone, seed=0)
        return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_average() -> str:
    """The 1-minute load average, to say how busy the machine was."""
    try:
        return Path('/proc/loadavg').read_text().split()[0]
    except OSError:
        return '?'
