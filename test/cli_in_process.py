"""Run `romp-ros` in this process: the real parser and ``main``, without a new interpreter.

A subprocess costs seconds per call here (Python, torch and the messages are imported again).
The tests of error paths run one case as a real process, which shows the exit status and the
terminal output of a real run, and the other cases through this.
"""

from __future__ import annotations

import contextlib
import io
import logging

from romp_ros.cli.main import main


def run_in_process(*args) -> tuple[int, str]:
    """(exit status, stderr as a terminal shows it) of ``romp-ros --quiet ARGS``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s %(name)s: %(message)s'))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stderr(stream):
            try:
                code = main(['--quiet', *map(str, args)])
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code
    finally:
        root.removeHandler(handler)
    return int(code), stream.getvalue()
