"""Validation during training: the network in its inference pipeline, scored on held-out frames.

The weights being trained go through exactly what the node and ``romp-ros infer`` run
(:class:`~romp_ros.core.estimator.Estimator`: center NMS at the model's threshold, body model,
translation solved with the frame's camera, lens included), and the people found are matched
and scored like ``romp-ros evaluate`` does
(:func:`romp_ros.evaluation.validation.validation_scores`).
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch
from tqdm import tqdm

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.core.config import EstimatorConfig
from romp_ros.core.estimator import Estimator
from romp_ros.core.geometry.calibration import fit_to_image
from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError
from romp_ros.data.dataset_format import DatasetError, FrameLabel
from romp_ros.evaluation.validation import validation_scores
from romp_ros.train.config import TrainConfig
from romp_ros.train.training_data import label_models_dir

LOG = logging.getLogger(__name__)

NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)


def validate(model: torch.nn.Module, source, config: TrainConfig,
             device: torch.device) -> dict[str, float]:
    """Detection P/R/F1, MPJPE and PA-MPJPE (mm, 24 SMPL joints) on the held-out frames.

    Frames whose image cannot be read, or whose people lack 3D joints for the 24 SMPL
    joints, are left out and counted in ``skipped_frames``.
    """
    network = copy.deepcopy(model).eval()  # the estimator may fold BatchNorm: work on a copy
    estimator = Estimator(EstimatorConfig(
        model=config.model.name, backbone=config.model.backbone,
        models_dir=str(label_models_dir(config)), device=_device_name(device),
        input_size=config.model.input_size, center_thresh=config.validation.center_thresh,
        compute_verts=False, optimize=False), model=network)
    count = len(source) if not config.validation.max_frames else min(
        len(source), config.validation.max_frames)
    names = tuple(source.info.joint_names)
    gt_joints, gt_keypoints, pred_joints, pred_keypoints = [], [], [], []
    skipped = 0
    for index in tqdm(range(count), desc='validate', unit='frame', leave=False):
        frame = source[index]
        truth = _ground_truth(frame, names)
        if truth is None:
            skipped += 1
            continue
        try:
            image = source.load_image(frame)
        except DatasetError as err:
            LOG.warning('validation frame %s skipped: %s', frame.image, err)
            skipped += 1
            continue
        result = estimator.predict([image], intrinsics=[_camera(frame, image.shape[:2])])[0]
        gt_joints.append(truth[0])
        gt_keypoints.append(truth[1])
        pred_joints.append(result.joints_camera()[:, :NUM_SMPL_JOINTS])
        pred_keypoints.append(result.pj2d_org[:, :NUM_SMPL_JOINTS])
    if not gt_joints:
        LOG.warning('validation: none of %d frames has 3D ground truth for the SMPL joints',
                    count)
        return {'f1': math.nan, 'mpjpe_mm': math.nan, 'pa_mpjpe_mm': math.nan,
                'skipped_frames': float(skipped)}
    scores = validation_scores(gt_joints, gt_keypoints, pred_joints, pred_keypoints,
                               joint_names=SMPL_JOINT_NAMES)
    metrics = {'precision': scores.precision, 'recall': scores.recall, 'f1': scores.f1,
               'mpjpe_mm': scores.mpjpe_mm, 'pa_mpjpe_mm': scores.pa_mpjpe_mm,
               'ground_truth': scores.ground_truth, 'matched': scores.matched,
               'frames': len(gt_joints), 'skipped_frames': skipped}
    return {k: (math.nan if v is None else float(v)) for k, v in metrics.items()}


def _ground_truth(frame: FrameLabel, names: tuple[str, ...]
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """(G, 24, 3) joints and (G, 24, 2) keypoints (NaN where unlabelled) of a frame."""
    try:
        rows = [names.index(name) for name in SMPL_JOINT_NAMES]
    except ValueError:
        return None
    joints, keypoints = [], []
    for person in frame.people:
        if person.joints_3d is None or not np.isfinite(person.joints_3d[rows]).all():
            return None  # a person we cannot score would count as a false positive
        joints.append(person.joints_3d[rows])
        if person.keypoints_2d is None:
            keypoints.append(np.full((NUM_SMPL_JOINTS, 2), np.nan))
        else:
            kp = person.keypoints_2d[rows]
            keypoints.append(np.where(kp[:, 2:3] > 0, kp[:, :2], np.nan))
    if not joints:
        return np.zeros((0, NUM_SMPL_JOINTS, 3)), np.zeros((0, NUM_SMPL_JOINTS, 2))
    return np.stack(joints), np.stack(keypoints)


def _camera(frame: FrameLabel, image_size: tuple[int, int]) -> CameraModel | None:
    """The frame's camera (K and lens) for its image, or None (the default field of view)."""
    label = frame.camera
    if label is None:
        return None
    try:
        camera = CameraModel(label.width, label.height, tuple(label.k), label.distortion_model,
                             tuple(label.d))
        return fit_to_image(camera, *image_size)[0]
    except CameraModelError as err:
        LOG.warning('validation frame %s: camera not usable (%s); the default field of view '
                    'is assumed', frame.image, err)
        return None


def _device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'cuda:{device.index or 0}'
    return 'cpu'
