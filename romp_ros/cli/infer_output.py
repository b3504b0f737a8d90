"""Accumulate per-frame estimates and write them as one ``.npz`` (the ``infer`` output).

Layout (all people of all frames concatenated in input order; within a frame by descending
confidence; N people, F frames, J joints, V vertices):

===================  ==============  ====================================================
key                  shape           meaning
===================  ==============  ====================================================
frame_index          (N,) int64      index into ``inputs`` of each person's frame
center_confs         (N,) float32    body-center score
cam                  (N, 3)          weak-perspective camera [s, tx, ty]
smpl_thetas          (N, 72)         SMPL pose, axis-angle, radians
smpl_betas           (N, 10|11)      SMPL (ROMP) / SMPL-A (BEV) shape
cam_trans            (N, 3)          metres, body frame -> camera optical frame
joints               (N, J, 3)       metres, body frame (add cam_trans for the camera)
verts                (N, V, 3)       metres, body frame (absent with --no-verts)
pj2d_org             (N, J, 2)       pixels of the original image
joint_names          (J,) str
inputs               (F,) str        source of each frame (path, path#k, bag:topic#k)
image_sizes          (F, 2) int64    (height, width) of each frame
intrinsics           (F, 4) float64  fx, fy, cx, cy used for each frame
intrinsics_source    (F,) str        'camera' (calibrated) or 'fov' (assumed)
stamps_ns            (F,) int64      capture time (bags: header stamp; videos: since the
                                     start), -1 when unknown
===================  ==============  ====================================================

With ``--track`` the people of a frame are its observed tracks (see docs/tracking.md) and
four more per-person arrays are written:

===================  ==============  ====================================================
track_ids            (N,) int64      track id, >= 1, never reused within the file
track_states         (N,) str        'tentative' or 'confirmed'
track_ages           (N,) int64      frames since the track was born
root_velocity        (N, 3) float32  pelvis velocity, m/s, camera optical frame
===================  ==============  ====================================================
"""

from __future__ import annotations

import os
from pathlib import Path
import tempfile

import numpy as np

PER_PERSON = ('center_confs', 'cam', 'smpl_thetas', 'smpl_betas', 'cam_trans', 'joints',
              'pj2d_org')
TRACKS = ('track_ids', 'track_states', 'track_ages', 'root_velocity')


class InferenceWriter:
    """Collects :class:`~romp_ros.core.results.FrameResult` objects frame by frame."""

    def __init__(self, joint_names: tuple[str, ...], with_verts: bool = True,
                 with_tracks: bool = False) -> None:
        """Args: the joint names, whether to keep vertices, whether frames come tracked."""
        self.joint_names = tuple(joint_names)
        self.with_verts = with_verts
        self.with_tracks = with_tracks
        self._people: dict[str, list[np.ndarray]] = {k: [] for k in PER_PERSON + TRACKS}
        self._people['verts'] = []
        self._frame_index: list[np.ndarray] = []
        self._frames: list[tuple] = []

    @property
    def num_frames(self) -> int:
        """F, frames added so far."""
        return len(self._frames)

    @property
    def num_people(self) -> int:
        """N, person detections added so far."""
        return int(sum(len(x) for x in self._frame_index))

    def add(self, frame, result, tracked=None) -> None:
        """Append one frame (an ``input_sources.Frame``) and its ``FrameResult``.

        With tracking, ``tracked`` is the frame's ``TrackedFrame`` and ``result`` its people.
        """
        if self.with_tracks != (tracked is not None):
            raise ValueError('a tracking writer needs every frame tracked, and only then')
        index = len(self._frames)
        k = result.intrinsics
        self._frames.append((frame.source, result.image_size, (k.fx, k.fy, k.cx, k.cy),
                             k.source, -1 if frame.stamp_ns is None else frame.stamp_ns))
        self._frame_index.append(np.full(result.num_people, index, dtype=np.int64))
        for key in PER_PERSON:
            self._people[key].append(np.asarray(getattr(result, key), dtype=np.float32))
        if self.with_verts and result.verts is not None:
            self._people['verts'].append(result.verts.astype(np.float32))
        if tracked is not None:
            self._people['track_ids'].append(np.asarray(tracked.ids, dtype=np.int64))
            self._people['track_states'].append(np.asarray(tracked.states, dtype=str))
            self._people['track_ages'].append(np.asarray(tracked.ages, dtype=np.int64))
            self._people['root_velocity'].append(
                np.asarray(tracked.velocities, dtype=np.float32).reshape(-1, 3))

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as arrays, in the layout of the module docstring."""
        out: dict[str, np.ndarray] = {}
        num_j = len(self.joint_names)
        empty = {'center_confs': (0,), 'cam': (0, 3), 'smpl_thetas': (0, 72),
                 'smpl_betas': (0, 10), 'cam_trans': (0, 3), 'joints': (0, num_j, 3),
                 'pj2d_org': (0, num_j, 2)}
        for key in PER_PERSON:
            parts = self._people[key]
            out[key] = (np.concatenate(parts) if parts
                        else np.zeros(empty[key], dtype=np.float32))
        if self.with_verts and self._people['verts']:
            out['verts'] = np.concatenate(self._people['verts'])
        if self.with_tracks:
            empty_tracks = {'track_ids': np.zeros(0, np.int64),
                            'track_states': np.zeros(0, dtype='<U9'),
                            'track_ages': np.zeros(0, np.int64),
                            'root_velocity': np.zeros((0, 3), np.float32)}
            for key in TRACKS:
                parts = self._people[key]
                out[key] = np.concatenate(parts) if parts else empty_tracks[key]
        out['frame_index'] = (np.concatenate(self._frame_index) if self._frame_index
                              else np.zeros(0, dtype=np.int64))
        out['joint_names'] = np.asarray(self.joint_names, dtype=str)
        out['inputs'] = np.asarray([f[0] for f in self._frames], dtype=str)
        out['image_sizes'] = np.asarray([f[1] for f in self._frames], dtype=np.int64
                                        ).reshape(-1, 2)
        out['intrinsics'] = np.asarray([f[2] for f in self._frames], dtype=np.float64
                                       ).reshape(-1, 4)
        out['intrinsics_source'] = np.asarray([f[3] for f in self._frames], dtype=str)
        out['stamps_ns'] = np.asarray([f[4] for f in self._frames], dtype=np.int64)
        return out

    def save(self, path: Path) -> Path:
        """Write the .npz atomically (a crash never leaves a half-written file)."""
        path = Path(path)
        if path.suffix != '.npz':
            path = path.with_suffix('.npz')
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as handle:
                np.savez(handle, **self.arrays())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
