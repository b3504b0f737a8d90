"""Tracks -> one glTF 2.0 binary (``.glb``): an armature and a skinned body per track.

Per track ``<id>``:

* a node ``track_<id>`` (the armature's parent) whose scale is 1 while the track is present
  and 0 otherwise (STEP keys): a person who left the view is not left standing;
* 24 joint nodes named after the SMPL joints (``pelvis``, ``l_hip``, ...) in SMPL's
  hierarchy; the rest pose is the track's body at rest (T-pose, y up);
* a skinned mesh ``track_<id>_body`` (SMPL topology, 4 joint influences per vertex);
* animation keys at the frames the track was present: the pelvis's translation and rotation,
  every other joint's rotation (linear; quaternions kept sign-continuous).

The scene is the camera's view in glTF's axes (+y up, -z forward, metres): a camera-frame
point (x, y, z) is (x, -y, -z). A node ``camera`` at the origin holds the camera's vertical
field of view. All tracks share one animation, ``romp_motion``; a key's time is its frame's
time from the first frame of the file.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import NUM_SMPL_JOINTS
from romp_ros.export.body_skin import BodyModels, RestBody, top_influences, vertex_normals
from romp_ros.export.glb_layout import (
    ARRAY_BUFFER,
    ELEMENT_ARRAY_BUFFER,
    BinLayout,
    write_glb_file,
)
from romp_ros.export.motion_source import MotionSource
from romp_ros.export.skeleton import (
    JOINT_NAMES,
    children,
    continuous_quaternions,
    local_rotations,
    rest_offsets,
    root_rotation_yup,
    to_yup,
)
from romp_ros.export.track_summary import TrackSummary

LOG = logging.getLogger(__name__)
GENERATOR = 'romp_ros export-motion'
ANIMATION_NAME = 'romp_motion'
BONE_MISMATCH_WARN_M = 0.01
CAMERA_ZNEAR_M = 0.05


def write_glb(source: MotionSource, tracks: list[TrackSummary], models: BodyModels,
              out: Path, times: np.ndarray) -> Path:
    """Write ``tracks`` of ``source`` to ``out`` (.glb); returns the path.

    Args:
        source: the results file.
        tracks: the tracks to export, from :func:`summarise_tracks`.
        models: the prepared body models (skin and rest shape).
        out: the output file.
        times: (F,) seconds of each frame of the file.
    """
    layout = BinLayout()
    nodes: list[dict] = []
    scene_nodes: list[int] = []
    document: dict = {'asset': {'version': '2.0', 'generator': GENERATOR}, 'scene': 0}
    if source.num_frames:
        nodes.append({'name': 'camera', 'camera': 0})
        scene_nodes.append(0)
        document['cameras'] = [_camera(source)]
    shared: dict[str, tuple[int, int, int]] = {}
    meshes, skins, channels, samplers = [], [], [], []
    dynamic = []  # (translation accessor, [rotation accessors]) per track
    for track in tracks:
        rest = models.rest_body(track.betas)
        _check_bones(track, rest)
        if rest.kind not in shared:
            arrays = models.arrays(rest.kind)
            joints4, weights4 = top_influences(arrays.lbs_weights)
            index_type = np.uint16 if arrays.num_vertices < 2 ** 16 else np.uint32
            shared[rest.kind] = (
                layout.add(arrays.faces.astype(index_type).reshape(-1), kind='SCALAR',
                           target=ELEMENT_ARRAY_BUFFER),
                layout.add(joints4, kind='VEC4', target=ARRAY_BUFFER),
                layout.add(weights4, kind='VEC4', target=ARRAY_BUFFER))
        indices, joints_acc, weights_acc = shared[rest.kind]
        faces = models.arrays(rest.kind).faces
        position = layout.add(rest.verts.astype(np.float32), kind='VEC3', target=ARRAY_BUFFER,
                              bounds=True)
        normal = layout.add(vertex_normals(rest.verts, faces), kind='VEC3', target=ARRAY_BUFFER)
        meshes.append({'name': f'track_{track.track_id}_body', 'primitives': [{
            'attributes': {'POSITION': position, 'NORMAL': normal, 'JOINTS_0': joints_acc,
                           'WEIGHTS_0': weights_acc},
            'indices': indices, 'mode': 4}]})
        root, joint_nodes = _add_armature(nodes, track, rest)
        scene_nodes.append(root)
        nodes.append({'name': f'track_{track.track_id}_body', 'mesh': len(meshes) - 1,
                      'skin': len(skins)})
        nodes[root]['children'].append(len(nodes) - 1)
        skins.append({'name': f'track_{track.track_id}', 'joints': joint_nodes,
                      'skeleton': joint_nodes[0],
                      'inverseBindMatrices': layout.add(_inverse_binds(rest.joints),
                                                        kind='MAT4')})
        key_times = times[track.frames].astype(np.float32)
        time_acc = layout.add(key_times, kind='SCALAR', bounds=True)
        translation = layout.add(None, kind='VEC3', count=track.num_frames)
        rotations = [layout.add(None, kind='VEC4', count=track.num_frames)
                     for _ in range(NUM_SMPL_JOINTS)]
        dynamic.append((translation, rotations))
        for path, node, output in [('translation', joint_nodes[0], translation)] + [
                ('rotation', joint_nodes[j], rotations[j]) for j in range(NUM_SMPL_JOINTS)]:
            samplers.append({'input': time_acc, 'output': output, 'interpolation': 'LINEAR'})
            channels.append({'sampler': len(samplers) - 1,
                             'target': {'node': node, 'path': path}})
        vis_times, vis_scale = _visibility_keys(track.frames, times)
        samplers.append({'input': layout.add(vis_times, kind='SCALAR', bounds=True),
                         'output': layout.add(vis_scale, kind='VEC3'), 'interpolation': 'STEP'})
        channels.append({'sampler': len(samplers) - 1, 'target': {'node': root,
                                                                  'path': 'scale'}})
    document['scenes'] = [{'name': 'romp_ros', **({'nodes': scene_nodes} if scene_nodes
                                                  else {})}]
    for key, value in (('nodes', nodes), ('meshes', meshes), ('skins', skins)):
        if value:
            document[key] = value
    if channels:
        document['animations'] = [{'name': ANIMATION_NAME, 'channels': channels,
                                   'samplers': samplers}]
    binary = write_glb_file(out, document, layout)
    if binary is not None:
        _fill_animation(source, tracks, layout, dynamic, binary)
        binary.flush()
        del binary
    LOG.info('glTF: %d track(s) -> %s', len(tracks), out)
    return out


def _camera(source: MotionSource) -> dict:
    height, width = (int(v) for v in source.image_sizes[0])
    fx, fy = source.intrinsics[0, :2]
    yfov = 2.0 * math.atan(height / (2.0 * fy))
    aspect = (width / fx) / (height / fy)
    return {'type': 'perspective', 'name': 'camera',
            'perspective': {'yfov': yfov, 'aspectRatio': aspect, 'znear': CAMERA_ZNEAR_M}}


def _check_bones(track: TrackSummary, rest: RestBody) -> None:
    """Warn when the body model's bones differ from the bones the results imply."""
    model = rest_offsets(rest.joints)[1:]
    gap = float(np.abs(np.linalg.norm(model, axis=1)
                       - np.linalg.norm(track.offsets[1:], axis=1)).max())
    if gap > BONE_MISMATCH_WARN_M:
        LOG.warning("track %d: the body model's bones differ by up to %.1f cm from those of "
                    'the results; were they made with another models directory?',
                    track.track_id, 100 * gap)


def _add_armature(nodes: list[dict], track: TrackSummary, rest: RestBody) -> tuple[int, list]:
    """Append the track's root and joint nodes; returns (root index, joint node indices)."""
    root = len(nodes)
    nodes.append({'name': f'track_{track.track_id}', 'children': [],
                  'extras': {'track_id': int(track.track_id),
                             'first_frame': int(track.frames[0]) if track.num_frames else -1}})
    first = len(nodes)
    offsets = rest_offsets(rest.joints)
    for joint in range(NUM_SMPL_JOINTS):
        node = {'name': JOINT_NAMES[joint],
                'translation': [float(v) for v in offsets[joint]]}
        kids = children(joint)
        if kids:
            node['children'] = [first + k for k in kids]
        nodes.append(node)
    nodes[root]['children'].append(first)
    return root, list(range(first, first + NUM_SMPL_JOINTS))


def _inverse_binds(rest_joints: np.ndarray) -> np.ndarray:
    """(24, 16) column-major inverse bind matrices: a translation by -joint (no rotation)."""
    matrices = np.tile(np.eye(4), (NUM_SMPL_JOINTS, 1, 1))
    matrices[:, :3, 3] = -rest_joints
    return matrices.transpose(0, 2, 1).reshape(NUM_SMPL_JOINTS, 16).astype(np.float32)


def _visibility_keys(frames: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """STEP keys of the root's scale: 1 from each run of present frames, 0 after it."""
    key_t, key_s = [], []
    if frames.size and frames[0] > 0:
        key_t.append(times[0])
        key_s.append(0.0)
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.concatenate([frames[:1], frames[breaks + 1]])
    ends = np.concatenate([frames[breaks], frames[-1:]])
    for start, end in zip(starts, ends, strict=True):
        key_t.append(times[start])
        key_s.append(1.0)
        if end + 1 < times.shape[0]:
            key_t.append(times[end + 1])
            key_s.append(0.0)
    scale = np.repeat(np.asarray(key_s, np.float32)[:, None], 3, axis=1)
    return np.asarray(key_t, np.float32), scale


def _fill_animation(source: MotionSource, tracks: list[TrackSummary], layout: BinLayout,
                    dynamic: list, binary: np.memmap) -> None:
    """Second pass: write every key's translation and rotations into the binary chunk."""
    slot_of = {t.track_id: s for s, t in enumerate(tracks)}
    # float32 element offsets of each track's translation and joint rotations
    trans_base = np.array([layout.offset_of(t) // 4 for t, _ in dynamic], np.int64)
    rot_base = np.array([[layout.offset_of(a) // 4 for a in rots] for _, rots in dynamic],
                        np.int64).reshape(len(dynamic), NUM_SMPL_JOINTS)
    floats = binary[: binary.shape[0] // 4 * 4].view(np.float32)
    keys_done = np.zeros(len(tracks), np.int64)
    last_quat: dict[int, np.ndarray] = {}
    for block in source.blocks(('smpl_thetas', 'joints', 'cam_trans')):
        slots = np.array([slot_of.get(int(t), -1) for t in block.track_ids], np.int64)
        for slot in np.unique(slots[slots >= 0]):
            mine = slots == slot
            thetas = block.arrays['smpl_thetas'][mine]
            local = local_rotations(thetas)  # (R, 24, 3, 3)
            local[:, 0] = root_rotation_yup(local)
            count = local.shape[0]
            quats = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_quat().reshape(
                count, NUM_SMPL_JOINTS, 4)  # x, y, z, w: glTF's order
            quats = continuous_quaternions(quats, last_quat.get(int(slot)))
            last_quat[int(slot)] = quats[-1]
            pelvis = block.arrays['joints'][mine][:, 0] + block.arrays['cam_trans'][mine]
            rank = keys_done[slot] + np.arange(count)  # (R,) key index within the track
            index = trans_base[slot] + rank[:, None] * 3 + np.arange(3)  # (R, 3)
            floats[index] = to_yup(pelvis.astype(np.float64)).astype(np.float32)
            index = (rot_base[slot][None, :, None] + rank[:, None, None] * 4
                     + np.arange(4)[None, None, :])  # (R, 24, 4)
            floats[index] = quats.astype(np.float32)
            keys_done[slot] += count
