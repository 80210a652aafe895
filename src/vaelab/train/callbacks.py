"""Epoch callbacks the pipeline attaches: a grid of samples after every epoch (seed 003)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import Config
from vaelab.data import DataSplits
from vaelab.train.loop import EpochCallback, Trainer


def sample_grid_callback(out: Path, data: DataSplits, seed: int, n: int = 64) -> EpochCallback:
    """Save figures/epochs/samples_epoch_NNN.png from fixed prior codes after every epoch."""

    def cb(trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        from vaelab.plots import image_grid, samples

        model = trainer.model
        gen = torch.Generator(device=trainer.device)
        gen.manual_seed(seed)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            z = model.prior_sample(n, generator=gen)
            y = None
            if model.uses_labels:
                y = torch.arange(n, device=trainer.device) % (model.spec.num_classes or 1)
            x = model.decode_mean(z, y).float().cpu().numpy()
        model.train(was_training)
        x = data.preprocessor.inverse(x)
        folder = out / "figures" / "epochs"
        folder.mkdir(parents=True, exist_ok=True)
        if x.ndim == 4:
            fig = image_grid(x, ncols=8, title=f"samples after epoch {epoch + 1}",
                             value_range=(float(np.min(x)), float(np.max(x))))
        else:
            fig = samples(x, feature_names=data.train.feature_names)
        fig.savefig(folder / f"samples_epoch_{epoch + 1:03d}.png", dpi=90)

    return cb


def default_callbacks(cfg: Config, out: Path, data: DataSplits) -> list[EpochCallback]:
    cbs: list[EpochCallback] = []
    if cfg.train.sample_every_epoch:
        cbs.append(sample_grid_callback(out, data, cfg.train.seed))
    return cbs
