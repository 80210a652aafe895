"""beta-TC-VAE (Chen et al. 2018): the KL split into three terms, each with its own weight,

    E_p(x)[KL(q(z|x) || p(z))] = I(x; z) + TC(z) + sum_j KL(q(z_j) || p(z_j))
                                 (alpha)   (beta)   (gamma)

the index-code mutual information, the total correlation KL(q(z) || prod_j q(z_j)) of the
aggregate posterior q(z) = E_p(x)[q(z|x)], and the dimension-wise KL. q(z) and its marginals
q(z_j) are estimated on each batch by minibatch-weighted sampling (the paper's MWS): every row
k of a batch of M weighs equally, so for a code z_i ~ q(z|x_i)

    log q(z_i)   ~ logsumexp_k log q(z_i | x_k) - log M
    log q(z_ij)  ~ logsumexp_k log q(z_ij | x_k) - log M.

The paper writes the constant as log(N M) for N training rows; a constant does not change the
gradients, but it shifts the logged TC by (D - 1) log N, so vaelab uses log M: the estimates
are then those of the batch's own aggregate posterior (exact when the batch is the data, ~0
for independent dimensions). With alpha = beta = gamma = 1 the objective is the VAE's with the
KL estimated at the sample. ``beta`` (the run's option) weighs the TC, ``tc_alpha`` and
``tc_gamma`` the others; the KL warm-up scales all three. ``kl`` and ``per_example`` are the
true KL and negative ELBO; the three estimates are logged as ``mi``, ``tc`` and ``dim_kl``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vaelab.likelihoods import LOG_2PI
from vaelab.models.base import LossParts, gaussian_kl, register_model, reparameterize
from vaelab.models.vae import VAE


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Element-wise log N(z; mu, exp(logvar)) (broadcasting)."""
    return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI)


def mws_decomposition(z: Tensor, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
    """Per-example MWS estimates of the mutual information ``mi``, total correlation ``tc``
    and dimension-wise KL ``dim_kl`` for codes ``z`` (M, D) sampled from the batch's
    posteriors (``mu``, ``logvar``); they add up to log q(z|x) - log p(z)."""
    log_q_zx = log_normal(z, mu, logvar).sum(1)
    pair = log_normal(z[:, None, :], mu[None], logvar[None])  # [i, k, j] = log q(z_ij | x_k)
    log_m = math.log(z.shape[0])
    log_qz = torch.logsumexp(pair.sum(2), dim=1) - log_m
    log_prod = (torch.logsumexp(pair, dim=1) - log_m).sum(1)
    log_pz = -0.5 * (z.square() + LOG_2PI).sum(1)
    return {"mi": log_q_zx - log_qz, "tc": log_qz - log_prod, "dim_kl": log_prod - log_pz}


@register_model("beta-tc-vae", "beta-TC-VAE: KL split into mutual information, total "
                               "correlation (weight beta) and dimension-wise KL by "
                               "minibatch-weighted sampling")
class BetaTCVAE(VAE):
    variational = True

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        kl_ex = gaussian_kl(mu, logvar).sum(1)
        terms = mws_decomposition(z, mu, logvar)
        cfg = self.config
        penalty = (cfg.tc_alpha * terms["mi"] + cfg.beta * terms["tc"]
                   + cfg.tc_gamma * terms["dim_kl"]).mean()
        recon = recon_ex.mean()
        return LossParts(total=recon + self.kl_scale * penalty, recon=recon, kl=kl_ex.mean(),
                         per_example=recon_ex + kl_ex,
                         extras={k: v.mean().detach() for k, v in terms.items()})
