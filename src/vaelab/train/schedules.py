"""Learning-rate schedules (per epoch) and the KL warm-up factor, computed in one place."""

from __future__ import annotations

import math

from vaelab.train.config import TrainConfig


def schedule_name(cfg: TrainConfig) -> str:
    """The schedule in use: ``auto`` is cosine with a time budget, else constant."""
    if cfg.lr_schedule == "auto":
        return "cosine" if cfg.time_budget else "constant"
    return cfg.lr_schedule


def cosine_factor(cfg: TrainConfig, progress: float) -> float:
    """Cosine from 1 at progress 0 to lr_min / lr at progress 1."""
    floor = cfg.lr_min / cfg.lr
    p = min(max(progress, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def lr_factor(cfg: TrainConfig, epoch: int, progress: float | None = None) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``; with a time budget the
    cosine schedule follows ``progress``, the share of the budget spent when it starts."""
    name = schedule_name(cfg)
    if name == "constant":
        return 1.0
    if name == "step":
        return cfg.lr_gamma ** (epoch // max(cfg.lr_step_size, 1))
    if name == "exponential":
        return cfg.lr_gamma**epoch
    if name == "cosine":
        return cosine_factor(cfg, progress if progress is not None
                             else epoch / max(cfg.epochs, 1))
    raise ValueError(cfg.lr_schedule)


def kl_warmup_factor(warmup_epochs: int, epoch: int) -> float:
    """Linear warm-up: (epoch + 1) / warmup_epochs, capped at 1 (1 when no warm-up)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + 1) / warmup_epochs)
