"""Table figures, one small panel per column with its own units and category names.

``columns`` is a table run's fitted encoding (``vaelab.data.encoding``: name, kind, categories,
mean / std); values are raw codes (number, 0 / 1, category index; NaN = missing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vaelab.plots.common import new_figure

KIND_COLOURS = {"numeric": "#1f77b4", "binary": "#2ca02c", "categorical": "#ff7f0e"}
MAX_PANELS = 36
MAX_CATEGORIES = 10


def _grid(n: int, width: float = 2.6, height: float = 2.0, max_cols: int = 6
          ) -> tuple[Figure, list[Any]]:
    ncols = min(max_cols, max(1, n))
    nrows = math.ceil(n / ncols)
    fig = new_figure(width * ncols, height * nrows + 0.4)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _short(text: str, n: int = 14) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _category_labels(d: dict[str, Any]) -> list[str]:
    return list(d.get("categories") or ["0", "1"])


def column_costs(columns: list[dict[str, Any]]) -> Figure:
    """Per column: the model's cost per observed cell beside the marginal's (metrics.json
    "columns" entries), longest bars = columns the code explains least."""
    names = [c["name"] for c in columns]
    model = np.array([c.get("nll_per_cell", np.nan) for c in columns])
    marg = np.array([c.get("nll_marginal_per_cell", np.nan) for c in columns])
    fig = new_figure(8.0, 0.8 + 0.32 * len(columns))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(columns))
    ax.barh(y + 0.2, marg, height=0.38, color="0.75", label="marginal (no code)")
    ax.barh(y - 0.2, model, height=0.38,
            color=[KIND_COLOURS.get(c["kind"], "0.4") for c in columns],
            label="model, E_q[-log p(cell | z)]")
    ax.set_yticks(y, [f"{_short(n, 28)} ({c['kind'][:3]})" for n, c in zip(names, columns,
                                                                               strict=True)],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("nats per observed test cell (numeric: standardised units)", fontsize=9)
    ax.set_title("Negative log-likelihood per column: model (colour by type) vs marginal (grey)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return fig


def reconstructions(columns: list[dict[str, Any]], inputs: np.ndarray, means: np.ndarray,
                    probs: list[np.ndarray | None], std: np.ndarray | None = None) -> Figure:
    """A few test rows, column by column: the input (black) and the reconstruction (colour):
    numbers with +-1 predicted standard deviation, categories as the predicted probability of
    each (the true one ringed). ``probs[j]`` is (rows, categories) for categorical and binary
    columns; missing inputs are drawn as a grey cross at the reconstruction."""
    cols = columns[:MAX_PANELS]
    fig, axes = _grid(len(cols))
    rows = np.arange(1, len(inputs) + 1)
    for j, (ax, d) in enumerate(zip(axes, cols, strict=False)):
        ax.set_title(_short(d["name"], 24), fontsize=9)
        ax.tick_params(labelsize=7)
        v = inputs[:, j]
        miss = ~np.isfinite(v)
        if d["kind"] == "numeric":
            err = None if std is None else std[:, j]
            ax.errorbar(rows, means[:, j], yerr=err, fmt="s", color=KIND_COLOURS["numeric"],
                        ms=4, capsize=2, label="reconstruction")
            ax.plot(rows[~miss], v[~miss], "o", color="black", ms=4, mfc="none",
                    label="input")
            ax.plot(rows[miss], means[miss, j], "x", color="0.5", ms=6, label="input missing")
        else:
            p = probs[j]
            labels = _category_labels(d)[:MAX_CATEGORIES]
            k = min(p.shape[1], len(labels))
            for r in range(len(inputs)):
                ax.scatter(np.full(k, rows[r]), np.arange(k), s=8 + 160 * p[r, :k],
                           color=KIND_COLOURS[d["kind"]], alpha=0.8)
            known = ~miss & (v < k)
            ax.scatter(rows[known], v[known], s=120, facecolors="none", edgecolors="black")
            ax.scatter(rows[miss], np.full(miss.sum(), -0.6), marker="x", color="0.5")
            ax.set_yticks(np.arange(k), [_short(c, 12) for c in labels[:k]])
            ax.set_ylim(-0.9, k - 0.4)
        ax.set_xticks(rows)
        ax.set_xlim(0.4, len(inputs) + 0.6)
        ax.grid(alpha=0.25)
    fig.suptitle("Test rows (x axis) column by column: input (black ring / circle) and "
                 "reconstruction (colour; size = probability)", fontsize=10)
    return fig


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    if not len(a) or not len(b):
        return float("nan")
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a)
                               - np.searchsorted(b, grid, side="right") / len(b))))


def distributions(columns: list[dict[str, Any]], real: np.ndarray, synthetic: np.ndarray,
                  title: str) -> Figure:
    """Per column: real test values (grey) against generated ones (colour): histograms of
    numbers with the Kolmogorov-Smirnov distance, category frequencies with the total
    variation distance."""
    cols = columns[:MAX_PANELS]
    fig, axes = _grid(len(cols))
    for j, (ax, d) in enumerate(zip(axes, cols, strict=False)):
        r = real[:, j][np.isfinite(real[:, j])]
        s = synthetic[:, j][np.isfinite(synthetic[:, j])]
        ax.tick_params(labelsize=7)
        if d["kind"] == "numeric":
            lo = float(min(r.min() if len(r) else 0, s.min() if len(s) else 0))
            hi = float(max(r.max() if len(r) else 1, s.max() if len(s) else 1))
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
            ax.hist(r, bins=bins, density=True, color="0.6", alpha=0.6, label="real")
            ax.hist(s, bins=bins, density=True, histtype="step", lw=1.6,
                    color=KIND_COLOURS["numeric"], label="generated")
            stat = f"KS {_ks(r, s):.2f}"
        else:
            labels = _category_labels(d)
            k = len(labels)
            fr = np.bincount(r.astype(np.int64), minlength=k)[:k] / max(len(r), 1)
            fs = np.bincount(s.astype(np.int64), minlength=k)[:k] / max(len(s), 1)
            order = np.argsort(-(fr + fs))[:MAX_CATEGORIES]
            x = np.arange(len(order))
            ax.bar(x - 0.2, fr[order], 0.4, color="0.6", label="real")
            ax.bar(x + 0.2, fs[order], 0.4, color=KIND_COLOURS[d["kind"]], label="generated")
            ax.set_xticks(x, [_short(labels[i], 10) for i in order],
                          rotation=35 if len(order) > 3 else 0, ha="right" if len(order) > 3
                          else "center")
            stat = f"TV {0.5 * float(np.abs(fr - fs).sum()):.2f}"
        ax.set_title(f"{_short(d['name'], 20)} · {stat}", fontsize=9)
    if axes:
        axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
