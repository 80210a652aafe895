"""Gated PixelCNN over a grid of discrete codes (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders"): the autoregressive code prior of a VQ-VAE.

Codes are ordered in raster order (row by row, left to right); the logits at (i, j) depend only
on the codes before (i, j). Two stacks keep that order without the blind spot of plain masked
convolutions:

- the *vertical* stack at row i sees rows <= i (a (k//2 + 1) x k kernel over the rows above and
  the current row, every column within reach); it reaches the horizontal stack only after a
  shift down by one row, so the horizontal stack at row i sees rows < i from it;
- the *horizontal* stack at (i, j) sees row i at columns <= j (a 1 x (k//2 + 1) kernel); in the
  first layer the input is shifted right by one column, so it sees columns < j ("mask A").

Causality comes from the kernel shapes and shifts (padding on the top / left, cropping), not
from masked weights, so no multiply is wasted on zeroed taps. A sequence of codes is the grid
(1, length): the vertical stack then only ever sees zero padding and the network is a causal
1-D gated convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KERNEL = 3
"""Kernel width k of both stacks."""


def shift_down(t: Tensor) -> Tensor:
    """Row i of the result is row i - 1 of ``t`` (zeros in row 0)."""
    return F.pad(t, (0, 0, 1, 0))[:, :, :-1, :]


def shift_right(t: Tensor) -> Tensor:
    """Column j of the result is column j - 1 of ``t`` (zeros in column 0)."""
    return F.pad(t, (1, 0, 0, 0))[:, :, :, :-1]


def gate(t: Tensor) -> Tensor:
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer of both stacks; ``first`` = the mask-A layer (no residual)."""

    def __init__(self, channels: int, first: bool) -> None:
        super().__init__()
        k, c = KERNEL, channels
        self.first = first
        self.v_conv = nn.Conv2d(c, 2 * c, (k // 2 + 1, k))
        self.h_conv = nn.Conv2d(c, 2 * c, (1, k // 2 + 1))
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
        self.h_out = nn.Conv2d(c, c, 1)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        k = KERNEL
        v_pre = self.v_conv(F.pad(v, (k // 2, k // 2, k // 2, 0)))  # rows i-k//2 .. i
        h_in = shift_right(h) if self.first else h
        h_pre = self.h_conv(F.pad(h_in, (k // 2, 0, 0, 0))) + self.v_to_h(shift_down(v_pre))
        h_new = self.h_out(gate(h_pre))
        return gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """Logits (B, K, H, W) of each code given the codes before it in raster order."""

    def __init__(self, num_codes: int, channels: int = 64, layers: int = 5) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, i == 0) for i in range(max(layers, 1)))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))

    def forward(self, codes: Tensor) -> Tensor:
        """``codes``: (B, H, W) integer code indices."""
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def nll(self, codes: Tensor) -> Tensor:
        """-log p(codes) per example in nats (sum over positions)."""
        logits = self.forward(codes)
        return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, height: int, width: int, device: torch.device,
               generator: torch.Generator | None = None) -> Tensor:
        """(n, H, W) codes drawn position by position in raster order. Row i only needs the
        rows up to i (causality), so each step runs the network on that top part of the grid."""
        codes = torch.zeros(n, height, width, dtype=torch.long, device=device)
        for i in range(height):
            for j in range(width):
                logits = self.forward(codes[:, : i + 1])[:, :, i, j]
                probs = torch.softmax(logits.float(), dim=1)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes
