"""The kinematic tree of SMPL-family bodies, grouped by depth for level-by-level posing."""

from __future__ import annotations

import numpy as np


def kinematic_levels(parents: np.ndarray) -> list[np.ndarray]:
    """Joints grouped by depth below the root (index 0); level k+1 holds the children of level k.

    Args:
        parents: (K,) parent index of each joint; ``parents[0]`` is ignored (the root).

    Returns:
        The levels below the root, each an int64 array of joint indices (ascending).

    Raises:
        ValueError: a joint whose parent does not come before it (not a tree in SMPL's order).
    """
    parents = np.asarray(parents, dtype=np.int64)
    depth = np.zeros(len(parents), dtype=np.int64)
    for joint in range(1, len(parents)):
        if not 0 <= parents[joint] < joint:
            raise ValueError(f'joint {joint} has parent {parents[joint]}: parents must come '
                             'before their children')
        depth[joint] = depth[parents[joint]] + 1
    return [np.flatnonzero(depth == level) for level in range(1, int(depth.max(initial=0)) + 1)]
