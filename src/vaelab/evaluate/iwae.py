"""Importance-weighted estimate of log p(x), vectorised over K in memory-bounded chunks.

log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K, z_k ~ q(z|x).
The log-weights come from the model's own ``log_weights`` hook (``BaseModel``: a diagonal
Gaussian q and N(0, I) prior by default; a VampPrior, IAF or ladder VAE overrides it with its
mixture prior, flow log-determinant or two layers). Each batch is encoded once
(``model.posterior``); its K codes are drawn and decoded ``chunk`` at a time (one hook call per
chunk), and a running logsumexp keeps memory at O(chunk x batch x D). The Bernoulli term is
computed as x.logits - softplus(logits) with x broadcast, never copied K times.

``importance_bounds`` also returns the ELBO estimated from the same K log-weights (their mean),
so per example IWAE >= ELBO holds by construction (log of a mean >= mean of the logs), with
equality at K = 1.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from vaelab.models import BaseModel
from vaelab.models.base import log_px_k


def _log_px(model: BaseModel, x: Tensor, params: Tensor) -> Tensor:
    """log p(x | params) for params of shape (k, b, ...) and x of shape (b, ...): (k, b)."""
    return log_px_k(model.likelihood, x, params)


class KSampleBounds(NamedTuple):
    """Per-example bounds on log p(x) in nats from the same K posterior samples z_k ~ q(z|x)."""

    iwae: np.ndarray
    """logsumexp_k log w_k - log K (the IWAE bound)."""
    elbo: np.ndarray
    """mean_k log w_k (a K-sample Monte Carlo estimate of the ELBO); elbo <= iwae."""


@torch.no_grad()
def importance_bounds(
    model: BaseModel,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor | None = None,
    *,
    k: int = 1000,
    batch_size: int | None = None,
    chunk: int | None = None,
    seed: int = 0,
) -> KSampleBounds:
    """Per-example IWAE bound and K-sample ELBO of log p(x) from the same K log-weights.

    ``batch_size`` images are encoded at once (default 1000 on a GPU, 20 on a CPU) and their
    K codes decoded ``chunk`` at a time (default 100 on a GPU, 50 on a CPU): on a CPU
    20 x 50 decoded 28x28 images hold 3 MB per tensor, which stay in cache and in glibc's
    heap (``vaelab.train.perf``); K = 100 on 1,000 Fashion-MNIST rows took 1.6 s of one core
    and 36 MB, 25 x 100 took 1.9 s and 271 MB of heap. A running logsumexp and a running
    sum (float64) keep memory at O(chunk x batch x D).
    """
    if not model.variational:
        raise ValueError("the IWAE estimate needs a variational model (it has no posterior)")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    model.eval()
    dev = next(model.parameters()).device
    if batch_size is None:
        batch_size = 1000 if dev.type == "cuda" else 20
    if chunk is None:
        chunk = 100 if dev.type == "cuda" else 50
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    out_iw: list[np.ndarray] = []
    out_elbo: list[np.ndarray] = []
    n = len(x)
    for start in range(0, n, batch_size):
        xb = torch.as_tensor(np.asarray(x[start : start + batch_size]) if not torch.is_tensor(x)
                             else x[start : start + batch_size], dtype=torch.float32).to(dev)
        yb = None
        if y is not None and model.uses_labels:
            yb = torch.as_tensor(y[start : start + batch_size], dtype=torch.long).to(dev)
        post = model.posterior(xb, yb)
        b = xb.shape[0]
        running = torch.full((b,), -math.inf, device=dev, dtype=torch.float64)
        total = torch.zeros((b,), device=dev, dtype=torch.float64)
        done = 0
        while done < k:
            kc = min(chunk, k - done)
            log_w = model.log_weights(xb, yb, kc, gen, post)
            log_w = log_w.double()
            running = torch.logaddexp(running, torch.logsumexp(log_w, 0))
            total += log_w.sum(0)
            done += kc
        out_iw.append((running - math.log(k)).cpu().numpy())
        out_elbo.append((total / k).cpu().numpy())
    if not out_iw:
        return KSampleBounds(np.zeros(0), np.zeros(0))
    return KSampleBounds(np.concatenate(out_iw), np.concatenate(out_elbo))


def iwae_log_likelihood(
    model: BaseModel,
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor | None = None,
    *,
    k: int = 1000,
    batch_size: int | None = None,
    chunk: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Per-example IWAE estimate of log p(x) in nats (a lower bound that tightens with K).

    The ``iwae`` field of ``importance_bounds`` (same arguments, same samples).
    """
    return importance_bounds(model, x, y, k=k, batch_size=batch_size, chunk=chunk,
                             seed=seed).iwae
