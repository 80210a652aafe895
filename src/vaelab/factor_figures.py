"""Run-level figures for data with known factors (registered with ``figures.register_figure``):
the factor x dimension mutual-information map and the traversals labelled by factor. Both read
the ``disentanglement`` section of metrics.json and apply only when it is there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.figures import Drawing, register_figure

if TYPE_CHECKING:
    from vaelab.run import Run

PLOTS = "vaelab.plots.factors"
MAX_ROWS = 25


def _section(run: Run) -> dict[str, Any] | None:
    return run.metrics.get("disentanglement") or None


def normalised_mi(section: dict[str, Any]) -> np.ndarray:
    """(dims, factors) I(z_j; v_k) / H(v_k) from a ``disentanglement`` section."""
    mi = np.asarray(section["mutual_information"], dtype=np.float64)
    h = np.asarray(section["factor_entropy"], dtype=np.float64)[None, :]
    return np.divide(mi, h, out=np.zeros_like(mi), where=h > 0)


def _note(section: dict[str, Any]) -> str:
    from vaelab.evaluate.disentangle import summary_line

    return summary_line(section)


@register_figure(
    "factor_mutual_information", "Factors x code dimensions",
    "For data with known factors: the mutual information between each factor (rows, with its "
    "MIG) and each code dimension (columns, posterior means in 20 bins; the 25 most "
    "informative of wider codes), as a share of the factor's entropy. A disentangled code has "
    "one bright cell per row and per column; a row "
    "with two bright cells splits its factor over two dimensions (low MIG).",
    order=53,
)
def _mi_map(run: Run) -> Drawing | None:
    section = _section(run)
    if section is None:
        return None
    norm = normalised_mi(section)
    dims = sorted(int(d) for d in np.argsort(-norm.max(1), kind="stable")[:MAX_ROWS])
    return Drawing(f"{PLOTS}:mutual_information_map",
                   (norm[dims], list(section["factors"]), list(section["mig_per_factor"]), dims),
                   note=_note(section))


@register_figure(
    "factor_traversals", "Latent traversals by factor",
    "For images with known factors: each row sweeps one dimension from -3 to 3 with the others "
    "at the mean code, labelled by the factor it is most informative about and that MI as a "
    "share of the factor's entropy, most informative rows first. A disentangled dimension "
    "changes only its factor along its row (a shape only moves, or only grows).",
    order=54,
)
def _traversals(run: Run) -> Drawing | None:
    from vaelab.figures import display_range
    from vaelab.latent import traverse

    section = _section(run)
    if section is None or len(run.model.input_shape) != 3:
        return None
    from vaelab.evaluate.disentangle import dimension_labels

    norm = normalised_mi(section)
    labels = dimension_labels(section)
    dims = [int(d) for d in np.argsort(-norm.max(1), kind="stable")[:MAX_ROWS]]
    mu = run.latents()["mu"]
    values = np.linspace(-3, 3, 11, dtype=np.float32)
    z = np.concatenate([traverse(mu.mean(0), d, values) for d in dims])
    raw = run.preprocessor.inverse(run.decode(z))
    return Drawing(f"{PLOTS}:factor_traversals",
                   (raw, dims, values, display_range(run), [labels[d] for d in dims]),
                   note=_note(section))
