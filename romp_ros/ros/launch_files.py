"""What the package's launch files share: the parameter file keyed for the node's namespace.

Pure Python (os, yaml): ``launch/romp.launch.py`` and ``launch/offline.launch.py`` import it, so
that one rule serves both (launch files cannot import each other).
"""

from __future__ import annotations

import os
import tempfile

import yaml


class LaunchArgumentError(ValueError):
    """A launch argument that cannot work; the message names it and says what to pass."""


def node_parameter_file(path, node_name, namespace, installed):
    """The parameter file to give the node: ``path``, or a copy keyed for its namespace.

    Top-level keys naming the node without a namespace (e.g. ``romp_node`` or ``/romp_node``)
    become ``/<namespace>/<node_name>`` unless the file already has that key: rcl matches a
    bare key against the root namespace only.

    Raises:
        LaunchArgumentError: the file is missing or not a YAML mapping of node names.
    """
    if not os.path.isfile(path):
        raise LaunchArgumentError(
            f"config_file:='{path}' does not exist; pass a parameter YAML file laid out like "
            f'{installed}')
    try:
        with open(path, encoding='utf-8') as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as err:
        raise LaunchArgumentError(f"config_file:='{path}' cannot be read as YAML: {err}") \
            from None
    if not isinstance(data, dict):
        raise LaunchArgumentError(
            f"config_file:='{path}' holds no mapping of node names to ros__parameters")
    ns = '/' + namespace.strip('/')
    target = f'{ns}/{node_name}'
    if ns == '/' or target in data:
        return path
    renamed = {(target if str(key).strip('/') == node_name else key): value
               for key, value in data.items()}
    if list(renamed) == list(data):
        return path
    fd, out = tempfile.mkstemp(prefix=f'{node_name}_params_', suffix='.yaml')
    with os.fdopen(fd, 'w', encoding='utf-8') as fh:
        yaml.safe_dump(renamed, fh, sort_keys=False)
    return out
