"""Synthetic table rows (``vaelab sample RUN -n N --out rows.csv``): codes from a sampler, each
cell drawn from the decoder's per-column distribution, written back with the original column
names, category names and number formats (integers stay integers, numbers stay within the
training range; the run's file dialect: delimiter, decimal mark, encoding)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vaelab.tabular.rows import raw_from_encoded, table_params

if TYPE_CHECKING:
    from vaelab.data.dialect import Dialect
    from vaelab.run import Run


@torch.no_grad()
def synthesize(run: Run, n: int, *, seed: int = 0, sampler: str = "prior",
               label: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """n synthetic rows as raw codes (n, columns), and their labels for label-conditioned
    models (cycling through the classes unless ``label``)."""
    from vaelab.samplers import load_sampler

    model = run.model.eval()
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    s = load_sampler(run, sampler)
    y = None
    if model.label_conditioned:
        k = model.spec.num_classes or 1
        y = (np.full(n, label) if label is not None else np.arange(n) % k).astype(np.int64)
    out = []
    for start in range(0, n, 4096):
        m = min(4096, n - start)
        z = s.codes(m, seed=seed + start, device=dev)
        yb = None
        if model.uses_labels:
            yb = (torch.as_tensor(y[start : start + m], device=dev) if y is not None
                  else torch.full((m,), -1, dtype=torch.long, device=dev))
        params = model.decode(z, yb)
        out.append(model.likelihood.sample(params, generator=gen).float().cpu().numpy())
    return raw_from_encoded(run, np.concatenate(out)), y


def write_csv(path: str | Path, header: list[str] | None, rows: list[list[str]],
              dialect: Dialect) -> Path:
    """Write rows with the dialect's delimiter and encoding (a BOM where the source had one),
    atomically."""
    from vaelab.modelio import atomic_write_bytes

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=dialect.delimiter, lineterminator="\n")
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    enc = dialect.encoding
    text = buf.getvalue()
    data = text.encode("utf-8-sig" if enc == "utf-8" and dialect.bom else enc,
                       errors="replace")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def write_synthetic(run: Run, codes: np.ndarray, labels: np.ndarray | None, path: str | Path
                    ) -> Path:
    """Synthetic rows as a CSV with the training table's columns and dialect."""
    from vaelab.data.columns import Column, format_cell
    from vaelab.data.dialect import Dialect

    params = table_params(run)
    cols = [Column.from_dict(d) for d in params["columns"]]
    table = params.get("table", {})
    dialect = Dialect.from_dict(table.get("dialect"))
    header = [c.name for c in cols]
    names = run.saved_json("config.json").get("label_names")
    label_col = table.get("label_column")
    if labels is not None:
        header.append(str(label_col or "label"))
    rows = []
    for i, r in enumerate(codes):
        row = [format_cell(c, v, dialect.decimal) for c, v in zip(cols, r, strict=True)]
        if labels is not None:
            row.append(names[labels[i]] if names and 0 <= labels[i] < len(names)
                       else str(labels[i]))
        rows.append(row)
    return write_csv(path, header, rows, dialect)


def sample_to_csv(run: Run, n: int, *, seed: int = 0, sampler: str = "prior",
                  label: int | None = None, out: str | Path | None = None) -> str:
    """``vaelab sample`` for a table run: write n synthetic rows and say where."""
    path = Path(out) if out else run.path / "outputs" / "samples.csv"
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        path = path.with_suffix(".csv")
    codes, labels = synthesize(run, n, seed=seed, sampler=sampler, label=label)
    write_synthetic(run, codes, labels, path)
    return f"wrote {path} ({n} synthetic rows, codes from the {sampler} sampler)"
