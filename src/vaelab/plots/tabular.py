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


def _grid(n: int, axes_w: float = 1.8, axes_h: float = 1.25, max_cols: int = 6
          ) -> tuple[Figure, list[Any]]:
    """``n`` panels on a fixed grid in inches: room left of each panel for its tick labels
    (category names of 12 characters), above it for its title, below it for its x tick labels
    (rotated category names), at the top for the figure's title and at the bottom for a note.
    Constrained layout measured every panel's texts twice: 36 panels took 2.5 s to save, 1.3 s
    on this grid."""
    ncols = min(max_cols, max(1, n))
    nrows = math.ceil(n / ncols)
    left, right, top, bottom, gap_w, gap_h = 1.0, 0.35, 0.75, 0.85, 0.95, 0.8
    width = left + ncols * axes_w + (ncols - 1) * gap_w + right
    height = top + nrows * axes_h + (nrows - 1) * gap_h + bottom
    fig = new_figure(width, height)
    fig.set_layout_engine("none")
    axes = []
    for i in range(n):
        r, c = divmod(i, ncols)
        x0 = left + c * (axes_w + gap_w)
        y0 = height - top - (r + 1) * axes_h - r * gap_h
        axes.append(fig.add_axes((x0 / width, y0 / height, axes_w / width, axes_h / height)))
    return fig, axes


def _shown(shown: int, total: int) -> str:
    """What a title adds when a table has more columns than panels."""
    return "" if shown >= total else f"\n(the first {shown} of {total} columns)"


def _short(text: str, n: int = 14) -> str:
    """``text`` in at most ``n`` characters: its start and its end around an ellipsis, so
    names that differ at the end (``..._name_3``, ``..._name_4``) stay apart."""
    if len(text) <= n:
        return text
    tail = (n - 1) // 2
    return text[: n - 1 - tail] + "…" + text[len(text) - tail :]


def _category_labels(d: dict[str, Any]) -> list[str]:
    return list(d.get("categories") or ["0", "1"])


MAX_COST_ROWS = 40
"""Columns the per-column fit figure shows at most: a wider table shows those the code
explains least (the smallest gain over the marginal) and says so; metrics.json has all."""


def column_costs(columns: list[dict[str, Any]]) -> Figure:
    """Per column: the model's cost per observed cell beside the marginal's (metrics.json
    "columns" entries), longest bars = columns the code explains least. Of more than
    ``MAX_COST_ROWS`` columns, the ``MAX_COST_ROWS`` with the smallest gain over the marginal,
    least explained first."""
    total = len(columns)
    title = "Negative log-likelihood per column: model (colour by type) vs marginal (grey)"
    if total > MAX_COST_ROWS:
        def gain(c: dict[str, Any]) -> float:
            g = c.get("nll_marginal_per_cell", np.nan) - c.get("nll_per_cell", np.nan)
            return g if np.isfinite(g) else np.inf

        columns = sorted(columns, key=gain)[:MAX_COST_ROWS]
        title += (f"\nthe {MAX_COST_ROWS} of {total} columns the code explains least (smallest "
                  "gain over the marginal); metrics.json 'columns' has every one")
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
    ax.set_title(title, fontsize=10)
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
                 "reconstruction (colour; size = probability)" + _shown(len(cols), len(columns)),
                 fontsize=10)
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
            names = [_short(labels[i], 10) for i in order]
            # upright only when they fit side by side (1.8-in panels: about 18 characters)
            tilt = sum(len(n) + 2 for n in names) > 18
            ax.set_xticks(x, names, rotation=35 if tilt else 0, ha="right" if tilt else "center")
            stat = f"TV {0.5 * float(np.abs(fr - fs).sum()):.2f}"
        ax.set_title(f"{_short(d['name'], 20)} · {stat}", fontsize=9)
    if axes:
        axes[0].legend(fontsize=7)
    fig.suptitle(title + _shown(len(cols), len(columns)), fontsize=10)
    return fig
