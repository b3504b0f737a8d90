"""`romp-ros train`: the loop, its checkpoints, exact resume, torchrun, bad input.

Runs are CI-sized: ROMP with the EfficientNetV2-S backbone (config/train/synthetic_cpu.yaml)
at a 128 px input on a dozen synthetic renders, a few optimizer steps each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

from conftest import REPO_ROOT
import numpy as np
import pytest
import torch
import yaml

from romp_ros.train.checkpoints import read_training_checkpoint
from romp_ros.train.config import TrainConfigError, load_train_config
from romp_ros.train.run_log import RunLog, read_log

CPU_CONFIG = REPO_ROOT / 'config' / 'train' / 'synthetic_cpu.yaml'
LOG_KEYS = {'step', 'loss', 'lr', 'images_per_s', 'world_size'}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    """12 synthetic 128 x 128 renders with one or two people, pinhole cameras."""
    from romp_ros.synthetic.dataset import write_synthetic_dataset
    from romp_ros.synthetic.scene_spec import SceneSpec
    out = tmp_path_factory.mktemp('train_data') / 'synth'
    spec = SceneSpec(width=128, height=128, people=(1, 2), distance_m=(2.0, 7.0),
                     distortion_prob=0.0, supersample=1)
    write_synthetic_dataset(out, spec, frames=12, seed=3, progress=False)
    return out


def romp_ros(*args, env=None, check=True) -> subprocess.CompletedProcess:
    """`python -m romp_ros.cli --quiet ARGS` (the documented torchrun form uses it too)."""
    result = subprocess.run([sys.executable, '-m', 'romp_ros.cli', '--quiet', *map(str, args)],
                            capture_output=True, text=True, timeout=1200, env=env)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def train_args(dataset: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ['train', '--config', CPU_CONFIG, '--data', dataset, '--out', out,
            '--max-steps', str(steps), '--set', 'data.num_workers=0', '--set',
            'logging.image_every=0', *extra]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return read_training_checkpoint(run / 'checkpoints' / 'last.pth')['model']


# -- the loop -----------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def short_run(dataset, tmp_path_factory) -> Path:
    """16 steps of the CPU config (shared by the tests that need a trained run)."""
    run = tmp_path_factory.mktemp('short') / 'run'
    romp_ros(*train_args(dataset, run, 16, '--set', 'logging.checkpoint_every=10',
                         '--set', 'logging.image_every=8'))
    return run


def test_a_short_run_lowers_the_loss_and_writes_the_run_folder(short_run, dataset):
    run = short_run
    rows = read_log(run)
    assert [r['step'] for r in rows] == list(range(1, 17)), 'log_every 1: one row per step'
    assert all(LOG_KEYS <= set(r) for r in rows)
    assert {'center', 'keypoints_2d', 'joints_3d', 'pose'} <= set(rows[0]), 'terms by name'
    assert all(r['world_size'] == 1 for r in rows)
    first = np.mean([r['loss'] for r in rows[:4]])
    last = np.mean([r['loss'] for r in rows[-4:]])
    assert last < 0.7 * first, f'the loss should fall: {first:.1f} -> {last:.1f}'
    # warm-up then cosine decay
    lrs = [r['lr'] for r in rows]
    assert lrs[0] < lrs[9] and max(lrs) == pytest.approx(3e-4, rel=1e-6)

    resolved = yaml.safe_load((run / 'config.yaml').read_text())
    assert resolved['world_size'] == 1
    assert resolved['model']['backbone'] == 'efficientnet_v2_s'
    assert resolved['data']['sources'][0]['path'] == str(dataset)
    ckpt = read_training_checkpoint(run / 'checkpoints' / 'last.pth')
    assert ckpt['step'] == 16 and ckpt['config']['model']['input_size'] == 128
    assert {'optimizer', 'scheduler', 'rng'} <= set(ckpt)
    assert not any(k.startswith('module.') for k in ckpt['model'])
    events = list((run / 'tensorboard').glob('events.out.tfevents.*'))
    assert events and events[0].stat().st_size > 0


def test_resume_is_exact(dataset, tmp_path):
    """Stopped at step 2 and resumed to 4 == 4 steps in one go (bitwise on CPU)."""
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    small = ('--set', 'data.batch_size=2')
    romp_ros(*train_args(dataset, straight, 4, *small))
    romp_ros(*train_args(dataset, resumed, 2, *small))
    assert read_training_checkpoint(resumed / 'checkpoints' / 'last.pth')['step'] == 2
    # the resume may use data-loading workers: samples depend on (seed, epoch, index) only
    romp_ros('train', '--out', resumed, '--resume', '--max-steps', 4,
             '--set', 'data.num_workers=1')
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst == 0.0, f'parameters differ by up to {worst}'
    rows_a, rows_b = read_log(straight), read_log(resumed)
    assert [r['loss'] for r in rows_a] == [r['loss'] for r in rows_b]
    # nothing left to do: a second resume to the same total is a no-op
    romp_ros('train', '--out', resumed, '--resume', '--max-steps', 4)
    assert len(read_log(resumed)) == 4


def test_resumed_log_holds_each_step_once(tmp_path):
    """An interrupted run logged past its last checkpoint: the resume drops those rows, so the
    learning curve has no doubled stretch."""
    first = RunLog(tmp_path, tensorboard=False)
    for step in range(10, 60, 10):  # checkpoint at 30, interrupted after 50
        first.row({'step': step, 'loss': float(step)})
    first.close()
    resumed = RunLog(tmp_path, tensorboard=False, resume_step=30)
    resumed.row({'step': 40, 'loss': -1.0})
    resumed.close()
    assert [(r['step'], r['loss']) for r in read_log(tmp_path)] == [
        (10, 10.0), (20, 20.0), (30, 30.0), (40, -1.0)]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(dataset, tmp_path):
    """DDP over gloo: same global batch, same parameters after k steps as one process.

    BatchNorm statistics are per process on CPU (torch's SyncBatchNorm is CUDA-only), so the
    comparison freezes them; the loss terms are normalised by their global counts
    (losses.CountSync), which makes the gradients equal whatever each process got.
    """
    common = ('--set', 'model.freeze_batchnorm=true', '--set', 'data.batch_size=4')
    single, multi = tmp_path / 'single', tmp_path / 'multi'
    romp_ros(*train_args(dataset, single, 3, *common))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(29400 + os.getpid() % 500), '-m', 'romp_ros.cli', '--quiet',
           *map(str, train_args(dataset, multi, 3, *common))]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_log(multi)
    assert [r['world_size'] for r in rows] == [2, 2, 2], 'only rank 0 writes, once per step'
    assert yaml.safe_load((multi / 'config.yaml').read_text())['world_size'] == 2
    a, b = weights(single), weights(multi)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key
    loss_single = [r['loss'] for r in read_log(single)]
    loss_multi = [r['loss'] for r in rows]
    assert np.allclose(loss_single, loss_multi, rtol=1e-4)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(dataset, tmp_path):
    run = tmp_path / 'diverged'
    result = romp_ros(*train_args(dataset, run, 40, '--set', 'optim.lr=1e6', '--set',
                                  'optim.warmup_steps=0', '--set', 'optim.grad_clip=0',
                                  '--set', 'logging.checkpoint_every=1'), check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'non-finite' in result.stderr and 'Traceback' not in result.stderr
    ckpt = read_training_checkpoint(run / 'checkpoints' / 'last.pth')
    # either the loss of step k or the parameters after step k became non-finite
    text = result.stderr
    failed_at = int(text.split(' step ')[1].split()[0].rstrip(';(,'))
    assert ckpt['step'] == failed_at - 1
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values() if v.is_floating_point())


def test_fine_tuning_from_an_official_file_with_a_frozen_backbone_in_bf16(
        dataset, seeded_checkpoint, tmp_path):
    """--init loads an official-layout file; the frozen backbone keeps exactly its weights
    while the heads move; bf16 autocast on the CPU trains with finite losses."""
    official = seeded_checkpoint('romp', 'efficientnet_v2_s')
    run = tmp_path / 'finetune'
    romp_ros(*train_args(dataset, run, 2, '--init', official, '--set',
                         'model.freeze_backbone=true', '--set', 'optim.amp=bf16'))
    from romp_ros.core.nets.checkpoint import load_checkpoint
    initial = load_checkpoint(official)
    trained = weights(run)
    backbone = [k for k in trained if k.startswith('backbone.') and 'running' not in k
                and 'num_batches' not in k]
    heads = [k for k in trained if k.startswith('final_layers.') and k.endswith('weight')]
    assert backbone and all(torch.equal(trained[k], initial[k]) for k in backbone)
    moved = [k for k in heads if not torch.equal(trained[k], initial[k])]
    assert moved, 'the heads must train'
    # started from the file, not from scratch: the heads moved only a little
    assert all(float((trained[k] - initial[k]).abs().max()) < 0.05 for k in heads)
    assert all(np.isfinite(r['loss']) for r in read_log(run))


def test_imagenet_backbone_weights_from_local_files(tmp_path):
    """torchvision's ResNet-50 / EfficientNetV2-S files and the HRNet-W32 ImageNet layout load
    into the backbones (classifier heads dropped); a foreign file is one clear error."""
    import torchvision

    from romp_ros.core.nets.factory import build_backbone
    from romp_ros.train.model_setup import BackboneWeightsError, load_imagenet_backbone
    torch.manual_seed(1)
    resnet = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(resnet, tmp_path / 'resnet50.pth')
    ours = build_backbone('resnet50')
    load_imagenet_backbone(ours, 'resnet50', tmp_path / 'resnet50.pth')
    assert torch.equal(ours.state_dict()['layer4.2.conv3.weight'], resnet['layer4.2.conv3.weight'])

    effnet = torchvision.models.efficientnet_v2_s(weights=None).state_dict()
    torch.save(effnet, tmp_path / 'effnet.pth')
    ours = build_backbone('efficientnet_v2_s')
    load_imagenet_backbone(ours, 'efficientnet_v2_s', tmp_path / 'effnet.pth')
    assert torch.equal(ours.features.state_dict()['0.0.weight'], effnet['features.0.0.weight'])

    hrnet = {k: v + 1.0 if v.is_floating_point() else v
             for k, v in build_backbone('hrnet32').state_dict().items()}
    release = {**hrnet, 'incre_modules.0.0.conv1.weight': torch.zeros(1),
               'classifier.weight': torch.zeros(1000, 2048)}
    torch.save({'state_dict': release}, tmp_path / 'hrnet.pth')
    ours = build_backbone('hrnet32')
    load_imagenet_backbone(ours, 'hrnet32', tmp_path / 'hrnet.pth')
    assert torch.equal(ours.state_dict()['conv1.weight'], hrnet['conv1.weight'])

    with pytest.raises(BackboneWeightsError, match='does not fit the hrnet32 backbone'):
        load_imagenet_backbone(build_backbone('hrnet32'), 'hrnet32', tmp_path / 'resnet50.pth')
    with pytest.raises(BackboneWeightsError, match='never'):
        load_imagenet_backbone(build_backbone('resnet50'), 'resnet50', tmp_path / 'none.pth')


def test_trained_checkpoint_runs_in_infer(short_run, dataset, tmp_path):
    """The run's last.pth loads like an official file; its 128 px input size is adopted."""
    run = short_run
    image = next((dataset / 'images').iterdir())
    out = tmp_path / 'pred.npz'
    romp_ros('infer', image, '--model', 'romp', '--backbone', 'efficientnet_v2_s',
             '--checkpoint', run / 'checkpoints' / 'last.pth', '--models-dir',
             dataset / 'body_model', '--device', 'cpu', '--center-thresh', '-1',
             '--max-people', 3, '--out', out)
    with np.load(out) as data:
        assert data['cam'].shape[0] == 3, 'the top 3 centers at a threshold below every score'
        assert np.isfinite(data['joints']).all()


# -- configuration and bad input -----------------------------------------------------------------


def test_config_overrides_and_errors(tmp_path):
    config = load_train_config(CPU_CONFIG, ['optim.lr=1e-3', 'model.freeze_backbone=true',
                                            'data.augment.flip_prob=0.0'])
    assert config.optim.lr == 1e-3 and config.model.freeze_backbone
    assert config.data.augment['flip_prob'] == 0.0
    from romp_ros.train.config import augment_config, loss_weights
    assert augment_config(config).input_size == 128
    assert loss_weights(load_train_config(None, ['model.name=bev'])).center == 100.0
    for override, fragment in (('optim.lrr=1', 'optim.lrr'), ('optim.lr=-1', 'optim.lr'),
                               ('model.backbone=vgg', 'model.backbone'),
                               ('model.input_size=100', 'multiple of 32'),
                               ('loss.center=-2', 'center'), ('loss.bogus=1', 'loss.bogus'),
                               ('data.augment.flip_prob=2', 'flip_prob'),
                               ('optim.lr=abc', 'optim.lr'), ('optim.max_steps', 'KEY=VALUE')):
        with pytest.raises(TrainConfigError, match=fragment.replace('.', r'\.')):
            load_train_config(CPU_CONFIG, [override])
    bad = tmp_path / 'bad.yaml'
    bad.write_text('model: [1, 2]\n')
    with pytest.raises(TrainConfigError, match='model'):
        load_train_config(bad)


@pytest.mark.parametrize('case', ['no_data', 'empty_dataset', 'existing_run', 'no_resume',
                                  'odd_batch'])
def test_bad_input_gives_one_clear_line(case, dataset, short_run, tmp_path):
    run = tmp_path / 'run'
    if case == 'no_data':
        args, fragment = ['train', '--config', CPU_CONFIG, '--out', run], 'no training data'
    elif case == 'empty_dataset':
        empty = tmp_path / 'empty'
        (empty / 'images').mkdir(parents=True)
        (empty / 'frames.jsonl').write_text('')
        (empty / 'dataset.json').write_text(json.dumps(
            {'format': 'romp_ros.dataset', 'version': 1, 'name': 'e', 'joint_names': ['a']}))
        args, fragment = train_args(empty, run, 2), 'no usable frame'
    elif case == 'existing_run':
        args, fragment = train_args(dataset, short_run, 30), '--resume'
    elif case == 'no_resume':
        args, fragment = ['train', '--out', run, '--resume'], 'nothing to resume'
    else:
        env_args = train_args(dataset, run, 2, '--set', 'data.batch_size=3')
        env = dict(os.environ, WORLD_SIZE='2', RANK='0', LOCAL_RANK='0',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(29900 + os.getpid() % 90))
        # a single rank of a 2-process job is enough to reach the check before any collective
        result = romp_ros(*env_args, env=env, check=False)
        assert result.returncode == 2 and 'multiple of' in result.stderr, result.stderr[-1500:]
        return
    result = romp_ros(*args, check=False)
    assert result.returncode == 2, result.stderr[-1500:]
    assert fragment in result.stderr and 'Traceback' not in result.stderr, result.stderr[-1500:]


def test_corrupt_images_are_skipped_and_counted(dataset, tmp_path):
    import shutil
    copy = tmp_path / 'copy'
    shutil.copytree(dataset, copy)
    broken = sorted((copy / 'images').iterdir())[:3]
    for path in broken:
        path.write_bytes(b'not an image')
    run = tmp_path / 'run'
    romp_ros(*train_args(copy, run, 3))  # 3 x 4 samples: the whole epoch of 12 frames
    skipped: dict[str, int] = {}
    for row in read_log(run):
        for reason, count in row.get('skipped', {}).items():
            skipped[reason] = skipped.get(reason, 0) + count
    assert sum(skipped.values()) >= 1 and any('image' in r for r in skipped), skipped
