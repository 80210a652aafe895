"""Data layer: named datasets, users' files, preprocessing and splits."""

from __future__ import annotations

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset, DataSplits
from vaelab.data.preprocessing import Preprocessor
from vaelab.data.registry import DATASETS, RawData, load_named, register_dataset
from vaelab.data.splits import split_and_preprocess


def load_raw(cfg: DataConfig) -> RawData:
    """Read the data that ``cfg`` names, before splitting and preprocessing."""
    if cfg.data is not None:
        from vaelab.data.files import load_file

        return load_file(cfg)
    return load_named(cfg)


def load_data(cfg: DataConfig, *, seed: int = 0, batch_size: int = 128) -> DataSplits:
    """Load, split (with ``seed``) and preprocess the data that ``cfg`` describes."""
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
