"""The in-memory (or memory-mapped) dataset that every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaelab.data.preprocessing import Preprocessor


@dataclass
class Dataset:
    """Examples ``x`` (float32, (N, D) or (N, C, H, W)) and labels ``y``.

    ``x`` may also be a np.memmap or a :class:`~vaelab.data.lazy.LazyRows` (read on demand);
    those are split, preprocessed and trained on chunk by chunk, never loaded whole.

    ``y`` holds int64 class indices with -1 for an unlabelled row, or is None.

    A table read by column (``vaelab.data.tabular``) holds raw codes in ``x`` (number, 0 / 1,
    or category index; NaN = missing), its schema in ``columns`` (``Column.to_dict()`` each)
    and how its file is written (dialect, notes) in ``table``.

    ``factors`` (N, K) holds integer codes of known factors of variation, named by
    ``factor_names`` (the disentanglement metrics read them); ``factor_source``, when the data
    is generated (``--dataset shapes``), renders raw examples for any factor codes.

    ``row_names`` names each row's source where there is one (an image folder: each image's
    path relative to the folder; its rows are stored shuffled).
    """

    x: np.ndarray
    y: np.ndarray | None = None
    name: str = "data"
    label_names: list[str] | None = None
    feature_names: list[str] | None = None
    columns: list[dict[str, Any]] | None = None
    table: dict[str, Any] | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None
    factor_source: Any = None
    row_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            from vaelab.errors import DataError

            raise DataError(
                f"{self.name}: x has {len(self.x)} rows but y has {len(self.y)}; "
                "give one label per row."
            )
        if self.factors is not None and len(self.factors) != len(self.x):
            from vaelab.errors import DataError

            raise DataError(
                f"{self.name}: x has {len(self.x)} rows but the factors have "
                f"{len(self.factors)}; give one factor row per example."
            )

    def __len__(self) -> int:
        return len(self.x)

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4

    @property
    def num_classes(self) -> int | None:
        if self.y is None or not (self.y >= 0).any():
            return None
        if self.label_names is not None:
            return len(self.label_names)
        return int(self.y.max()) + 1

    def take(self, index: np.ndarray, name: str | None = None) -> Dataset:
        from vaelab.data.lazy import LazyRows

        if isinstance(self.x, LazyRows):
            x = self.x.take(index)
        elif _every_row_in_order(index, len(self)):  # e.g. the whole set for training: the
            x = self.x  # same rows need no copy (preprocessing writes a new array, not this)
        else:
            x = np.asarray(self.x[index])
        return Dataset(
            x=x,
            y=None if self.y is None else self.y[index],
            name=name or self.name,
            label_names=self.label_names,
            feature_names=self.feature_names,
            columns=self.columns,
            table=self.table,
            factors=None if self.factors is None else self.factors[index],
            factor_names=self.factor_names,
            factor_source=self.factor_source,
            row_names=None if self.row_names is None else
            [self.row_names[int(i)] for i in np.asarray(index)],
        )


@dataclass
class DataSplits:
    """Train / validation / test splits with the fitted preprocessing and what it implies."""

    train: Dataset
    val: Dataset
    test: Dataset
    preprocessor: Preprocessor
    likelihood_hint: str
    """bernoulli for data in [0, 1], gaussian otherwise."""
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance recorded in config.json (source files, split sizes, official split or not)."""

    @property
    def example_shape(self) -> tuple[int, ...]:
        return self.train.example_shape

    @property
    def num_classes(self) -> int | None:
        counts = [d.num_classes for d in (self.train, self.val, self.test)]
        known = [c for c in counts if c is not None]
        return max(known) if known else None

    @property
    def label_names(self) -> list[str] | None:
        return self.train.label_names


def _every_row_in_order(index: np.ndarray, n: int) -> bool:
    index = np.asarray(index)
    return index.ndim == 1 and len(index) == n and index.dtype.kind in "iu" and \
        bool((index == np.arange(n)).all())
