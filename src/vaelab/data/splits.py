"""Seeded train / validation / test splits and the preprocessing fitted on the train split.

Memory-mapped and lazily read arrays stay lazy: splits are index views, the preprocessing is
fitted chunk by chunk and applied per chunk when rows are read.
"""

from __future__ import annotations

import numpy as np

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset, DataSplits
from vaelab.data.lazy import ArraySource, LazyRows, should_stream
from vaelab.data.preprocessing import Preprocessor
from vaelab.data.registry import RawData
from vaelab.errors import DataError


def _lazy_if_mapped(ds: Dataset | None, cfg: DataConfig) -> None:
    """A np.memmap too large for memory becomes LazyRows (nothing below copies it whole);
    a small one is simply read in."""
    if ds is None or not isinstance(ds.x, np.memmap):
        return
    if should_stream(len(ds.x) * int(np.prod(ds.x.shape[1:], dtype=np.int64)) * 4, cfg.stream):
        ds.x = LazyRows(ArraySource(ds.x), chunk_bytes=max(int(cfg.chunk_mb * (1 << 20)), 1))
    else:
        ds.x = np.asarray(ds.x, dtype=np.float32)


def _flatten(ds: Dataset) -> None:
    if ds.is_image and not isinstance(ds.x, LazyRows):
        ds.x = ds.x.reshape(len(ds.x), -1)


def split_and_preprocess(raw: RawData, cfg: DataConfig, seed: int, batch_size: int) -> DataSplits:
    """Split ``raw`` with ``seed``, fit the preprocessing on train, transform every split."""
    rng = np.random.default_rng(seed)
    full = raw.train
    _lazy_if_mapped(full, cfg)
    _lazy_if_mapped(raw.test, cfg)
    n = len(full)
    if n == 0:
        raise DataError(f"{full.name} holds no rows; give at least a few examples.")
    official_test = raw.test is not None
    perm = rng.permutation(n)
    if official_test:
        n_test = 0
        test_idx = None
    else:
        n_test = round(n * cfg.test_fraction)
        test_idx = np.sort(perm[:n_test])
    rest = perm[n_test:]
    n_val = round(len(rest) * cfg.val_fraction)
    val_idx = np.sort(rest[:n_val])
    train_idx = np.sort(rest[n_val:])
    if cfg.subset is not None:
        train_idx = np.sort(rng.permutation(train_idx)[: cfg.subset])
    need = 2  # the trainer never takes a batch of one row
    if len(train_idx) < need or (cfg.val_fraction > 0 and len(val_idx) < 1) or \
            (not official_test and len(test_idx) < 1):
        raise DataError(
            f"{full.name}: {n} rows are too few for the splits (train {len(train_idx)}, "
            f"validation {len(val_idx)}, test {n_test}; training needs {need} rows and the "
            "validation and test splits one each); give more rows or change "
            "--val-fraction / --test-fraction."
        )
    train = full.take(train_idx, name=f"{full.name}/train")
    val = full.take(val_idx, name=f"{full.name}/val") if len(val_idx) else train
    if official_test:
        test = raw.test
        if cfg.subset is not None:
            test = test.take(np.arange(min(len(test), max(cfg.subset // 4, 1))), name=test.name)
    else:
        test = full.take(test_idx, name=f"{full.name}/test")
    if len(test) < 1:
        raise DataError(
            f"{full.name}: the test split is empty; raise --test-fraction or give more rows."
        )

    kind = raw.default_preprocess if cfg.preprocess == "auto" else cfg.preprocess
    pre, notes = None, []
    if full.columns is not None or kind == "columns":  # a table by column types
        from vaelab.data.encoding import fit_table

        pre, notes = fit_table(full, (train, val, test), kind)
    if pre is None:
        pre = Preprocessor(kind=kind).fit(train.x, threshold=cfg.binarize_threshold)
    for ds in {id(d): d for d in (train, val, test)}.values():
        # the training images, the largest split, stay integer pixels where they can
        ds.x = pre.transform(ds.x, keep_pixels=ds is train and not cfg.flatten)
        if cfg.flatten:
            _flatten(ds)
    hint = "mixed" if pre.kind == "columns" else "bernoulli" if pre.bounded_unit else "gaussian"
    info = {
        "source": full.name,
        "official_test_split": official_test,
        "sizes": {"train": len(train), "val": len(val) if val is not train else 0,
                  "test": len(test)},
        "example_shape": list(train.example_shape),
        "streamed": bool(getattr(train.x, "streamed", False)),
        "preprocessing": pre.to_dict(),
    }
    if notes:
        info["notes"] = notes
    return DataSplits(train=train, val=val, test=test, preprocessor=pre,
                      likelihood_hint=hint, info=info)
