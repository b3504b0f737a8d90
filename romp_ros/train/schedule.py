"""Learning-rate schedule: linear warm-up, then cosine or linear decay (or constant)."""

from __future__ import annotations

import math

import torch

from romp_ros.train.config import OptimConfig


def lr_factor(step: int, config: OptimConfig) -> float:
    """Multiplier of the peak learning rate for optimizer step ``step`` (counting from 1).

    Warm-up goes linearly from ``warmup_start`` at step 1 to 1 at ``warmup_steps``; the decay
    then reaches ``min_lr_ratio`` at ``max_steps``.
    """
    step = max(int(step), 1)
    if config.warmup_steps and step <= config.warmup_steps:
        if config.warmup_steps == 1:
            return 1.0
        fraction = (step - 1) / (config.warmup_steps - 1)
        return config.warmup_start + (1.0 - config.warmup_start) * fraction
    if config.schedule == 'constant':
        return 1.0
    span = max(config.max_steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / span, 1.0)
    if config.schedule == 'cosine':
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:  # linear
        shape = 1.0 - progress
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * shape


def build_scheduler(optimizer: torch.optim.Optimizer,
                    config: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose epoch counter is the number of optimizer steps taken.

    LambdaLR calls the function with 0 at construction (before step 1), then 1, 2, ...
    after each ``scheduler.step()``; the lr in force during step k is ``lr_factor(k)``.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: lr_factor(done + 1, config))
