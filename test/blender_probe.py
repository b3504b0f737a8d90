"""Import exported files into Blender (bpy) and report the bones' positions per frame.

Run as a separate process (Blender as a Python module takes over the interpreter)::

    python test/blender_probe.py --fps 10 --glb motion.glb --bvh a.bvh b.bvh --out probe.json

The JSON holds, per imported armature: its bone names, the scene frames of its action and,
for each of those frames, every bone's head in world coordinates (Blender: +Z up, metres).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bpy


def _armatures_after(importer) -> list:
    before = set(bpy.data.objects)
    importer()
    return [o for o in bpy.data.objects if o not in before and o.type == 'ARMATURE']


def _sample(armature) -> dict:
    scene = bpy.context.scene
    action = armature.animation_data.action
    first, last = (int(round(v)) for v in action.frame_range)
    frames = {}
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        frames[frame] = {bone.name: list(armature.matrix_world @ bone.head)
                         for bone in armature.pose.bones}
    return {'name': armature.name, 'bones': [b.name for b in armature.data.bones],
            'frames': frames}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--fps', type=int, required=True)
    parser.add_argument('--glb', type=Path)
    parser.add_argument('--bvh', type=Path, nargs='*', default=[])
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args()
    report: dict = {'glb': [], 'bvh': []}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = args.fps
    if args.glb:
        for armature in _armatures_after(
                lambda: bpy.ops.import_scene.gltf(filepath=str(args.glb))):
            report['glb'].append(_sample(armature))
    for path in args.bvh:
        # Blender's defaults for BVH: forward -Z, up Y, scale 1, first frame 1
        for armature in _armatures_after(
                lambda p=path: bpy.ops.import_anim.bvh(filepath=str(p), frame_start=1,
                                                       update_scene_fps=False)):
            report['bvh'].append(_sample(armature))
    args.out.write_text(json.dumps(report))


if __name__ == '__main__':
    main()
