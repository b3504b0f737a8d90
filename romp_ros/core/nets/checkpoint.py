"""Safe, strict and explanatory loading of ROMP / BEV weights.

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, so a
malicious pickle cannot execute code. ``.safetensors`` files are read with the optional
``safetensors`` package.

Accepted layouts:

* inference files (official ROMP.pkl, BEV.pth): a flat ``{name: tensor}`` dict;
* training files: the state dict nested under 'model_state_dict', 'state_dict', 'net' or
  'model', keys possibly prefixed with ``module.`` (DataParallel), possibly with training-only
  ``_result_parser.*`` / ``_calc_loss.*`` entries (body models and losses), which are dropped.

Keys that may legitimately be absent from a file (the constructor value is kept):

* ``coordmap_3d`` (BEV): a constant rebuilt at construction from the depth anchors; the
  reference loads BEV with ``strict=False`` and some files predate the buffer.
* ``*.num_batches_tracked``: BatchNorm counters, only used when training with momentum=None,
  and missing from files saved by old PyTorch versions.

Any other missing or unexpected key, any shape mismatch and any non-finite weight raises
:class:`CheckpointError` with a message that says what the file looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
import os
from pathlib import Path
import pickle
from typing import Any, Mapping
import zipfile

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

# Containers under which training scripts store the weights, in lookup order.
_NESTED_KEYS = ('model_state_dict', 'state_dict', 'net', 'model')
_WRAPPER_PREFIX = 'module.'
# Sub-modules of the training wrapper that are not part of the network.
_TRAINING_ONLY_PREFIXES = ('_result_parser.', '_calc_loss.')
_OPTIONAL_KEYS = ('coordmap_3d',)
_OPTIONAL_SUFFIXES = ('.num_batches_tracked',)
_LIST_LIMIT = 10
_FIX = 'Re-download it with `romp-ros download` (or fetch the official file again).'


class CheckpointError(RuntimeError):
    """A weights file that cannot be read or does not fit the model; the message says why."""


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_into` did.

    Attributes:
        source: the file path, or '<state dict>' for an in-memory dict.
        loaded: number of tensors copied into the model.
        kept_default: model keys absent from the file that legitimately keep their
            constructor values (see the module docstring).
        dropped: training-only keys of the file that were ignored.
        missing: other model keys absent from the file (only possible with strict=False).
        unexpected: file keys the model does not have (only possible with strict=False).
    """

    source: str
    loaded: int
    kept_default: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a weights file into a flat CPU ``{name: tensor}`` dict (training keys dropped).

    Raises:
        CheckpointError: the file is missing, truncated / corrupt, holds pickled objects
            other than tensors, or contains no state dict.
    """
    state, _ = _read_state(Path(path))
    return state


def load_into(model: nn.Module, path_or_state: str | os.PathLike | Mapping[str, Any], *,
              strict: bool = True) -> LoadReport:
    """Load weights from a file or a state dict into ``model`` after checking they fit.

    With ``strict=False`` missing and unexpected keys are tolerated and reported; shape
    mismatches and non-finite values always raise :class:`CheckpointError`.
    """
    if isinstance(path_or_state, Mapping):
        source = '<state dict>'
        state, dropped = _normalise(path_or_state, source)
    else:
        source = str(path_or_state)
        state, dropped = _read_state(Path(path_or_state))

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in state
                  if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    kept_default = [k for k in missing if _is_optional(k)]
    hard_missing = [k for k in missing if not _is_optional(k)]

    if mismatched or (strict and (hard_missing or unexpected)):
        raise CheckpointError(_mismatch_message(
            source, state, expected, hard_missing, unexpected, mismatched))
    usable = {k: v for k, v in state.items() if k in expected}
    _check_finite(usable, source)

    result = model.load_state_dict(usable, strict=False)
    if result.unexpected_keys:  # cannot happen after the filtering above
        raise CheckpointError(f'{source}: unexpected keys {result.unexpected_keys[:10]}')
    if hard_missing or unexpected:
        logger.warning('%s: loaded non-strictly, %d missing and %d unexpected keys',
                       source, len(hard_missing), len(unexpected))
    return LoadReport(source=source, loaded=len(usable), kept_default=tuple(kept_default),
                      dropped=tuple(dropped), missing=tuple(hard_missing),
                      unexpected=tuple(unexpected))


def describe_keys(keys: Any) -> str:
    """Guess the model and backbone a set of state-dict keys belongs to, in words."""
    keys = set(keys)
    if any(k.startswith('det_head.') or k.startswith('bv_out_layers.') for k in keys):
        model = 'BEV'
    elif any(k.startswith('final_layers.') for k in keys):
        model = 'ROMP'
    else:
        model = 'unknown-model'
    if any(k.startswith('backbone.transition1.') for k in keys):
        backbone = 'HRNet-32'
    elif any(k.startswith('backbone.layer4.') for k in keys):
        backbone = 'ResNet-50'
    elif any(k.startswith('backbone.') for k in keys):
        backbone = 'non-HRNet'
    else:
        backbone = 'no'
    return f'a {model} checkpoint with a {backbone} backbone'


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CheckpointInfo:
    """What a romp_ros training checkpoint records about its network.

    Every field is None when not recorded, as in the official files.

    Attributes:
        model: 'romp' or 'bev'.
        backbone: the backbone name.
        input_size: the square input side the weights were trained at.
        step: optimizer steps of training.
    """

    model: str | None = None
    backbone: str | None = None
    input_size: int | None = None
    step: int | None = None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Tensor], CheckpointInfo]:
    """:func:`load_checkpoint` plus what the file records about the network, in one read."""
    path = Path(path)
    raw = _read_raw(path)
    state, _ = _normalise(raw, str(path))
    return state, _info(raw)


def _info(raw: Any) -> CheckpointInfo:
    """The network facts of a ``romp-ros train`` checkpoint (its 'config' entry)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get('config'), Mapping):
        return CheckpointInfo()
    model = raw['config'].get('model')
    if not isinstance(model, Mapping):
        return CheckpointInfo()
    size = model.get('input_size')
    step = raw.get('step')
    return CheckpointInfo(model=model.get('name'), backbone=model.get('backbone'),
                          input_size=int(size) if isinstance(size, int) else None,
                          step=int(step) if isinstance(step, int) else None)


def _read_state(path: Path) -> tuple[dict[str, Tensor], list[str]]:
    return _normalise(_read_raw(path), str(path))


def _read_raw(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} does not exist. {_FIX}')
    size = path.stat().st_size
    if path.suffix == '.safetensors':
        return _read_safetensors(path, size)
    return _read_torch(path, size)


def _read_torch(path: Path, size: int) -> Any:
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        if 'weights only' in str(exc).lower():
            raise CheckpointError(
                f'{path} contains pickled Python objects other than tensors and plain '
                'containers; refusing to load it because unpickling them could execute '
                f'code. Use the official weights file. {_FIX}') from exc
        raise CheckpointError(_corrupt_message(path, size, exc)) from exc
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError,
            AttributeError, IndexError, KeyError) as exc:
        raise CheckpointError(_corrupt_message(path, size, exc)) from exc


def _read_safetensors(path: Path, size: int) -> dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise CheckpointError(
            f'{path} is a .safetensors file, which needs the optional `safetensors` '
            'package: pip install safetensors') from exc
    try:
        return load_file(str(path), device='cpu')
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(_corrupt_message(path, size, exc)) from exc


def _corrupt_message(path: Path, size: int, exc: BaseException) -> str:
    reason = str(exc).split('\n')[0] or type(exc).__name__
    return (f'cannot read checkpoint {path} ({_human_size(size)}): it looks truncated or '
            f'corrupt ({reason}). {_FIX}')


def _human_size(size: int) -> str:
    if size < 1024:
        return f'{size} bytes'
    exponent = min(int(math.log(size, 1024)), 3)
    return f'{size / 1024 ** exponent:.1f} {("B", "KiB", "MiB", "GiB")[exponent]}'


def _normalise(raw: Any, source: str) -> tuple[dict[str, Tensor], list[str]]:
    """Unwrap nested containers, strip ``module.`` and drop training-only keys."""
    state = _unwrap(raw, source)
    flat: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        name = key[len(_WRAPPER_PREFIX):] if key.startswith(_WRAPPER_PREFIX) else key
        if name.startswith(_TRAINING_ONLY_PREFIXES):
            dropped.append(name)
            continue
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f'{source}: entry {key!r} is a {type(value).__name__}, not a tensor')
        flat[name] = value
    if dropped:
        logger.debug('%s: dropped %d training-only keys', source, len(dropped))
    return flat, dropped


def _unwrap(raw: Any, source: str) -> Mapping[str, Any]:
    for _ in range(3):  # training files nest at most a couple of levels
        if not isinstance(raw, Mapping):
            raise CheckpointError(
                f'{source} holds a {type(raw).__name__}, not a state dict. {_FIX}')
        if raw and all(isinstance(v, Tensor) for v in raw.values()):
            return raw
        nested = next((raw[k] for k in _NESTED_KEYS if isinstance(raw.get(k), Mapping)), None)
        if nested is None:
            break
        raw = nested
    top = ', '.join(sorted(map(str, raw))[:_LIST_LIMIT]) if isinstance(raw, Mapping) else ''
    raise CheckpointError(
        f'{source} contains no state dict (looked for a flat tensor dict or one nested under '
        f'{", ".join(_NESTED_KEYS)}; top-level keys: {top or "none"}). {_FIX}')


# --------------------------------------------------------------------------- checking


def _is_optional(key: str) -> bool:
    return key in _OPTIONAL_KEYS or key.endswith(_OPTIONAL_SUFFIXES)


def _listing(title: str, items: list[str]) -> str:
    shown = ', '.join(items[:_LIST_LIMIT])
    more = f', ... (+{len(items) - _LIST_LIMIT} more)' if len(items) > _LIST_LIMIT else ''
    return f'  {title} ({len(items)}): {shown}{more}'


def _mismatch_message(source: str, state: Mapping[str, Tensor], expected: Mapping[str, Tensor],
                      missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    file_kind = describe_keys(state)
    model_kind = describe_keys(expected).replace(' checkpoint', ' model')
    lines = [f'{source} does not fit the model: this looks like {file_kind}, '
             f'but the model being loaded is {model_kind}.']
    if missing:
        lines.append(_listing('missing keys', missing))
    if unexpected:
        lines.append(_listing('unexpected keys', unexpected))
    if mismatched:
        lines.append(_listing('shape mismatches', [
            f'{k} file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
            for k in mismatched]))
    lines.append('Check the model / backbone settings against the checkpoint file.')
    return '\n'.join(lines)


def _all_finite(tensor: Tensor) -> bool:
    # min / max propagate NaN and keep +-inf: two reductions, no tensor-sized temporary.
    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor.detach())
    return bool(torch.isfinite(low) & torch.isfinite(high))


def _check_finite(state: Mapping[str, Tensor], source: str) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not _all_finite(v)]
    if bad:
        raise CheckpointError(
            f'{source} contains NaN or infinite values; the weights are unusable.\n'
            + _listing('non-finite tensors', bad) + f'\n{_FIX}')
