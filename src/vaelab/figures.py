"""Render a run's figures to figures/*.png and describe each in figures/index.json.

Each entry of the index has a title and two lines on how to read the figure; the report shows
them beside the image. Figure builders are registered so later modules can add their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from vaelab import plots
from vaelab.modelio import atomic_write_text

if TYPE_CHECKING:
    from vaelab.run import Run


@dataclass
class FigureSpec:
    name: str
    title: str
    how_to_read: str
    build: Callable[[Run], Figure | None]
    order: int = 100


FIGURES: list[FigureSpec] = []


def register_figure(name: str, title: str, how_to_read: str, order: int = 100):
    """Decorator adding a run-level figure builder (returns None when it does not apply)."""

    def deco(fn: Callable[[Run], Figure | None]) -> Callable[[Run], Figure | None]:
        FIGURES[:] = [f for f in FIGURES if f.name != name]
        FIGURES.append(FigureSpec(name, title, how_to_read, fn, order))
        FIGURES.sort(key=lambda f: f.order)
        return fn

    return deco


def display_range(run: Run) -> tuple[float, float]:
    """Raw-unit range used to show images (so all panels share one grey scale)."""
    pre = run.preprocessor
    if "min" in pre.params:
        return float(pre.params["min"]), float(pre.params["max"])
    x = run.data.test.x
    raw = pre.inverse(np.asarray(x[: min(len(x), 512)]))
    return float(raw.min()), float(raw.max())


@register_figure(
    "training_curves", "Training curves",
    "Objective, reconstruction term and KL per epoch, train (solid) and validation (dashed). "
    "A validation curve that turns up while the training one keeps falling means overfitting; "
    "the dotted line marks the epoch whose weights were kept.",
    order=10,
)
def _curves(run: Run) -> Figure | None:
    return plots.training_curves(run.history) if run.history else None


@register_figure(
    "reconstructions", "Reconstructions",
    "Test inputs (top) and the decoder's mean for their posterior mean code (bottom). "
    "Blurry or generic reconstructions point to a too-strong KL (lower beta) or a too-small "
    "latent.",
    order=20,
)
def _recons(run: Run) -> Figure:
    x = np.asarray(run.data.test.x[:10])
    rec = run.reconstruct(x, run.data.test.y[:10] if run.data.test.y is not None else None)
    pre = run.preprocessor
    return plots.reconstructions(pre.inverse(x), pre.inverse(rec), display_range(run),
                                 run.data.test.feature_names)


@register_figure(
    "samples", "Random samples",
    "Decoder means for codes drawn from the prior N(0, I). Samples that look like the data show "
    "a latent space without holes; garbage samples with good reconstructions mean the posterior "
    "does not cover the prior.",
    order=30,
)
def _samples(run: Run) -> Figure:
    s = run.sample(40, seed=run.config.train.seed)
    return plots.samples(run.preprocessor.inverse(s), 10, display_range(run),
                         run.data.test.feature_names)


@register_figure(
    "latent_scatter", "Latent space",
    "Posterior means of the test set coloured by label (projected with PCA when wider than 2-D). "
    "Well-separated colours mean the code carries class information without being told labels.",
    order=40,
)
def _scatter(run: Run) -> Figure:
    lat = run.latents()
    return plots.latent_scatter(lat["mu"], lat.get("y"), run.data.label_names,
                                seed=run.config.train.seed)


def render_figures(run: Run, names: list[str] | None = None) -> list[Path]:
    """Render registered figures into run.path/figures, update index.json, return the files."""
    folder = run.path / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    written: list[Path] = []
    for spec in FIGURES:
        if names is not None and spec.name not in names:
            continue
        fig = spec.build(run)
        if fig is None:
            continue
        path = folder / f"{spec.name}.png"
        fig.savefig(path, dpi=110)
        index[path.name] = {"title": spec.title, "how_to_read": spec.how_to_read,
                            "order": spec.order}
        written.append(path)
    atomic_write_text(index_path, json.dumps(index, indent=2))
    return written
