"""Deterministic autoencoders: plain / deep AE and the denoising AE.

The code is a point (``encode`` returns ``(z, None)``); the loss is the reconstruction negative
log-likelihood (Gaussian = MSE up to constants, Bernoulli = BCE), reported in nats per example.
A "deep" AE is the same class with more hidden layers (``--hidden 512,256,128``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.models.base import BaseModel, LossParts, ModelSpec, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder


@register_model("ae", "deterministic autoencoder (MSE via gaussian, or BCE via bernoulli)")
class AE(BaseModel):
    variational = False

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        self.encoder = build_encoder(config, self.input_shape, config.latent_dim)
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, None]:
        return self.encoder(x), None

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def training_input(self, x: Tensor) -> Tensor:
        """What the encoder sees during training (the clean input for a plain AE)."""
        return x

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        inp = self.training_input(x) if self.training else x
        z, _ = self.encode(inp)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        recon = recon_ex.mean()
        zero = recon.new_zeros(())
        return LossParts(total=recon, recon=recon, kl=zero, per_example=recon_ex)


@register_model("dae", "denoising autoencoder (Gaussian or masking noise in, clean target out)")
class DenoisingAE(AE):
    """Trains on corrupted inputs against clean targets; evaluation sees clean inputs."""

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Gaussian noise times ``noise_factor`` (clipped to [0, 1] for Bernoulli data when
        ``noise_clip``), or masking noise that zeroes a ``noise_factor`` share of features."""
        cfg = self.config
        if cfg.noise == "mask":
            keep = torch.rand(x.shape, generator=generator, device=x.device) >= cfg.noise_factor
            return x * keep
        noisy = x + cfg.noise_factor * torch.randn(x.shape, generator=generator, device=x.device)
        if cfg.noise_clip and self.spec.likelihood == "bernoulli":
            noisy = noisy.clamp(0.0, 1.0)
        return noisy

    def training_input(self, x: Tensor) -> Tensor:
        return self.corrupt(x)
