"""Figures of the latent space's geometry: manifold grid, traversals, histograms,
interpolations, attribute vectors and denoising triplets."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vaelab.plots.common import new_figure, show_image, tile, to_rgba, unit_range


def _grid_image(images: np.ndarray, ncols: int, lo: float, hi: float) -> np.ndarray:
    return tile(unit_range(images, lo, hi), ncols, pad=0)


def manifold_grid(images: np.ndarray, values: np.ndarray,
                  value_range: tuple[float, float]) -> Figure:
    """Decoded n x n grid over a 2-D latent, axes labelled with the z1 / z2 values."""
    n = len(values)
    h, w = images.shape[-2:]
    canvas = _grid_image(images, n, *value_range)
    aspect = h / w  # the figure follows the grid's shape: no blank band beside or under it
    fig = new_figure(8.5, 7.0 * aspect + 1.8) if aspect <= 1 else \
        new_figure(7.0 / aspect + 1.5, 8.8)
    ax = fig.subplots()
    ax.imshow(to_rgba(canvas), extent=(0, n * w, 0, n * h), interpolation="nearest")
    lo, hi = float(values[0]), float(values[-1])
    step = 1.0 if hi - lo >= 4 else 0.5
    marks = np.arange(np.ceil(lo / step) * step, hi + 1e-6, step)
    pos = (marks - lo) / max(hi - lo, 1e-12) * (n - 1) + 0.5  # cell centres, in cells
    ax.set_xticks(pos * w, [f"{v:g}" for v in marks])
    ax.set_yticks(pos * h, [f"{v:g}" for v in marks])
    ax.set_xlabel("z1 (first latent dimension)")
    ax.set_ylabel("z2 (second latent dimension)")
    ax.set_title(f"decoder means on a {n} x {n} grid over [{lo:g}, {hi:g}]^2", fontsize=11)
    return fig


def traversals(images: np.ndarray, dims: list[int], values: np.ndarray,
               value_range: tuple[float, float], variances: np.ndarray | None = None,
               row_labels: list[str] | None = None,
               xlabel: str = "value of the swept dimension (others at the mean code)",
               ) -> Figure:
    """One row per latent dimension: the decoded mean code with that dimension swept.

    Drawn as one image in one axes (rows apart by a white gap), labelled ``z<d>`` with the
    variance of its posterior mean, or with ``row_labels`` when given; ``values`` label the
    columns as ``xlabel`` says."""
    steps, rows = len(values), len(dims)
    h, w = images.shape[-2:]
    gap = max(1, h // 6)
    canvas = tile(unit_range(images, *value_range), steps, pad=0)
    strips = [canvas[r * h : (r + 1) * h] for r in range(rows)]
    blank = np.ones((gap, *canvas.shape[1:]), dtype=canvas.dtype)
    stacked = np.concatenate([part for strip in strips for part in (strip, blank)][:-1])
    fig = new_figure(max(6.0, 0.75 * steps + 1.4), 0.75 * rows * h / w + 1.0)
    ax = fig.subplots()
    show_image(ax, stacked)
    labels = row_labels or [
        f"z{d + 1}" + (f"\nvar {variances[d]:.2f}" if variances is not None else "")
        for d in dims]
    ax.set_yticks([r * (h + gap) + h / 2 - 0.5 for r in range(rows)], labels, fontsize=8)
    ax.set_xticks([(i + 0.5) * w - 0.5 for i in range(steps)], [f"{v:.1f}" for v in values],
                  fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(xlabel)
    ax.set_title("latent traversals: one row per dimension (label: dimension, variance of its "
                 "posterior mean)", fontsize=10)
    return fig


def latent_histograms(mu: np.ndarray, max_dims: int = 25, prior: np.ndarray | None = None,
                      prior_name: str = "N(0, 1)") -> Figure:
    """Per-dimension histogram of the latent means against the prior's density: N(0, 1), or
    the density of ``prior``, codes sampled from the model's own prior (one column per
    dimension), named ``prior_name``."""
    d = min(mu.shape[1], max_dims)
    cols = min(5, d)
    rows = math.ceil(d / cols)
    width, height = 3.0 * cols, 2.3 * rows + 0.5
    fig = new_figure(width, height)
    # a fixed grid in inches instead of constrained layout, which measured every one of up to
    # 25 panels' ticks and titles twice (0.45 s of this figure's 0.85): room at the top for
    # the title and the first row's panel titles, at the bottom for the tick labels and a note
    fig.set_layout_engine("none")
    top, bottom, gap_h, gap_w = 0.62, 0.62, 0.32, 0.12
    axes_h = (height - top - bottom - gap_h * (rows - 1)) / rows
    axes_w = (width - 0.24 - gap_w * (cols - 1)) / cols
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True, gridspec_kw={
        "left": 0.12 / width, "right": 1 - 0.12 / width, "top": 1 - top / height,
        "bottom": bottom / height, "hspace": gap_h / axes_h, "wspace": gap_w / axes_w})).ravel()
    legend = prior_name if len(prior_name) <= 12 else "prior"  # the title names it in full
    grid = np.linspace(-4, 4, 200)
    density = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    for i, ax in enumerate(axes):
        if i >= d:
            ax.axis("off")
            continue
        v = mu[:, i]
        counts, edges = np.histogram(v, bins=40, range=(-4, 4))
        # density over all values (not only those in range: a dimension whose means all lie
        # outside [-4, 4], as under a VampPrior, gives an empty panel, not NaN heights)
        counts = counts / (len(v) * (edges[1] - edges[0]))
        off = float(np.mean((v < -4) | (v > 4)))
        ax.stairs(counts, edges, fill=True, color="C0", alpha=0.7)  # one artist, not 40 bars
        if prior is None:
            ax.plot(grid, density, color="C3", lw=1.2, label=legend)
        else:
            ref, _ = np.histogram(prior[:, i], bins=edges)
            ax.stairs(ref / (len(prior) * (edges[1] - edges[0])), edges, color="C3", lw=1.2,
                      label=legend)
        ax.set_title(f"z{i + 1}", fontsize=9, pad=2)
        note = f"\n{off:.0%} off plot" if off >= 0.005 else ""
        ax.text(0.02, 0.97, f"mean {v.mean():.2f}\nstd {v.std():.2f}\nmin {v.min():.2f}\n"
                            f"max {v.max():.2f}{note}", transform=ax.transAxes, fontsize=7,
                va="top", family="monospace")
    axes[0].set_xticks([-4, -2, 0, 2, 4])
    for ax in axes[max(0, d - cols):d]:  # the last panel of each column shows its values
        ax.tick_params(labelbottom=True)
    for ax in axes:  # each panel its own height (a collapsed spike must not flatten the rest);
        ax.set_yticks([])  # the red prior curve is the scale
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper right")
    drawn = "" if prior is None else f", {len(prior):,} codes drawn from it"
    fig.suptitle(f"posterior means per dimension vs the prior ({prior_name}{drawn}; values "
                 "outside [-4, 4] are off the plot, min / max say where)", fontsize=11)
    return fig


def interpolation(linear: np.ndarray, spherical: np.ndarray,
                  value_range: tuple[float, float],
                  ends: tuple[np.ndarray, np.ndarray] | None = None) -> Figure:
    """Two strips between the same two inputs: linear (top) and spherical (bottom).

    ``ends``: the two inputs themselves, shown left and right of each strip.
    """
    steps = len(linear)
    cols = steps + (2 if ends is not None else 0)
    width = max(6.0, 0.8 * cols + 1.0)
    aspect = linear.shape[-2] / linear.shape[-1]  # the strips as tall as their images
    fig = new_figure(width, 2 * (width - 1.0) / cols * aspect + 1.2)
    axes = fig.subplots(2, 1)
    for ax, imgs, name in ((axes[0], linear, "linear"), (axes[1], spherical, "spherical")):
        if ends is not None:
            imgs = np.concatenate([ends[0][None], imgs, ends[1][None]])
        canvas = _grid_image(imgs, cols, *value_range)
        show_image(ax, canvas)
        w = canvas.shape[1] / cols
        if ends is not None:
            for c in (0, cols - 1):  # frame the inputs so they read apart from the path
                ax.add_patch(Rectangle((c * w - 0.5, -0.5), w, canvas.shape[0], fill=False,
                                       edgecolor="C1", lw=2))
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if ends is not None:
        axes[1].set_xticks([w / 2 - 0.5, (cols - 0.5) * w - 0.5], ["input A", "input B"],
                           fontsize=8)
        axes[1].set_xlabel(f"framed: the two inputs; between them {steps} decoded codes "
                           "from code(A) to code(B)", fontsize=8)
    fig.suptitle("interpolation between the codes of two test inputs", fontsize=10)
    return fig


def attribute_vectors(before: np.ndarray, after: np.ndarray, title: str,
                      value_range: tuple[float, float]) -> Figure:
    """Codes of one label (top) and the same codes plus an attribute vector (bottom)."""
    n = len(before)
    width = max(6.0, 0.8 * n)
    fig = new_figure(width, 2 * width / n * before.shape[-2] / before.shape[-1] + 0.75)
    axes = fig.subplots(2, 1)
    show_image(axes[0], _grid_image(before, n, *value_range))
    axes[0].set_ylabel("code", rotation=0, ha="right", va="center", fontsize=9)
    show_image(axes[1], _grid_image(after, n, *value_range))
    axes[1].set_ylabel("code +\nvector", rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def denoising_triplets(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray,
                       value_range: tuple[float, float]) -> Figure:
    """Rows: noisy input, the model's output, the clean original."""
    n = len(clean)
    width = max(6.0, 0.8 * n)
    fig = new_figure(width, 3 * width / n * clean.shape[-2] / clean.shape[-1] + 0.8)
    axes = fig.subplots(3, 1)
    for ax, imgs, name in zip(axes, (noisy, denoised, clean), ("noisy", "denoised", "clean"),
                              strict=True):
        show_image(ax, _grid_image(imgs, n, *value_range))
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("denoising autoencoder on test inputs", fontsize=10)
    return fig
