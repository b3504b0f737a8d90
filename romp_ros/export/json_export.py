"""Results -> one JSON document of every frame's people, written frame by frame.

Layout::

    {"format": "romp_ros.motion", "version": 1,
     "frame": "camera optical frame (x right, y down, z forward), metres, radians",
     "joint_names": [... 24 SMPL joints ...], "fps": 30.0,
     "frames": [{"index": 0, "input": "video.mp4#0", "stamp_ns": 0, "time_s": 0.0,
                 "image_size": [h, w], "intrinsics": [fx, fy, cx, cy],
                 "people": [{"track_id": 3, "track_state": "confirmed", "confidence": 0.9,
                             "smpl_thetas": [72], "smpl_betas": [10 or 11],
                             "cam_trans": [3], "pelvis": [3],
                             "joints": [[x, y, z] x 24]}, ...]}, ...]}

``joints`` and ``pelvis`` are in the camera frame (the results file's body-frame joints plus
``cam_trans``); ``track_id`` / ``track_state`` only for tracked files. Every frame is listed,
with an empty ``people`` list where nobody was found. Vertices are not included (use the
OBJ / PLY export).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from romp_ros.export.motion_source import MotionSource
from romp_ros.export.skeleton import JOINT_NAMES

LOG = logging.getLogger(__name__)
FORMAT_NAME = 'romp_ros.motion'
FORMAT_VERSION = 1
DIGITS = 6


def write_json(source: MotionSource, out: Path, times: np.ndarray, fps: float,
               track_ids: np.ndarray | None = None) -> Path:
    """Write the document (see the module docstring); ``track_ids`` restricts the people."""
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = ('smpl_thetas', 'smpl_betas', 'cam_trans', 'joints') + (
        ('center_confs',) if source.has_array('center_confs') else ())
    head = {'format': FORMAT_NAME, 'version': FORMAT_VERSION,
            'frame': 'camera optical frame (x right, y down, z forward), metres, radians',
            'joint_names': list(JOINT_NAMES), 'fps': fps}
    wanted = None if track_ids is None else {int(t) for t in track_ids}
    with open(out, 'w') as handle:
        handle.write(json.dumps(head)[:-1] + ', "frames": [\n')
        next_frame = 0
        pending: list[dict] = []
        pending_frame = -1

        def emit(frame: int, people: list[dict]) -> None:
            record = {'index': frame, 'input': str(source.inputs[frame]),
                      'stamp_ns': int(source.stamps_ns[frame]),
                      'time_s': round(float(times[frame]), DIGITS),
                      'image_size': [int(v) for v in source.image_sizes[frame]],
                      'intrinsics': [float(v) for v in source.intrinsics[frame]],
                      'people': people}
            handle.write(('' if frame == 0 else ',\n') + json.dumps(record))

        for block in source.blocks(keys):
            for i, row in enumerate(block.rows):
                frame = int(block.frame_index[i])
                if frame != pending_frame:
                    if pending_frame >= 0:
                        emit(pending_frame, pending)
                        next_frame = pending_frame + 1
                    while next_frame < frame:
                        emit(next_frame, [])
                        next_frame += 1
                    pending, pending_frame = [], frame
                if wanted is not None and int(block.track_ids[i]) not in wanted:
                    continue
                pending.append(_person(source, block, i, int(row)))
        if pending_frame >= 0:
            emit(pending_frame, pending)
            next_frame = pending_frame + 1
        while next_frame < source.num_frames:
            emit(next_frame, [])
            next_frame += 1
        handle.write('\n]}\n')
    LOG.info('JSON: %d frame(s) -> %s', source.num_frames, out)
    return out


def _person(source: MotionSource, block, i: int, row: int) -> dict:
    arrays = block.arrays
    joints = arrays['joints'][i].astype(np.float64) + arrays['cam_trans'][i]
    person: dict = {}
    if block.track_ids is not None:
        person['track_id'] = int(block.track_ids[i])
        if source.track_states is not None:
            person['track_state'] = str(source.track_states[row])
    if 'center_confs' in arrays:
        conf = float(arrays['center_confs'][i])
        person['confidence'] = round(conf, DIGITS) if np.isfinite(conf) else None
    person.update({
        'smpl_thetas': _list(arrays['smpl_thetas'][i]),
        'smpl_betas': _list(arrays['smpl_betas'][i]),
        'cam_trans': _list(arrays['cam_trans'][i]),
        'pelvis': _list(joints[0]),
        'joints': _list(joints)})
    return person


def _list(values: np.ndarray) -> list:
    return np.round(np.asarray(values, np.float64), DIGITS).tolist()
