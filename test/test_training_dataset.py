"""The torch training dataset: skipped samples counted, determinism, mixing, DDP split."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch.utils.data

from romp_ros.core.body.joint_names import SMPL_JOINT_NAMES
from romp_ros.data.augment import AugmentConfig
from romp_ros.data.dataset_format import (
    CameraLabel,
    DatasetError,
    DatasetInfo,
    DatasetWriter,
    FrameLabel,
    GenericDataset,
    PersonLabel,
    SkipCounter,
)
from romp_ros.data.mixing import (
    EpochSampler,
    MixedDataset,
    open_training_data,
    split_counts,
)
from romp_ros.data.sample import SkippedSample, TrainingBatch, TrainingSample, collate_samples
from romp_ros.data.sources import FrameSource
from romp_ros.data.training_dataset import TrainingDataset

SIZE = 64
CONFIG = AugmentConfig(input_size=SIZE, rotation_prob=0.5, occlusion_prob=0.5)
CAMERA = CameraLabel(64, 48, (60.0, 60.0, 32.0, 24.0))


def _person(rng: np.random.Generator) -> PersonLabel:
    joints = rng.normal(0, 0.3, (24, 3)) + [0, 0, 4.0]
    uvw = joints @ CAMERA.matrix().T
    keypoints = np.concatenate([uvw[:, :2] / uvw[:, 2:], np.full((24, 1), 2.0)], axis=1)
    return PersonLabel(keypoints_2d=keypoints, joints_3d=joints,
                       smpl_pose=rng.normal(0, 0.2, 72), smpl_shape=rng.normal(0, 1, 10),
                       translation=joints[0] - [0, -0.2, 0])


def _write_generic(root: Path, frames: int, seed: int = 0, name: str = 'synthetic') -> Path:
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, DatasetInfo(name, SMPL_JOINT_NAMES)) as writer:
        for _ in range(frames):
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            writer.add(image, [_person(rng)], camera=CAMERA)
    return root


@pytest.fixture
def generic(tmp_path) -> Path:
    return _write_generic(tmp_path / 'generic', 6)


def test_samples_are_valid_and_collate(generic):
    dataset = TrainingDataset(GenericDataset(generic), CONFIG, seed=1)
    samples = [dataset[i] for i in range(len(dataset))]
    for sample in samples:
        assert isinstance(sample, TrainingSample)
        sample.check()
        assert sample.dataset == 'synthetic'
    assert [sample_index(s) for s in samples] == list(range(6))
    assert samples[2].source.startswith(str(generic / 'images' / '000002.png'))
    batch = collate_samples(samples)
    assert isinstance(batch, TrainingBatch)
    assert batch.images.shape == (6, SIZE, SIZE, 3) and batch.skipped == {}
    assert batch.person_mask.sum() == sum(s.num_people for s in samples)


def sample_index(sample: TrainingSample) -> int:
    return int(sample.source.rsplit('#', 1)[1])


def test_corrupt_and_missing_images_are_skipped_and_counted(generic, caplog):
    source = GenericDataset(generic)
    (generic / source[1].image).write_bytes(b'not a png at all')
    (generic / source[4].image).unlink()
    dataset = TrainingDataset(source, CONFIG)
    with caplog.at_level(logging.WARNING):
        results = [dataset[i] for i in range(len(dataset))]
    skipped = [r for r in results if isinstance(r, SkippedSample)]
    assert [r.reason for r in skipped] == ['unreadable image', 'unreadable image']
    assert skipped[0].source.endswith('000001.png#1')
    assert dataset.skipped.counts['unreadable image'] == 2
    assert caplog.text.count('skipped unreadable image') == 1  # first one logged, then counted
    batch = collate_samples(results)
    assert batch.batch_size == 4 and batch.skipped == {'unreadable image': 2}


def _in_memory(frames: list[FrameLabel], image_root: Path, names=SMPL_JOINT_NAMES
               ) -> FrameSource:
    return FrameSource(DatasetInfo('mem', tuple(names)), frames, image_root)


def test_nan_labels_and_wrong_keypoint_counts_are_skipped(generic):
    good = GenericDataset(generic)
    person = good[0].people[0]
    nan_kp = person.keypoints_2d.copy()
    nan_kp[5, 1] = np.nan
    frames = [good[0],
              dataclasses.replace(good[1], index=1, people=(dataclasses.replace(
                  person, keypoints_2d=nan_kp),)),
              dataclasses.replace(good[2], index=2, people=(dataclasses.replace(
                  person, keypoints_2d=person.keypoints_2d[:17]),)),
              dataclasses.replace(good[3], index=3, people=(dataclasses.replace(
                  person, smpl_pose=np.full(72, np.inf)),))]
    dataset = TrainingDataset(_in_memory(frames, generic), CONFIG)
    reasons = [getattr(dataset[i], 'reason', None) for i in range(4)]
    assert reasons == [None, 'non-finite label', 'wrong keypoint count', 'non-finite label']
    assert dict(dataset.skipped.counts) == {'non-finite label': 2, 'wrong keypoint count': 1}


def test_the_generic_reader_counts_bad_rows_too(generic):
    lines = (generic / 'frames.jsonl').read_text().splitlines()
    row = json.loads(lines[2])
    row['people'][0]['keypoints_2d'] = row['people'][0]['keypoints_2d'][:17]
    lines[2] = json.dumps(row)
    row = json.loads(lines[3])
    row['people'][0]['smpl_pose'][0] = float('nan')
    lines[3] = json.dumps(row)
    (generic / 'frames.jsonl').write_text('\n'.join(lines) + '\n')
    source = GenericDataset(generic)
    assert len(source) == 5 and source.skipped.total == 2
    assert source[2].people[0].smpl_pose is None  # the NaN field is dropped, counted


class _EmptySource:
    info = DatasetInfo('empty', SMPL_JOINT_NAMES)
    skipped = SkipCounter()

    def __len__(self) -> int:
        return 0


def test_empty_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match='the dataset is empty'):
        TrainingDataset(_EmptySource(), CONFIG)
    with pytest.raises(DatasetError, match='no usable frame'):
        _in_memory([], tmp_path)
    with DatasetWriter(tmp_path / 'none', DatasetInfo('none', SMPL_JOINT_NAMES)):
        pass
    with pytest.raises(DatasetError, match='no usable frame'):
        GenericDataset(tmp_path / 'none')
    with pytest.raises(DatasetError, match='none of the keypoint names'):
        TrainingDataset(_in_memory([FrameLabel(0, 'x.png')], tmp_path, names=('a', 'b')),
                        CONFIG)


def _same(a: TrainingSample, b: TrainingSample) -> bool:
    return np.array_equal(a.image, b.image) and np.array_equal(a.keypoints_2d, b.keypoints_2d)


def test_augmentation_is_a_function_of_seed_epoch_and_index(generic):
    source = GenericDataset(generic)
    first = TrainingDataset(source, CONFIG, seed=3)
    again = TrainingDataset(source, CONFIG, seed=3)
    other_seed = TrainingDataset(source, CONFIG, seed=4)
    assert _same(first[(0, 2)], again[(0, 2)])
    assert not _same(first[(0, 2)], first[(1, 2)])
    assert not _same(first[(0, 2)], other_seed[(0, 2)])
    again.set_epoch(1)
    assert _same(again[2], first[(1, 2)])
    order = first.epoch_order(0)
    assert sorted(order.tolist()) == list(range(len(first)))
    assert np.array_equal(order, again.epoch_order(0))
    assert not all(np.array_equal(order, first.epoch_order(e)) for e in range(1, 4))
    with pytest.raises(IndexError):
        first[len(first)]


def test_dataloader_workers_see_the_same_samples(generic):
    dataset = TrainingDataset(GenericDataset(generic), CONFIG, seed=5)

    def batches(workers: int) -> list[TrainingBatch]:
        sampler = EpochSampler(dataset, rank=0, world_size=1, seed=2)
        sampler.set_epoch(3)
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, sampler=sampler,
                                             num_workers=workers, collate_fn=collate_samples)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert [b.sources for b in serial] == [b.sources for b in parallel]
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.keypoints_2d, b.keypoints_2d)


def test_split_counts_are_exact():
    assert split_counts([0.7, 0.3], 1000).tolist() == [700, 300]
    assert split_counts([1, 1, 1], 10).tolist() == [4, 3, 3]
    assert split_counts([5.0], 7).tolist() == [7]


def test_mixing_respects_weights_and_covers_each_source(tmp_path):
    big = TrainingDataset(GenericDataset(_write_generic(tmp_path / 'a', 5, 1, 'syn')), CONFIG)
    small = TrainingDataset(GenericDataset(_write_generic(tmp_path / 'b', 7, 2, 'coco')),
                            CONFIG)
    mixed = MixedDataset([big, small], [0.7, 0.3], epoch_length=1000, seed=9)
    plan = mixed.plan(0)
    assert np.bincount(plan.dataset).tolist() == [700, 300]
    # spread over the epoch, not in blocks: any window holds about 70 % of the first source
    for start in range(0, 1000, 200):
        share = (plan.dataset[start:start + 200] == 0).mean()
        assert 0.6 < share < 0.8, (start, share)
    # within a source, frames are drawn evenly (endless permutations)
    frames = np.bincount(plan.index[plan.dataset == 1], minlength=7)
    assert frames.max() - frames.min() <= 1
    assert np.array_equal(MixedDataset([big, small], [0.7, 0.3], epoch_length=1000,
                                       seed=9).plan(0).dataset, plan.dataset)
    assert not np.array_equal(mixed.plan(1).dataset, plan.dataset)
    sample = mixed[(0, int(np.argmax(plan.dataset == 1)))]
    assert sample.dataset == 'coco'
    default = MixedDataset([big, small], [1, 1])
    assert len(default) == 12
    with pytest.raises(DatasetError, match='positive'):
        MixedDataset([big], [0.0])


def test_epoch_sampler_splits_an_epoch_over_ranks():
    data = list(range(10))
    shares = []
    for rank in range(3):
        sampler = EpochSampler(data, rank=rank, world_size=3, seed=1)
        sampler.set_epoch(2)
        shares.append([position for epoch, position in sampler])
        assert len(sampler) == 4 and all(epoch == 2 for epoch, _ in sampler)
    assert sorted(set(sum(shares, []))) == data  # together: the whole epoch
    assert len(sum(shares, [])) == 12  # padded by wrapping to equal shares
    dropped = EpochSampler(data, rank=0, world_size=3, drop_last=True)
    assert len(list(dropped)) == 3
    with pytest.raises(ValueError, match='rank 3 of world size 3'):
        EpochSampler(data, rank=3, world_size=3)


def test_open_training_data_from_config_entries(tmp_path):
    _write_generic(tmp_path / 'a', 4, 1, 'syn')
    _write_generic(tmp_path / 'b', 4, 2, 'other')
    mixed = open_training_data([{'path': str(tmp_path / 'a'), 'weight': 3},
                                {'path': str(tmp_path / 'b'), 'weight': 1, 'name': 'b2'}],
                               CONFIG, seed=0, epoch_length=8)
    assert mixed.names == ('syn', 'b2') and mixed.counts.tolist() == [6, 2]
    sample = mixed[0]
    assert isinstance(sample, TrainingSample)
    with pytest.raises(DatasetError, match='data.sources is empty'):
        open_training_data([], CONFIG)
