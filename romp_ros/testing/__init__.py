"""Fixtures for tests, the demo and benchmarks; never imported by product code paths.

* :mod:`romp_ros.testing.seeded_weights`: deterministic, well-conditioned random weights in the
  official checkpoint layouts (the official checkpoints cannot be downloaded here).
* :mod:`romp_ros.testing.seeded_romp_center`: the hand-wired ROMP center head those weights use.
"""
