"""Training samples: what a loader yields and what the training loop consumes.

A :class:`TrainingSample` is one augmented image at the network input size with its labels;
:class:`TrainingBatch` is B of them collated into tensors.

Labels are expressed in the **training joint set**: the body model's 71 joints
(``romp_ros.core.body.joint_names.ALL_JOINT_NAMES``, SMPL's 24 first). Every source maps its
own keypoints into it by name; joints a source does not label have visibility 0 (2D) and NaN
(3D). Each person carries flags for what is labelled, so a loss term only sees people that
have its label.

Coordinates in a sample:

* 2D keypoints are in the **normalised frame of the square network input**: (-1, -1) is the
  top-left corner of the S x S input, (1, 1) the bottom-right (the frame of ROMP's
  weak-perspective camera: ``uv = X[:, :2] * s + (tx, ty)``).
* 3D joints and translations are metres in the camera optical frame of the augmented image
  (flips and in-plane rotations are applied to them too).
* ``camera_k`` is the pinhole K of the augmented S x S input, pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from romp_ros.core.body.joint_names import ALL_JOINT_NAMES

TRAIN_JOINT_NAMES: tuple[str, ...] = ALL_JOINT_NAMES
NUM_TRAIN_JOINTS = len(TRAIN_JOINT_NAMES)  # 71
NUM_SHAPE = 11  # 10 SMPL betas + BEV's age offset


@dataclass
class TrainingSample:
    """One augmented image with P labelled people (P may be 0).

    Attributes:
        image: (S, S, 3) uint8 RGB, the network input.
        keypoints_2d: (P, 71, 3) float32: u, v in the normalised [-1, 1] input frame, then a
            weight: 1 labelled and inside the input, 0 otherwise (absent, cropped away).
        joints_3d: (P, 71, 3) float32 metres, camera frame; NaN rows where unknown.
        smpl_pose: (P, 72) float32 axis-angle, radians (zeros where ``has_pose`` is False).
        smpl_shape: (P, 11) float32: 10 betas, then the age offset (0 for SMPL labels).
        translation: (P, 3) float32 metres, body-model frame -> camera frame.
        has_pose, has_shape, has_age, has_translation, has_joints_3d: (P,) bool label flags.
        bbox: (P, 4) float32 (u_min, v_min, u_max, v_max), normalised input frame.
        track_ids: (P,) int64, -1 when unknown.
        camera_k: (3, 3) float32 K of the S x S input, pixels; NaN when the source has no
            camera (2D-only datasets).
        dataset: name of the source dataset (for per-dataset logging).
        source: where the image came from (file path and frame index), for error messages.
    """

    image: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    smpl_pose: np.ndarray
    smpl_shape: np.ndarray
    translation: np.ndarray
    has_pose: np.ndarray
    has_shape: np.ndarray
    has_age: np.ndarray
    has_translation: np.ndarray
    has_joints_3d: np.ndarray
    bbox: np.ndarray
    track_ids: np.ndarray
    camera_k: np.ndarray
    dataset: str = ''
    source: str = ''

    @property
    def num_people(self) -> int:
        """P."""
        return int(self.keypoints_2d.shape[0])

    @property
    def input_size(self) -> int:
        """S."""
        return int(self.image.shape[0])

    def check(self) -> None:
        """Raise ValueError when shapes or dtypes disagree (a loader bug, never user data)."""
        size, people = self.input_size, self.num_people
        expected = {
            'image': ((size, size, 3), np.uint8),
            'keypoints_2d': ((people, NUM_TRAIN_JOINTS, 3), np.float32),
            'joints_3d': ((people, NUM_TRAIN_JOINTS, 3), np.float32),
            'smpl_pose': ((people, 72), np.float32),
            'smpl_shape': ((people, NUM_SHAPE), np.float32),
            'translation': ((people, 3), np.float32),
            'has_pose': ((people,), np.bool_), 'has_shape': ((people,), np.bool_),
            'has_age': ((people,), np.bool_), 'has_translation': ((people,), np.bool_),
            'has_joints_3d': ((people,), np.bool_),
            'bbox': ((people, 4), np.float32), 'track_ids': ((people,), np.int64),
            'camera_k': ((3, 3), np.float32),
        }
        for name, (shape, dtype) in expected.items():
            value = getattr(self, name)
            if value.shape != shape or value.dtype != dtype:
                raise ValueError(f'{self.source}: {name} is {value.shape} {value.dtype}, '
                                 f'expected {shape} {np.dtype(dtype)}')


def empty_people(count: int = 0) -> dict[str, np.ndarray]:
    """Per-person arrays of a sample for ``count`` people with nothing labelled."""
    return {
        'keypoints_2d': np.zeros((count, NUM_TRAIN_JOINTS, 3), np.float32),
        'joints_3d': np.full((count, NUM_TRAIN_JOINTS, 3), np.nan, np.float32),
        'smpl_pose': np.zeros((count, 72), np.float32),
        'smpl_shape': np.zeros((count, NUM_SHAPE), np.float32),
        'translation': np.zeros((count, 3), np.float32),
        'has_pose': np.zeros(count, bool), 'has_shape': np.zeros(count, bool),
        'has_age': np.zeros(count, bool), 'has_translation': np.zeros(count, bool),
        'has_joints_3d': np.zeros(count, bool),
        'bbox': np.zeros((count, 4), np.float32), 'track_ids': np.full(count, -1, np.int64),
    }


# Per-person fields, padded to the largest P of a batch.
PERSON_FIELDS = ('keypoints_2d', 'joints_3d', 'smpl_pose', 'smpl_shape', 'translation',
                 'has_pose', 'has_shape', 'has_age', 'has_translation', 'has_joints_3d',
                 'bbox', 'track_ids')


@dataclass
class TrainingBatch:
    """B samples collated into tensors; people padded to P = the batch's largest count.

    Attributes:
        images: (B, S, S, 3) float32 RGB 0..255 (what the networks take).
        person_mask: (B, P) bool, True for real people.
        keypoints_2d .. track_ids: the :class:`TrainingSample` fields with a leading B axis,
            padded with zeros / False / NaN (3D joints) / -1 (track ids).
        camera_k: (B, 3, 3) float32, NaN for sources without a camera.
        datasets: the B dataset names.
        sources: the B sample sources.
    """

    images: 'torch.Tensor'  # noqa: F821 (torch is imported lazily)
    person_mask: 'torch.Tensor'  # noqa: F821
    keypoints_2d: 'torch.Tensor'  # noqa: F821
    joints_3d: 'torch.Tensor'  # noqa: F821
    smpl_pose: 'torch.Tensor'  # noqa: F821
    smpl_shape: 'torch.Tensor'  # noqa: F821
    translation: 'torch.Tensor'  # noqa: F821
    has_pose: 'torch.Tensor'  # noqa: F821
    has_shape: 'torch.Tensor'  # noqa: F821
    has_age: 'torch.Tensor'  # noqa: F821
    has_translation: 'torch.Tensor'  # noqa: F821
    has_joints_3d: 'torch.Tensor'  # noqa: F821
    bbox: 'torch.Tensor'  # noqa: F821
    track_ids: 'torch.Tensor'  # noqa: F821
    camera_k: 'torch.Tensor'  # noqa: F821
    datasets: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.images.shape[0])

    def to(self, device, non_blocking: bool = False) -> 'TrainingBatch':
        """A copy with every tensor on ``device``."""
        import torch
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            moved[f.name] = (value.to(device, non_blocking=non_blocking)
                             if isinstance(value, torch.Tensor) else value)
        return TrainingBatch(**moved)


def collate_samples(samples: list['TrainingSample | SkippedSample | None']) -> TrainingBatch:
    """Stack samples into a :class:`TrainingBatch` (a ``DataLoader`` ``collate_fn``).

    :class:`SkippedSample` (or ``None``) entries are samples a loader had to skip (a corrupt
    image, ...): they are left out of the batch and counted in ``TrainingBatch.skipped`` by
    reason, so the loop can log them. A batch may therefore be smaller than requested, but
    never empty.

    Raises:
        ValueError: every sample of the batch was skipped, or input sizes differ.
    """
    import torch
    skipped: dict[str, int] = {}
    kept: list[TrainingSample] = []
    for sample in samples:
        if sample is None:
            skipped['unreadable sample'] = skipped.get('unreadable sample', 0) + 1
        elif isinstance(sample, SkippedSample):
            skipped[sample.reason] = skipped.get(sample.reason, 0) + 1
        else:
            kept.append(sample)
    if not kept:
        raise ValueError(f'every sample of a batch was skipped: {skipped}')
    sizes = {s.input_size for s in kept}
    if len(sizes) != 1:
        raise ValueError(f'samples of one batch have different input sizes {sorted(sizes)}')
    people = max(s.num_people for s in kept)
    batch = len(kept)
    mask = np.zeros((batch, people), bool)
    padded: dict[str, np.ndarray] = {
        name: np.repeat(value[None], batch, axis=0)
        for name, value in empty_people(people).items()}
    for b, sample in enumerate(kept):
        count = sample.num_people
        mask[b, :count] = True
        for name in PERSON_FIELDS:
            padded[name][b, :count] = getattr(sample, name)
    images = torch.from_numpy(np.stack([s.image for s in kept])).float()  # (B, S, S, 3)
    return TrainingBatch(
        images=images, person_mask=torch.from_numpy(mask),
        **{name: torch.from_numpy(value) for name, value in padded.items()},
        camera_k=torch.from_numpy(np.stack([s.camera_k for s in kept])),
        datasets=tuple(s.dataset for s in kept), sources=tuple(s.source for s in kept),
        skipped=skipped)


@dataclass(frozen=True)
class SkippedSample:
    """Returned by a dataset instead of a sample it had to skip, with the reason."""

    reason: str
    source: str = ''
