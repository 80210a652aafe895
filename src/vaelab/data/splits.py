"""Seeded train / validation / test splits and the preprocessing fitted on the train split."""

from __future__ import annotations

import numpy as np

from vaelab.data.config import DataConfig
from vaelab.data.dataset import DataSplits
from vaelab.data.preprocessing import Preprocessor
from vaelab.data.registry import RawData
from vaelab.errors import DataError


def split_and_preprocess(raw: RawData, cfg: DataConfig, seed: int, batch_size: int) -> DataSplits:
    """Split ``raw`` with ``seed``, fit the preprocessing on train, transform every split."""
    rng = np.random.default_rng(seed)
    full = raw.train
    n = len(full)
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
    need = max(2, min(batch_size, 2))
    if len(train_idx) < need or (cfg.val_fraction > 0 and len(val_idx) < 1):
        raise DataError(
            f"{full.name}: {n} rows are too few for the splits (train {len(train_idx)}, "
            f"validation {len(val_idx)}, test {n_test}); give more rows or lower "
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
    pre = Preprocessor(kind=kind).fit(train.x, threshold=cfg.binarize_threshold)
    for ds in {id(d): d for d in (train, val, test)}.values():
        ds.x = pre.transform(ds.x)
    hint = "bernoulli" if pre.bounded_unit else "gaussian"
    info = {
        "source": full.name,
        "official_test_split": official_test,
        "sizes": {"train": len(train), "val": len(val) if val is not train else 0,
                  "test": len(test)},
        "example_shape": list(train.example_shape),
        "preprocessing": pre.to_dict(),
    }
    return DataSplits(train=train, val=val, test=test, preprocessor=pre,
                      likelihood_hint=hint, info=info)
