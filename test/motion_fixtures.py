"""Synthetic tracked results files (the `romp-ros infer --track` layout) for export tests.

People walk in front of the camera, posed by the real body model of a prepared models
directory: their joints and vertices are exactly what the model gives for their pose, shape
and translation, so any exported joint can be checked against the file to float precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from romp_ros.core.body.model_files import load_body_model_arrays
from romp_ros.core.body.smpl import BodyModel
from romp_ros.synthetic import poses

K = (500.0, 500.0, 320.0, 240.0)
SIZE = (480, 640)


@dataclass(frozen=True)
class TrackPlan:
    """One walker: its id, the frames it is present in, where it starts, and its shape."""

    track_id: int
    frames: tuple[int, ...]
    start_xz: tuple[float, float]
    velocity_xz: tuple[float, float]
    beta_seed: int


def default_plans(num_frames: int) -> list[TrackPlan]:
    """Two walkers: one all along, one entering later with a two-frame gap."""
    late = tuple(f for f in range(num_frames // 3, num_frames) if f not in
                 (num_frames // 3 + 2, num_frames // 3 + 3))
    return [TrackPlan(3, tuple(range(num_frames)), (-1.0, 4.0), (0.6, 0.2), 0),
            TrackPlan(7, late, (1.2, 6.0), (-0.3, -0.5), 1)]


def write_results(path: Path, models_dir: Path, num_frames: int = 8,
                  plans: list[TrackPlan] | None = None, *, with_verts: bool = True,
                  fps: float = 10.0, with_stamps: bool = True, compressed: bool = False,
                  nan_rows: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """Write a tracked results .npz; returns its arrays (joints in the body frame)."""
    plans = default_plans(num_frames) if plans is None else plans
    body = BodyModel(load_body_model_arrays(models_dir, 'smpl')).eval()
    cam_from_level = poses.camera_from_level(0.05)
    rows = sorted((f, p.track_id, p) for p in plans for f in p.frames)
    out: dict[str, list] = {k: [] for k in ('frame_index', 'track_ids', 'smpl_thetas',
                                            'smpl_betas', 'cam_trans', 'joints', 'verts')}
    for frame, track_id, plan in rows:
        t = frame / fps
        x = plan.start_xz[0] + plan.velocity_xz[0] * t
        z = plan.start_xz[1] + plan.velocity_xz[1] * t
        heading = poses.heading_from_velocity(np.array([plan.velocity_xz[0]]),
                                              np.array([plan.velocity_xz[1]]))
        thetas = np.zeros((1, 72))
        thetas[:, :3] = poses.global_orientation(heading, 0.05, cam_from_level)
        thetas[:, 3:] = poses.body_pose(np.array([2 * np.pi * 0.9 * t + plan.beta_seed]),
                                        np.array([1.0]))
        betas = np.random.default_rng(plan.beta_seed).normal(0, 0.8, (1, 10))
        with torch.inference_mode():
            posed = body(torch.as_tensor(betas, dtype=torch.float32),
                         torch.as_tensor(thetas, dtype=torch.float32))
        joints = posed.joints.numpy()[0]
        pelvis_level = np.array([x, 1.5 - 0.95, z])
        trans = cam_from_level @ pelvis_level - joints[0]
        out['frame_index'].append(frame)
        out['track_ids'].append(track_id)
        out['smpl_thetas'].append(thetas[0])
        out['smpl_betas'].append(betas[0])
        out['cam_trans'].append(trans)
        out['joints'].append(joints)
        out['verts'].append(posed.verts.numpy()[0])
    n = len(rows)
    arrays = {
        'frame_index': np.asarray(out['frame_index'], np.int64).reshape(n),
        'track_ids': np.asarray(out['track_ids'], np.int64).reshape(n),
        'smpl_thetas': np.asarray(out['smpl_thetas'], np.float32).reshape(n, 72),
        'smpl_betas': np.asarray(out['smpl_betas'], np.float32).reshape(n, 10),
        'cam_trans': np.asarray(out['cam_trans'], np.float32).reshape(n, 3),
        'joints': np.asarray(out['joints'], np.float32).reshape(n, body.num_joints, 3),
        'center_confs': np.full(n, 0.9, np.float32),
        'cam': np.zeros((n, 3), np.float32),
        'pj2d_org': np.zeros((n, body.num_joints, 2), np.float32),
        'track_states': np.full(n, 'confirmed', dtype='<U9'),
        'track_ages': np.zeros(n, np.int64),
        'root_velocity': np.zeros((n, 3), np.float32),
        'joint_names': np.asarray(body.joint_names, dtype=str),
        'inputs': np.asarray([f'clip.mp4#{f}' for f in range(num_frames)], dtype=str),
        'image_sizes': np.tile(np.array(SIZE, np.int64), (num_frames, 1)),
        'intrinsics': np.tile(np.array(K, np.float64), (num_frames, 1)),
        'intrinsics_source': np.full(num_frames, 'camera', dtype='<U6'),
        'stamps_ns': (np.arange(num_frames, dtype=np.int64) * int(1e9 / fps) if with_stamps
                      else np.full(num_frames, -1, np.int64)),
    }
    if with_verts:
        arrays['verts'] = np.asarray(out['verts'], np.float32).reshape(n, body.num_vertices, 3)
    for row in nan_rows:
        arrays['smpl_thetas'][row, 5] = np.nan
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def camera_joints(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 24, 3) SMPL joints in the camera frame."""
    return arrays['joints'][:, :24].astype(np.float64) + arrays['cam_trans'][:, None]
