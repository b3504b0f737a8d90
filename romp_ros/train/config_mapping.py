"""Strict conversion between nested frozen dataclasses and plain mappings (YAML, ``--set``).

Unknown keys, wrong types and invalid values are errors that name the dotted key, so a typo in
a training config fails at start-up with one line instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, Union

import yaml


class ConfigMappingError(ValueError):
    """A configuration mapping that does not fit its dataclass; names the dotted key."""


def from_mapping(cls: type, values: Mapping[str, Any] | None, where: str = '') -> Any:
    """Build the (nested) dataclass ``cls`` from ``values``; missing keys keep defaults."""
    values = {} if values is None else values
    if not isinstance(values, Mapping):
        raise ConfigMappingError(f'{where or "config"}: expected a mapping of settings, got '
                                 f'{type(values).__name__} {values!r}')
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigMappingError(f'unknown setting(s) {[_join(where, k) for k in unknown]}; '
                                 f'valid keys{" of " + where if where else ""}: {names}')
    kwargs = {name: _convert(hints[name], values[name], _join(where, name))
              for name in names if name in values}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        message = str(err)
        if where and not message.startswith(where):
            message = f'{where}: {message}'
        raise ConfigMappingError(message) from err


def to_mapping(value: Any) -> Any:
    """Plain dicts / lists / scalars of a (nested) dataclass, for YAML and checkpoints."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_mapping(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_mapping(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_mapping(v) for k, v in value.items()}
    return value


def apply_overrides(values: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a nested mapping (a copy); values are YAML scalars.

    ``optim.lr=3e-4``, ``model.freeze_backbone=true`` and ``data.sources=[...]`` all work;
    the dataclass conversion afterwards checks the key exists and the type fits.
    """
    result = _deep_copy(values)
    for item in overrides:
        key, sep, raw = item.partition('=')
        key = key.strip()
        if not sep or not key:
            raise ConfigMappingError(f'--set {item!r}: expected KEY=VALUE, e.g. optim.lr=1e-4')
        try:
            value = yaml.safe_load(raw) if raw.strip() else ''
        except yaml.YAMLError as err:
            raise ConfigMappingError(f'--set {item!r}: the value is not valid YAML ({err})') \
                from err
        set_dotted(result, key, value)
    return result


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``values[a][b][c] = value`` for ``key`` 'a.b.c', creating sections as needed."""
    node = values
    parts = key.split('.')
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigMappingError(f'{key}: {part!r} is not a section')
        node = child
    node[parts[-1]] = value


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}


def _join(where: str, key: str) -> str:
    return f'{where}.{key}' if where else key


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_mapping(hint, value, where)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigMappingError as err:
                errors.append(str(err))
        raise ConfigMappingError(errors[0] if errors else f'{where}: invalid value {value!r}')
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigMappingError(f'{where}: expected a list, got {value!r}')
        item_hint = args[0] if args else Any
        return tuple(_convert(item_hint, v, f'{where}[{i}]') for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigMappingError(f'{where}: expected a mapping, got {value!r}')
        args = typing.get_args(hint)
        value_hint = args[1] if len(args) == 2 else Any
        return {str(k): _convert(value_hint, v, f'{where}.{k}') for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigMappingError(f'{where}: expected true or false, got {value!r}')
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigMappingError(f'{where}: expected an integer, got {value!r}')
        return value
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 reads 1e-4 (no dot) as a string; users write it that way
            try:
                return float(value)
            except ValueError:
                raise ConfigMappingError(f'{where}: expected a number, got {value!r}') from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigMappingError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigMappingError(f'{where}: expected a string, got {value!r}')
        return value
    return value
