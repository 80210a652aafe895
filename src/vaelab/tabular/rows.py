"""What every table task needs from a run: its fitted columns, new rows in model space, and the
model's per-cell predictions (decoder parameters at posterior codes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.errors import DataError

if TYPE_CHECKING:
    from vaelab.data.tabular import TextTable
    from vaelab.run import Run

BATCH = 512


def table_params(run: Run) -> dict[str, Any]:
    """The run's fitted column encoding; a clear error for runs that are not tables."""
    pre = run.preprocessor
    if pre.kind != "columns":
        raise DataError(f"{run.path} was not trained on a table read by column (its "
                        f"preprocessing is {pre.kind}); score, impute and table samples need a "
                        "run trained with --data table.csv.")
    return pre.params


def read_rows(run: Run, path: str | Path, label_column: str | None = None
              ) -> tuple[TextTable, np.ndarray, np.ndarray, list[str | None], list[str]]:
    """New rows of ``path`` under the run's columns: the text table, raw codes, encoded rows,
    the label column's cells and warnings about values the run never saw."""
    from vaelab.data.encoding import transform
    from vaelab.data.tabular import read_like

    params = table_params(run)
    cfg = run.config.data
    table, codes, labels, warnings = read_like(path, params, label_column=label_column,
                                               decimal=cfg.decimal, encoding=cfg.encoding,
                                               header=cfg.header)
    return table, codes, transform(codes, params), labels, warnings


def _labels_for(model: Any, n: int, device: torch.device) -> torch.Tensor | None:
    """The "unknown" label (-1) for models that read one: new rows come without it."""
    return torch.full((n,), -1, dtype=torch.long, device=device) if model.uses_labels else None


@torch.no_grad()
def cell_terms(run: Run, x: np.ndarray, samples: int = 0, seed: int = 0) -> np.ndarray:
    """(N, columns) -log p(cell | z) in nats (0 for missing cells): at the posterior mean code
    (``samples`` 0) or averaged over that many draws from the encoder's Gaussian posterior."""
    model = run.model.eval()
    lik = model.likelihood
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for start in range(0, len(x), BATCH):
        xb = torch.as_tensor(np.asarray(x[start : start + BATCH]), dtype=torch.float32,
                             device=dev)
        yb = _labels_for(model, len(xb), dev)
        mu, logvar = model.encode(xb, yb)
        if samples <= 0 or logvar is None:
            out.append(-lik.per_column(xb, model.decode(mu, yb)))
            continue
        acc = torch.zeros(len(xb), lik.n_columns, device=dev)
        for _ in range(samples):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=dev)
            acc -= lik.per_column(xb, model.decode(z, yb))
        out.append(acc / samples)
    return torch.cat(out).double().cpu().numpy() if out else np.zeros((0, lik.n_columns))


@torch.no_grad()
def posterior_predictions(run: Run, x: np.ndarray, k: int = 100, seed: int = 0
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder parameters at K posterior draws per row and their normalised importance weights:
    (K, N, params) and (K, N). Weights are p(x_obs, z) / q(z | x_obs) for models on the default
    Gaussian posterior and N(0, I) prior, equal for others (and for deterministic codes, K = 1).
    """
    from vaelab.models.base import LOG_2PI, BaseModel

    model = run.model.eval()
    lik = model.likelihood
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    default_weights = type(model).log_weights is BaseModel.log_weights
    params_all, w_all = [], []
    for start in range(0, len(x), BATCH):
        xb = torch.as_tensor(np.asarray(x[start : start + BATCH]), dtype=torch.float32,
                             device=dev)
        b = len(xb)
        yb = _labels_for(model, b, dev)
        mu, logvar = model.encode(xb, yb)
        if logvar is None or not model.variational:
            params_all.append(model.decode(mu, yb)[None])
            w_all.append(torch.ones(1, b, device=dev))
            continue
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((k, b, mu.shape[1]), generator=gen, device=dev)
        z = mu + std * eps
        yk = None if yb is None else yb.repeat(k)
        params = model.decode(z.reshape(k * b, -1), yk).reshape(k, b, -1)
        if default_weights:
            log_px = lik.log_prob(xb.repeat(k, 1), params.reshape(k * b, -1)).view(k, b)
            log_w = (log_px - 0.5 * (z.square() + LOG_2PI).sum(-1)
                     + 0.5 * (eps.square() + LOG_2PI).sum(-1) + torch.log(std).sum(-1))
            w = torch.softmax(log_w, dim=0)
        else:
            w = torch.full((k, b), 1.0 / k, device=dev)
        params_all.append(params)
        w_all.append(w)
    return torch.cat(params_all, dim=1), torch.cat(w_all, dim=1)


def raw_from_encoded(run: Run, encoded: np.ndarray) -> np.ndarray:
    """Encoded rows (model means or samples) to raw codes (N, columns): numbers de-standardised,
    clipped to the training range and rounded where the column holds integers; binary 0 / 1;
    category indices."""
    from vaelab.data.encoding import inverse

    params = table_params(run)
    raw = inverse(encoded, params)
    for j, d in enumerate(params["columns"]):
        v = raw[:, j]
        if d["kind"] == "numeric":
            lo, hi = d.get("min"), d.get("max")
            if lo is not None and hi is not None:
                np.clip(v, lo, hi, out=v)
            if d.get("integer"):
                np.round(v, out=v)
        elif d["kind"] == "binary":
            raw[:, j] = v > 0.5
    return raw
