"""Wasserstein autoencoder with an MMD penalty (WAE-MMD, Tolstikhin et al. 2018).

A deterministic encoder and decoder; the objective is the reconstruction negative
log-likelihood (nats per example) plus ``mmd_weight`` times the maximum mean discrepancy
between the batch's codes and as many draws from the prior N(0, I). The MMD uses the unbiased
U-statistic with the inverse-multiquadratic kernel k(z, z') = sum_s C_s / (C_s + |z - z'|^2),
C_s = 2 * latent_dim * s summed over ``mmd_scales`` (the paper's C = 2 d sigma^2 with the
prior's sigma^2 = 1, at several scales as in its experiments).

Like the AE it has no posterior (``variational = False``): reported numbers are the
reconstruction NLL; the MMD is logged as the extra ``mmd``. Its prior is N(0, I) itself, so
``prior_sample`` is the base class's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vaelab.errors import ConfigError
from vaelab.models.base import BaseModel, LossParts, ModelSpec, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """|a_i - b_j|^2 for every pair, (n, m); differentiable at zero distance (unlike cdist)."""
    d2 = a.square().sum(1, keepdim=True) + b.square().sum(1) - 2.0 * a @ b.T
    return d2.clamp(min=0.0)


def imq_kernel(a: Tensor, b: Tensor, scales: Sequence[float]) -> Tensor:
    """Inverse-multiquadratic kernel summed over scales: sum_s C_s / (C_s + |a_i - b_j|^2)
    with C_s = 2 * d * s, d the code size. Shape (n, m)."""
    d2 = squared_distances(a, b)
    dim = a.shape[1]
    out = torch.zeros_like(d2)
    for s in scales:
        c = 2.0 * dim * float(s)
        out = out + c / (c + d2)
    return out


def mmd_unbiased(x: Tensor, y: Tensor, scales: Sequence[float]) -> Tensor:
    """Unbiased estimate (U-statistic) of MMD^2 between the samples x (n, d) and y (m, d).

    Pairs of a point with itself are left out of the within-sample means, so its expectation
    is exactly 0 when x and y come from the same distribution (it can be slightly negative).
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        return x.new_zeros(())
    kxx, kyy, kxy = imq_kernel(x, x, scales), imq_kernel(y, y, scales), imq_kernel(x, y, scales)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * kxy.mean()


@register_model("wae", "Wasserstein autoencoder (MMD to N(0, I), inverse-multiquadratic kernel)")
class WAE(BaseModel):
    variational = False

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        if config.mmd_weight < 0:
            raise ConfigError(f"option 'mmd_weight' got {config.mmd_weight}; use a weight >= 0.")
        if not config.mmd_scales or any(s <= 0 for s in config.mmd_scales):
            raise ConfigError(f"option 'mmd_scales' got {config.mmd_scales}; give one or more "
                              "positive scales, e.g. 0.1,0.2,0.5,1,2,5,10.")
        self.encoder = build_encoder(config, self.input_shape, config.latent_dim)
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, None]:
        return self.encoder(x), None

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        z, _ = self.encode(x)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        recon = recon_ex.mean()
        mmd = mmd_unbiased(z, torch.randn_like(z), self.config.mmd_scales)
        return LossParts(total=recon + self.config.mmd_weight * mmd, recon=recon,
                         kl=recon.new_zeros(()), per_example=recon_ex, extras={"mmd": mmd})
