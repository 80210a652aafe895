"""Model families on one surface, registered by name for ``--model``."""

from __future__ import annotations

import importlib
import pkgutil

from vaelab.models.base import (
    DESCRIPTIONS,
    MODELS,
    BaseModel,
    LossParts,
    ModelSpec,
    build_model,
    register_model,
)
from vaelab.models.config import ModelConfig

# Import every module of this package so that each family registers itself.
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "config"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "DESCRIPTIONS",
    "MODELS",
    "BaseModel",
    "LossParts",
    "ModelConfig",
    "ModelSpec",
    "build_model",
    "register_model",
]
