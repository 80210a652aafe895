"""MLP encoder and decoder built from a list of hidden sizes."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaelab.nets.blocks import dense_stack


class MLPEncoder(nn.Module):
    """Flattens the input (plus an optional condition vector) and maps it to ``out_features``."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden: list[int],
        out_features: int,
        *,
        cond_dim: int = 0,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = math.prod(input_shape)
        self.body, width = dense_stack(
            self.in_features + cond_dim, hidden, activation, batch_norm, dropout
        )
        self.head = nn.Linear(width, out_features)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = x.reshape(x.shape[0], -1)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.head(self.body(h))


class MLPDecoder(nn.Module):
    """Maps a code (plus optional condition) to ``channels_out`` parameters per data feature."""

    def __init__(
        self,
        latent_dim: int,
        hidden: list[int],
        output_shape: tuple[int, ...],
        *,
        params_per_feature: int = 1,
        cond_dim: int = 0,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.ppf = params_per_feature
        self.body, width = dense_stack(latent_dim + cond_dim, hidden, activation, batch_norm,
                                       dropout)
        self.head = nn.Linear(width, math.prod(output_shape) * params_per_feature)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        h = z if cond is None else torch.cat([z, cond], dim=1)
        out = self.head(self.body(h))
        first = self.output_shape[0] * self.ppf
        return out.reshape(z.shape[0], first, *self.output_shape[1:])
