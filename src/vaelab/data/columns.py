"""A table's column schema: each column numeric, binary or categorical, detected or declared.

Detection, per column of text cells (missing cells ignored):

- every cell a number: **numeric** (``integer`` when all are whole numbers), or **binary** when
  the values are exactly 0 and 1;
- no cell a number: **binary** with two distinct values (``no`` / ``yes``), **categorical**
  with more (sorted names); a column with a different text in nearly every row (an identifier,
  free text) is refused unless declared;
- numbers and text mixed: refused, naming the column, the value and its line.

``--numeric``, ``--binary``, ``--categorical`` (or a ``[data.columns]`` table) override the
detection. A Dataset of a table holds raw codes: the number (numeric), 0 / 1 (binary) or the
index into ``categories`` (categorical), NaN for a missing cell.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vaelab.data.dialect import decimals_of, format_number, is_missing, parse_number
from vaelab.errors import DataError

KINDS = ("numeric", "binary", "categorical")
MAX_CATEGORIES = 100
"""Detected categorical columns with more distinct values than this are refused (declare them
with --categorical to keep them)."""
POSITIVE = ("1", "yes", "y", "true", "t", "on", "positive", "pos", "present", "ja", "oui", "si",
            "sí")
"""Second (coded 1) value of a detected two-valued text column, when it is one of these."""


@dataclass
class Column:
    """One feature column: its kind, categories (binary: the two values, coded 0 and 1) and,
    for numeric columns, whether the values are integers and how many decimals they show."""

    name: str
    kind: str
    categories: list[str] | None = None
    integer: bool = False
    decimals: int = 0
    min: float | None = None
    max: float | None = None
    declared: bool = False
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        keep = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**keep)


@dataclass
class Schema:
    """The columns of a table, in file order, and notes on what was detected."""

    columns: list[Column]
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.columns]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> Schema:
        return cls([Column.from_dict(d) for d in items])


def declared_types(categorical: list[str] | tuple[str, ...] = (),
                   numeric: list[str] | tuple[str, ...] = (),
                   binary: list[str] | tuple[str, ...] = (),
                   table: dict[str, str] | str | None = None) -> dict[str, str]:
    """The column kinds the user declared: flags and the ``[data.columns]`` table (a dict, or
    ``"a=categorical,b=numeric"`` on the command line); a column named twice is refused."""
    out: dict[str, str] = {}
    pairs: list[tuple[str, str, str]] = []
    for kind, names in (("categorical", categorical), ("numeric", numeric), ("binary", binary)):
        pairs += [(str(n), kind, f"--{kind}") for n in names or ()]
    if isinstance(table, str):
        items = [p for p in table.split(",") if p.strip()]
        table = {}
        for p in items:
            if "=" not in p:
                raise DataError(f"--columns got {p!r}; write NAME=KIND pairs such as "
                                "colour=categorical,age=numeric.")
            k, v = p.split("=", 1)
            table[k.strip()] = v.strip()
    for name, kind in (table or {}).items():
        pairs.append((str(name), str(kind).strip().lower(), "[data.columns]"))
    for name, kind, where in pairs:
        if kind not in KINDS:
            raise DataError(f"{where} gives column '{name}' the type {kind!r}; use numeric, "
                            "binary or categorical.")
        if name in out and out[name] != kind:
            raise DataError(f"column '{name}' is declared both {out[name]} and {kind}; declare "
                            "it once.")
        out[name] = kind
    return out


def _num_name(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _sort_key(name: str) -> tuple[int, float, str]:
    v = parse_number(name, ".")
    return (0, v, "") if v is not None else (1, 0.0, name)


def build_column(name: str, cells: list[str], decimal: str, declared: str | None,
                 where: str, first_line: int) -> tuple[Column | None, np.ndarray, str | None]:
    """The column read from its text ``cells``: (Column or None when empty, raw codes, note)."""
    n = len(cells)
    missing = np.array([is_missing(c) for c in cells], dtype=bool)
    observed = [(i, c) for i, c in enumerate(cells) if not missing[i]]
    codes = np.full(n, np.nan, dtype=np.float32)
    if not observed:
        note = f"column '{name}' is empty in every row; it is left out"
        return None, codes, note
    numbers = [parse_number(c, decimal) for _, c in observed]
    n_num = sum(v is not None for v in numbers)
    kind = declared
    note = None
    if kind is None:
        if n_num == len(observed):
            values = {float(v) for v in numbers}  # type: ignore[arg-type]
            kind = "binary" if values == {0.0, 1.0} else "numeric"
        elif n_num == 0:
            distinct = {c for _, c in observed}
            if len(distinct) > MAX_CATEGORIES or (len(distinct) > 20
                                                  and len(distinct) > 0.5 * len(observed)):
                raise DataError(
                    f"{where}: column '{name}' holds {len(distinct)} different text values in "
                    f"{len(observed)} rows, more like an identifier or free text than "
                    f"categories; drop it with --drop-columns {name}, or keep it as categories "
                    f"with --categorical {name}.")
            kind = "binary" if len(distinct) == 2 else "categorical"
            note = (f"column '{name}' holds text: read as {kind} ({len(distinct)} values); "
                    f"--label-column {name} makes it the label, --drop-columns {name} leaves it "
                    "out")
        else:
            i, bad = next((i, c) for (i, c), v in zip(observed, numbers, strict=True)
                          if v is None)
            n_text = len(observed) - n_num
            other = "," if decimal == "." else "."
            hint = ""
            if parse_number(bad, other) is not None:
                mark = "comma" if other == "," else "point"
                hint = (f" It reads as a number with a decimal {mark}: pass --decimal {other} "
                        "if the file writes numbers that way.")
            raise DataError(
                f"{where}: column '{name}' holds numbers but also the non-numeric value "
                f"{bad!r} (line {i + first_line}{f', and {n_text - 1} more' if n_text > 1 else ''}"
                f"); fix or blank those cells (a blank cell is missing), or pass "
                f"--categorical {name} to treat the column as categories.{hint}")
    if kind == "numeric":
        if n_num < len(observed):
            i, bad = next((i, c) for (i, c), v in zip(observed, numbers, strict=True)
                          if v is None)
            raise DataError(f"{where}: column '{name}' is declared numeric but holds the "
                            f"non-numeric value {bad!r} (line {i + first_line}); fix the value, "
                            f"or declare the column --categorical {name}.")
        vals = np.array(numbers, dtype=np.float64)
        if not np.isfinite(vals).all():
            i = observed[int(np.flatnonzero(~np.isfinite(vals))[0])][0]
            raise DataError(f"{where}: column '{name}' holds the infinite value {cells[i]!r} "
                            f"(line {i + first_line}); give a finite number or blank the cell "
                            "(a blank cell is missing).")
        big = np.abs(vals) > np.finfo(np.float32).max  # the codes are float32: it would be inf
        if big.any():
            i = observed[int(np.flatnonzero(big)[0])][0]
            raise DataError(f"{where}: column '{name}' holds {cells[i]!r} (line "
                            f"{i + first_line}), beyond float32's range (about 3.4e38); "
                            "rescale the column (e.g. other units) or blank the cell.")
        codes[[i for i, _ in observed]] = vals
        integer = bool(np.all(vals == np.round(vals)))
        # digits shown: what 95% of the cells use (not a float artefact such as 5.640000000000001)
        dec = int(np.ceil(np.percentile([decimals_of(c, decimal) for _, c in observed], 95)))
        col = Column(name, "numeric", integer=integer, decimals=0 if integer else max(dec, 1),
                     min=float(vals.min()), max=float(vals.max()), declared=declared is not None,
                     missing=int(missing.sum()))
        return col, codes, note
    # binary / categorical: category names (numbers in canonical form, sorted numerically)
    names = ([_num_name(v) for v in numbers] if n_num == len(observed)  # type: ignore[arg-type]
             else [c for _, c in observed])
    distinct = sorted(set(names), key=_sort_key)
    if kind == "binary":
        if len(distinct) > 2:
            shown = ", ".join(repr(d) for d in distinct[:5])
            raise DataError(f"{where}: column '{name}' is declared binary but holds "
                            f"{len(distinct)} different values ({shown}); declare it "
                            f"--categorical {name} instead.")
        if len(distinct) == 2 and distinct[0].lower() in POSITIVE and \
                distinct[1].lower() not in POSITIVE:
            distinct = [distinct[1], distinct[0]]
    index = {v: k for k, v in enumerate(distinct)}
    codes[[i for i, _ in observed]] = [index[v] for v in names]
    col = Column(name, kind, categories=distinct, declared=declared is not None,
                 missing=int(missing.sum()))
    return col, codes, note


def codes_for(column: Column, cells: list[str], decimal: str, where: str, first_line: int
              ) -> tuple[np.ndarray, Counter[str]]:
    """Raw codes of new cells under a fitted ``column`` (scoring / imputing new data), and the
    values it does not know (categorical: coded -1, the "unknown" category; binary: missing)."""
    n = len(cells)
    codes = np.full(n, np.nan, dtype=np.float32)
    unknown: Counter[str] = Counter()
    index = {v: k for k, v in enumerate(column.categories or [])}
    for i, cell in enumerate(cells):
        if is_missing(cell):
            continue
        v = parse_number(cell, decimal)
        if column.kind == "numeric":
            if v is None or not np.isfinite(v):
                raise DataError(f"{where}: column '{column.name}' is numeric in the run but line "
                                f"{i + first_line} holds {cell!r}; fix the value or blank it (a "
                                "blank cell is missing).")
            codes[i] = v
            continue
        name = _num_name(v) if v is not None and cell not in index else cell
        if name in index:
            codes[i] = index[name]
        else:
            unknown[cell] += 1
            codes[i] = -1 if column.kind == "categorical" else np.nan
    return codes, unknown


def format_cell(column: Column, code: float, decimal: str = ".") -> str:
    """A raw code as the text of a CSV cell (empty for missing)."""
    if not np.isfinite(code):
        return ""
    if column.kind == "numeric":
        return format_number(float(code), 0 if column.integer else column.decimals, decimal)
    cats = column.categories or []
    k = round(float(code))
    return cats[k] if 0 <= k < len(cats) else ""
