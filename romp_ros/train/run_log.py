"""What a run records: ``log.jsonl`` rows and TensorBoard events (rank 0 only).

``RUN_DIR/log.jsonl`` has one JSON object per logged step::

    {"step": 20, "loss": 1.93, "<term>": ..., "lr": 9.9e-05, "images_per_s": 41.2,
     "world_size": 2, "skipped": {"<reason>": n}}

Loss terms are the means over the steps since the previous row, over all processes.
TensorBoard is optional: without the ``tensorboard`` package the run says so once and goes on.

A resumed run continues from its last checkpoint, which may be older than the last rows an
interrupted run wrote: those rows (and TensorBoard's events after that step) are dropped, so the
log holds each step once, as an uninterrupted run would.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

LOG = logging.getLogger(__name__)

LOG_FILE = 'log.jsonl'
EVENTS_DIR = 'tensorboard'


class RunLog:
    """Appends rows to log.jsonl and scalars / images to TensorBoard."""

    def __init__(self, run_dir: Path, *, tensorboard: bool, enabled: bool = True,
                 resume_step: int | None = None) -> None:
        """Open the sinks.

        Args:
            run_dir: the run's folder.
            tensorboard: also write TensorBoard events.
            enabled: False (ranks other than 0) makes every call a no-op.
            resume_step: the step of the checkpoint a resumed run starts from; rows and events
                after it are dropped.
        """
        self.enabled = enabled
        self.path = run_dir / LOG_FILE
        self._writer = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            self._drop_rows_after(resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                LOG.warning('TensorBoard events are off: the tensorboard package is not '
                            'installed (pip install tensorboard); log.jsonl is written')
            else:
                purge = None if resume_step is None else resume_step + 1
                self._writer = SummaryWriter(log_dir=str(run_dir / EVENTS_DIR), purge_step=purge)

    def _drop_rows_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding='utf-8').splitlines()
        kept = [line for line in lines if line and json.loads(line).get('step', 0) <= step]
        if len(kept) != len([line for line in lines if line]):
            LOG.info('log.jsonl: dropped %d rows written after the step-%d checkpoint',
                     len(lines) - len(kept), step)
            tmp = self.path.with_suffix('.jsonl.tmp')
            tmp.write_text(''.join(line + '\n' for line in kept), encoding='utf-8')
            tmp.replace(self.path)

    def row(self, values: Mapping[str, Any]) -> None:
        """Append one row (floats, ints, strings, dicts) and the numbers to TensorBoard."""
        if not self.enabled:
            return
        clean = {k: _plain(v) for k, v in values.items()}
        with self.path.open('a', encoding='utf-8') as fh:
            fh.write(json.dumps(clean) + '\n')
        if self._writer is not None:
            step = int(values['step'])
            for key, value in clean.items():
                if key != 'step' and isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(_tag(key), value, step)
            self._writer.flush()

    def images(self, tag: str, images: np.ndarray, step: int) -> None:
        """(N, H, W, 3) uint8 images to TensorBoard."""
        if self.enabled and self._writer is not None:
            self._writer.add_images(tag, images, step, dataformats='NHWC')
            self._writer.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's log.jsonl, in order (for plots and tests)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding='utf-8').splitlines() if line]


def _tag(key: str) -> str:
    if key in ('loss', 'lr', 'images_per_s'):
        return f'train/{key}'
    if key.startswith('val/'):
        return key
    return f'loss/{key}'


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if hasattr(value, 'item'):
        return value.item()
    return value
