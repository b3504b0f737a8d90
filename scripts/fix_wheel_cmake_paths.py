"""Rewrite the Python include paths baked into the ROS wheels' CMake files.

The ros-python-wheels CMake exports name the interpreter of the machine that built them
(``/opt/python/cp311-cp311/...``). CMake then fails to find Python.h and numpy's headers.
This points every such path at the given virtual environment's interpreter instead.
"""

import argparse
import logging
import pathlib
import re
import sysconfig

import numpy

LOG = logging.getLogger('fix_wheel_cmake_paths')
BUILD_PY = re.compile(r'/opt/python/cp311-cp311[^;"\s)]*')


def replacement(match: re.Match) -> str:
    path = match.group(0)
    if 'numpy' in path:
        return numpy.get_include()
    if '/include/' in path:
        return sysconfig.get_paths()['include']
    return sysconfig.get_paths()['purelib']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('venv', type=pathlib.Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    changed = 0
    for path in args.venv.rglob('*.cmake'):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        new = BUILD_PY.sub(replacement, text)
        if new != text:
            path.write_text(new)
            changed += 1
    LOG.info('rewrote %d CMake files', changed)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
