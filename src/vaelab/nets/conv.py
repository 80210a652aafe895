"""Convolutional encoder and decoder for any (C, H, W): stride-2 convolutions down, mirrored up.

Each encoder stage halves H and W (rounding up); the decoder records those sizes and mirrors
them with transposed convolutions whose ``output_padding`` restores each size exactly, so
28x28, 8x8 and odd sizes all round-trip without hard-coded shapes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vaelab.errors import ConfigError
from vaelab.models.config import ModelConfig
from vaelab.nets.blocks import activation, dense_stack


def stage_sizes(h: int, w: int, stages: int) -> list[tuple[int, int]]:
    """Spatial size before each stage and after the last: [(H, W), (ceil(H/2), ...), ...]."""
    sizes = [(h, w)]
    for _ in range(stages):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def _usable_stages(h: int, w: int, wanted: int) -> int:
    """No more stride-2 stages than keep the feature map at least 2x2."""
    n = 0
    while n < wanted and min(h, w) >= 4:
        h, w = (h + 1) // 2, (w + 1) // 2
        n += 1
    return max(n, 1)


class ConvEncoder(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], cfg: ModelConfig, out_features: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"arch 'conv' needs image data (C, H, W) but the examples have shape "
                f"{tuple(input_shape)}; use --arch mlp for tabular data."
            )
        c, h, w = input_shape
        n = _usable_stages(h, w, len(cfg.conv_channels))
        chans = cfg.conv_channels[:n]
        layers: list[nn.Module] = []
        prev = c
        for ch in chans:
            layers.append(nn.Conv2d(prev, ch, kernel_size=3, stride=2, padding=1))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(activation(cfg.activation))
            prev = ch
        self.convs = nn.Sequential(*layers)
        fh, fw = stage_sizes(h, w, n)[-1]
        self.flat = prev * fh * fw
        self.body, width = dense_stack(self.flat + cond_dim, cfg.hidden[-1:] if cfg.hidden else [],
                                       cfg.activation, cfg.batch_norm, cfg.dropout)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = self.convs(x).flatten(1)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.head(self.body(h))


class ConvDecoder(nn.Module):
    def __init__(self, output_shape: tuple[int, ...], cfg: ModelConfig, params_per_feature: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        c, h, w = output_shape
        n = _usable_stages(h, w, len(cfg.conv_channels))
        chans = list(reversed(cfg.conv_channels[:n]))
        self.sizes = list(reversed(stage_sizes(h, w, n)))  # smallest first
        self.start = (chans[0], *self.sizes[0])
        hidden = cfg.hidden[-1:] if cfg.hidden else []
        self.body, width = dense_stack(cfg.latent_dim + cond_dim, hidden, cfg.activation,
                                       cfg.batch_norm, cfg.dropout)
        self.fc = nn.Linear(width, math.prod(self.start))
        self.act = activation(cfg.activation)
        layers: list[nn.Module] = []
        outs = [*chans[1:], c * params_per_feature]
        for i, (cin, cout) in enumerate(zip(chans, outs, strict=True)):
            (ih, iw), (oh, ow) = self.sizes[i], self.sizes[i + 1]
            pad = (oh - (2 * ih - 1), ow - (2 * iw - 1))  # output_padding for an exact size
            layers.append(nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1,
                                             output_padding=pad))
            if i < len(chans) - 1:
                if cfg.batch_norm:
                    layers.append(nn.BatchNorm2d(cout))
                layers.append(activation(cfg.activation))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        h = z if cond is None else torch.cat([z, cond], dim=1)
        h = self.act(self.fc(self.body(h))).view(z.shape[0], *self.start)
        return self.deconvs(h)
