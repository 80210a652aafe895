"""A table run's figures (figures.py hands table runs to these): reconstructions, samples and
per-column costs, each column in its own units with its category names. Each is returned as a
``Drawing`` of a ``vaelab.plots.tabular`` function, so vaelab's worker can draw it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from vaelab.figures import Drawing

PLOTS = "vaelab.plots.tabular"

if TYPE_CHECKING:
    from vaelab.run import Run

ROWS = 6
SAMPLES = 2000


def is_table(run: Run) -> bool:
    """True for a run trained on a table read by column."""
    return run.model.spec.columns is not None


@torch.no_grad()
def reconstructions(run: Run) -> Drawing:
    from vaelab.data.encoding import inverse

    params = run.preprocessor.params
    cols = params["columns"]
    x = np.asarray(run.data.test.x[:ROWS], dtype=np.float32)
    inputs = inverse(x, params)
    inputs[~(x[:, [d["mask_slot"] for d in cols]] > 0.5)] = np.nan
    model = run.model.eval()
    xt = torch.as_tensor(x, device=run.device)
    yb = (torch.full((len(x),), -1, dtype=torch.long, device=run.device)
          if model.uses_labels else None)
    mu, _ = model.encode(xt, yb)
    p = model.decode(mu, yb)
    mean = model.likelihood.mean(p).cpu().numpy()
    aux = model.likelihood._split(p)[1]
    means = inverse(mean, params)
    std = np.zeros_like(means)
    probs: list[np.ndarray | None] = []
    for j, d in enumerate(cols):
        s = d["slot"]
        if d["kind"] == "numeric":
            std[:, j] = np.exp(0.5 * aux[:, s].clamp(-9.2, 4.6).cpu().numpy()) * d["std"]
            probs.append(None)
        elif d["kind"] == "binary":
            q = mean[:, s]
            probs.append(np.stack([1 - q, q], 1))
        else:
            pr = mean[:, s : s + d["width"]]
            full = np.zeros((len(x), len(d["categories"])), dtype=np.float32)
            for k, slot in enumerate(d["slots"]):
                if slot < d["width"] - 1:
                    full[:, k] = pr[:, slot]
            probs.append(full)
    return Drawing(f"{PLOTS}:reconstructions", (cols, inputs, means, probs, std))


def samples(run: Run, sampler: str = "prior") -> Drawing:
    from vaelab.data.encoding import inverse
    from vaelab.tabular.synthesize import synthesize

    params = run.preprocessor.params
    x = np.asarray(run.data.test.x, dtype=np.float32)
    real = inverse(x, params)
    real[~(x[:, [d["mask_slot"] for d in params["columns"]]] > 0.5)] = np.nan
    synth, _ = synthesize(run, SAMPLES, seed=run.config.train.seed, sampler=sampler)
    where = "the prior" if sampler == "prior" else "a GMM on the training codes"
    return Drawing(f"{PLOTS}:distributions",
                   (params["columns"], real, synth,
                    f"{SAMPLES} rows generated from {where} (colour) against the {len(x)} test "
                    "rows (grey)"))


def column_costs(run: Run) -> Drawing | None:
    section = run.metrics.get("columns")
    if not is_table(run) or not section:
        return None
    return Drawing(f"{PLOTS}:column_costs", (section["per_column"],))
