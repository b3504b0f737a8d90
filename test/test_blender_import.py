"""The exported glTF and BVH files imported by Blender itself (bpy, Blender as a module).

Blender runs in a child process (``test/blender_probe.py``): importing ``bpy`` takes over
the interpreter's state. Checks: armature and bone counts, one Blender frame per exported
frame, every joint's position per frame within 1 cm of the results file, people upright
(+Z up in Blender).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys

from motion_fixtures import camera_joints, write_results
import numpy as np
import pytest

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.export import ExportOptions, export_motion

pytestmark = pytest.mark.slow
PROBE = Path(__file__).with_name('blender_probe.py')
FPS = 10
TOL_M = 0.01


def _require_bpy() -> None:
    if importlib.util.find_spec('bpy') is not None:
        return
    if os.environ.get('CI'):
        pytest.fail('bpy (Blender as a Python module) is missing in CI: scripts/setup.sh '
                    'installs it (pip install --no-deps bpy)')
    pytest.skip('needs bpy, Blender as a Python module (CPython 3.11): pip install --no-deps '
                'bpy==5.0.1 zstandard requests')


def _blender_in_camera_frame(position) -> np.ndarray:
    """Blender world (x, y, z), +Z up -> camera optical frame.

    glTF's (x, y, z) is Blender's (x, -z, y); glTF is (x, -y, -z) of the camera. So the
    camera's (x, y, z) is Blender's (x, -z, y).
    """
    x, y, z = np.asarray(position, dtype=np.float64).T
    return np.stack([x, -z, y], axis=-1)


@pytest.fixture(scope='module')
def probe(tmp_path_factory, models_dir):
    _require_bpy()
    root = tmp_path_factory.mktemp('blender')
    arrays = write_results(root / 'results.npz', models_dir, num_frames=10, fps=FPS)
    glb = export_motion(root / 'results.npz', root / 'motion.glb',
                        ExportOptions('glb', models_dir=models_dir, fps=FPS)).paths[0]
    bvh = export_motion(root / 'results.npz', root / 'motion.bvh',
                        ExportOptions('bvh', fps=FPS)).paths
    result = subprocess.run([sys.executable, str(PROBE), '--fps', str(FPS), '--glb', str(glb),
                             '--bvh', *map(str, bvh), '--out', str(root / 'probe.json')],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return arrays, json.loads((root / 'probe.json').read_text())


def _check_armature(armature, arrays, track_id, first_frame):
    assert sorted(armature['bones']) == sorted(SMPL_JOINT_NAMES)
    rows = np.flatnonzero(arrays['track_ids'] == track_id)
    truth = camera_joints(arrays)[rows]
    for row, frame in zip(range(len(rows)), arrays['frame_index'][rows], strict=True):
        heads = armature['frames'][str(int(frame) + first_frame)]
        got = _blender_in_camera_frame([heads[name] for name in SMPL_JOINT_NAMES])
        np.testing.assert_allclose(got, truth[row], atol=TOL_M)
        # upright: +Z up in Blender, head above pelvis above ankles
        z = {name: heads[name][2] for name in ('head', 'pelvis', 'l_ankle', 'r_ankle')}
        assert z['head'] > z['pelvis'] + 0.3 and z['pelvis'] > max(z['l_ankle'],
                                                                   z['r_ankle']) + 0.5


def test_glb_imports_into_blender_with_the_npz_motion(probe):
    arrays, report = probe
    armatures = {a['name']: a for a in report['glb']}
    assert sorted(armatures) == ['track_3', 'track_7']
    for track_id in (3, 7):
        armature = armatures[f'track_{track_id}']
        frames = sorted(int(f) for f in armature['frames'])
        present = arrays['frame_index'][arrays['track_ids'] == track_id]
        # glTF time t lands on Blender frame t * fps: one Blender frame per input frame
        assert frames[0] <= present.min() and frames[-1] >= present.max()
        _check_armature(armature, arrays, track_id, first_frame=0)


def test_bvh_imports_into_blender_with_the_npz_motion(probe):
    arrays, report = probe
    assert len(report['bvh']) == 2
    for armature, track_id in zip(report['bvh'], (3, 7), strict=True):
        present = arrays['frame_index'][arrays['track_ids'] == track_id]
        # the file starts at the track's first frame; imported at Blender frame 1
        span = int(present.max() - present.min() + 1)
        assert sorted(int(f) for f in armature['frames']) == list(range(1, span + 1))
        _check_armature(armature, arrays, track_id, first_frame=1 - int(present.min()))
