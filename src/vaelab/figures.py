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


# -- geometry of the latent space (vaelab.plots.analysis) -------------------------------------
def _is_image(run: Run) -> bool:
    return len(run.model.input_shape) == 3


def _decode_raw(run: Run, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    if run.model.uses_labels and y is None:
        y = np.full(len(z), -1, dtype=np.int64) if run.config.model.model == "cvae" else None
    out = np.concatenate([run.decode(z[i : i + 1024], None if y is None else y[i : i + 1024])
                          for i in range(0, len(z), 1024)])
    return run.preprocessor.inverse(out)


@register_figure(
    "latent_tsne", "Latent space (t-SNE)",
    "A t-SNE map of the latent means, shown when the latent is wider than 2-D. t-SNE keeps "
    "neighbourhoods, not distances: judge which labels mix, not how far apart clusters are.",
    order=41,
)
def _tsne(run: Run) -> Figure | None:
    lat = run.latents()
    mu = lat["mu"]
    if mu.shape[1] <= 2:
        return None
    pick = np.arange(min(len(mu), 3000))
    y = lat.get("y")
    return plots.latent_scatter(mu[pick], None if y is None else y[pick], run.data.label_names,
                                method="tsne", seed=run.config.train.seed)


@register_figure(
    "latent_manifold", "Decoded latent grid",
    "What the decoder makes of each point of a 30 x 30 grid over [-3, 3]^2. Smooth changes "
    "between neighbours mean a continuous latent space; blank or garbled regions are holes.",
    order=50,
)
def _manifold(run: Run) -> Figure | None:
    from vaelab.latent import grid_codes
    from vaelab.plots.analysis import manifold_grid

    if run.model.latent_dim != 2 or not _is_image(run):
        return None
    z, values = grid_codes(30, 3.0)
    return manifold_grid(_decode_raw(run, z), values, display_range(run))


@register_figure(
    "latent_traversals", "Latent traversals",
    "Each row sweeps one latent dimension from -3 to 3 with the others at the mean code (the "
    "10 most used dimensions). Rows that do not change belong to inactive dimensions.",
    order=51,
)
def _traversals(run: Run) -> Figure | None:
    from vaelab.latent import traverse
    from vaelab.plots.analysis import traversals

    if not _is_image(run) or run.model.latent_dim < 2:
        return None
    mu = run.latents()["mu"]
    var = mu.var(0)
    dims = [int(d) for d in np.argsort(-var)[:10]]
    values = np.linspace(-3, 3, 11, dtype=np.float32)
    center = mu.mean(0)
    z = np.concatenate([traverse(center, d, values) for d in dims])
    return traversals(_decode_raw(run, z), dims, values, display_range(run), var)


@register_figure(
    "latent_histograms", "Latent statistics",
    "Histograms of the posterior means per dimension against the N(0, 1) prior density, with "
    "mean / std / min / max. A VAE's means should roughly fill the prior; a spike at 0 is an "
    "unused dimension.",
    order=52,
)
def _histograms(run: Run) -> Figure:
    from vaelab.plots.analysis import latent_histograms

    return latent_histograms(run.latents()["mu"])


@register_figure(
    "interpolation", "Interpolation",
    "The decoder along the line (top) and the great circle (bottom) between the codes of two "
    "test inputs of different labels. Plausible images all the way mean no holes between them.",
    order=60,
)
def _interpolation(run: Run) -> Figure | None:
    from vaelab.latent import interpolate
    from vaelab.plots.analysis import interpolation

    if not _is_image(run):
        return None
    lat = run.latents()
    mu, y = lat["mu"], lat.get("y")
    i, j = 0, 1
    if y is not None:
        other = np.flatnonzero(y != y[0])
        j = int(other[0]) if len(other) else 1
    lin = interpolate(mu[i], mu[j], 10, "linear")
    sph = interpolate(mu[i], mu[j], 10, "slerp")
    yy = None if y is None else np.where(np.arange(10) < 5, y[i], y[j])
    return interpolation(_decode_raw(run, lin, yy), _decode_raw(run, sph, yy),
                         display_range(run))


@register_figure(
    "attribute_vectors", "Attribute vectors",
    "The difference between the mean codes of two labels, added to codes of a third label "
    "(top: decoded codes, bottom: codes + vector). If the bottom row moves towards the target "
    "label, directions in the latent space carry meaning.",
    order=61,
)
def _attributes(run: Run) -> Figure | None:
    from vaelab.latent import attribute_vector
    from vaelab.plots.analysis import attribute_vectors

    lat = run.latents()
    y = lat.get("y")
    if not _is_image(run) or y is None or len(np.unique(y[y >= 0])) < 3:
        return None
    labels = [int(v) for v in np.unique(y[y >= 0])[:3]]
    a, b, c = labels
    vec = attribute_vector(lat["mu"], y, a, b)
    base = lat["mu"][y == c][:8]
    names = run.data.label_names or [str(k) for k in range(max(labels) + 1)]
    title = (f"codes of '{names[c]}' plus (mean '{names[b]}' - mean '{names[a]}')")
    yy = np.full(len(base), c, dtype=np.int64)
    return attribute_vectors(_decode_raw(run, base, yy), _decode_raw(run, base + vec, yy),
                             title, display_range(run))


@register_figure(
    "denoising", "Denoising",
    "Noisy test inputs (the corruption used in training), the denoising autoencoder's output, "
    "and the clean originals. The middle row should look like the bottom one.",
    order=62,
)
def _denoising(run: Run) -> Figure | None:
    import torch

    from vaelab.plots.analysis import denoising_triplets

    model = run.model
    if not hasattr(model, "corrupt") or not _is_image(run):
        return None
    clean = np.asarray(run.data.test.x[:10])
    gen = torch.Generator().manual_seed(run.config.train.seed)
    noisy = model.corrupt(torch.as_tensor(clean), generator=gen).numpy()
    out = run.reconstruct(noisy)
    pre = run.preprocessor
    return denoising_triplets(pre.inverse(noisy), pre.inverse(out), pre.inverse(clean),
                              display_range(run))
