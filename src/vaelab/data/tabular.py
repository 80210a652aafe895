"""CSV / TSV tables as spreadsheets export them: dialect, header, label, column types, gaps.

``read_table`` detects the encoding, delimiter and decimal mark (``vaelab.data.dialect``), the
header line, and each column's type (``vaelab.data.columns``); the Dataset it returns holds raw
codes (N, columns) with NaN for missing cells and the schema in ``columns``. ``read_like`` reads
new rows (to score or impute) under a run's fitted columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data.checks import data_errors_only
from vaelab.data.columns import Column, Schema, build_column, codes_for
from vaelab.data.dataset import Dataset
from vaelab.data.dialect import (
    DECIMALS,
    Dialect,
    decode_text,
    detect_decimal,
    is_missing,
    parse_number,
    split_rows,
)
from vaelab.errors import DataError


@dataclass
class TextTable:
    """A delimited file as text: header names, body rows of cells, and how it is written."""

    path: Path
    names: list[str]
    body: list[list[str]]
    dialect: Dialect
    has_header: bool

    @property
    def first_line(self) -> int:
        return 2 if self.has_header else 1


def read_text_table(path: str | Path, header: str = "auto", decimal: str = "auto",
                    encoding: str = "auto") -> TextTable:
    """Split a delimited file into names and rows of stripped cells (no typing yet)."""
    path = Path(path)
    if decimal not in DECIMALS:
        raise DataError(f"--decimal got {decimal!r}; choose auto, '.' or ','.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror}); check the path.") from None
    text, enc, bom = decode_text(raw, path, encoding)
    rows, delim = split_rows(text, path, path.suffix.lower())
    if not rows:
        raise DataError(f"{path} is empty; give a CSV with one example per row.")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            if len(r) > width and not any(r[width:]):  # trailing delimiters
                rows[i] = r[:width]
                continue
            raise DataError(
                f"{path}: row {i + 1} has {len(r)} fields but row 1 has {width}; every row needs "
                "the same number of columns (check the delimiter and quotes).")
    dec = detect_decimal(rows, delim) if decimal == "auto" else decimal

    def numeric(cell: str) -> bool:
        return is_missing(cell) or parse_number(cell, dec) is not None

    first_numeric = [numeric(c) for c in rows[0]]
    has_header = not all(first_numeric) and (
        len(rows) == 1
        or any(not n and numeric(c) for n, c in zip(first_numeric, rows[1], strict=True))
        or all(not n for n in first_numeric)
    )
    if header in ("yes", "no"):
        has_header = header == "yes"
    if has_header:
        names = [c or f"column{j}" for j, c in enumerate(rows[0])]
        body = rows[1:]
    else:
        names = [str(j) for j in range(width)]
        body = rows
    dup = [n for n, k in Counter(names).items() if k > 1]
    if dup:
        raise DataError(f"{path}: the header names column '{dup[0]}' more than once; give every "
                        "column its own name.")
    if not body:
        raise DataError(f"{path} has a header but no data rows.")
    return TextTable(path, names, body, Dialect(enc, delim, dec, bom), has_header)


@data_errors_only("a CSV / TSV table")
def read_table(
    path: str | Path,
    label_column: str | None = None,
    drop_columns: list[str] | tuple[str, ...] = (),
    nan: str = "auto",
    header: str = "auto",
    *,
    decimal: str = "auto",
    encoding: str = "auto",
    types: dict[str, str] | None = None,
) -> Dataset:
    """Read a delimited text table into a Dataset; every problem is one DataError sentence.

    ``types`` maps column names to numeric / binary / categorical (see
    :func:`vaelab.data.columns.declared_types`); other columns are detected. ``nan``: ``auto``
    or ``mask`` keep missing cells (NaN, masked out of the likelihood), ``drop`` drops rows with
    one, ``error`` refuses them.
    """
    table = read_text_table(path, header, decimal, encoding)
    path, names, body = table.path, table.names, table.body
    label_column = _by_index(label_column, names)
    drop_columns = [_by_index(c, names) for c in drop_columns]
    for col in drop_columns:
        if col not in names:
            raise DataError(f"{path}: --drop-columns names '{col}', which is not a column "
                            f"(columns: {', '.join(names)}).")
    if label_column is not None and label_column not in names:
        raise DataError(f"{path}: label column '{label_column}' not found; columns are "
                        f"{', '.join(names)}.")
    types = dict(types or {})
    for col, kind in types.items():
        where = ("the label column" if col == label_column else
                 "a dropped column" if col in drop_columns else None)
        if col not in names:
            raise DataError(f"{path}: column '{col}' is declared {kind} but is not a column "
                            f"(columns: {', '.join(names)}).")
        if where:
            raise DataError(f"{path}: column '{col}' is declared {kind} but is {where}; "
                            "declare only feature columns.")
    keep = [j for j, n in enumerate(names) if n not in drop_columns and n != label_column]
    if not keep:
        raise DataError(f"{path}: no feature columns are left after the label and dropped "
                        "columns are removed.")
    columns: list[Column] = []
    codes: list[np.ndarray] = []
    notes: list[str] = []
    for j in keep:
        col, c, note = build_column(names[j], [r[j] for r in body], table.dialect.decimal,
                                    types.get(names[j]), str(path), table.first_line)
        if note:
            notes.append(note)
        if col is not None:
            columns.append(col)
            codes.append(c)
    if not columns:
        raise DataError(f"{path}: every feature column is empty; give values to learn from.")
    x = np.stack(codes, axis=1).astype(np.float32)
    y = None
    label_names = None
    if label_column is not None:
        j = names.index(label_column)
        raw = [r[j] for r in body]
        known = sorted({v for v in raw if not is_missing(v)},
                       key=lambda v: (parse_number(v) is None, parse_number(v) or 0, v))
        label_names = known
        index = {v: k for k, v in enumerate(known)}
        y = np.array([index.get(v, -1) for v in raw], dtype=np.int64)
    feature_names = [c.name for c in columns] if table.has_header else None
    x, y = missing_cells(x, y, str(path), nan, [c.name for c in columns], table.first_line)
    for c, col in zip(x.T, columns, strict=True):
        col.missing = int(np.isnan(c).sum())
    n_miss = sum(c.missing for c in columns)
    if n_miss:
        worst = max(columns, key=lambda c: c.missing)
        notes.append(f"{n_miss} missing cells ({n_miss / x.size:.1%}; most in '{worst.name}': "
                     f"{worst.missing}) are kept and left out of the likelihood; --nan drop "
                     "drops those rows instead")
    dia = table.dialect
    if dia.decimal == "," or dia.encoding != "utf-8" or dia.delimiter not in (",", "\t"):
        mark = "comma" if dia.decimal == "," else "point"
        notes.append(f"read {path.name} as {dia.encoding} text with {dia.delimiter!r} between "
                     f"fields and a decimal {mark}")
    schema = Schema(columns, notes)
    return Dataset(x=x, y=y, name=path.stem, label_names=label_names,
                   feature_names=feature_names, columns=schema.to_list(),
                   table={"dialect": table.dialect.to_dict(), "notes": notes,
                          "label_column": label_column, "has_header": table.has_header})


def missing_cells(x: np.ndarray, y: np.ndarray | None, name: str, nan: str,
                  columns: list[str], first_line: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep missing cells (``auto`` / ``mask``), drop their rows (``drop``) or refuse them."""
    if nan in ("auto", "mask"):
        return x, y
    return handle_nonfinite(x, y, name, nan, columns, first_line)


def read_like(path: str | Path, fitted: dict[str, Any], *, label_column: str | None = None,
              decimal: str = "auto", encoding: str = "auto", header: str = "auto"
              ) -> tuple[TextTable, np.ndarray, list[str | None], list[str]]:
    """New rows under a run's fitted columns: the text table, raw codes (N, C), the label
    column's cells (or None) and warnings (values the run never saw, which become the
    "unknown" category or, for binary columns, missing cells)."""
    table = read_text_table(path, header, decimal, encoding)
    cols = [Column.from_dict({**d, "categories": d.get("categories")})
            for d in fitted["columns"]]
    missing = [c.name for c in cols if c.name not in table.names]
    if missing:
        raise DataError(f"{table.path} lacks the column(s) {', '.join(missing)} the run was "
                        f"trained on (it has {', '.join(table.names)}); add them (empty cells "
                        "are missing values).")
    warnings: list[str] = []
    codes = []
    for col in cols:
        j = table.names.index(col.name)
        c, unknown = codes_for(col, [r[j] for r in table.body], table.dialect.decimal,
                               str(table.path), table.first_line)
        codes.append(c)
        for value, count in unknown.most_common():
            what = ("the 'unknown' category" if col.kind == "categorical" else
                    "a missing cell")
            warnings.append(f"column '{col.name}': value {value!r} ({count} row"
                            f"{'s' if count > 1 else ''}) was not seen in training; treated as "
                            f"{what}")
    labels: list[str | None] = [None] * len(table.body)
    if label_column is not None:
        label_column = _by_index(label_column, table.names)
        if label_column not in table.names:
            raise DataError(f"{table.path}: label column '{label_column}' not found; columns "
                            f"are {', '.join(table.names)}.")
        j = table.names.index(label_column)
        labels = [None if is_missing(r[j]) else r[j] for r in table.body]
    return table, np.stack(codes, axis=1).astype(np.float32), labels, warnings


def _by_index(spec: str | None, names: list[str]) -> str | None:
    """A column given as a 0-based index (negative from the end) becomes its name."""
    if spec is None or spec in names:
        return spec
    try:
        i = int(spec)
    except ValueError:
        return spec
    return names[i] if -len(names) <= i < len(names) else spec


def handle_nonfinite(x: np.ndarray, y: np.ndarray | None, name: str, nan: str,
                     columns: list[str] | None = None, first_line: int = 0
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Refuse NaN / inf (naming count and first positions) or drop those rows (nan='drop')."""
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return x, y
    rows = np.flatnonzero(bad.any(axis=1))
    if nan == "drop":
        keep = np.setdiff1d(np.arange(len(x)), rows)
        return x[keep], None if y is None else y[keep]
    pos = np.argwhere(bad)[:3]
    where = ", ".join(
        f"row {r + first_line if first_line else r} "
        f"column {columns[c] if columns and c < len(columns) else c}"
        for r, c in pos
    )
    raise DataError(
        f"{name} has {int(bad.sum())} missing or infinite values in {len(rows)} rows "
        f"(first at {where}); fix them or pass --nan drop to drop those rows."
    )
