"""Pictures of what the network predicts on a fixed batch, for TensorBoard during training.

Each panel: the input image with the labelled 2D keypoints (green) and the keypoints predicted
at each person's center (red, joined to their labels by thin lines), and beside it the
predicted center map over its target (red = prediction, green = target).
"""

from __future__ import annotations

import cv2
import numpy as np

from romp_ros.data.sample import TrainingBatch

_GREEN = (40, 220, 40)
_RED = (235, 50, 50)
_SMPL_JOINTS = 24  # drawn: the body joints, not the face / hand picks


def draw_predictions(batch: TrainingBatch, output) -> np.ndarray:
    """(B, S, 2S, 3) uint8 panels of a batch and its criterion output (a LossOutput)."""
    images = batch.images.detach().cpu().numpy().clip(0, 255).astype(np.uint8)  # (B, S, S, 3)
    size = images.shape[1]
    labels = batch.keypoints_2d.detach().cpu().numpy()  # (B, P, J, 3)
    preds = output.pred_keypoints_2d.detach().float().cpu().numpy()  # (N, J, 2)
    batch_ids = output.batch_ids.cpu().numpy()
    person_ids = output.person_ids.cpu().numpy()
    panels = []
    for b in range(images.shape[0]):
        canvas = np.ascontiguousarray(images[b])
        for n in np.nonzero(batch_ids == b)[0]:
            label = labels[b, person_ids[n], :_SMPL_JOINTS]  # (24, 3)
            pred = _to_pixels(preds[n, :_SMPL_JOINTS], size)  # (24, 2)
            for j in range(_SMPL_JOINTS):
                p = tuple(int(v) for v in pred[j])
                if label[j, 2] > 0:
                    g = tuple(int(v) for v in _to_pixels(label[j:j + 1, :2], size)[0])
                    cv2.line(canvas, g, p, (200, 200, 200), 1, cv2.LINE_AA)
                    cv2.circle(canvas, g, 2, _GREEN, -1, cv2.LINE_AA)
                cv2.circle(canvas, p, 2, _RED, -1, cv2.LINE_AA)
        heat = _center_panel(output.center_maps[b, 0], output.target_center_maps[b, 0], size)
        panels.append(np.concatenate([canvas, heat], axis=1))
    return np.stack(panels)


def _to_pixels(normalised: np.ndarray, size: int) -> np.ndarray:
    """Normalised [-1, 1] input coordinates -> pixels of the S x S input."""
    return np.clip((normalised + 1.0) * 0.5 * size, -size, 2 * size)


def _center_panel(pred, target, size: int) -> np.ndarray:
    def scaled(map_) -> np.ndarray:
        values = map_.detach().float().cpu().numpy()
        values = np.clip(values, 0.0, 1.0)
        return cv2.resize(values, (size, size), interpolation=cv2.INTER_NEAREST)
    panel = np.zeros((size, size, 3), np.float32)
    panel[..., 0] = scaled(pred)
    panel[..., 1] = scaled(target)
    return (panel * 255).astype(np.uint8)
