"""Known factors of variation in users' data: ``--factor-columns`` of a CSV / TSV table, or a
``factors.csv`` inside an image folder.

Factor columns are taken out of the features (the model never sees them) and travel with the
rows as ``Dataset.factors`` (integer codes) and ``Dataset.factor_names``. Each column is coded
by :func:`factor_codes`: text values by their sorted distinct values, numbers with at most 20
distinct values by their sorted values, other numbers by 20 equal-width bins over their range
(the disentanglement metrics need discrete factors). A missing cell is a value of its own.

An image folder's factors are read from ``factors.csv`` inside it, or from
``<folder>.factors.csv`` beside it: a ``file`` column with each image's path relative to the
folder (as ``cats/001.png`` with class sub-folders) and one column per factor; every image needs
a row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset
from vaelab.errors import DataError

FACTOR_BINS = 20
"""Numeric factor columns with more distinct values are cut into this many bins."""
FACTORS_FILE = "factors.csv"
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")


def factor_codes(values: list[str]) -> np.ndarray:
    """Integer codes of one factor column's cells (see the module docstring)."""
    cells = [v.strip() for v in values]
    try:
        nums = np.array([float(v) for v in cells], dtype=np.float64)
    except ValueError:
        nums = None
    if nums is not None and np.isfinite(nums).all():
        distinct = np.unique(nums)
        if len(distinct) <= FACTOR_BINS:
            return np.searchsorted(distinct, nums).astype(np.int32)
        edges = np.histogram_bin_edges(nums, FACTOR_BINS)
        return np.clip(np.digitize(nums, edges[1:-1]), 0, FACTOR_BINS - 1).astype(np.int32)
    order = {v: k for k, v in enumerate(sorted(set(cells)))}
    return np.array([order[v] for v in cells], dtype=np.int32)


def read_columns(path: Path, header: str = "auto", decimal: str = "auto",
                 encoding: str = "auto") -> tuple[list[str], list[list[str]]]:
    """(column names, body rows) of a delimited text file, read exactly as the table's features
    are (``tabular.read_text_table``: encoding, delimiter, header), so the rows agree."""
    from vaelab.data.tabular import read_text_table

    table = read_text_table(path, header, decimal, encoding)
    return table.names, table.body


def _column_index(path: Path, names: list[str], spec: str) -> int:
    """A factor column given by header name or 0-based index."""
    if spec in names:
        return names.index(spec)
    try:
        i = int(spec)
    except ValueError:
        i = None
    if i is not None and -len(names) <= i < len(names):
        return i % len(names)
    raise DataError(f"{path}: --factor-columns names '{spec}', which is not a column (columns: "
                    f"{', '.join(names)}).")


def table_factors(path: Path, columns: list[str], header: str = "auto", decimal: str = "auto",
                  encoding: str = "auto") -> tuple[np.ndarray, list[str]]:
    """Codes (rows, K) and names of the factor ``columns`` of a table."""
    names, body = read_columns(path, header, decimal, encoding)
    idx = [_column_index(path, names, c) for c in columns]
    codes = np.stack([factor_codes([r[j] for r in body]) for j in idx], 1)
    return codes, [names[j] for j in idx]


def factors_file(root: Path) -> Path | None:
    """``root/factors.csv``, else ``<root>.factors.csv`` beside the folder, else None."""
    for path in (root / FACTORS_FILE, root.parent / f"{root.name}.{FACTORS_FILE}"):
        if path.is_file():
            return path
    return None


def folder_factors(root: Path, path: Path, columns: list[str], rows: list[str] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """Codes (images, K) and names from the factors file ``path``, in the order of ``rows``
    (each image's path relative to ``root``; default: the folder's sorted order)."""
    from vaelab.data.images import list_image_folder

    names, body = read_columns(path, "yes")
    if "file" not in names:
        raise DataError(f"{path} has no 'file' column; name each image's path relative to "
                        f"{root} in a column 'file' (e.g. cats/001.png).")
    fcol = names.index("file")
    want = list(columns) or [n for n in names if n != "file"]
    if not want:
        raise DataError(f"{path} has no factor columns beside 'file'; add one column per "
                        "factor.")
    idx = [_column_index(path, names, c) for c in want]
    row_of = {r[fcol].replace("\\", "/").lstrip("./"): i for i, r in enumerate(body)}
    if rows is None:
        rows = [f.relative_to(root).as_posix() for f, _ in list_image_folder(root)[1]]
    order = []
    for rel in rows:
        if rel not in row_of:
            raise DataError(f"{path} has no row for the image '{rel}'; give every image of "
                            f"{root} one row (column 'file' holds its path in the folder).")
        order.append(row_of[rel])
    picked = [body[i] for i in order]
    codes = np.stack([factor_codes([r[j] for r in picked]) for j in idx], 1)
    return codes, [names[j] for j in idx]


def read_factors(path: Path, cfg: DataConfig, rows: list[str] | None = None
                 ) -> tuple[np.ndarray, list[str]] | None:
    """(codes, names) of the factors ``cfg`` and the files declare for the data at ``path``,
    or None. Read before the features, so a wrong name is reported as a factor column.
    ``rows``: an image folder's files in the order of its loaded rows."""
    columns = list(cfg.factor_columns)
    if path.is_dir():
        found = factors_file(path)
        if found is not None:
            return folder_factors(path, found, columns, rows)
        if columns:
            raise DataError(f"--factor-columns for an image folder reads {path / FACTORS_FILE} "
                            f"(or {path.name}.{FACTORS_FILE} beside the folder), which does not "
                            "exist; write it (a 'file' column and one column per factor).")
        return None
    if not columns:
        return None
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"--factor-columns applies to CSV / TSV files and image folders (their "
                        f"factors.csv), not {path.suffix} files.")
    return table_factors(path, columns, cfg.header, cfg.decimal, cfg.encoding)


def attach_factors(ds: Dataset, path: Path, found: tuple[np.ndarray, list[str]] | None
                   ) -> Dataset:
    """Give ``ds`` (read from ``path``) the factors ``read_factors`` found."""
    if found is None:
        return ds
    codes, names = found
    if len(codes) != len(ds):
        raise DataError(f"{path}: {len(ds)} examples were kept but the factor columns have "
                        f"{len(codes)} rows (rows were dropped for missing values); fix the "
                        "missing values or use --nan auto.")
    ds.factors, ds.factor_names = codes, names
    return ds
