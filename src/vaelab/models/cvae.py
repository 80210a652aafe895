"""Conditional VAE: encoder and decoder both see the one-hot label, so a user can generate a
chosen class with ``sample(n, y)``.

Unlabelled rows (y = -1) get an all-zero condition vector: the model then learns an
"unknown class" mode alongside the labelled ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vaelab.models.base import ModelSpec, register_model
from vaelab.models.config import ModelConfig
from vaelab.models.vae import VAE


@register_model("cvae", "conditional VAE on the label (generate a chosen class)")
class ConditionalVAE(VAE):
    uses_labels = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        self.cond_dim = int(spec.num_classes or 0)
        super().__init__(config, spec)

    def condition(self, y: Tensor | None) -> Tensor:
        if y is None:
            raise ValueError("cvae needs labels: pass y (class indices, -1 for unknown)")
        known = y >= 0
        onehot = F.one_hot(y.clamp(min=0), self.cond_dim).to(torch.float32)
        return onehot * known.unsqueeze(1)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:  # no label asked for: the "unknown class" condition
            y = torch.full((z.shape[0],), -1, dtype=torch.long, device=z.device)
        return self.decoder(z, self.condition(y))

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if y is None:
            y = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
        return super().encode(x, y)
