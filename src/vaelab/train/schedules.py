"""Learning-rate schedules (per epoch) and the KL warm-up factor, computed in one place."""

from __future__ import annotations

import math

from vaelab.train.config import TrainConfig


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``."""
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.lr_schedule == "step":
        return cfg.lr_gamma ** (epoch // max(cfg.lr_step_size, 1))
    if cfg.lr_schedule == "exponential":
        return cfg.lr_gamma**epoch
    if cfg.lr_schedule == "cosine":
        floor = cfg.lr_min / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))
    raise ValueError(cfg.lr_schedule)


def kl_warmup_factor(warmup_epochs: int, epoch: int) -> float:
    """Linear warm-up: (epoch + 1) / warmup_epochs, capped at 1 (1 when no warm-up)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + 1) / warmup_epochs)
