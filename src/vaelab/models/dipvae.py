"""DIP-VAE (Kumar et al. 2018): the VAE objective plus a penalty that pushes a covariance of
the codes towards the identity,

    lambda_od * sum_{i != j} Cov[i, j]^2 + lambda_d * sum_i (Cov[i, i] - 1)^2,

on the batch. Type i penalises the covariance of the posterior means, Cov_p(x)[mu(x)]; type ii
that of the aggregate posterior, Cov_q(z)[z] = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)].
Options ``dip_type``, ``dip_lambda_od`` and ``dip_lambda_d`` (default 10 x lambda_od for type
i and lambda_od for type ii, disentanglement_lib's settings). ``kl`` and ``per_example`` are
the true KL and negative ELBO; the penalty is logged as ``dip_penalty``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.errors import ConfigError
from vaelab.models.base import (
    LossParts,
    ModelSpec,
    gaussian_kl,
    register_model,
    reparameterize,
)
from vaelab.models.config import ModelConfig
from vaelab.models.vae import VAE

TYPES = ("i", "ii")


def code_covariance(mu: Tensor, logvar: Tensor | None = None) -> Tensor:
    """Cov of the means over the batch (1/M normalisation), plus the mean posterior variance
    on the diagonal when ``logvar`` is given (type ii)."""
    centred = mu - mu.mean(0)
    cov = centred.T @ centred / mu.shape[0]
    if logvar is not None:
        cov = cov + torch.diag(logvar.exp().mean(0))
    return cov


def dip_penalty(cov: Tensor, lambda_od: float, lambda_d: float) -> Tensor:
    """lambda_od x (sum of squared off-diagonal entries) + lambda_d x sum (diagonal - 1)^2."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.square().sum() + lambda_d * (diag - 1).square().sum()


def resolved_lambdas(config: ModelConfig) -> tuple[float, float]:
    """(lambda_od, lambda_d) with the type's default for lambda_d."""
    lod = config.dip_lambda_od
    if config.dip_lambda_d is not None:
        return lod, config.dip_lambda_d
    return lod, (10.0 * lod if config.dip_type == "i" else lod)


@register_model("dip-vae", "DIP-VAE (types i / ii): VAE plus a penalty pulling the covariance "
                           "of the codes to the identity")
class DIPVAE(VAE):
    variational = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        if config.dip_type not in TYPES:
            raise ConfigError(f"option 'dip_type' got {config.dip_type!r}; choose i or ii.")
        super().__init__(config, spec)
        self.lambdas = resolved_lambdas(config)

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        kl_ex = gaussian_kl(mu, logvar).sum(1)
        cov = code_covariance(mu, logvar if self.config.dip_type == "ii" else None)
        penalty = dip_penalty(cov, *self.lambdas)
        recon, kl = recon_ex.mean(), kl_ex.mean()
        total = recon + self.config.beta * self.kl_scale * kl + penalty
        return LossParts(total=total, recon=recon, kl=kl, per_example=recon_ex + kl_ex,
                         extras={"dip_penalty": penalty.detach()})
