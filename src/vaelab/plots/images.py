"""Image and feature figures: reconstructions and random samples."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from vaelab.plots.common import new_figure, show_image, tile, unit_range


def image_grid(images: np.ndarray, ncols: int = 10, title: str | None = None,
               value_range: tuple[float, float] | None = None) -> Figure:
    """Tile (N, C, H, W) images into one panel, scaled to [0, 1] by ``value_range``."""
    lo, hi = value_range if value_range else (None, None)
    canvas = tile(unit_range(images, lo, hi), ncols)
    rows = max(1, int(np.ceil(len(images) / ncols)))
    scale = 0.9 if images.shape[-1] <= 16 else 0.7
    aspect = images.shape[-2] / images.shape[-1]  # tiles as tall as the images are
    fig = new_figure(max(3.0, ncols * scale),
                     max(1.6, rows * scale * aspect + (0.4 if title else 0)))
    ax = fig.subplots()
    show_image(ax, canvas)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def reconstructions(originals: np.ndarray, recons: np.ndarray,
                    value_range: tuple[float, float] | None = None,
                    feature_names: list[str] | None = None) -> Figure:
    """Originals above, reconstructions below (images); per-feature bars for tabular data."""
    if originals.ndim == 4:
        n = len(originals)
        both = np.concatenate([originals, recons])
        lo, hi = value_range if value_range else (float(both.min()), float(both.max()))
        fig = image_grid(both, ncols=n, value_range=(lo, hi))
        fig.axes[0].set_title("top: originals   bottom: reconstructions", fontsize=11)
        return fig
    return feature_reconstructions(originals, recons, feature_names)


def _feature_ticks(ax, names: list[str]) -> None:
    """Feature names as ticks when they fit, else about 10 numbered ticks."""
    d = len(names)
    if d <= 12:
        ax.set_xticks(range(d), names, rotation=60, fontsize=7, ha="right")
    else:
        ticks = np.unique(np.linspace(0, d - 1, 10).round().astype(int))
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
        ax.set_xlabel("feature index", fontsize=8)


def feature_reconstructions(originals: np.ndarray, recons: np.ndarray,
                            feature_names: list[str] | None = None, max_rows: int = 6) -> Figure:
    """Tabular data: one small panel per example, original and reconstructed value per feature."""
    n = min(len(originals), max_rows)
    d = originals.shape[1]
    names = feature_names or [f"x{i}" for i in range(d)]
    fig = new_figure(min(3.2 * n, 16), 3.4)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    pos = np.arange(d)
    for i, ax in enumerate(axes):
        if d <= 40:
            ax.bar(pos - 0.2, originals[i], width=0.4, label="original", color="C0")
            ax.bar(pos + 0.2, recons[i], width=0.4, label="reconstruction", color="C1")
        else:  # wide tables: lines, not thousands of bars
            ax.plot(pos, originals[i], lw=0.8, label="original", color="C0")
            ax.plot(pos, recons[i], lw=0.8, label="reconstruction", color="C1")
        _feature_ticks(ax, names)
        ax.set_title(f"example {i}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    fig.suptitle("originals vs reconstructions per feature (raw units)", fontsize=11)
    return fig


def samples(images: np.ndarray, ncols: int = 10,
            value_range: tuple[float, float] | None = None,
            feature_names: list[str] | None = None,
            title: str = "random samples, z ~ N(0, I)") -> Figure:
    """Decoder means for sampled codes; tabular samples as a strip of per-feature profiles."""
    if images.ndim == 4:
        return image_grid(images, ncols=ncols, title=title, value_range=value_range)
    d = images.shape[1]
    names = feature_names or [f"x{i}" for i in range(d)]
    fig = new_figure(max(6.0, min(0.7 * d + 2, 14)), 3.6)
    ax = fig.subplots()
    for row in images[:50]:
        ax.plot(range(d), row, color="C0", alpha=0.3)
    _feature_ticks(ax, names)
    ax.set_title(f"{title}\none line per sample (raw units)", fontsize=10)
    ax.grid(alpha=0.3)
    return fig
