"""Core metrics: negative ELBO, reconstruction term and KL per example; latent means."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vaelab.evaluate.latent_metrics import subset_rows
from vaelab.models import BaseModel


def _device(model: BaseModel) -> torch.device:
    return next(model.parameters()).device


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of ``values``: sample std (ddof 1) / sqrt(n); NaN if n < 2."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) < 2:
        return float("nan")
    return float(v.std(ddof=1) / np.sqrt(len(v)))


def _se_from_sums(total: float, squares: float, n: int) -> float:
    """``standard_error`` from the sum and the sum of squares of n values."""
    if n < 2:
        return float("nan")
    var = max(squares - total * total / n, 0.0) / (n - 1)
    return float(np.sqrt(var / n))


@torch.no_grad()
def elbo_metrics(
    model: BaseModel,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    seed: int = 0,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Mean negative ELBO, reconstruction term -E[log p(x|z)] and KL over ``x`` (nats/example).

    Uses one posterior sample per example drawn from a generator seeded with ``seed``, so the
    numbers are reproducible. For deterministic autoencoders the KL is 0 and the "negative
    ELBO" is just the reconstruction negative log-likelihood. ``neg_elbo_se`` is the standard
    error of the mean over the examples (sample std / sqrt(n)).
    """
    model.eval()
    dev = _device(model)
    saved = model.kl_scale
    model.kl_scale = 1.0
    tot = rec = kl = sq = 0.0
    n = len(x)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, n, batch_size):
            xb = torch.as_tensor(np.asarray(x[start : start + batch_size]), dtype=torch.float32,
                                 device=dev)
            yb = None
            if y is not None:
                yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.long, device=dev)
            parts = model.loss(xb, yb)
            m = len(xb)
            rec += float(parts.recon) * m
            kl += float(parts.kl) * m
            per = parts.per_example if parts.per_example is not None else parts.recon.expand(m)
            per = per.double()
            tot += float(per.sum())
            sq += float(per.square().sum())
    model.kl_scale = saved
    return {
        "neg_elbo": tot / n,
        "neg_elbo_se": _se_from_sums(tot, sq, n),
        "recon": rec / n,
        "kl": kl / n,
        "n_test": n,
        "units": "nats per example",
        "likelihood": model.likelihood.describe(),
    }


@torch.no_grad()
def encode_dataset(
    model: BaseModel, x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means (and log-variances, None for deterministic codes) of every row of x."""
    model.eval()
    dev = _device(model)
    mus, lvs = [], []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(np.asarray(x[start : start + batch_size]), dtype=torch.float32,
                             device=dev)
        yb = None
        if y is not None and model.uses_labels:
            yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.long, device=dev)
        mu, lv = model.encode(xb, yb)
        mus.append(mu.float().cpu().numpy())
        if lv is not None:
            lvs.append(lv.float().cpu().numpy())
    mu_all = np.concatenate(mus) if mus else np.zeros((0, model.latent_dim), np.float32)
    return mu_all, (np.concatenate(lvs) if lvs else None)


def encode_subset(model: BaseModel, x: np.ndarray, y: np.ndarray | None, limit: int,
                  seed: int = 0, block: int = 1024
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior means of a seeded subset of at most ``limit`` rows (all rows when there are
    fewer) and their labels, read a block at a time (a streamed split never loads whole)."""
    rows = subset_rows(len(x), limit, seed)
    if len(rows) == len(x):
        return encode_dataset(model, x, y)[0], None if y is None else np.asarray(y)
    mus, ys = [], []
    for start in range(0, len(rows), block):
        r = rows[start : start + block]
        yb = None if y is None else np.asarray(y[r])
        mus.append(encode_dataset(model, np.asarray(x[r]), yb)[0])
        if yb is not None:
            ys.append(yb)
    return np.concatenate(mus), (np.concatenate(ys) if ys else None)
