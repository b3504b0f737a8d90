"""First pass over a results file: which frames each track covers, its bones and its shape.

Writers that must lay out a file before writing it (glTF's binary buffer, BVH's header) need
each track's frame count, bone offsets and mean shape first; this pass streams the file once
and keeps a few numbers per track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS
from romp_ros.export.errors import MotionExportError
from romp_ros.export.motion_source import MotionSource
from romp_ros.export.skeleton import local_rotations, recover_offsets


@dataclass(frozen=True)
class TrackSummary:
    """One track of a results file.

    Attributes:
        track_id: the id (>= 1).
        frames: (T,) int64 ascending indices of the frames in which the track was present
            with finite values.
        offsets: (24, 3) bone offsets from the parent, metres, SMPL's canonical frame (y up),
            averaged over the track's frames (row 0 zero); what the posed joints imply.
        betas: (B,) mean shape parameters.
    """

    track_id: int
    frames: np.ndarray
    offsets: np.ndarray
    betas: np.ndarray

    @property
    def num_frames(self) -> int:
        """T."""
        return int(self.frames.shape[0])


def select_tracks(source: MotionSource, fmt: str, track: int | None) -> np.ndarray:
    """The ids to export (ascending); MotionExportError for an unknown ``track``."""
    ids = source.require_tracks(fmt)
    present = np.unique(ids[source.valid])
    if track is None:
        return present
    if track not in present:
        shown = ', '.join(str(i) for i in present[:20]) or 'none'
        more = f' (and {present.size - 20} more)' if present.size > 20 else ''
        raise MotionExportError(f'track {track} is not in {source.path}: its tracks are '
                                f'{shown}{more}')
    return np.array([track], dtype=np.int64)


def summarise_tracks(source: MotionSource, track_ids: np.ndarray) -> list[TrackSummary]:
    """One streamed pass: frames, mean bone offsets and mean shape of each of ``track_ids``."""
    ids = source.require_tracks('this')
    wanted = {int(t): slot for slot, t in enumerate(track_ids)}
    count = np.zeros(len(wanted), np.int64)
    offset_sum = np.zeros((len(wanted), NUM_SMPL_JOINTS, 3))
    beta_sum = np.zeros((len(wanted), source.num_betas))
    for block in source.blocks(('smpl_thetas', 'smpl_betas', 'joints')):
        slots = np.array([wanted.get(int(t), -1) for t in block.track_ids], np.int64)
        mine = slots >= 0
        if not mine.any():
            continue
        slots = slots[mine]
        thetas = block.arrays['smpl_thetas'][mine]
        offsets = recover_offsets(block.arrays['joints'][mine].astype(np.float64),
                                  local_rotations(thetas))  # (R, 24, 3)
        np.add.at(count, slots, 1)
        np.add.at(offset_sum, slots, offsets)
        np.add.at(beta_sum, slots, block.arrays['smpl_betas'][mine].astype(np.float64))
    valid = source.valid
    out = []
    for track_id, slot in wanted.items():
        frames = source.frame_index[valid & (ids == track_id)]
        if frames.size > 1 and np.any(np.diff(frames) == 0):
            twice = int(frames[np.flatnonzero(np.diff(frames) == 0)[0]])
            raise MotionExportError(f'{source.path}: track {track_id} appears twice in frame '
                                    f'{twice}; a track is one person per frame')
        n = max(int(count[slot]), 1)
        out.append(TrackSummary(track_id=track_id, frames=frames,
                                offsets=offset_sum[slot] / n, betas=beta_sum[slot] / n))
    return out
