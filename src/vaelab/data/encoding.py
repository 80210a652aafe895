"""A table in model space: per-column encoding fitted on the training split (preprocess "columns").

Layout of one encoded row, column by column in file order, then one observed-flag per column:

- numeric: one slot, standardised with the training split's mean and standard deviation;
- binary: one slot, 0 or 1;
- categorical: one slot per category seen in the training split plus a last "unknown" slot
  (categories met only in other rows, or in new data, go there), one-hot;
- observed flags: 1 where the cell holds a value, 0 where it is missing; a missing cell's own
  slots are 0. The encoder sees the flags; the likelihood leaves missing cells out.

The fitted description (``fit``) is plain JSON: it goes into config.json (preprocessing) and
model.json (the likelihood is rebuilt from it), never a pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vaelab.data.columns import Column

UNKNOWN = "(unknown)"
"""Display name of a categorical column's "unknown" category."""


def fit(x: np.ndarray, columns: list[Column]) -> dict[str, Any]:
    """Fit the encoding on raw training codes ``x`` (N, C): statistics and slot layout."""
    x = np.asarray(x, dtype=np.float64)
    out: list[dict[str, Any]] = []
    slot = 0
    for j, col in enumerate(columns):
        v = x[:, j]
        obs = v[np.isfinite(v)]
        d: dict[str, Any] = {"name": col.name, "kind": col.kind, "slot": slot,
                             "observed_train": len(obs)}
        if col.kind == "numeric":
            mean = float(obs.mean()) if len(obs) else 0.0
            std = float(obs.std()) if len(obs) > 1 else 1.0
            d.update(width=1, mean=mean, std=std if std > 1e-8 else 1.0, integer=col.integer,
                     decimals=col.decimals,
                     min=float(obs.min()) if len(obs) else col.min,
                     max=float(obs.max()) if len(obs) else col.max)
        elif col.kind == "binary":
            d.update(width=1, categories=list(col.categories or ["0", "1"]),
                     rate=float(obs.mean()) if len(obs) else 0.5)
        else:
            cats = list(col.categories or [])
            counts = np.bincount(obs.astype(np.int64)[obs >= 0], minlength=len(cats))
            seen = [k for k in range(len(cats)) if counts[k] > 0]
            d.update(width=len(seen) + 1, categories=cats,
                     slots=[seen.index(k) if k in seen else len(seen) for k in range(len(cats))],
                     labels=[cats[k] for k in seen] + [UNKNOWN],
                     counts=[int(counts[k]) for k in seen] + [0])
        slot += d["width"]
        out.append(d)
    for j, d in enumerate(out):
        d["mask_slot"] = slot + j
    return {"columns": out, "width": slot + len(out)}


def transform(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw codes (N, C) to encoded rows (N, width); NaN cells become observed-flag 0."""
    x = np.asarray(x, dtype=np.float32)
    cols = params["columns"]
    out = np.zeros((len(x), params["width"]), dtype=np.float32)
    for j, d in enumerate(cols):
        v = x[:, j]
        obs = np.isfinite(v)
        out[:, d["mask_slot"]] = obs
        s = d["slot"]
        if d["kind"] == "numeric":
            out[obs, s] = (v[obs] - d["mean"]) / d["std"]
        elif d["kind"] == "binary":
            out[obs, s] = v[obs] > 0.5
        else:
            slots = np.asarray(d["slots"], dtype=np.int64)
            k = v[obs].astype(np.int64)
            unknown = d["width"] - 1
            idx = np.where((k >= 0) & (k < len(slots)), slots[np.clip(k, 0, len(slots) - 1)],
                           unknown)
            out[np.flatnonzero(obs), s + idx] = 1.0
    return out


def inverse(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Encoded rows (or decoder means) back to raw codes (N, C): numeric values, the binary
    probability of the second value, the most likely known category's index."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    cols = params["columns"]
    out = np.zeros((len(x), len(cols)), dtype=np.float32)
    for j, d in enumerate(cols):
        s = d["slot"]
        if d["kind"] == "numeric":
            out[:, j] = x[:, s] * d["std"] + d["mean"]
        elif d["kind"] == "binary":
            out[:, j] = x[:, s]
        else:
            out[:, j] = category_codes(x[:, s : s + d["width"]], d)
    return out


def category_codes(probs: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    """Index into ``d['categories']`` of the most likely known category of each row."""
    seen = [k for k, sl in enumerate(d["slots"]) if sl < d["width"] - 1]
    if not seen:
        return np.zeros(len(probs), dtype=np.float32)
    known = probs[:, : d["width"] - 1]
    return np.asarray(seen, dtype=np.float32)[known.argmax(1)]


def observed(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """(N, C) booleans: which cells of encoded rows hold a value."""
    cols = params["columns"]
    return np.asarray(x)[:, [d["mask_slot"] for d in cols]] > 0.5


def fit_table(full: Any, splits: tuple[Any, Any, Any], kind: str) -> tuple[Any, list[str]]:
    """The "columns" Preprocessor of a table's splits (train, val, test) and notes for the log.

    Returns (None, notes) when ``kind`` asks for another preprocessing of an all-numeric,
    complete table: it is then one plain vector per row, as before column types existed (the
    schema is removed from the splits).
    """
    from vaelab.data.preprocessing import Preprocessor
    from vaelab.errors import DataError

    if full.columns is None:
        raise DataError(f"--preprocess columns applies to CSV / TSV tables, not {full.name}; "
                        "use --preprocess auto.")
    notes = list((full.table or {}).get("notes", []))
    train, val, test = splits
    if kind != "columns":
        other = [c for c in full.columns if c["kind"] != "numeric"]
        if other or np.isnan(np.asarray(full.x)).any():
            why = (f"column '{other[0]['name']}' is {other[0]['kind']}" if other
                   else "it has missing cells")
            raise DataError(f"--preprocess {kind} treats every column as one number, but "
                            f"{why}; leave --preprocess auto (each column by its type) or "
                            "drop / declare those columns.")
        for ds in {id(d): d for d in (full, *splits)}.values():
            ds.columns = None
        return None, notes
    pre = Preprocessor(kind="columns", params={"columns": full.columns}).fit(train.x)
    pre.params["table"] = {k: v for k, v in (full.table or {}).items() if k != "notes"}
    for split in (val, test):
        if split is train:
            continue
        notes += unseen_notes(np.asarray(split.x), pre.params, split.name)
    return pre, notes


def unseen_notes(x: np.ndarray, params: dict[str, Any], where: str) -> list[str]:
    """Warnings naming categories of ``x`` (raw codes) that the training split never held."""
    out = []
    for j, d in enumerate(params["columns"]):
        if d["kind"] != "categorical":
            continue
        v = x[:, j]
        k = v[np.isfinite(v)].astype(np.int64)
        unknown = d["width"] - 1
        slots = np.asarray(d["slots"])
        bad = k[(k < 0) | (k >= len(slots)) | (slots[np.clip(k, 0, len(slots) - 1)] == unknown)]
        for code, count in zip(*np.unique(bad, return_counts=True), strict=True):
            value = d["categories"][code] if 0 <= code < len(d["categories"]) else "?"
            out.append(f"warning: column '{d['name']}': value {value!r} ({count} row"
                       f"{'s' if count > 1 else ''} of {where}) was not seen in training; "
                       "treated as the 'unknown' category")
    return out
