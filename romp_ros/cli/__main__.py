"""``python -m romp_ros.cli``: the same as the ``romp-ros`` command (torchrun uses this form)."""

from romp_ros.cli.main import main

raise SystemExit(main())
