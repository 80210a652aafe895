"""Denoising autoencoder: corrupted input in, clean target out (training only).

Corruption (``--noise``):

- ``gaussian``: x + noise_factor * N(0, 1), then (``--noise-clip``, on by default) clipped to the
  data range: the smallest and largest value seen in the training data (tracked in buffers that
  are saved with the weights; [0, 1] for images scaled to [0, 1], as in the seed notebook).
- ``mask``: each feature is set to 0 with probability noise_factor (masking noise).

Evaluation (validation loss, test metrics, reconstructions) sees clean inputs. ``corrupt(x)``
is public so analyses can build "noisy test input" examples with the training corruption.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.errors import ConfigError
from vaelab.models.ae import AE
from vaelab.models.base import LossParts, ModelSpec, register_model
from vaelab.models.config import ModelConfig


@register_model("dae", "denoising autoencoder (Gaussian or masking noise in, clean target out)")
class DenoisingAE(AE):
    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        if config.noise_factor < 0 or (config.noise == "mask" and config.noise_factor >= 1):
            raise ConfigError(
                f"option 'noise_factor' got {config.noise_factor}; use a value >= 0 for gaussian "
                "noise, or a dropped share in [0, 1) for mask noise."
            )
        self.register_buffer("data_lo", torch.tensor(float("inf")))
        self.register_buffer("data_hi", torch.tensor(float("-inf")))

    def data_range(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The clipping range: the training data's, or this batch's before any training."""
        lo = torch.where(torch.isfinite(self.data_lo), self.data_lo, x.min())
        hi = torch.where(torch.isfinite(self.data_hi), self.data_hi, x.max())
        return lo, hi

    def _noise(self, x: Tensor, kind: str, generator: torch.Generator | None) -> Tensor:
        device = generator.device if generator is not None else x.device
        draw = torch.rand if kind == "uniform" else torch.randn
        return draw(x.shape, generator=generator, device=device).to(x.device, x.dtype)

    @torch.no_grad()
    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The training corruption of ``x`` (same shape); pass a generator for repeatable noise."""
        cfg = self.config
        if cfg.noise == "mask":
            return x * (self._noise(x, "uniform", generator) >= cfg.noise_factor)
        noisy = x + cfg.noise_factor * self._noise(x, "normal", generator)
        if cfg.noise_clip:
            lo, hi = self.data_range(x)
            noisy = torch.minimum(torch.maximum(noisy, lo), hi)
        return noisy

    def training_input(self, x: Tensor) -> Tensor:
        return self.corrupt(x)

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        if self.training:
            with torch.no_grad():
                self.data_lo.copy_(torch.minimum(self.data_lo, x.min()))
                self.data_hi.copy_(torch.maximum(self.data_hi, x.max()))
        return super().loss(x, y)
