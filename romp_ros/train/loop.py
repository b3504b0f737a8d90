"""The training loop: one plain function, single process or torchrun (DistributedDataParallel).

Per optimizer step: load this rank's share of the global batch, forward under autocast, check
the loss is finite on every rank, backward (DDP averages the gradients), clip, step, schedule.
Rank 0 logs (log.jsonl, TensorBoard, tqdm), checkpoints and validates.
"""

from __future__ import annotations

from collections import Counter
import contextlib
from dataclasses import dataclass, replace
import logging
import math
import os
from pathlib import Path
import random
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from romp_ros.data.sample import TrainingBatch, collate_samples
from romp_ros.train.batch_plan import BatchPlan, PlannedSampler
from romp_ros.train.checkpoints import (
    BEST,
    LAST,
    read_training_checkpoint,
    restore_rng_state,
    save_training_checkpoint,
)
from romp_ros.train.config import TrainConfig, loss_weights
from romp_ros.train.config_mapping import to_mapping
from romp_ros.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from romp_ros.train.losses import CountSync
from romp_ros.train.model_setup import (
    batchnorm_eval,
    build_optimizer,
    build_training_model,
    freeze_batchnorm,
)
from romp_ros.train.run_log import RunLog
from romp_ros.train.schedule import build_scheduler
from romp_ros.train.training_data import build_training_data, load_label_body_model

LOG = logging.getLogger(__name__)

CHECKPOINT_DIR = 'checkpoints'
CONFIG_FILE = 'config.yaml'


class TrainingError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class TrainingDivergedError(TrainingError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainSummary:
    """What a finished run did.

    Attributes:
        run_dir: the run folder.
        steps: optimizer steps done in total (including before a resume).
        last_loss: mean total loss of the last logged interval.
        world_size: processes.
        best: the best validation metrics, if validation ran.
    """

    run_dir: Path
    steps: int
    last_loss: float
    world_size: int
    best: dict | None = None


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False,
          max_steps: int | None = None, progress: bool = True,
          on_log: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainSummary:
    """Train (or resume training) a ROMP / BEV network; see docs/training.md.

    Args:
        config: the run's configuration (ignored on resume but for ``max_steps``: the run
            continues with the configuration saved in its checkpoint).
        run_dir: RUN_DIR: config.yaml, log.jsonl, tensorboard/, checkpoints/.
        resume: continue from RUN_DIR/checkpoints/last.pth.
        max_steps: stop after this many optimizer steps in total (default
            ``config.optim.max_steps``); the learning-rate schedule always follows
            ``config.optim.max_steps``, so stopping and resuming changes nothing.
        progress: show a tqdm bar (rank 0).
        on_log: called on rank 0 with each log.jsonl row (the offline node publishes them).
        should_stop: polled after every step; True ends the run early with a checkpoint of
            the last completed step (one process; the offline node's deactivate).

    Raises:
        TrainingError: RUN_DIR holds another run (without resume), nothing to resume, the
            data cannot be loaded, a bad batch size for the process count.
        TrainingDivergedError: a NaN / inf loss; checkpoints/last.pth is the last good state.
    """
    run_dir = Path(run_dir)
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if not resume and config.data.batch_size % world_size:
        # before joining the process group: a bad split must not leave peers waiting
        raise TrainingError(f'data.batch_size={config.data.batch_size} (the global batch) is '
                            f'not a multiple of the {world_size} processes; choose one that '
                            'is, e.g. with --set data.batch_size=N')
    context = init_distributed(config.device)
    try:
        return _train(config, run_dir, context, resume=resume, max_steps=max_steps,
                      progress=progress, on_log=on_log, should_stop=should_stop)
    finally:
        shutdown_distributed(context)


def _train(config: TrainConfig, run_dir: Path, ctx: DistributedContext, *, resume: bool,
           max_steps: int | None, progress: bool, on_log, should_stop) -> TrainSummary:
    last_path = run_dir / CHECKPOINT_DIR / LAST
    saved = None
    if resume:
        saved = read_training_checkpoint(last_path)
        from romp_ros.train.config import load_train_config
        config = load_train_config(None, **saved['config'])
    elif last_path.exists():
        raise TrainingError(f'{run_dir} already holds a run ({last_path}); continue it with '
                            '--resume, or choose another --out')
    # --max-steps says where to stop; the schedule keeps following optim.max_steps, so a run
    # stopped at step k and resumed equals one that never stopped
    stop = config.optim.max_steps if max_steps is None else int(max_steps)
    if stop < 1:
        raise TrainingError(f'--max-steps {stop}: must be >= 1')
    config = replace(config, world_size=ctx.world_size)
    try:
        plan = BatchPlan(config.data.batch_size, ctx.world_size, ctx.rank)
    except ValueError as err:
        raise TrainingError(str(err)) from err

    data = build_training_data(config)  # bad data is the likeliest mistake: report it first
    body_model = load_label_body_model(config).to(ctx.device)
    _seed_everything(config.seed)
    model = build_training_model(config.model).to(ctx.device)
    if config.model.freeze_batchnorm:
        freeze_batchnorm(model)  # before DDP: its gradient hooks see the frozen parameters
    from romp_ros.train.criterion import Criterion
    sync = (CountSync(lambda t: all_reduce_sum(t, ctx), ctx.world_size)
            if ctx.is_distributed else None)
    criterion = Criterion(config.model.name, body_model, loss_weights(config), sync=sync)

    net: nn.Module = model
    if ctx.is_distributed:
        if ctx.device.type == 'cuda' and config.model.sync_batchnorm \
                and not config.model.freeze_batchnorm:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = DistributedDataParallel(
            net, device_ids=[ctx.local_rank] if ctx.device.type == 'cuda' else None)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim)
    scaler = (torch.amp.GradScaler('cuda') if config.optim.amp == 'fp16'
              and ctx.device.type == 'cuda' else None)
    step = 0
    best: dict | None = None
    if saved is not None:
        model.load_state_dict(saved['model'])
        optimizer.load_state_dict(saved['optimizer'])
        scheduler.load_state_dict(saved['scheduler'])
        if scaler is not None and saved['scaler']:
            scaler.load_state_dict(saved['scaler'])
        step = int(saved['step'])
        best = saved['metrics'].get('best') or None
        restore_rng_state(saved['rng'])
        LOG.info('resumed %s at step %d', run_dir, step)

    log = RunLog(run_dir, tensorboard=config.logging.tensorboard, enabled=ctx.is_main,
                 resume_step=step if saved is not None else None)
    if ctx.is_main:
        (run_dir / CONFIG_FILE).write_text(config.to_yaml(), encoding='utf-8')
    if step >= stop:
        LOG.info('%s is already at step %d of %d: nothing to do', run_dir, step, stop)
        log.close()
        return TrainSummary(run_dir, step, math.nan, ctx.world_size, best)

    loader = DataLoader(
        data.dataset, batch_size=plan.local_batch,
        sampler=PlannedSampler(data.dataset, plan, steps_done=step),
        num_workers=config.data.num_workers, collate_fn=collate_samples, drop_last=True,
        persistent_workers=False, pin_memory=ctx.device.type == 'cuda',
        worker_init_fn=_seed_worker if config.data.num_workers else None,
        # fresh worker processes: a fork would inherit OpenCV's and OpenMP's thread pools in
        # whatever state the parent's threads left them (a forked worker can deadlock on them)
        multiprocessing_context='spawn' if config.data.num_workers else None,
        # its own generator: creating the loader must not draw from the global RNG, or a
        # resumed run (which creates it at step k) would diverge from an uninterrupted one
        generator=torch.Generator().manual_seed(config.seed))
    autocast = _autocast(config.optim.amp, ctx.device)
    fixed_batch = data.fixed_batch if ctx.is_main else None

    interval = _Interval()
    bar = tqdm(total=stop, initial=step, unit='step', desc='train',
               disable=not (progress and ctx.is_main), dynamic_ncols=True)
    last_loss = math.nan
    completed, saved_step = step, True
    try:
        for batch in loader:
            step += 1
            batch = batch.to(ctx.device, non_blocking=True)
            terms = _train_step(net, model, criterion, batch, optimizer, scheduler, scaler,
                                autocast, config, ctx, step)
            interval.add(terms, batch)
            if step % config.logging.log_every == 0 or step == stop:
                row = interval.flush(ctx, step, scheduler.get_last_lr()[0])
                last_loss = row['loss']
                log.row(row)
                if on_log is not None and ctx.is_main:
                    on_log(row)
                bar.set_postfix(loss=f'{last_loss:.4g}')
            if (config.logging.image_every and step % config.logging.image_every == 0
                    and fixed_batch is not None):
                _log_prediction_images(model, criterion, fixed_batch, log, step, ctx, autocast)
            validate_now = (data.validation is not None and (
                step % config.validation.every == 0 or step == stop))
            if validate_now:
                best = _validate(model, data, config, ctx, log, step, run_dir, optimizer,
                                 scheduler, scaler, best)
            saved_step = step % config.logging.checkpoint_every == 0 or step == stop
            if saved_step:
                _save(run_dir / CHECKPOINT_DIR / LAST, model, optimizer, scheduler, scaler, step,
                      config, best, ctx)
            completed = step
            bar.update(1)
            if step >= stop:
                break
            if should_stop is not None and not ctx.is_distributed and should_stop():
                if not saved_step:
                    _save(run_dir / CHECKPOINT_DIR / LAST, model, optimizer, scheduler,
                          scaler, step, config, best, ctx)
                LOG.info('stopped on request at step %d (saved); continue with --resume',
                         step)
                break
    except KeyboardInterrupt:
        # one process: keep what the completed steps did (the interrupted step is lost)
        if not ctx.is_distributed and completed > 0 and not saved_step:
            _save(run_dir / CHECKPOINT_DIR / LAST, model, optimizer, scheduler, scaler,
                  completed, config, best, ctx)
            LOG.warning('interrupted: step %d saved to %s; continue with --resume', completed,
                        run_dir / CHECKPOINT_DIR / LAST)
        raise
    finally:
        bar.close()
        log.close()
    return TrainSummary(run_dir, step, last_loss, ctx.world_size, best)


def _train_step(net, model, criterion, batch: TrainingBatch, optimizer, scheduler, scaler,
                autocast, config: TrainConfig, ctx: DistributedContext,
                step: int) -> dict[str, float]:
    net.train()
    if config.model.freeze_batchnorm:
        batchnorm_eval(model)  # train() switched them back
    with autocast:
        output = criterion(net, batch)
    total = output.total.float()
    finite = torch.isfinite(total).to(torch.float32).reshape(1)
    if float(all_reduce_sum(finite, ctx)) < ctx.world_size:
        bad = sorted(k for k, v in output.terms.items() if not torch.isfinite(v).all())
        raise TrainingDivergedError(
            f'the loss became non-finite at step {step} (terms: {bad or ["total"]}); training '
            'stopped. The last good state is checkpoints/last.pth; lower optim.lr, check the '
            'data (docs/training.md, "When the loss diverges"), then --resume')
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.unscale_(optimizer)
    else:
        total.backward()
    if config.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    values = {'loss': float(total.detach())}
    values.update({k: float(v) for k, v in output.terms.items()})
    return values


class _Interval:
    """Sums of the loss terms, images and skips since the last log row."""

    def __init__(self) -> None:
        self.sums: Counter = Counter()
        self.steps = 0
        self.images = 0
        self.skipped: Counter = Counter()
        self.started = time.perf_counter()

    def add(self, terms: dict[str, float], batch: TrainingBatch) -> None:
        self.sums.update(terms)
        self.steps += 1
        self.images += batch.batch_size
        self.skipped.update(batch.skipped)

    def flush(self, ctx: DistributedContext, step: int, lr: float) -> dict:
        names = sorted(self.sums)
        packed = torch.tensor([self.sums[n] for n in names] + [self.steps, self.images],
                              dtype=torch.float64)
        packed = all_reduce_sum(packed, ctx)
        steps = float(packed[-2])
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        row = {'step': step}
        row.update({n: float(packed[i]) / steps for i, n in enumerate(names)})
        images_per_s = float(packed[-1]) / elapsed  # over all processes
        row.update({'lr': lr, 'images_per_s': images_per_s,
                    'images_per_s_per_process': images_per_s / ctx.world_size,
                    'world_size': ctx.world_size})
        if self.skipped:
            row['skipped'] = dict(self.skipped)
        self.__init__()
        return row


def _save(path: Path, model, optimizer, scheduler, scaler, step: int, config: TrainConfig,
          best: dict | None, ctx: DistributedContext) -> None:
    # DDP keeps the parameters equal on every rank, so every rank reaches the same verdict
    bad = [name for name, param in model.named_parameters()
           if not bool(torch.isfinite(param).all())]
    if bad:
        raise TrainingDivergedError(
            f'the parameters became non-finite in step {step} ({len(bad)} tensors, e.g. '
            f'{bad[0]}); training stopped and nothing was saved for that step: the last good '
            'state is checkpoints/last.pth. Lower optim.lr or optim.weight_decay, then '
            '--resume')
    if ctx.is_main:
        save_training_checkpoint(path, model_state=model.state_dict(), optimizer=optimizer,
                                 scheduler=scheduler, scaler=scaler, step=step,
                                 config=to_mapping(config), metrics={'best': best or {}})
    barrier(ctx)


def _validate(model, data, config: TrainConfig, ctx: DistributedContext, log: RunLog, step: int,
              run_dir: Path, optimizer, scheduler, scaler, best: dict | None) -> dict | None:
    """Score the held-out set on rank 0; keep checkpoints/best.pth for the best score."""
    if ctx.is_main:
        from romp_ros.train.validation import validate
        metrics = validate(model, data.validation, config, ctx.device)
        log.row({'step': step, **{f'val/{k}': v for k, v in metrics.items()}})
        key = config.validation.metric
        better = (best is None or not math.isfinite(best.get(key, math.nan))
                  or (metrics[key] > best[key] if key == 'f1' else metrics[key] < best[key]))
        if better and math.isfinite(metrics.get(key, math.nan)):
            best = {**metrics, 'step': step}
            save_training_checkpoint(run_dir / CHECKPOINT_DIR / BEST,
                                     model_state=model.state_dict(), optimizer=optimizer,
                                     scheduler=scheduler, scaler=scaler, step=step,
                                     config=to_mapping(config), metrics={'best': best})
    barrier(ctx)
    return best


@torch.no_grad()
def _log_prediction_images(model, criterion, batch: TrainingBatch, log: RunLog, step: int,
                           ctx: DistributedContext, autocast) -> None:
    from romp_ros.train.prediction_images import draw_predictions
    was_training = model.training
    model.eval()
    with autocast:
        output = criterion(model, batch.to(ctx.device))
    log.images('predictions', draw_predictions(batch, output), step)
    model.train(was_training)


def _autocast(amp: str, device: torch.device):
    if amp == 'none':
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == 'bf16' else torch.float16
    if amp == 'fp16' and device.type != 'cuda':
        LOG.warning('optim.amp=fp16 needs CUDA; using bf16 on %s', device)
        dtype = torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # Augmentation draws from (seed, epoch, index) generators; this only tidies global RNGs
    # that third-party code might touch. One OpenCV thread per worker (a fresh, spawned
    # process): the workers already use the cores, OpenCV's own pool would oversubscribe them.
    import cv2
    cv2.setNumThreads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
