"""Data layer: named datasets, users' files, preprocessing and splits.

Importing this package is cheap (only ``DataConfig``); the rest is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vaelab.data.config import DataConfig

if TYPE_CHECKING:
    from vaelab.data.dataset import DataSplits
    from vaelab.data.registry import RawData

_LAZY = {
    "Dataset": "vaelab.data.dataset",
    "DataSplits": "vaelab.data.dataset",
    "Preprocessor": "vaelab.data.preprocessing",
    "DATASETS": "vaelab.data.registry",
    "RawData": "vaelab.data.registry",
    "load_named": "vaelab.data.registry",
    "register_dataset": "vaelab.data.registry",
    "split_and_preprocess": "vaelab.data.splits",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def load_raw(cfg: DataConfig) -> RawData:
    """Read the data that ``cfg`` names, before splitting and preprocessing."""
    if cfg.data is not None:
        from vaelab.data.files import load_file

        return load_file(cfg)
    from vaelab.data.registry import load_named

    return load_named(cfg)


def load_data(cfg: DataConfig, *, seed: int = 0, batch_size: int = 128) -> DataSplits:
    """Load, split (with ``seed``) and preprocess the data that ``cfg`` describes."""
    from vaelab.data.splits import split_and_preprocess

    return split_and_preprocess(load_raw(cfg), cfg, seed=seed, batch_size=batch_size)


__all__ = [
    "DATASETS",
    "DataConfig",
    "DataSplits",
    "Dataset",
    "Preprocessor",
    "RawData",
    "load_data",
    "load_raw",
    "register_dataset",
]
