"""Deterministic autoencoder (plain or deep): a point code and a reconstruction loss.

``encode`` returns ``(z, None)``; the loss is the reconstruction negative log-likelihood in nats
per example: the Gaussian likelihood gives MSE / (2 sigma^2) plus its normalising constant, the
Bernoulli likelihood gives BCE on logits. There is no KL (``kl`` is reported as 0). A "deep" AE
is the same class with more hidden layers (``--hidden 512,256,128``).

An AE has no prior, so ``prior_sample`` draws from a diagonal Gaussian fitted to the training
codes (running mean / variance buffers, updated in training like batch-norm statistics); that
makes ``sample`` and the sample figures meaningful instead of decoding arbitrary N(0, I) codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.models.base import BaseModel, LossParts, ModelSpec, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder

CODE_MOMENTUM = 0.05
"""Weight of each training batch in the running code mean / variance."""


@register_model("ae", "deterministic autoencoder (MSE via gaussian, or BCE via bernoulli)")
class AE(BaseModel):
    variational = False
    prior_name = "fitted code Gaussian"

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        self.encoder = build_encoder(config, self.input_shape, config.latent_dim)
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_var", torch.ones(config.latent_dim))

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, None]:
        return self.encoder(x), None

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def training_input(self, x: Tensor) -> Tensor:
        """What the encoder sees during training (the clean input for a plain AE)."""
        return x

    @torch.no_grad()
    def _track_codes(self, z: Tensor) -> None:
        if z.shape[0] < 2:
            return
        self.code_mean.lerp_(z.mean(0), CODE_MOMENTUM)
        self.code_var.lerp_(z.var(0), CODE_MOMENTUM)

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        inp = self.training_input(x) if self.training else x
        z, _ = self.encode(inp)
        if self.training:
            self._track_codes(z.detach())
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        recon = recon_ex.mean()
        return LossParts(total=recon, recon=recon, kl=recon.new_zeros(()), per_example=recon_ex)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codes from N(code_mean, diag(code_var)), the Gaussian fitted to training codes."""
        eps = super().prior_sample(n, generator)
        return self.code_mean + self.code_var.clamp(min=0).sqrt() * eps
