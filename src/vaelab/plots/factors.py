"""Figures of a code against known factors: the factor x dimension mutual-information map and
latent traversals labelled by the factor each dimension is most informative about."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from vaelab.plots.analysis import traversals
from vaelab.plots.common import new_figure


def factor_traversals(images: np.ndarray, dims: list[int], values: np.ndarray,
                      value_range: tuple[float, float], labels: list[str]) -> Figure:
    """Traversal rows of ``dims`` labelled with their most informative factor."""
    fig = traversals(images, dims, values, value_range, row_labels=labels)
    ax = fig.axes[0]
    ax.set_title("latent traversals by factor: each row sweeps one dimension (label: the factor "
                 "it is most informative about, MI / H(factor))", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    return fig


def mutual_information_map(norm_mi: np.ndarray, names: list[str], mig: list[float],
                           dims: list[int] | None = None) -> Figure:
    """Heat map of I(z_j; v_k) / H(v_k): one row per factor (with its MIG), one column per
    code dimension (rows of ``norm_mi``; ``dims`` their indices), every cell written."""
    m = np.asarray(norm_mi, dtype=np.float64).T  # factors x dims
    k, d = m.shape
    fig = new_figure(max(5.0, 0.55 * d + 2.6), 0.5 * k + 1.8)
    ax = fig.subplots()
    im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=max(1e-6, min(1.0, float(m.max()) * 1.05)),
                   aspect="auto", interpolation="nearest")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.6 * im.get_clim()[1] else "black")
    dims = list(range(d)) if dims is None else dims
    ax.set_xticks(range(d), [f"z{j + 1}" for j in dims], fontsize=8)
    ax.set_yticks(range(k), [f"{n}\nMIG {g:.2f}" for n, g in zip(names, mig, strict=True)],
                  fontsize=8)
    ax.set_xlabel("code dimension")
    ax.set_title("mutual information between factors and code dimensions, "
                 "I(z_j; v_k) / H(v_k)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="share of the factor's entropy")
    return fig
