"""Picture of training augmentation: docs/images/augment_examples.png.

Run: ``python bench/augment_examples.py [--output PATH]``. Two synthetic people (the synthetic
SMPL-format body, flat-shaded) in front of a textured background go through
``romp_ros.data.augment.augment`` with eight seeds; each panel shows the network input with the
labelled 2D keypoints (green: SMPL joints, labels inside the input) and the SMPL joints
re-projected from the augmented 3D labels with the augmented camera (red circles): they
coincide when 3D, camera and 2D stay consistent.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
import tempfile

import cv2
import numpy as np
import torch

from romp_ros.core.body.prepare import prepare_models
from romp_ros.core.body.smpl import BodyModel
from romp_ros.data.augment import AugmentConfig, augment
from romp_ros.data.dataset_format import CameraLabel, FrameLabel, PersonLabel
from romp_ros.data.joint_sets import TRAINING_71
from romp_ros.synthetic.body_model import write_synthetic_smpl_files

LOG = logging.getLogger('bench.augment_examples')
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / 'docs' / 'images' / 'augment_examples.png'
WIDTH, HEIGHT = 640, 400
K = np.array([[520.0, 0.0, 330.0], [0.0, 520.0, 190.0], [0.0, 0.0, 1.0]])


def _background(rng: np.random.Generator) -> np.ndarray:
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.stack([90 + 60 * np.sin(u / 37.0), 110 + 40 * np.cos(v / 23.0),
                      140 + 30 * np.sin((u + v) / 51.0)], axis=2)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _render(image: np.ndarray, verts: np.ndarray, faces: np.ndarray,
            colour: np.ndarray) -> None:
    """Flat-shaded painter's algorithm (far faces first)."""
    tri = verts[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    shade = 0.35 + 0.65 * np.abs(normal @ np.array([0.3, -0.4, -0.87]))
    uvw = tri @ K.T
    pixels = np.round(uvw[..., :2] / uvw[..., 2:] * 16).astype(np.int32)
    for f in np.argsort(-tri[:, :, 2].mean(1)):
        cv2.fillConvexPoly(image, pixels[f], (colour * shade[f]).tolist(), shift=4)


def _scene(body: BodyModel, rng: np.random.Generator) -> tuple[np.ndarray, FrameLabel]:
    image = _background(rng)
    people = []
    placements = [([-0.7, 0.1, 4.5], 0.4), ([0.8, 0.2, 5.5], -0.5)]
    for (translation, yaw), colour in zip(placements, ([200, 150, 90], [90, 160, 210]),
                                         strict=True):
        pose = rng.normal(0, 0.15, 72)
        # the body's y up is the camera's y down; then turn it by yaw about its vertical
        rot = cv2.Rodrigues(np.array([np.pi, 0.0, 0.0]))[0] @ cv2.Rodrigues(
            np.array([0.0, yaw, 0.0]))[0]
        pose[:3] = cv2.Rodrigues(rot)[0][:, 0]
        pose[50:53] = [0.0, 0.0, -1.1]
        out = body(torch.zeros(1, 10), torch.tensor(pose[None], dtype=torch.float32))
        verts = out.verts[0].numpy().astype(np.float64) + translation
        joints = out.joints[0].numpy().astype(np.float64) + translation
        _render(image, verts, body.faces.numpy(), np.array(colour, float))
        uvw = joints @ K.T
        keypoints = np.concatenate([uvw[:, :2] / uvw[:, 2:], np.full((71, 1), 2.0)], 1)
        people.append(PersonLabel(track_id=len(people), keypoints_2d=keypoints,
                                  joints_3d=joints, smpl_pose=pose, smpl_shape=np.zeros(10),
                                  translation=np.array(translation)))
    camera = CameraLabel(WIDTH, HEIGHT, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    return image, FrameLabel(0, 'scene.png', tuple(people), camera=camera)


def _panel(sample, size: int) -> np.ndarray:
    image = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
    k_mat = sample.camera_k.astype(np.float64)
    for person in range(sample.num_people):
        points = sample.joints_3d[person, :24].astype(np.float64) @ k_mat.T
        reproj = points[:, :2] / points[:, 2:]
        for j in range(24):
            u, v, weight = sample.keypoints_2d[person, j]
            if weight > 0:
                centre = (int(round((u + 1) / 2 * size)), int(round((v + 1) / 2 * size)))
                cv2.circle(image, centre, 2, (0, 255, 0), -1)
            cv2.circle(image, (int(round(reproj[j, 0])), int(round(reproj[j, 1]))), 4,
                       (0, 0, 255), 1)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument('--input-size', type=int, default=256)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    with tempfile.TemporaryDirectory() as tmp:
        files = write_synthetic_smpl_files(Path(tmp) / 'src', seed=0)
        prepare_models(smpl=files.smpl_pkl, extra=files.source_dir,
                       models_dir=Path(tmp) / 'models', progress=False)
        body = BodyModel.from_models_dir(Path(tmp) / 'models')
    image, frame = _scene(body, np.random.default_rng(0))
    config = AugmentConfig(input_size=args.input_size, rotation_prob=0.6,
                           occlusion_prob=0.6, blur_prob=0.2)
    panels = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                         (args.input_size, args.input_size * HEIGHT // WIDTH))]
    panels[0] = cv2.copyMakeBorder(panels[0], 0, args.input_size - panels[0].shape[0], 0, 0,
                                   cv2.BORDER_CONSTANT, value=(255, 255, 255))
    for seed in range(7):
        sample = augment(image, frame, TRAINING_71.mapping(), config,
                         np.random.default_rng(seed))
        panels.append(_panel(sample, args.input_size))
    gap = np.full((args.input_size, 4, 3), 255, np.uint8)
    rows = [np.concatenate(sum(([p, gap] for p in panels[r:r + 4]), [])[:-1], axis=1)
            for r in (0, 4)]
    grid = np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8),
                           rows[1]], axis=0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), grid)
    LOG.info('wrote %s', args.output)


if __name__ == '__main__':
    main()
