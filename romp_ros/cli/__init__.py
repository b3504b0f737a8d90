"""The ``romp-ros`` command: :mod:`romp_ros.cli.main` dispatches to one module per sub-command.

``python -m romp_ros.cli ...`` runs it too (torchrun and scripts use that form).
"""

from romp_ros.cli.main import build_parser, main

__all__ = ['build_parser', 'main']
