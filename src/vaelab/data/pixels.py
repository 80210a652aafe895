"""Integer pixels kept as stored, read as [0, 1] float32 rows.

A uint8 image set scaled to [0, 1] (``minmax``, ``binarize-dynamic``) keeps its training
split in memory as the pixels themselves: Fashion-MNIST's 60,000 training images hold 47 MB
instead of a 188 MB float32 copy. Reading rows (a slice, an index, ``np.asarray``) gives the
same float32 values the preprocessing would have stored (``Preprocessor.unit_affine``, one
formula); the trainer keeps the pixels on its device and scales each batch
(``vaelab.train.rows.ScaledRows``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vaelab.data.lazy import ArraySource, LazyRows


class PixelSource(ArraySource):
    """An in-memory integer array; rows in any order are one fancy-indexing call."""

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.array[rows]


class PixelRows(LazyRows):
    """Rows of in-memory integer pixels through ``(p - lo) * scale`` clipped to [0, 1]."""

    streamed = False
    """Small enough for memory: the trainer moves the pixels to its device whole."""

    def __init__(self, pixels: np.ndarray, lo: float, scale: float,
                 transform: Callable[[np.ndarray], np.ndarray],
                 index: np.ndarray | None = None) -> None:
        super().__init__(PixelSource(pixels), index, transform)
        self.lo, self.scale = float(lo), float(scale)

    @property
    def pixels(self) -> np.ndarray:
        """The stored integers of this view's rows, in its order (a copy only for a view
        through an index)."""
        arr = self.source.array
        return arr if self.index is None else arr[self.index]

    def take(self, index: np.ndarray) -> PixelRows:
        view = super().take(index)
        return PixelRows(self.source.array, self.lo, self.scale, self.transform, view.index)

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
        raise TypeError("PixelRows are already preprocessed; map the raw pixels instead")

    def __repr__(self) -> str:
        return f"PixelRows(shape={self.shape}, {self.source.dtype} pixels)"


def keeps_pixels(x: Any, kind: str) -> bool:
    """Whether rows ``x`` preprocessed by ``kind`` can stay integer pixels in memory."""
    return kind in ("minmax", "binarize-dynamic") and isinstance(x, np.ndarray) \
        and not isinstance(x, np.memmap) and x.dtype.kind in "ui" and x.ndim >= 2
