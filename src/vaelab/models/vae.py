"""Variational autoencoder: Gaussian posterior, N(0, I) prior, reparameterisation.

Options: ``beta`` weight on the KL, linear KL warm-up (the trainer sets ``kl_scale``), and
free bits (a per-dimension KL floor that changes only the training objective; the reported
KL and negative ELBO are always the true ones).
"""

from __future__ import annotations

from torch import Tensor

from vaelab.models.base import (
    BaseModel,
    LossParts,
    ModelSpec,
    gaussian_kl,
    register_model,
    reparameterize,
)
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder


@register_model("vae", "variational autoencoder (beta, KL warm-up, free bits)")
class VAE(BaseModel):
    variational = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        self.encoder = build_encoder(config, self.input_shape, 2 * config.latent_dim,
                                     cond_dim=self.cond_dim)
        self.decoder = build_decoder(config, self.input_shape,
                                     self.likelihood.params_per_feature, cond_dim=self.cond_dim)

    cond_dim = 0

    def condition(self, y: Tensor | None) -> Tensor | None:
        """The vector the networks are conditioned on (none for the plain VAE)."""
        return None

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.encoder(x, self.condition(y))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z, self.condition(y))

    def kl_objective(self, kl_dims: Tensor) -> Tensor:
        """The KL term that is optimised: free bits clamp each dimension's batch-mean KL."""
        if self.config.free_bits > 0 and self.training:
            return kl_dims.mean(0).clamp(min=self.config.free_bits).sum()
        return kl_dims.sum(1).mean()

    def elbo(self, x: Tensor, y: Tensor | None = None) -> tuple[LossParts, Tensor, Tensor]:
        """The loss parts plus the sampled code z and posterior mean (for subclasses)."""
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z, y))
        kl_dims = gaussian_kl(mu, logvar)
        kl_ex = kl_dims.sum(1)
        recon = recon_ex.mean()
        total = recon + self.config.beta * self.kl_scale * self.kl_objective(kl_dims)
        parts = LossParts(total=total, recon=recon, kl=kl_ex.mean(), per_example=recon_ex + kl_ex)
        return parts, z, mu

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        return self.elbo(x, y)[0]
