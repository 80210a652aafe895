"""Pick the torch device from ``--device`` and make CPU runs reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch

from vaelab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"option 'device' got {name!r}; use auto, cpu, cuda, cuda:N or mps.")\
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("option 'device' is cuda but no CUDA GPU is visible; use --device cpu.")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("option 'device' is mps but Apple's MPS is not available; use cpu.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"option 'device' got {name!r}; use auto, cpu, cuda, cuda:N or mps.")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
