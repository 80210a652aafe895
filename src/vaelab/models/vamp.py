"""VAE with a VampPrior (Tomczak & Welling 2018): the prior is the mixture of the encoder's
posteriors at K learned pseudo-inputs u_1..u_K,

    p(z) = (1/K) sum_k q(z | u_k).

The pseudo-inputs (``pseudo_inputs`` = K, a parameter of shape (K, *input shape)) live in model
space (the preprocessed data the encoder reads). They start as in the paper, near-constant
inputs with small noise: N(0.05, 0.01^2) for a Bernoulli likelihood (data in [0, 1]), N(0, 0.01^2)
otherwise (standardised data); training moves them apart. They are encoded together with each
batch (one encoder call, so a batch-norm encoder sees them like data).

The KL has no closed form; it is estimated at the posterior sample: log q(z | x) - log p(z)
(``kl``, and ``per_example`` = single-sample negative ELBO; beta and warm-up apply, free bits do
not). ``prior_sample`` picks a pseudo-input uniformly and samples its posterior. IWAE evaluation
uses the mixture's log-density (``log_weights``). ``encode`` is the VAE's Gaussian q(z | x).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vaelab.errors import ConfigError
from vaelab.likelihoods import LOG_2PI, Bernoulli
from vaelab.models.base import BaseModel, LossParts, ModelSpec, log_px_k, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder

PSEUDO_STD = 0.01
"""Standard deviation of the pseudo-inputs' initial noise."""


def mixture_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log (1/K) sum_k N(z; mu_k, diag(exp(logvar_k))) for z (..., L), mu / logvar (K, L): (...).

    The squared distances to all K components come from three matrix products in float64 (the
    expansion cancels when z is close to a narrow component, which float32 would blur).
    """
    shape = z.shape[:-1]
    comp = component_log_densities(z.reshape(-1, z.shape[-1]).double(), mu.double(),
                                   logvar.double())
    out = torch.logsumexp(comp, dim=-1) - math.log(mu.shape[0])
    return out.to(z.dtype).reshape(shape)


def component_log_densities(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z_i; mu_k, diag(exp(logvar_k))) (n, K) for z (n, L), mu / logvar (K, L), in
    their dtype (float64 for ``mixture_log_density``); the squared distances as three matrix
    products."""
    prec = torch.exp(-logvar)
    quad = (z.square() @ prec.T - 2 * z @ (mu * prec).T
            + (mu.square() * prec).sum(-1)).clamp(min=0)
    return -0.5 * (quad + logvar.sum(-1) + z.shape[-1] * LOG_2PI)


@register_model("vamp", "VAE with a VampPrior: mixture of posteriors at learned pseudo-inputs")
class VampVAE(BaseModel):
    variational = True
    prior_name = "VampPrior"

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        if config.pseudo_inputs < 1:
            raise ConfigError(f"option 'pseudo_inputs' must be at least 1, got "
                              f"{config.pseudo_inputs}.")
        self.encoder = build_encoder(config, self.input_shape, 2 * config.latent_dim)
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)
        start = 0.05 if self.likelihood.name == Bernoulli.name else 0.0
        self.pseudo = nn.Parameter(
            start + PSEUDO_STD * torch.randn(config.pseudo_inputs, *self.input_shape))

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def encode_with_prior(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """q(z | x)'s (mu, logvar) and the K prior components' (mu_k, logvar_k), one encoder
        call over the batch and the pseudo-inputs together."""
        b = x.shape[0]
        mu, logvar = self.encode(torch.cat([x, self.pseudo.to(x.dtype)], dim=0))
        return mu[:b], logvar[:b], mu[b:], logvar[b:]

    def prior_components(self) -> tuple[Tensor, Tensor]:
        """(mu_k, logvar_k) of the K mixture components, shape (K, latent_dim) each."""
        return self.encode(self.pseudo)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) under the VampPrior for z of shape (..., latent_dim)."""
        return mixture_log_density(z, *self.prior_components())

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu, logvar, mu_p, logvar_p = self.encode_with_prior(x)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        log_q = -0.5 * (eps.square() + logvar + LOG_2PI).sum(-1)
        kl_ex = log_q - mixture_log_density(z, mu_p, logvar_p)
        recon, kl = recon_ex.mean(), kl_ex.mean()
        return LossParts(total=recon + self.config.beta * self.kl_scale * kl, recon=recon, kl=kl,
                         per_example=recon_ex + kl_ex)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes from the mixture: a uniformly chosen pseudo-input's posterior, sampled."""
        mu_p, logvar_p = self.prior_components()
        idx = torch.randint(mu_p.shape[0], (n,), generator=generator, device=mu_p.device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=mu_p.device)
        return mu_p[idx] + torch.exp(0.5 * logvar_p[idx]) * eps

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Any:
        return self.encode_with_prior(x)

    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1,
                    generator: torch.Generator | None = None, posterior: Any = None) -> Tensor:
        """(k, batch) log p(x | z) + log p_vamp(z) - log q(z | x), z ~ q(z | x)."""
        log_px, log_pz, log_q = self.log_weight_terms(x, k, generator, posterior)
        return log_px + log_pz - log_q

    def log_weight_terms(self, x: Tensor, k: int, generator: torch.Generator | None = None,
                         posterior: Any = None) -> tuple[Tensor, Tensor, Tensor]:
        """The (k, batch) terms log p(x | z), log p_vamp(z), log q(z | x) at z ~ q(z | x)."""
        mu, logvar, mu_p, logvar_p = self.posterior(x) if posterior is None else posterior
        b, d = mu.shape
        eps = torch.randn((k, b, d), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        params = self.decode(z.reshape(k * b, d))
        params = params.reshape(k, b, *params.shape[1:])
        log_q = -0.5 * (eps.square() + logvar + LOG_2PI).sum(-1)
        return (log_px_k(self.likelihood, x, params), mixture_log_density(z, mu_p, logvar_p),
                log_q)


@register_model("vamp-iwae", "VampPrior VAE trained on the K-sample IWAE bound (--iwae-k)")
class VampIWAE(VampVAE):
    """The VampPrior VAE trained on the importance-weighted bound with ``iwae_k`` samples
    (Burda et al. 2016; beta and warm-up do not apply), a tighter bound than the ELBO: the
    combination is the single-layer model that gets the best test log-likelihood within a CPU
    time budget (docs/benchmarks.md). As the IWAE family, ``recon`` / ``kl`` and
    ``per_example`` are the first sample's ELBO terms and the bound is logged as ``iwae_nll``.
    """

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        k = self.config.iwae_k
        log_px, log_pz, log_q = self.log_weight_terms(x, k)
        bound = torch.logsumexp(log_px + log_pz - log_q, 0) - math.log(k)
        recon_ex, kl_ex = -log_px[0], log_q[0] - log_pz[0]
        return LossParts(total=-bound.mean(), recon=recon_ex.mean(), kl=kl_ex.mean(),
                         per_example=recon_ex + kl_ex, extras={"iwae_nll": -bound.mean()})
