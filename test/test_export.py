"""Motion export: glTF, BVH, OBJ / PLY and JSON read back with independent readers.

Every check compares what a reader recovers from the exported file with the joints and
vertices of the results file (written by ``motion_fixtures`` with the real body model):
glTF through pygltflib and a forward kinematics written here from the glTF spec, BVH through
a parser written here from the BVH format, PLY / OBJ / JSON through their plain layouts.
"""

from __future__ import annotations

import argparse
import json
import logging
import tracemalloc

from motion_fixtures import TrackPlan, camera_joints, write_results
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES, SMPL_PARENTS
from romp_ros.export import ExportOptions, MotionExportError, export_motion

pygltflib = pytest.importorskip('pygltflib')

YUP = np.array([1.0, -1.0, -1.0])
COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
WIDTH = {'SCALAR': 1, 'VEC3': 3, 'VEC4': 4, 'MAT4': 16}


# -- independent readers ------------------------------------------------------------------------

def read_accessor(gltf, blob: bytes, index: int) -> np.ndarray:
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = np.dtype(COMPONENTS[acc.componentType])
    width = WIDTH[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    data = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=start)
    return data.reshape(acc.count, width) if width > 1 else data


def gltf_tracks(path):
    """{track name: (key times, (K, 24, 3) world joint positions, skin info)} by glTF rules."""
    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    anim = {}
    for animation in gltf.animations:
        for channel in animation.channels:
            sampler = animation.samplers[channel.sampler]
            anim[(channel.target.node, channel.target.path)] = (
                read_accessor(gltf, blob, sampler.input),
                read_accessor(gltf, blob, sampler.output), sampler.interpolation)
    out = {}
    for skin in gltf.skins:
        joints = skin.joints
        times = anim[(joints[0], 'translation')][0]
        count = len(times)
        world = np.zeros((count, len(joints), 4, 4))
        parent_of = {c: i for i, n in enumerate(gltf.nodes) for c in (n.children or [])}
        for j, node_index in enumerate(joints):
            node = gltf.nodes[node_index]
            local = np.tile(np.eye(4), (count, 1, 1))
            trans = anim.get((node_index, 'translation'), (None, None))[1]
            local[:, :3, 3] = trans if trans is not None else node.translation
            rot = anim.get((node_index, 'rotation'), (None, None))[1]
            if rot is not None:
                local[:, :3, :3] = Rotation.from_quat(rot).as_matrix()
            parent = parent_of.get(node_index)
            world[:, j] = (world[:, joints.index(parent)] @ local if parent in joints
                           else local)
        names = [gltf.nodes[i].name for i in joints]
        mesh_node = next(n for n in gltf.nodes if n.skin == gltf.skins.index(skin))
        prim = gltf.meshes[mesh_node.mesh].primitives[0]
        skin_data = {
            'ibm': read_accessor(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4)
            .transpose(0, 2, 1),
            'positions': read_accessor(gltf, blob, prim.attributes.POSITION),
            'joints': read_accessor(gltf, blob, prim.attributes.JOINTS_0),
            'weights': read_accessor(gltf, blob, prim.attributes.WEIGHTS_0),
            'faces': read_accessor(gltf, blob, prim.indices).reshape(-1, 3)}
        out[skin.name] = (times, world[:, :, :3, 3], names, world, skin_data)
    return gltf, out


def parse_bvh(path):
    """(joint names, parents, offsets (J, 3), frame time, motion (T, C)) of a BVH file."""
    tokens = path.read_text().split()
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 1  # after HIERARCHY
    while tokens[i] != 'MOTION':
        word = tokens[i]
        if word in ('ROOT', 'JOINT'):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif word == 'End':
            names.append(None)
            parents.append(stack[-1])
            i += 2
        elif word == '{':
            stack.append(len(names) - 1)
            i += 1
        elif word == '}':
            stack.pop()
            i += 1
        elif word == 'OFFSET':
            offsets.append([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif word == 'CHANNELS':
            count = int(tokens[i + 1])
            channels.append((len(names) - 1, tokens[i + 2:i + 2 + count]))
            i += 2 + count
        else:
            raise AssertionError(f'unexpected BVH token {word}')
    frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    motion = np.array(tokens[i + 6:], dtype=np.float64).reshape(frames, -1)
    return names, parents, np.array(offsets), channels, frame_time, motion


def bvh_positions(path):
    """(names of the 24 joints, (T, 24, 3) world positions) by forward kinematics."""
    names, parents, offsets, channels, frame_time, motion = parse_bvh(path)
    count = motion.shape[0]
    world = {}
    column = 0
    chan_of = dict(channels)
    for j in range(len(names)):
        local = np.tile(np.eye(4), (count, 1, 1))
        local[:, :3, 3] = offsets[j]
        if j in chan_of:
            rot = np.tile(np.eye(3), (count, 1, 1))
            for chan in chan_of[j]:
                values = motion[:, column]
                column += 1
                if chan.endswith('position'):
                    local[:, 'XYZ'.index(chan[0]), 3] += values
                else:
                    axis = np.eye(3)['XYZ'.index(chan[0])]
                    rot = rot @ Rotation.from_rotvec(np.radians(values)[:, None] * axis
                                                     ).as_matrix()
            local[:, :3, :3] = rot
        world[j] = world[parents[j]] @ local if parents[j] >= 0 else local
    # in SMPL's joint order (a BVH lists them depth first)
    joints = sorted((j for j, n in enumerate(names) if n is not None),
                    key=lambda j: SMPL_JOINT_NAMES.index(names[j]))
    positions = np.stack([world[j][:, :3, 3] for j in joints], axis=1)
    return [names[j] for j in joints], positions, frame_time, parents


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def results(tmp_path_factory, models_dir):
    path = tmp_path_factory.mktemp('motion') / 'results.npz'
    return path, write_results(path, models_dir, num_frames=10)


# -- glTF ---------------------------------------------------------------------------------------

def test_glb_has_one_armature_per_track_with_the_npz_joints_per_frame(results, models_dir,
                                                                        tmp_path):
    path, arrays = results
    summary = export_motion(path, tmp_path / 'motion.glb',
                            ExportOptions('glb', models_dir=models_dir, fps=10.0))
    assert summary.tracks == (3, 7) and summary.paths == (tmp_path / 'motion.glb',)
    gltf, tracks = gltf_tracks(tmp_path / 'motion.glb')
    assert sorted(tracks) == ['track_3', 'track_7']
    world_cam = camera_joints(arrays) * YUP
    for track_id in (3, 7):
        times, joints, names, _, _ = tracks[f'track_{track_id}']
        assert names == list(SMPL_JOINT_NAMES)
        rows = np.flatnonzero(arrays['track_ids'] == track_id)
        # keys at exactly the frames the track was present (frame / fps)
        np.testing.assert_allclose(times, arrays['frame_index'][rows] / 10.0, atol=1e-6)
        np.testing.assert_allclose(joints, world_cam[rows], atol=1e-4)
    # upright: the head above the pelvis above the ankles (+y up in glTF)
    _, joints, *_ = tracks['track_3']
    assert np.all(joints[:, 15, 1] > joints[:, 0, 1] + 0.3)
    assert np.all(joints[:, 0, 1] > joints[:, 7, 1] + 0.5)
    # the camera node at the origin, with the image's vertical field of view
    camera = gltf.cameras[0].perspective
    assert camera.yfov == pytest.approx(2 * np.arctan(240 / 500.0))


def test_glb_skin_follows_the_body_model(results, models_dir, tmp_path):
    """Skinning the exported mesh reproduces the results' vertices (minus pose correctives)."""
    path, arrays = results
    export_motion(path, tmp_path / 'm.glb', ExportOptions('glb', models_dir=models_dir))
    _, tracks = gltf_tracks(tmp_path / 'm.glb')
    _, _, _, world, skin = tracks['track_3']
    rows = np.flatnonzero(arrays['track_ids'] == 3)
    assert np.allclose(skin['weights'].sum(1), 1.0, atol=1e-5)
    for key in (0, len(rows) - 1):
        mats = world[key] @ skin['ibm']  # (24, 4, 4)
        homo = np.concatenate([skin['positions'], np.ones((len(skin['positions']), 1))], 1)
        per_joint = np.einsum('jab,vb->vja', mats, homo)[..., :3]  # (V, 24, 3)
        picked = np.take_along_axis(per_joint, skin['joints'][:, :, None].astype(int), axis=1)
        skinned = (picked * skin['weights'][:, :, None]).sum(1)
        truth = (arrays['verts'][rows[key]] + arrays['cam_trans'][rows[key]]) * YUP
        error = np.linalg.norm(skinned - truth, axis=1)
        assert np.median(error) < 0.01 and error.max() < 0.06


def test_glb_hides_a_track_while_it_is_absent(results, models_dir, tmp_path):
    path, arrays = results
    export_motion(path, tmp_path / 'm.glb', ExportOptions('glb', models_dir=models_dir,
                                                          fps=10.0))
    gltf = pygltflib.GLTF2().load(str(tmp_path / 'm.glb'))
    blob = gltf.binary_blob()
    root = next(i for i, n in enumerate(gltf.nodes) if n.name == 'track_7')
    channel = next(c for c in gltf.animations[0].channels
                   if c.target.node == root and c.target.path == 'scale')
    sampler = gltf.animations[0].samplers[channel.sampler]
    assert sampler.interpolation == 'STEP'
    times = read_accessor(gltf, blob, sampler.input)
    scale = read_accessor(gltf, blob, sampler.output)[:, 0]
    frames = np.sort(arrays['frame_index'][arrays['track_ids'] == 7])

    def visible(frame):
        return scale[np.searchsorted(times, frame / 10.0 + 1e-6) - 1] == 1.0

    assert [visible(f) for f in range(10)] == [f in frames for f in range(10)]


# -- BVH ----------------------------------------------------------------------------------------

def test_bvh_per_track_reproduces_the_joints_and_fills_gaps(results, tmp_path):
    path, arrays = results
    summary = export_motion(path, tmp_path / 'walk.bvh', ExportOptions('bvh', fps=10.0))
    assert [p.name for p in summary.paths] == ['walk_track3.bvh', 'walk_track7.bvh']
    world_cam = camera_joints(arrays) * YUP
    for track_id, file in zip((3, 7), summary.paths, strict=True):
        names, positions, frame_time, _ = bvh_positions(file)
        assert names == list(SMPL_JOINT_NAMES) and frame_time == pytest.approx(0.1)
        rows = np.flatnonzero(arrays['track_ids'] == track_id)
        frames = arrays['frame_index'][rows]
        assert positions.shape[0] == frames[-1] - frames[0] + 1  # first to last frame
        np.testing.assert_allclose(positions[frames - frames[0]], world_cam[rows], atol=2e-4)
    # track 7 misses two frames: its pelvis moves on a straight line through the gap
    _, positions, _, _ = bvh_positions(summary.paths[1])
    frames = arrays['frame_index'][arrays['track_ids'] == 7] - 3
    gap = np.setdiff1d(np.arange(frames[-1] + 1), frames)
    assert gap.size == 2
    before, after = positions[gap[0] - 1, 0], positions[gap[-1] + 1, 0]
    np.testing.assert_allclose(positions[gap[0], 0], before + (after - before) / 3, atol=1e-5)


def test_bvh_hierarchy_is_smpl_and_has_end_sites(results, tmp_path):
    path, _ = results
    [file, _] = export_motion(path, tmp_path / 'a.bvh', ExportOptions('bvh')).paths
    names, parents, offsets, channels, _, motion = parse_bvh(file)
    joints = [n for n in names if n is not None]
    assert sorted(joints) == sorted(SMPL_JOINT_NAMES)
    for j, name in enumerate(names):
        if name is not None and parents[j] >= 0:
            assert names[parents[j]] == SMPL_JOINT_NAMES[SMPL_PARENTS[
                SMPL_JOINT_NAMES.index(name)]]
    assert names.count(None) == 5  # head, hands, feet end in End Sites
    assert motion.shape[1] == 6 + 3 * 23


# -- meshes and JSON ----------------------------------------------------------------------------

def test_ply_and_obj_meshes_per_frame_match_the_vertices(results, models_dir, tmp_path):
    from romp_ros.export.mesh_export import read_ply_vertices

    path, arrays = results
    folders = export_motion(path, tmp_path / 'mesh.ply',
                            ExportOptions('ply', models_dir=models_dir, track=7)).paths
    assert [f.name for f in folders] == ['mesh_track7']
    rows = np.flatnonzero(arrays['track_ids'] == 7)
    files = sorted(folders[0].glob('*.ply'))
    assert [f.name for f in files] == [f'frame_{f:06d}.ply' for f in arrays['frame_index'][rows]]
    truth = (arrays['verts'][rows[0]] + arrays['cam_trans'][rows[0]]) * YUP
    np.testing.assert_allclose(read_ply_vertices(files[0]), truth, atol=1e-5)

    export_motion(path, tmp_path / 'cam.obj', ExportOptions('obj', models_dir=models_dir,
                                                            track=3, axes='camera'))
    lines = (tmp_path / 'cam_track3' / 'frame_000004.obj').read_text().splitlines()
    verts = np.array([line.split()[1:] for line in lines if line.startswith('v ')], float)
    faces = np.array([line.split()[1:] for line in lines if line.startswith('f ')], int)
    row = np.flatnonzero((arrays['track_ids'] == 3) & (arrays['frame_index'] == 4))[0]
    np.testing.assert_allclose(verts, arrays['verts'][row] + arrays['cam_trans'][row],
                               atol=2e-6)
    assert faces.min() == 1 and faces.max() == len(verts)


def test_meshes_without_stored_vertices_are_posed_with_the_body_model(models_dir, tmp_path):
    from romp_ros.export.mesh_export import read_ply_vertices

    full = write_results(tmp_path / 'full.npz', models_dir, num_frames=3)
    write_results(tmp_path / 'lean.npz', models_dir, num_frames=3, with_verts=False)
    [folder] = export_motion(tmp_path / 'lean.npz', tmp_path / 'x.ply',
                             ExportOptions('ply', models_dir=models_dir, track=3)).paths
    verts = read_ply_vertices(folder / 'frame_000002.ply')
    row = np.flatnonzero((full['track_ids'] == 3) & (full['frame_index'] == 2))[0]
    np.testing.assert_allclose(verts, (full['verts'][row] + full['cam_trans'][row]) * YUP,
                               atol=1e-4)


def test_json_lists_every_frame_with_track_ids_stamps_and_camera_joints(results, tmp_path):
    path, arrays = results
    [out] = export_motion(path, tmp_path / 'all.json', ExportOptions('json')).paths
    doc = json.loads(out.read_text())
    assert doc['joint_names'] == list(SMPL_JOINT_NAMES) and doc['fps'] == pytest.approx(10.0)
    assert [f['index'] for f in doc['frames']] == list(range(10))
    assert [f['stamp_ns'] for f in doc['frames']] == list(arrays['stamps_ns'])
    people = [(f['index'], p) for f in doc['frames'] for p in f['people']]
    assert len(people) == len(arrays['frame_index'])
    for row, (frame, person) in enumerate(people):
        assert frame == arrays['frame_index'][row]
        assert person['track_id'] == arrays['track_ids'][row]
        np.testing.assert_allclose(person['joints'], camera_joints(arrays)[row], atol=2e-6)
        np.testing.assert_allclose(person['smpl_thetas'], arrays['smpl_thetas'][row],
                                   atol=1e-6)


# -- bad input and edge cases -------------------------------------------------------------------

def test_zero_people_gives_valid_empty_outputs(models_dir, tmp_path):
    write_results(tmp_path / 'empty.npz', models_dir, num_frames=4, plans=[])
    summary = export_motion(tmp_path / 'empty.npz', tmp_path / 'e.glb',
                            ExportOptions('glb', models_dir=models_dir))
    gltf = pygltflib.GLTF2().load(str(summary.paths[0]))
    assert not gltf.skins and not gltf.animations and gltf.nodes[0].name == 'camera'
    assert export_motion(tmp_path / 'empty.npz', tmp_path / 'e.bvh',
                         ExportOptions('bvh')).paths == ()
    [out] = export_motion(tmp_path / 'empty.npz', tmp_path / 'e.json',
                          ExportOptions('json')).paths
    assert [f['people'] for f in json.loads(out.read_text())['frames']] == [[]] * 4


def test_nan_people_are_left_out_and_counted(models_dir, tmp_path, caplog):
    arrays = write_results(tmp_path / 'nan.npz', models_dir, num_frames=6, nan_rows=(2,))
    bad_track = arrays['track_ids'][2]
    with caplog.at_level(logging.WARNING):
        summary = export_motion(tmp_path / 'nan.npz', tmp_path / 'n.glb',
                                ExportOptions('glb', models_dir=models_dir, fps=10.0))
    assert summary.skipped_people == 1 and 'NaN' in caplog.text
    _, tracks = gltf_tracks(summary.paths[0])
    times = tracks[f'track_{bad_track}'][0]
    rows = np.flatnonzero(arrays['track_ids'] == bad_track)
    assert len(times) == len(rows) - 1
    assert arrays['frame_index'][2] / 10.0 not in np.round(times, 6)


def test_single_frame_sequence(models_dir, tmp_path):
    arrays = write_results(tmp_path / 'one.npz', models_dir, num_frames=1,
                           plans=[TrackPlan(1, (0,), (0.0, 3.0), (0.0, 0.0), 2)])
    for fmt in ('glb', 'bvh'):
        summary = export_motion(tmp_path / 'one.npz', tmp_path / f'o.{fmt}',
                                ExportOptions(fmt, models_dir=models_dir))
        assert summary.tracks == (1,)
    _, tracks = gltf_tracks(tmp_path / 'o.glb')
    np.testing.assert_allclose(tracks['track_1'][1], camera_joints(arrays) * YUP, atol=1e-4)
    _, positions, _, _ = bvh_positions(tmp_path / 'o_track1.bvh')
    np.testing.assert_allclose(positions, camera_joints(arrays) * YUP, atol=2e-4)


def test_compressed_results_are_read_the_same(models_dir, tmp_path):
    arrays = write_results(tmp_path / 'z.npz', models_dir, num_frames=4, compressed=True)
    [out] = export_motion(tmp_path / 'z.npz', tmp_path / 'z.bvh',
                          ExportOptions('bvh', track=3)).paths
    _, positions, _, _ = bvh_positions(out)
    rows = np.flatnonzero(arrays['track_ids'] == 3)
    np.testing.assert_allclose(positions, camera_joints(arrays)[rows] * YUP, atol=2e-4)


@pytest.mark.parametrize('fmt, options, message', [
    ('glb', {}, '--models-dir'),
    ('bvh', {'track': 99}, 'track 99 is not in'),
    ('fbx', {}, 'unknown format'),
    ('bvh', {'fps': -1.0}, 'positive'),
])
def test_bad_options_get_one_clear_error(results, tmp_path, fmt, options, message):
    path, _ = results
    with pytest.raises(MotionExportError, match=message):
        export_motion(path, tmp_path / 'x', ExportOptions(fmt, **options))


def test_untracked_and_foreign_files_get_one_clear_error(results, models_dir, tmp_path):
    path, arrays = results
    untracked = {k: v for k, v in arrays.items() if k not in ('track_ids', 'track_states')}
    np.savez(tmp_path / 'untracked.npz', **untracked)
    with pytest.raises(MotionExportError, match='infer --track'):
        export_motion(tmp_path / 'untracked.npz', tmp_path / 'u.glb',
                      ExportOptions('glb', models_dir=models_dir))
    # per-frame formats need no tracks
    [folder] = export_motion(tmp_path / 'untracked.npz', tmp_path / 'u.ply',
                             ExportOptions('ply', models_dir=models_dir)).paths
    assert (folder / 'frame_000000_person0.ply').is_file()
    np.savez(tmp_path / 'other.npz', weights=np.zeros(3))
    with pytest.raises(MotionExportError, match='not a `romp-ros infer` results file'):
        export_motion(tmp_path / 'other.npz', tmp_path / 'o.bvh', ExportOptions('bvh'))
    (tmp_path / 'text.npz').write_text('hello')
    with pytest.raises(MotionExportError, match='not a readable .npz'):
        export_motion(tmp_path / 'text.npz', tmp_path / 'o.bvh', ExportOptions('bvh'))
    with pytest.raises(FileNotFoundError):
        export_motion(tmp_path / 'missing.npz', tmp_path / 'o.bvh', ExportOptions('bvh'))


def _tiled_results(path, arrays, track_id, repeat, compressed=False):
    """The track's rows repeated ``repeat`` times as one long sequence (one row per frame)."""
    rows = np.flatnonzero(arrays['track_ids'] == track_id)
    big = {k: np.tile(arrays[k][rows], (repeat,) + (1,) * (arrays[k].ndim - 1))
           for k in ('smpl_thetas', 'smpl_betas', 'cam_trans', 'joints', 'center_confs')}
    frames = len(rows) * repeat
    big.update(frame_index=np.arange(frames), track_ids=np.full(frames, track_id),
               joint_names=arrays['joint_names'],
               inputs=np.asarray([f'f{i}' for i in range(frames)]),
               image_sizes=np.tile(arrays['image_sizes'][:1], (frames, 1)),
               intrinsics=np.tile(arrays['intrinsics'][:1], (frames, 1)),
               stamps_ns=np.arange(frames) * 100_000_000)
    (np.savez_compressed if compressed else np.savez)(path, **big)
    return sum(big[k].nbytes for k in ('smpl_thetas', 'smpl_betas', 'cam_trans', 'joints'))


@pytest.mark.slow
def test_huge_frame_counts_are_streamed(results, models_dir, tmp_path):
    """5 000 frames need hardly more memory than 500: the file is read in blocks."""
    _, arrays = results
    rows = np.flatnonzero(arrays['track_ids'] == 3)
    _tiled_results(tmp_path / 'small.npz', arrays, 3, 50)
    person_bytes = _tiled_results(tmp_path / 'big.npz', arrays, 3, 500)
    for fmt in ('glb', 'bvh', 'json'):
        peaks = []
        for name in ('small', 'big'):
            tracemalloc.start()
            summary = export_motion(tmp_path / f'{name}.npz', tmp_path / f'{name}.{fmt}',
                                    ExportOptions(fmt, models_dir=models_dir, block_rows=500))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        assert summary.frames == len(rows) * 500
        # 10x the frames: the peak grows by the per-frame tables and indices only (about
        # 250 bytes per frame), not by the poses and joints (1.2 kB per frame)
        assert peaks[1] - peaks[0] < person_bytes / 4, (fmt, peaks, person_bytes)
    _, positions, _, _ = bvh_positions(tmp_path / 'big_track3.bvh')
    assert positions.shape[0] == summary.frames
    np.testing.assert_allclose(positions[-1], camera_joints(arrays)[rows[-1]] * YUP, atol=2e-4)


# -- command line --------------------------------------------------------------------------------

def _cli(*argv):
    from romp_ros.cli import export_motion as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['export-motion', *map(str, argv)])
    return args.func(args)


def test_cli_exports_one_track(results, tmp_path):
    path, arrays = results
    assert _cli(path, '--format', 'bvh', '--out', tmp_path / 'cli.bvh', '--track', '7',
                '--fps', '25') == 0
    names, positions, frame_time, _ = bvh_positions(tmp_path / 'cli_track7.bvh')
    assert frame_time == pytest.approx(0.04) and not (tmp_path / 'cli_track3.bvh').exists()
    with pytest.raises(MotionExportError, match='--models-dir'):
        _cli(path, '--format', 'glb', '--out', tmp_path / 'x.glb')


@pytest.mark.slow
def test_export_reads_what_infer_track_writes(tmp_path, models_dir, seeded_checkpoint):
    """The real `romp-ros infer --track` output, exported: the contract between the two."""
    import subprocess
    import sys

    import cv2
    import skimage.data

    video = tmp_path / 'still.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10, (512, 512))
    for _ in range(4):
        writer.write(skimage.data.astronaut()[:, :, ::-1])
    writer.release()
    out = tmp_path / 'tracked.npz'
    result = subprocess.run(
        [sys.executable, '-m', 'romp_ros.cli', '--quiet', 'infer', str(video), '--models-dir',
         str(models_dir), '--checkpoint', str(seeded_checkpoint('romp', 'hrnet32')),
         '--device', 'cpu', '--track', '--track-high-conf', '0.2', '--track-new-conf', '0.2',
         '--track-low-conf', '0.1', '--track-min-hits', '1', '--out', str(out)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    data = dict(np.load(out))
    assert data['track_ids'].size > 0
    summary = export_motion(out, tmp_path / 'v.bvh', ExportOptions('bvh'))
    track = summary.tracks[0]
    _, positions, _, _ = bvh_positions(tmp_path / f'v_track{track}.bvh')
    rows = np.flatnonzero(data['track_ids'] == track)
    frames = data['frame_index'][rows]
    np.testing.assert_allclose(positions[frames - frames[0]], camera_joints(data)[rows] * YUP,
                               atol=5e-3)
    glb = export_motion(out, tmp_path / 'v.glb', ExportOptions('glb', models_dir=models_dir))
    _, tracks = gltf_tracks(glb.paths[0])
    np.testing.assert_allclose(tracks[f'track_{track}'][1], camera_joints(data)[rows] * YUP,
                               atol=5e-3)


def test_cli_format_choices_agree_with_the_library():
    from romp_ros.cli.export_motion import EXPORT_FORMATS
    from romp_ros.export.export_motion import FORMATS
    assert EXPORT_FORMATS == FORMATS
