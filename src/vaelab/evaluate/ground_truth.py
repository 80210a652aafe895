"""Where the disentanglement metrics draw (factors, observations) pairs from.

disentanglement_lib's metrics read a "ground-truth data" object that samples factor values and
observations for them. Two kinds here, both handing out model-space inputs:

- :class:`RenderedTruth`: a generated data set (``Dataset.factor_source``, ``--dataset
  shapes``): factors are drawn uniformly from the full grid and rendered, exactly the
  library's protocol;
- :class:`RowTruth`: users' data with factor columns: rows of the run's splits, drawn without
  replacement while they last, and for "one factor fixed" batches the rows sharing a random
  row's value of that factor (drawn with replacement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Encoder = Callable[[np.ndarray], np.ndarray]


def mean_encoder(model: Any, batch_size: int = 512) -> Encoder:
    """Posterior means (the representation every metric scores) of model-space inputs."""
    from vaelab.evaluate.metrics import encode_dataset

    def encode(x: np.ndarray) -> np.ndarray:
        return encode_dataset(model, x, batch_size=batch_size)[0]

    return encode


class RenderedTruth:
    """Factors drawn uniformly from a generator's grid, observations rendered for them."""

    kind = "rendered"

    def __init__(self, source: Any, to_model: Callable[[np.ndarray], np.ndarray]) -> None:
        self.source = source
        self.names = list(source.names)
        self.sizes = [int(s) for s in source.sizes]
        self.to_model = to_model
        self.limit: int | None = None

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, n) for s in self.sizes], 1)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        f = self.sample_factors(n, rng)
        return f, self.to_model(self.source.render(f))

    def sample_observations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample(n, rng)[1]

    def sample_fixed(self, n: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """(k, n observations whose factor k shares one random value, the rest random)."""
        k = int(rng.integers(len(self.sizes)))
        f = self.sample_factors(n, rng)
        f[:, k] = f[0, k]
        return k, self.to_model(self.source.render(f))


class RowTruth:
    """Rows of the data with their factor codes (one pool over the given splits)."""

    kind = "rows"

    def __init__(self, datasets: list[Any]) -> None:
        self.datasets = datasets
        self.factors = np.concatenate([np.asarray(d.factors) for d in datasets]).astype(np.int64)
        self.names = list(datasets[0].factor_names)
        self.sizes = [int(self.factors[:, k].max()) + 1 for k in range(self.factors.shape[1])]
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])
        self.limit: int | None = len(self.factors)
        self._order: np.ndarray | None = None
        self._next = 0

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Model-space inputs of pooled rows ``index`` (any order)."""
        index = np.asarray(index, dtype=np.int64)
        part = np.searchsorted(self.offsets, index, side="right") - 1
        out: np.ndarray | None = None
        for p in np.unique(part):
            sel = np.flatnonzero(part == p)
            local = index[sel] - self.offsets[p]
            order = np.argsort(local, kind="stable")
            block = np.asarray(self.datasets[p].x[local[order]], dtype=np.float32)
            if out is None:
                out = np.empty((len(index), *block.shape[1:]), dtype=np.float32)
            out[sel[order]] = block
        assert out is not None
        return out

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n rows not handed out before (while they last), in random order."""
        if self._order is None:
            self._order = rng.permutation(len(self.factors))
        take = self._order[self._next : self._next + n]
        self._next += len(take)
        return self.factors[take], self.rows(take)

    def sample_observations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to n random rows, independent of what ``sample`` handed out."""
        return self.rows(np.sort(rng.permutation(len(self.factors))[:n]))

    def sample_fixed(self, n: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        k = int(rng.integers(self.factors.shape[1]))
        value = self.factors[int(rng.integers(len(self.factors))), k]
        same = np.flatnonzero(self.factors[:, k] == value)
        return k, self.rows(rng.choice(same, n, replace=True))


def ground_truth(data: Any, preprocess: Callable[[np.ndarray], np.ndarray],
                 input_shape: tuple[int, ...]) -> RenderedTruth | RowTruth | None:
    """The ground truth of a run's splits (``data``: DataSplits), or None without factors."""
    train = data.train
    if getattr(train, "factors", None) is None or not train.factor_names:
        return None
    if train.factor_source is not None:
        def to_model(raw: np.ndarray) -> np.ndarray:
            x = np.asarray(preprocess(raw), dtype=np.float32)
            return x.reshape(len(x), *input_shape)

        return RenderedTruth(train.factor_source, to_model)
    splits = {id(d): d for d in (data.train, data.val, data.test)}.values()
    return RowTruth([d for d in splits if d.factors is not None and len(d)])
