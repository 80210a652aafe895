"""Users' own data (``--data PATH``): dispatch on the path's kind."""

from __future__ import annotations

from pathlib import Path

from vaelab.data.arrays import load_npy, load_npz
from vaelab.data.config import DataConfig
from vaelab.data.factors import attach_factors, read_factors
from vaelab.data.images import load_image_folder
from vaelab.data.registry import RawData
from vaelab.data.tabular import read_table
from vaelab.errors import DataError


def load_file(cfg: DataConfig) -> RawData:
    path = Path(cfg.data)
    if not path.exists():
        raise DataError(f"{path} does not exist; check the --data path.")
    if path.is_dir():
        ds = load_image_folder(path, cfg.image_size, cfg.color, cfg.stream, cfg.chunk_mb)
        attach_factors(ds, path, read_factors(path, cfg, ds.row_names))
        return RawData(train=ds, default_preprocess="minmax")
    suffix = path.suffix.lower()
    found = read_factors(path, cfg)
    dropped = [*cfg.drop_columns, *cfg.factor_columns]  # factors are not features
    if suffix == ".npy":
        ds = load_npy(path, cfg.nan, cfg.stream, cfg.chunk_mb)
    elif suffix == ".npz":
        ds = load_npz(path, cfg.nan)
    elif suffix in (".csv", ".tsv", ".txt", ".tab"):
        from vaelab.data.columns import declared_types

        ds = read_table(path, cfg.label_column, dropped, cfg.nan, cfg.header,
                        decimal=cfg.decimal, encoding=cfg.encoding,
                        types=declared_types(cfg.categorical, cfg.numeric, cfg.binary,
                                             cfg.columns))
    else:
        raise DataError(f"{path}: unknown file type '{suffix}'; use .csv, .tsv, .npy, .npz or a "
                        "folder of images.")
    if cfg.label_column is not None and suffix not in (".csv", ".tsv", ".txt", ".tab"):
        raise DataError(f"--label-column applies to CSV / TSV files, not {suffix}; store labels "
                        "as y in an .npz.")
    attach_factors(ds, path, found)
    if ds.columns is not None:
        return RawData(train=ds, default_preprocess="columns")
    bounded = ds.x.ndim == 4
    return RawData(train=ds, default_preprocess="minmax" if bounded else "standardize")
