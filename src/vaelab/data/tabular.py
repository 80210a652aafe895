"""CSV / TSV tables: header detection, a label column, dropped columns, NaN handling."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from vaelab.data.checks import data_errors_only
from vaelab.data.dataset import Dataset
from vaelab.errors import DataError

_MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell.strip().lower() in _MISSING
    return True


def _parse(cell: str) -> float:
    s = cell.strip()
    if s.lower() in _MISSING:
        return math.nan
    return float(s)


def _delimiter(path: Path, first: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


@data_errors_only("a CSV / TSV table")
def read_table(
    path: str | Path,
    label_column: str | None = None,
    drop_columns: list[str] | tuple[str, ...] = (),
    nan: str = "error",
    header: str = "auto",
) -> Dataset:
    """Read a delimited text table into a Dataset; every problem is one DataError sentence."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror}); check the path.") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path} is empty; give a CSV with one example per row.")
    delim = _delimiter(path, lines[0])
    try:
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO("\n".join(lines)),
                                                           delimiter=delim)]
    except csv.Error as exc:
        raise DataError(f"{path} is not valid CSV ({exc}).") from None
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError(
                f"{path}: row {i + 1} has {len(r)} fields but row 1 has {width}; every row needs "
                "the same number of columns."
            )
    first_numeric = [_is_number(c) for c in rows[0]]
    has_header = not all(first_numeric) and (
        len(rows) == 1 or any(not n and _is_number(c) for n, c in zip(first_numeric, rows[1],
                                                                          strict=True))
        or all(not n for n in first_numeric)
    )
    if header in ("yes", "no"):
        has_header = header == "yes"
    if has_header:
        names = [c or f"column{j}" for j, c in enumerate(rows[0])]
        body = rows[1:]
        first_line = 2
    else:
        names = [str(j) for j in range(width)]
        body = rows
        first_line = 1
    if not body:
        raise DataError(f"{path} has a header but no data rows.")
    label_column = _by_index(label_column, names)
    drop_columns = [_by_index(c, names) for c in drop_columns]
    for col in drop_columns:
        if col not in names:
            raise DataError(f"{path}: --drop-columns names '{col}', which is not a column "
                            f"(columns: {', '.join(names)}).")
    if label_column is not None and label_column not in names:
        raise DataError(f"{path}: label column '{label_column}' not found; columns are "
                        f"{', '.join(names)}.")
    keep = [j for j, n in enumerate(names) if n not in drop_columns and n != label_column]
    if not keep:
        raise DataError(f"{path}: no feature columns are left after the label and dropped "
                        "columns are removed.")
    x = np.empty((len(body), len(keep)), dtype=np.float32)
    for i, r in enumerate(body):
        for k, j in enumerate(keep):
            try:
                x[i, k] = _parse(r[j])
            except ValueError:
                raise DataError(
                    f"{path}: column '{names[j]}' holds the non-numeric value {r[j]!r} "
                    f"(line {i + first_line}); make it the label with --label-column "
                    f"{names[j]}, drop it with --drop-columns {names[j]}, or fix the value."
                ) from None
    y = None
    label_names = None
    if label_column is not None:
        j = names.index(label_column)
        raw = [r[j] for r in body]
        known = sorted({v for v in raw if v.strip().lower() not in _MISSING},
                       key=lambda v: (not _is_number(v), float(v) if _is_number(v) else 0, v))
        label_names = known
        index = {v: k for k, v in enumerate(known)}
        y = np.array([index.get(v, -1) for v in raw], dtype=np.int64)
    feature_names = [names[j] for j in keep] if has_header else None
    x, y = handle_nonfinite(x, y, str(path), nan, feature_names, first_line)
    return Dataset(x=x, y=y, name=path.stem, label_names=label_names,
                   feature_names=feature_names)


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
