"""Anomaly scores of table rows: one number per row, higher = more unusual, and each column's
part in it.

``score``: the IWAE estimate of -log p(x_obs) in nats (K importance samples, seeded: the same
rows and seed give the same scores) for variational models; the reconstruction negative
log-likelihood -log p(x_obs | z = encoder(x)) for deterministic autoencoders. Missing cells are
left out of both. ``nll_<column>``: -log p(cell | z = posterior mean), the column's share of the
reconstruction term (0 for a missing cell). ``percentile``: the share of the run's validation
rows (training rows when it has none) that score lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.tabular.rows import BATCH, cell_terms, read_rows, table_params

if TYPE_CHECKING:
    from vaelab.run import Run

POSITIVE = {"1", "1.0", "true", "yes", "y", "anomaly", "outlier", "abnormal", "fraud"}


@dataclass
class Scores:
    """Per-row scores and per-column parts, plus ROC-AUC / AP when anomalies are marked."""

    score: np.ndarray
    columns: np.ndarray
    column_names: list[str]
    percentile: np.ndarray
    method: str
    labels: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@torch.no_grad()
def row_scores(run: Run, x: np.ndarray, k: int = 100, seed: int = 0) -> np.ndarray:
    """One score per encoded row (see the module docstring)."""
    model = run.model.eval()
    if not model.variational or k < 1:
        return cell_terms(run, x).sum(1)
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for start in range(0, len(x), BATCH):
        xb = torch.as_tensor(np.asarray(x[start : start + BATCH]), dtype=torch.float32,
                             device=dev)
        yb = (torch.full((len(xb),), -1, dtype=torch.long, device=dev)
              if model.uses_labels else None)
        lw = model.log_weights(xb, yb, k=k, generator=gen)
        out.append(-(torch.logsumexp(lw.double(), 0) - np.log(k)))
    return torch.cat(out).cpu().numpy()


def anomaly_flags(labels: list[str | None], anomaly: str | None) -> np.ndarray | None:
    """1 for rows the label marks as anomalies (``anomaly``, or 1 / true / yes / anomaly ...),
    0 for the others, -1 where the label is missing; None without labels."""
    if all(v is None for v in labels):
        return None
    values = {v for v in labels if v is not None}
    if anomaly is None:
        pos = {v for v in values if v.strip().lower() in POSITIVE}
        if len(pos) != 1 or len(values) != 2:
            from vaelab.errors import DataError

            shown = ", ".join(sorted(values)[:6])
            raise DataError(f"the label column holds {shown}; say which value marks an anomaly "
                            "with --anomaly-label VALUE.")
        anomaly = pos.pop()
    elif anomaly not in values:
        from vaelab.errors import DataError

        raise DataError(f"--anomaly-label {anomaly!r} is not a value of the label column (it "
                        f"holds {', '.join(sorted(values)[:6])}).")
    return np.array([-1 if v is None else int(v == anomaly) for v in labels], dtype=np.int64)


def detection_metrics(score: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    """ROC-AUC and average precision of ``score`` for the rows whose flag is known."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    known = flags >= 0
    y, s = flags[known], score[known]
    out: dict[str, Any] = {"n": int(known.sum()), "anomalies": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(roc_auc_score(y, s))
        out["average_precision"] = float(average_precision_score(y, s))
    return out


def reference_scores(run: Run, k: int, seed: int) -> np.ndarray:
    """Scores of the run's validation rows (training rows when it has none)."""
    data = run.data
    ref = data.val if data.val is not data.train else data.train
    return row_scores(run, np.asarray(ref.x), k=k, seed=seed)


def score(run: Run, data: str | Path, *, k: int = 100, seed: int = 0,
          label_column: str | None = None, anomaly_label: str | None = None) -> Scores:
    """Score every row of the table ``data`` with the run's model (``vaelab score``)."""
    params = table_params(run)
    _, _, x, labels, warnings = read_rows(run, data, label_column)
    s = row_scores(run, x, k=k, seed=seed)
    parts = cell_terms(run, x)
    ref = np.sort(reference_scores(run, k, seed))
    pct = np.searchsorted(ref, s, side="left") / max(len(ref), 1)
    flags = anomaly_flags(labels, anomaly_label) if label_column else None
    model = run.model
    method = (f"IWAE negative log-likelihood, K={k}" if model.variational and k >= 1
              else "reconstruction negative log-likelihood")
    metrics = detection_metrics(s, flags) if flags is not None else {}
    return Scores(score=s, columns=parts, column_names=[d["name"] for d in params["columns"]],
                  percentile=pct, method=method, labels=flags, metrics=metrics,
                  warnings=warnings)


def write_scores(result: Scores, path: str | Path) -> Path:
    """scores.csv: row (1-based, as in the file), score, percentile, [anomaly], nll_<column>."""
    import csv
    import io

    from vaelab.modelio import atomic_write_text

    path = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["row", "score", "percentile"] + (["anomaly"] if result.labels is not None else [])
    w.writerow(head + [f"nll_{n}" for n in result.column_names])
    for i in range(len(result.score)):
        row = [i + 1, f"{result.score[i]:.6g}", f"{result.percentile[i]:.4f}"]
        if result.labels is not None:
            row.append("" if result.labels[i] < 0 else int(result.labels[i]))
        w.writerow(row + [f"{v:.5g}" for v in result.columns[i]])
    atomic_write_text(path, buf.getvalue())
    return path
