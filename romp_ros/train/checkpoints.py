"""Training checkpoints: everything needed to resume exactly, in a file inference can load.

``RUN_DIR/checkpoints/last.pth`` (and ``best.pth``) hold::

    {'format': 'romp_ros.train', 'version': 1,
     'model': {name: tensor}            # the network, official key layout (no 'module.')
     'optimizer', 'scheduler', 'scaler': their state dicts
     'step': int                        # optimizer steps done
     'rng': {'torch': ..., 'cuda': [...], 'numpy': ..., 'python': ...}
     'config': {...}                    # the resolved TrainConfig as plain data
     'metrics': {...}}                  # the last validation, if any

Only tensors and plain containers are stored, so the files load with
``torch.load(weights_only=True)``: no pickled code runs. ``romp-ros infer``, ``evaluate`` and
the node read the nested ``model`` entry like an official checkpoint (and the input size from
``config``). Writes are atomic: a crash mid-write never leaves a truncated last.pth.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
import random
import tempfile
from typing import Any, Mapping

import numpy as np
import torch

LOG = logging.getLogger(__name__)

FORMAT = 'romp_ros.train'
VERSION = 1
LAST = 'last.pth'
BEST = 'best.pth'


class TrainCheckpointError(RuntimeError):
    """A training checkpoint that cannot be resumed from; the message says why."""


def rng_state() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain Python data."""
    np_state = np.random.get_state()
    state = {
        'torch': torch.get_rng_state(),
        'numpy': {'name': np_state[0], 'keys': torch.from_numpy(np_state[1].astype(np.int64)),
                  'pos': int(np_state[2]), 'has_gauss': int(np_state[3]),
                  'cached_gaussian': float(np_state[4])},
        'python': _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state['torch'])
    np_state = state['numpy']
    np.random.set_state((np_state['name'], np_state['keys'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['cached_gaussian']))
    random.setstate(_python_state_from_plain(state['python']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_training_checkpoint(path: Path, *, model_state: Mapping[str, torch.Tensor],
                             optimizer: Any, scheduler: Any, scaler: Any, step: int,
                             config: Mapping[str, Any], metrics: Mapping[str, Any] | None = None
                             ) -> Path:
    """Write a training checkpoint atomically; returns its path."""
    payload = {
        'format': FORMAT, 'version': VERSION,
        'model': {k: v.detach().cpu() for k, v in model_state.items()},
        'optimizer': optimizer.state_dict(),
        'scheduler': scheduler.state_dict(),
        'scaler': scaler.state_dict() if scaler is not None else {},
        'step': int(step),
        'rng': rng_state(),
        'config': dict(config),
        'metrics': dict(metrics or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint written by :func:`save_training_checkpoint`.

    Raises:
        TrainCheckpointError: missing, corrupt, or not a training checkpoint (an official
            inference file cannot be resumed from: start from it with ``--init`` instead).
    """
    if not path.is_file():
        raise TrainCheckpointError(f'{path} does not exist: nothing to resume from (drop '
                                   '--resume to start a new run)')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for corrupt / unsafe files
        raise TrainCheckpointError(f'{path} cannot be read ({type(err).__name__}: {err}); it '
                                   'may be truncated or not a torch file') from err
    if not isinstance(payload, Mapping) or payload.get('format') != FORMAT:
        raise TrainCheckpointError(f'{path} is not a romp_ros training checkpoint; to start '
                                   'from network weights use --init instead of --resume')
    if payload.get('version') != VERSION:
        raise TrainCheckpointError(f'{path}: training checkpoint version '
                                   f'{payload.get("version")!r}, this romp_ros reads {VERSION}')
    return dict(payload)


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [int(version), [int(v) for v in internal], gauss]


def _python_state_from_plain(plain: list) -> tuple:
    version, internal, gauss = plain
    return (int(version), tuple(int(v) for v in internal), gauss)
