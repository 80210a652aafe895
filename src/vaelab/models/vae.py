"""Variational autoencoder: Gaussian posterior, N(0, I) prior, reparameterisation.

Options: ``beta`` weight on the KL, linear KL warm-up (the trainer sets ``kl_scale``), free
bits (a per-dimension KL floor that changes only the training objective; the reported KL and
negative ELBO are always the true ones), and capacity annealing (Burgess et al. 2018,
``capacity_max`` > 0): the objective becomes recon + beta * |KL - C|, where the KL target C
rises linearly from 0 to ``capacity_max`` nats over ``capacity_epochs`` epochs of training
rows (counted in the buffer ``capacity_rows``, so a resumed run continues the same ramp; in
evaluation C is ``capacity_max``, the final objective).
"""

from __future__ import annotations

import torch
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


@register_model("vae", "variational autoencoder (beta, KL warm-up, free bits, capacity annealing)")
class VAE(BaseModel):
    variational = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        self.encoder = build_encoder(config, self.input_shape, 2 * config.latent_dim,
                                     cond_dim=self.cond_dim)
        self.decoder = build_decoder(config, self.input_shape,
                                     self.likelihood.params_per_feature, cond_dim=self.cond_dim)
        if config.capacity_max > 0:
            self.register_buffer("capacity_rows", torch.zeros((), dtype=torch.long))

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

    def capacity(self, batch: int) -> Tensor:
        """The KL target C of this step; a training step counts its ``batch`` rows."""
        cfg = self.config
        c = self.capacity_rows.new_tensor(cfg.capacity_max, dtype=torch.float32)
        if not (self.training and torch.is_grad_enabled()):
            return c
        self.capacity_rows += batch
        if self.train_rows is None or cfg.capacity_epochs <= 0:
            return c
        done = self.capacity_rows.float() / (self.train_rows * cfg.capacity_epochs)
        return c * done.clamp(max=1.0)

    def elbo(self, x: Tensor, y: Tensor | None = None) -> tuple[LossParts, Tensor, Tensor]:
        """The loss parts plus the sampled code z and posterior mean (for subclasses)."""
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z, y))
        kl_dims = gaussian_kl(mu, logvar)
        kl_ex = kl_dims.sum(1)
        recon = recon_ex.mean()
        kl_term = self.kl_objective(kl_dims)
        extras = {}
        if self.config.capacity_max > 0:
            target = self.capacity(len(x))
            kl_term = (kl_term - target).abs()
            extras["capacity"] = target
        total = recon + self.config.beta * self.kl_scale * kl_term
        parts = LossParts(total=total, recon=recon, kl=kl_ex.mean(), per_example=recon_ex + kl_ex,
                          extras=extras)
        return parts, z, mu

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        return self.elbo(x, y)[0]
