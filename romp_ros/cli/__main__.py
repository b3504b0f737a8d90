"""``python -m romp_ros.cli``: the same as the ``romp-ros`` command (torchrun uses this form)."""

from romp_ros.cli.main import main

if __name__ == '__main__':  # spawned worker processes import this module again: do not rerun
    raise SystemExit(main())
