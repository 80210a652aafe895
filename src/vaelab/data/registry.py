"""Named datasets: a registry of loader functions, each returning raw (unpreprocessed) data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset
from vaelab.errors import DataError


@dataclass
class RawData:
    """What a source yields before splitting: training rows, an official test split if any."""

    train: Dataset
    test: Dataset | None = None
    default_preprocess: str = "standardize"


Loader = Callable[[DataConfig], RawData]
DATASETS: dict[str, Loader] = {}
DESCRIPTIONS: dict[str, str] = {}


def register_dataset(name: str, description: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        DESCRIPTIONS[name] = description
        return fn

    return deco


def load_named(cfg: DataConfig) -> RawData:
    try:
        loader = DATASETS[cfg.dataset]
    except KeyError:
        raise DataError(
            f"Unknown dataset '{cfg.dataset}'; choose one of {', '.join(sorted(DATASETS))} "
            "or pass your own file with --data PATH."
        ) from None
    return loader(cfg)


@register_dataset("digits", "scikit-learn's 1,797 handwritten digits, 8x8 pixels (bundled)")
def _digits(cfg: DataConfig) -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8), values 0..16
    ds = Dataset(
        x=x,
        y=d.target.astype(np.int64),
        name="digits",
        label_names=[str(i) for i in range(10)],
    )
    return RawData(train=ds, default_preprocess="minmax")


@register_dataset("iris", "scikit-learn's 150 Iris flowers, 4 measurements, 3 species (bundled)")
def _iris(cfg: DataConfig) -> RawData:
    from sklearn.datasets import load_iris

    d = load_iris()
    ds = Dataset(
        x=d.data.astype(np.float32),
        y=d.target.astype(np.int64),
        name="iris",
        label_names=[str(n) for n in d.target_names],
        feature_names=[str(n) for n in d.feature_names],
    )
    return RawData(train=ds, default_preprocess="standardize")


def _register_builtin() -> None:
    """Import the modules that register further named datasets."""
    from vaelab.data import mnist  # noqa: F401


@register_dataset("shapes", "dSprites-like 64x64 binary shapes with 5 known factors (shape, "
                            "scale, orientation, x, y), 737,280 images drawn on demand")
def _shapes(cfg: DataConfig) -> RawData:
    from vaelab.data.shapes import shapes_dataset

    return RawData(train=shapes_dataset(max(int(cfg.chunk_mb * (1 << 20)), 1)),
                   default_preprocess="none")


_register_builtin()
