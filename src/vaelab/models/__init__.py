"""Model families on one surface, registered by name for ``--model``.

Importing this package is cheap (only ``ModelConfig``): the surface (``BaseModel``,
``build_model``, the ``MODELS`` registry, ...) and every family module, which need torch, are
imported on first use of one of those names, so ``vaelab --help`` never loads torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from vaelab.models.config import ModelConfig

_SURFACE = ("DESCRIPTIONS", "MODELS", "BaseModel", "LossParts", "ModelSpec", "TrainingPhase",
            "build_model", "register_model")


def load_families() -> None:
    """Import every module of this package so that each family registers itself."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "config"):
            importlib.import_module(f"{__name__}.{info.name}")


def __getattr__(name: str) -> Any:
    if name not in _SURFACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from vaelab.models import base

    load_families()
    for key in _SURFACE:  # bind them all: later lookups skip this function
        globals()[key] = getattr(base, key)
    return globals()[name]


__all__ = [
    "DESCRIPTIONS",
    "MODELS",
    "BaseModel",
    "LossParts",
    "ModelConfig",
    "ModelSpec",
    "TrainingPhase",
    "build_model",
    "load_families",
    "register_model",
]
