"""Per-column test metrics of a table run (metrics.json "columns"): which columns the model
reconstructs well and which badly.

For each column, over the test split: ``nll`` = E_q[-log p(cell | z)] per row in nats (missing
cells count 0, so the columns add up to the reconstruction term; 16 posterior draws, seeded),
``nll_per_cell`` (the same over observed cells only) and ``nll_marginal_per_cell``, the cost
of the training split's marginal (a Gaussian at the column's mean and standard deviation, or
the category frequencies): a column whose model cost is not below its marginal is not explained
by the code. Numeric columns add the RMSE of the posterior-mean reconstruction in raw units
(and the marginal's, the training standard deviation); numeric costs are in standardised units
(add log std for raw-unit densities: ``nll_raw_per_cell``). Binary and categorical columns add
the accuracy of the most probable value (and the training mode's).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vaelab.run import Run

SAMPLES = 16
LOG_2PI = math.log(2 * math.pi)


def _marginal_nll(d: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """-log p(cell) under the training split's marginal of the column, per observed cell."""
    if d["kind"] == "numeric":
        z = (raw - d["mean"]) / d["std"]
        return 0.5 * (z * z + LOG_2PI)
    if d["kind"] == "binary":
        p = min(max(d.get("rate", 0.5), 1e-6), 1 - 1e-6)
        return -np.where(raw > 0.5, math.log(p), math.log(1 - p))
    counts = np.asarray(d["counts"], dtype=np.float64) + 0.5  # add-half smoothing
    logp = np.log(counts / counts.sum())
    slots = np.asarray(d["slots"])
    k = raw.astype(np.int64)
    return -logp[slots[np.clip(k, 0, len(slots) - 1)]]


def column_metrics(run: Run, seed: int = 0, max_rows: int = 20000) -> dict[str, Any]:
    """The "columns" section of metrics.json (see the module docstring)."""
    from vaelab.data.encoding import inverse
    from vaelab.tabular.rows import cell_terms, table_params

    params = table_params(run)
    test = run.data.test
    x = np.asarray(test.x[:max_rows], dtype=np.float32)
    obs = x[:, [d["mask_slot"] for d in params["columns"]]] > 0.5
    raw = inverse(x, params)
    terms = cell_terms(run, x, samples=SAMPLES if run.model.variational else 0, seed=seed)
    recon = np.asarray(run.reconstruct(x), dtype=np.float32)
    rec_raw = inverse(recon, params)
    rows = []
    for j, d in enumerate(params["columns"]):
        o = obs[:, j]
        n = int(o.sum())
        item: dict[str, Any] = {"name": d["name"], "kind": d["kind"], "observed": n,
                                "nll": float(terms[:, j].mean()) if len(x) else float("nan")}
        if n:
            item["nll_per_cell"] = float(terms[o, j].mean())
            item["nll_marginal_per_cell"] = float(_marginal_nll(d, raw[o, j]).mean())
            if d["kind"] == "numeric":
                item["nll_raw_per_cell"] = item["nll_per_cell"] + math.log(d["std"])
                err = rec_raw[o, j] - raw[o, j]
                item["rmse"] = float(np.sqrt(np.mean(err * err)))
                item["rmse_marginal"] = float(np.sqrt(np.mean((raw[o, j] - d["mean"]) ** 2)))
            else:
                if d["kind"] == "binary":
                    pred = rec_raw[o, j] > 0.5
                    truth = raw[o, j] > 0.5
                    mode = d.get("rate", 0.5) > 0.5
                else:
                    pred = rec_raw[o, j].astype(np.int64)
                    truth = raw[o, j].astype(np.int64)
                    seen = [k for k, s in enumerate(d["slots"]) if s < d["width"] - 1]
                    counts = d["counts"][:-1]
                    mode = seen[int(np.argmax(counts))] if seen else -1
                item["accuracy"] = float(np.mean(pred == truth))
                item["accuracy_marginal"] = float(np.mean(truth == mode))
        rows.append(item)
    total = float(sum(r["nll"] for r in rows))
    for r in rows:
        r["share"] = r["nll"] / total if total > 0 else float("nan")
    return {"units": "nats per test row (numeric columns in standardised units)",
            "posterior_draws": SAMPLES if run.model.variational else 0,
            "n_test": len(x), "recon_sum": total, "per_column": rows}


def worst_columns(section: dict[str, Any], n: int = 3) -> list[dict[str, Any]]:
    """The columns whose model cost is highest relative to their marginal's."""
    items = [r for r in section.get("per_column", []) if "nll_per_cell" in r]
    return sorted(items, key=lambda r: r["nll_marginal_per_cell"] - r["nll_per_cell"])[:n]
