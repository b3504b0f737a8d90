"""Tracks -> BVH files: the SMPL skeleton's motion, one file per track.

BVH has no field for axes or units; these files use:

* **axes**: y up, the camera looking along -z (a camera-frame point (x, y, z) is
  (x, -y, -z)), the same as glTF; Blender's BVH import defaults (forward -Z, up Y) put people
  upright with +Z up;
* **units**: metres (Blender: scale 1.0; tools that expect centimetres: scale 100);
* **rotations**: degrees, channels ``Zrotation Xrotation Yrotation``: a joint's rotation is
  Rz @ Rx @ Ry, mapping the joint's frame into its parent's;
* **hierarchy**: the 24 SMPL joints under their SMPL names, ``pelvis`` the root with
  position channels (its OFFSET is zero: the channels hold the position); the five leaf joints
  (head, hands, feet) end in an End Site half their bone's length further on;
* **frames**: one per input frame from the track's first to its last, ``Frame Time`` = 1/fps.
  Frames in which the track was missing are interpolated between its neighbours (position
  linearly, rotations along the shortest arc).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS
from romp_ros.export.motion_source import MotionSource
from romp_ros.export.skeleton import (
    JOINT_NAMES,
    children,
    depth_first_order,
    local_rotations,
    root_rotation_yup,
    to_yup,
)
from romp_ros.export.track_summary import TrackSummary

LOG = logging.getLogger(__name__)
EULER_ORDER = 'ZXY'  # intrinsic: R = Rz @ Rx @ Ry, as BVH reads the channel list
END_SITE_FRACTION = 0.5


@dataclass
class _LastKey:
    """The last frame written for a track (for gap filling)."""

    frame: int
    position: np.ndarray  # (3,)
    rotations: Rotation  # 24


def bvh_header(offsets: np.ndarray, num_frames: int, frame_time: float) -> str:
    """HIERARCHY and the MOTION preamble of a BVH file.

    Args:
        offsets: (24, 3) bone offsets from the parent, metres, the rest pose (y up).
        num_frames: frames that follow.
        frame_time: seconds per frame.
    """
    lines = ['HIERARCHY']

    def joint(index: int, depth: int) -> None:
        pad = '  ' * depth
        keyword = 'ROOT' if index == 0 else 'JOINT'
        lines.append(f'{pad}{keyword} {JOINT_NAMES[index]}')
        lines.append(f'{pad}{{')
        offset = np.zeros(3) if index == 0 else offsets[index]
        lines.append(f'{pad}  OFFSET {_fmt(offset)}')
        if index == 0:
            lines.append(f'{pad}  CHANNELS 6 Xposition Yposition Zposition '
                         'Zrotation Xrotation Yrotation')
        else:
            lines.append(f'{pad}  CHANNELS 3 Zrotation Xrotation Yrotation')
        kids = children(index)
        for kid in kids:
            joint(kid, depth + 1)
        if not kids:
            lines.append(f'{pad}  End Site')
            lines.append(f'{pad}  {{')
            lines.append(f'{pad}    OFFSET {_fmt(END_SITE_FRACTION * offsets[index])}')
            lines.append(f'{pad}  }}')
        lines.append(f'{pad}}}')

    joint(0, 0)
    lines += ['MOTION', f'Frames: {num_frames}', f'Frame Time: {frame_time:.8f}']
    return '\n'.join(lines) + '\n'


def _fmt(values: np.ndarray) -> str:
    return ' '.join(f'{v:.6f}' for v in values)


def bvh_paths(out: Path, tracks: list[TrackSummary]) -> dict[int, Path]:
    """One file per track next to ``out``: ``<stem>_track<id>.bvh``."""
    return {t.track_id: out.with_name(f'{out.stem}_track{t.track_id}.bvh') for t in tracks}


def write_bvh(source: MotionSource, tracks: list[TrackSummary], out: Path,
              fps: float) -> list[Path]:
    """Write one BVH per track (see the module docstring); returns the paths."""
    paths = bvh_paths(out, tracks)
    live = [t for t in tracks if t.num_frames]
    for track in live:
        span = int(track.frames[-1] - track.frames[0] + 1)
        paths[track.track_id].parent.mkdir(parents=True, exist_ok=True)
        paths[track.track_id].write_text(bvh_header(track.offsets, span, 1.0 / fps))
    wanted = {t.track_id for t in live}
    last: dict[int, _LastKey] = {}
    order = depth_first_order()
    for block in source.blocks(('smpl_thetas', 'joints', 'cam_trans')):
        for track_id in np.unique(block.track_ids):
            if int(track_id) not in wanted:
                continue
            mine = block.track_ids == track_id
            local = local_rotations(block.arrays['smpl_thetas'][mine])  # (R, 24, 3, 3)
            local[:, 0] = root_rotation_yup(local)
            count = local.shape[0]
            rotations = Rotation.from_matrix(local.reshape(-1, 3, 3))
            pelvis = to_yup((block.arrays['joints'][mine][:, 0]
                             + block.arrays['cam_trans'][mine]).astype(np.float64))
            frames = block.frame_index[mine]
            positions, euler = _dense_frames(last.get(int(track_id)), frames, pelvis,
                                             rotations, count)
            last[int(track_id)] = _LastKey(int(frames[-1]), pelvis[-1],
                                           rotations[(count - 1) * NUM_SMPL_JOINTS:])
            values = np.concatenate([positions, euler[:, order].reshape(len(euler), -1)], 1)
            line = ' '.join(['%.6f'] * values.shape[1]) + '\n'
            with open(paths[int(track_id)], 'a') as handle:
                handle.write((line * values.shape[0]) % tuple(values.ravel().tolist()))
    LOG.info('BVH: %d track(s) -> %s', len(live), ', '.join(str(paths[t.track_id])
                                                           for t in live[:3]))
    return [paths[t.track_id] for t in live]


def _dense_frames(previous: _LastKey | None, frames: np.ndarray, positions: np.ndarray,
                  rotations: Rotation, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (K, 3) and ZXY Euler degrees (K, 24, 3) of every frame up to frames[-1].

    The keys' own frames come first-hand; frames missing between two keys (also between
    ``previous`` and the first key) are interpolated: positions linearly, rotations along
    the shortest arc.
    """
    euler = _euler(rotations).reshape(count, NUM_SMPL_JOINTS, 3)
    before = np.concatenate([[frames[0] - 1 if previous is None else previous.frame],
                             frames[:-1]])
    gaps = np.flatnonzero(frames - before > 1)
    if gaps.size == 0:
        return positions, euler
    out_pos, out_euler, done = [], [], 0
    for i in gaps:
        out_pos.append(positions[done:i])
        out_euler.append(euler[done:i])
        if i == 0:
            pos_a, rot_a = previous.position, previous.rotations
        else:
            pos_a = positions[i - 1]
            rot_a = rotations[(i - 1) * NUM_SMPL_JOINTS:i * NUM_SMPL_JOINTS]
        rot_b = rotations[i * NUM_SMPL_JOINTS:(i + 1) * NUM_SMPL_JOINTS]
        missing = int(frames[i] - before[i] - 1)
        alpha = np.arange(1, missing + 1) / (missing + 1)  # (G,)
        out_pos.append(pos_a + alpha[:, None] * (positions[i] - pos_a))
        step = (rot_a.inv() * rot_b).as_rotvec()  # (24, 3)
        between = Rotation.concatenate([rot_a * Rotation.from_rotvec(a * step) for a in alpha])
        out_euler.append(_euler(between).reshape(missing, NUM_SMPL_JOINTS, 3))
        done = i
    out_pos.append(positions[done:])
    out_euler.append(euler[done:])
    return np.concatenate(out_pos), np.concatenate(out_euler)


def _euler(rotations: Rotation) -> np.ndarray:
    """(M, 3) intrinsic ZXY angles in degrees: BVH's Zrotation, Xrotation, Yrotation."""
    return rotations.as_euler(EULER_ORDER, degrees=True)
