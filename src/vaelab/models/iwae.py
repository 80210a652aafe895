"""Importance-weighted autoencoder: the K-sample bound log (1/K) sum_k p(x, z_k) / q(z_k | x).

Training maximises the IWAE bound (``iwae_k`` samples; beta, warm-up and free bits do not
apply). Reported ``recon`` / ``kl`` and ``per_example`` stay the single-sample ELBO terms so
numbers compare with the VAE; the bound itself is logged as ``iwae_nll`` (its negative).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaelab.likelihoods import LOG_2PI
from vaelab.models.base import LossParts, gaussian_kl, register_model
from vaelab.models.vae import VAE


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_weights(model: VAE, x: Tensor, k: int, y: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(k, batch) log importance weights log p(x|z) + log p(z) - log q(z|x) with z ~ q(z|x),
    plus the (k, batch) log p(x|z) terms and the posterior mean and log-variance."""
    mu, logvar = model.encode(x, y)
    b = x.shape[0]
    z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, device=mu.device)
    xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    yk = None if y is None else y.unsqueeze(0).expand(k, b).reshape(-1)
    log_px = model.likelihood.log_prob(xk, model.decode(z.reshape(k * b, -1), yk)).view(k, b)
    log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
    return log_px + log_pz - log_normal(z, mu, logvar), log_px, mu, logvar


@register_model("iwae", "importance-weighted autoencoder (K-sample bound, --iwae-k)")
class IWAE(VAE):
    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        log_w, log_px, mu, logvar = log_weights(self, x, self.config.iwae_k, y)
        bound = torch.logsumexp(log_w, 0) - math.log(self.config.iwae_k)
        kl_ex = gaussian_kl(mu, logvar).sum(1)
        recon_ex = -log_px[0]
        return LossParts(total=-bound.mean(), recon=recon_ex.mean(), kl=kl_ex.mean(),
                         per_example=recon_ex + kl_ex, extras={"iwae_nll": -bound.mean()})
