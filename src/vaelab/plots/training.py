"""Training curves: loss, reconstruction and KL per epoch, train and validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vaelab.plots.common import new_figure


def training_curves(history: Sequence[dict[str, Any]]) -> Figure:
    """One panel per term (loss, recon, kl); solid train, dashed validation; best epoch marked."""
    terms = [t for t in ("loss", "recon", "kl") if any(f"train_{t}" in r for r in history)]
    if "kl" in terms and all(not float(r.get("train_kl") or 0) for r in history):
        terms.remove("kl")  # a deterministic autoencoder: no KL term
    if "recon" in terms and "loss" in terms and all(
            r.get("train_recon") == r.get("train_loss") for r in history):
        terms.remove("recon")  # the objective is the reconstruction term itself
    fig = new_figure(4.2 * len(terms), 3.4)
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    epochs = [int(r["epoch"]) for r in history]
    best = None
    vals = [r.get("val_loss") for r in history]
    if vals and all(v is not None and v != "" for v in vals):
        best = epochs[min(range(len(vals)), key=lambda i: float(vals[i]))]
    only = terms == ["loss"]
    titles = {"loss": "objective = reconstruction -log p(x|z)" if only else "objective (loss)",
              "recon": "reconstruction -log p(x|z)",
              "kl": "KL(q(z|x) || p(z))"}
    for ax, term in zip(axes, terms, strict=True):
        tr = [float(r[f"train_{term}"]) for r in history]
        marker = "." if len(epochs) < 30 else None
        ax.plot(epochs, tr, "-", color="C0", label="train", marker=marker)
        if all(r.get(f"val_{term}") not in (None, "") for r in history):
            va = [float(r[f"val_{term}"]) for r in history]
            ax.plot(epochs, va, "--", color="C1", label="validation")
        if best is not None:
            ax.axvline(best, color="0.6", lw=0.8, ls=":", label=f"best epoch {best}")
        ax.set_title(titles[term], fontsize=11)
        ax.set_xlabel("epoch")
        if len(epochs) <= 10:  # whole epochs as ticks, never 0.96 ... 1.04
            ax.set_xticks(epochs)
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("nats per example")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
