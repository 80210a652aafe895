"""MADE (Germain et al. 2015): a one-hidden-layer network whose masks make output i depend only
on inputs that come before i in a fixed order, plus an unmasked context vector.

Degrees: input i has degree ``order[i]`` (a permutation of 1..D); hidden unit k has a degree in
1..D-1 and sees inputs of degree <= its own; an output of degree d sees hidden units of degree
< d. So output i never sees input i or later ones: the Jacobian of any output with respect to z
is strictly triangular in ``order``. The context is added to the hidden layer (as in the IAF
paper), so it may inform every output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vaelab.nets.blocks import activation


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (a buffer)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """z (batch, D) and context (batch, C) -> ``outputs`` autoregressive vectors of size D each.

    ``reverse`` orders the inputs D..1 instead of 1..D (IAF alternates it between steps).
    """

    def __init__(self, dim: int, hidden: int, context_dim: int = 0, outputs: int = 2,
                 reverse: bool = False, act: str = "elu") -> None:
        super().__init__()
        self.dim, self.outputs = dim, outputs
        order = torch.arange(1, dim + 1)
        if reverse:
            order = order.flip(0)
        self.register_buffer("order", order)
        if dim > 1:
            deg_h = torch.arange(hidden) % (dim - 1) + 1
        else:
            deg_h = torch.zeros(hidden, dtype=torch.long)  # only the context reaches the output
        self.inp = MaskedLinear(dim, hidden, deg_h[:, None] >= order[None, :])
        self.context = nn.Linear(context_dim, hidden, bias=False) if context_dim else None
        self.act = activation(act)
        deg_out = order.repeat(outputs)
        self.out = MaskedLinear(hidden, outputs * dim, deg_out[:, None] > deg_h[None, :])

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, ...]:
        h = self.inp(z)
        if self.context is not None and context is not None:
            h = h + self.context(context)
        return self.out(self.act(h)).chunk(self.outputs, dim=-1)
