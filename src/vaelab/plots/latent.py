"""The latent space: scatter of posterior means coloured by label."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from vaelab.plots.common import LABEL_CMAP, new_figure
from vaelab.projection import pca_2d, tsne_2d


def project_2d(z: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Return 2-D coordinates and a description of how they were obtained."""
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z))]), "z1 (1-D latent)"
    if z.shape[1] == 2:
        return z, "latent means (2-D, no projection)"
    if method == "tsne":
        return tsne_2d(z, seed), tsne_title(z)
    pts, share = pca_2d(z)
    return pts, f"PCA of the {z.shape[1]}-D latent means ({share:.0%} of variance)"


def tsne_title(z: np.ndarray) -> str:
    return f"t-SNE of the {z.shape[1]}-D latent means ({len(z):,} test codes)"


def latent_scatter(z: np.ndarray, labels: np.ndarray | None = None,
                   label_names: list[str] | None = None, method: str = "pca",
                   seed: int = 0, coords: tuple[np.ndarray, str] | None = None) -> Figure:
    """Scatter of the latent means (projected when wider than 2), coloured by label.

    ``coords``: 2-D coordinates computed elsewhere (a t-SNE from vaelab's worker) and their
    description, instead of projecting ``z`` here."""
    pts, how = coords if coords is not None else project_2d(z, method, seed)
    fig = new_figure(6.2, 5.2)
    ax = fig.subplots()
    if labels is not None and (labels >= 0).any():
        classes = np.unique(labels[labels >= 0])
        cmap = LABEL_CMAP if len(classes) <= 10 else "tab20"
        import matplotlib

        colors = matplotlib.colormaps[cmap]
        for i, c in enumerate(classes):
            m = labels == c
            name = label_names[c] if label_names and c < len(label_names) else str(c)
            ax.scatter(pts[m, 0], pts[m, 1], s=8, alpha=0.7, color=colors(i % colors.N),
                       label=name, linewidths=0)
        if (labels < 0).any():
            m = labels < 0
            ax.scatter(pts[m, 0], pts[m, 1], s=6, alpha=0.3, color="0.6", label="unlabelled")
        # outside the axes: never over the points, and no search for a free corner ("best"
        # tests every point and took over a second for 10,000 codes)
        ax.legend(markerscale=2, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title="label", title_fontsize=8, frameon=False)
    else:
        ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.6)
    xl, yl = ("z1", "z2") if z.shape[1] <= 2 else ("component 1", "component 2")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(how, fontsize=11)
    ax.grid(alpha=0.3)
    return fig
