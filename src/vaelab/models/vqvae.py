"""VQ-VAE (van den Oord et al. 2017): vector-quantised codes, EMA codebook, PixelCNN code prior.

The encoder gives a grid of vectors z_e (arch conv: a (H', W') feature map with latent_dim
channels; arch mlp: a sequence of ``code_positions`` vectors, treated as the grid
(1, code_positions)). Each vector is replaced by its nearest codebook row e_k (squared
Euclidean distance); the decoder sees z_q = e_k, and gradients pass from z_q to z_e unchanged
(straight-through). The objective per example is

    -log p(x | z_q) + commitment * sum over positions |z_e - sg(z_q)|^2

in nats. The codebook is not trained by gradients: it follows exponential moving averages
(Sonnet's VectorQuantizerEMA formula, Laplace-smoothed counts) of the encoder outputs assigned
to each code. A code not chosen for ``dead_code_steps`` training steps is restarted at a random
encoder output of the current batch; every code starts "dead", so the first training step
initialises the whole codebook from encoder outputs (a data-dependent initialisation). The
codebook moves only in training steps (train mode with autograd on), never in evaluation.

Not variational in the ELBO sense (``variational = False``): the loss reports ``kl`` 0 in the
first phase, like an AE; metrics.json gets ``recon_nll`` and, through ``code_metrics``,
codebook usage and perplexity on the test split.

Training has two phases (``phases``): "vq-vae" (encoder and decoder, the run's ``epochs``)
then "prior" (a gated PixelCNN over code indices, ``prior_epochs``, the VQ-VAE frozen). In the
prior phase the objective is -log p_prior(codes) per example; it is logged as ``kl`` because,
with a one-hot posterior, KL(q(k|x) || p(k)) = -log p(k(x)); ``recon`` is the frozen model's
reconstruction term.

The latent surface: ``encode(x)`` returns the pre-quantisation encoder outputs z_e, flattened
position-major (position 0's latent_dim entries, then position 1's, ...), so latent scatter,
interpolation and the explorer work on continuous vectors; ``decode(z)`` quantises each
position of ``z`` to its nearest code and then decodes, so ``decode(encode(x))`` is the VQ-VAE
reconstruction and codebook rows decode as themselves. ``prior_sample`` draws a code grid from
the PixelCNN and returns its codebook rows, flattened the same way.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vaelab.errors import ConfigError
from vaelab.models.base import BaseModel, LossParts, ModelSpec, TrainingPhase, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder
from vaelab.nets.blocks import activation
from vaelab.nets.pixelcnn import GatedPixelCNN

NEVER_USED = 2**40
"""Unused-step count a fresh code starts with: it is restarted in the first training step."""


def code_statistics(indices: Tensor | np.ndarray, num_codes: int) -> dict[str, float]:
    """Codebook usage (share of the K codes chosen at least once) and perplexity
    exp(-sum_k p_k log p_k) of the code frequencies p_k, over every position of ``indices``."""
    idx = torch.as_tensor(np.asarray(indices) if not torch.is_tensor(indices) else indices)
    counts = torch.bincount(idx.reshape(-1).long().cpu(), minlength=num_codes).double()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"codebook_usage": float((counts > 0).sum()) / num_codes,
            "codebook_perplexity": float(entropy.exp()),
            "codebook_size": num_codes}


class Codebook(nn.Module):
    """K code vectors updated by exponential moving averages, with dead-code restarts.

    Buffers: ``embed`` (K, D) the codes e_k; ``ema_count`` N_k and ``ema_sum`` m_k (K, D) the
    moving averages of the number and the sum of encoder outputs assigned to each code;
    ``unused`` the training steps since each code was last chosen.
    """

    def __init__(self, size: int, dim: int, decay: float, restart_steps: int,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.size, self.dim, self.decay, self.eps = size, dim, decay, eps
        self.restart_steps = restart_steps if restart_steps > 0 else NEVER_USED
        embed = torch.randn(size, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("ema_count", torch.ones(size))
        self.register_buffer("ema_sum", embed.clone())
        self.register_buffer("unused", torch.full((size,), NEVER_USED, dtype=torch.long))

    def nearest(self, flat: Tensor) -> Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of ``flat``."""
        f = flat.detach().float()
        e = self.embed.float()
        dist = f.square().sum(1, keepdim=True) - 2 * f @ e.T + e.square().sum(1)
        return dist.argmin(1)

    @torch.no_grad()
    def restart_dead(self, flat: Tensor) -> None:
        """Codes unused for ``restart_steps`` steps jump to random rows of ``flat`` (no host
        sync: every code draws a candidate, dead ones take it)."""
        dead = self.unused >= self.restart_steps
        pick = torch.randint(0, flat.shape[0], (self.size,), device=flat.device)
        cand = flat[pick].to(self.embed.dtype)
        self.embed.copy_(torch.where(dead[:, None], cand, self.embed))
        self.ema_sum.copy_(torch.where(dead[:, None], cand, self.ema_sum))
        self.ema_count.copy_(torch.where(dead, torch.ones_like(self.ema_count), self.ema_count))
        self.unused.masked_fill_(dead, 0)

    @torch.no_grad()
    def ema_update(self, flat: Tensor, idx: Tensor) -> None:
        """N_k <- g N_k + (1 - g) n_k,  m_k <- g m_k + (1 - g) sum_{i: k_i = k} z_i,
        e_k = m_k / N~_k with Laplace-smoothed N~_k = (N_k + eps) / (N + K eps) * N,
        N = sum_k N_k; g = ``decay``, n_k = how many rows of ``flat`` chose code k."""
        f = flat.detach().to(self.embed.dtype)
        onehot = torch.zeros(f.shape[0], self.size, device=f.device, dtype=f.dtype)
        onehot.scatter_(1, idx[:, None], 1.0)
        counts = onehot.sum(0)
        g = self.decay
        self.ema_count.mul_(g).add_(counts, alpha=1 - g)
        self.ema_sum.mul_(g).add_(onehot.T @ f, alpha=1 - g)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.size * self.eps) * total
        self.embed.copy_(self.ema_sum / smoothed[:, None])
        self.unused.copy_(torch.where(counts > 0, torch.zeros_like(self.unused),
                                      self.unused + 1))


class _Residual(nn.Module):
    def __init__(self, ch: int, act: str) -> None:
        super().__init__()
        self.body = nn.Sequential(activation(act), nn.Conv2d(ch, ch, 3, padding=1),
                                  activation(act), nn.Conv2d(ch, ch, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class GridEncoder(nn.Module):
    """Stride-2 conv stages (``conv_channels``), a residual block, a 1x1 conv to latent_dim:
    (B, C, H, W) -> (B, latent_dim, H', W'), with the same stage rule as ``nets.conv``."""

    def __init__(self, input_shape: tuple[int, ...], cfg: ModelConfig) -> None:
        super().__init__()
        from vaelab.nets.conv import _usable_stages, stage_sizes

        if len(input_shape) != 3:
            raise ConfigError(
                f"arch 'conv' needs image data (C, H, W) but the examples have shape "
                f"{tuple(input_shape)}; use --arch mlp for tabular data."
            )
        c, h, w = input_shape
        self.channels = cfg.conv_channels[: _usable_stages(h, w, len(cfg.conv_channels))]
        layers: list[nn.Module] = []
        prev = c
        for ch in self.channels:
            layers.append(nn.Conv2d(prev, ch, 3, stride=2, padding=1))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(activation(cfg.activation))
            prev = ch
        layers += [_Residual(prev, cfg.activation), activation(cfg.activation),
                   nn.Conv2d(prev, cfg.latent_dim, 1)]
        self.net = nn.Sequential(*layers)
        self.grid = stage_sizes(h, w, len(self.channels))[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GridDecoder(nn.Module):
    """Mirror of :class:`GridEncoder`: 3x3 conv from latent_dim, a residual block, transposed
    stride-2 convs back to exactly (C * params_per_feature, H, W)."""

    def __init__(self, output_shape: tuple[int, ...], cfg: ModelConfig, channels: list[int],
                 params_per_feature: int) -> None:
        super().__init__()
        from vaelab.nets.conv import stage_sizes

        c, h, w = output_shape
        chans = list(reversed(channels))
        sizes = list(reversed(stage_sizes(h, w, len(channels))))
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_dim, chans[0], 3, padding=1),
                                   _Residual(chans[0], cfg.activation),
                                   activation(cfg.activation)]
        outs = [*chans[1:], c * params_per_feature]
        for i, (cin, cout) in enumerate(zip(chans, outs, strict=True)):
            (ih, iw), (oh, ow) = sizes[i], sizes[i + 1]
            pad = (oh - (2 * ih - 1), ow - (2 * iw - 1))
            layers.append(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1,
                                             output_padding=pad))
            if i < len(chans) - 1:
                if cfg.batch_norm:
                    layers.append(nn.BatchNorm2d(cout))
                layers.append(activation(cfg.activation))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


@register_model("vq-vae", "vector-quantised autoencoder: EMA codebook, dead-code restarts, "
                          "gated PixelCNN code prior trained after it (prior_epochs)")
class VQVAE(BaseModel):
    variational = False
    prior_draws = 0  # the PixelCNN samples one position at a time: too slow for 20,000 codes

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        d = config.latent_dim
        if config.arch == "conv":
            self.encoder = GridEncoder(self.input_shape, config)
            self.decoder = GridDecoder(self.input_shape, config, self.encoder.channels,
                                       self.likelihood.params_per_feature)
            self.grid: tuple[int, int] = tuple(self.encoder.grid)  # type: ignore[assignment]
        else:
            wide = replace(config, latent_dim=d * config.code_positions)
            self.encoder = build_encoder(wide, self.input_shape, wide.latent_dim)
            self.decoder = build_decoder(wide, self.input_shape,
                                         self.likelihood.params_per_feature)
            self.grid = (1, config.code_positions)
        self.code_dim = d
        self.latent_dim = d * self.grid[0] * self.grid[1]
        """Length of the flattened latent vector: latent_dim entries per code position."""
        self.codebook = Codebook(config.codebook_size, d, config.codebook_decay,
                                 config.dead_code_steps)
        self.prior = GatedPixelCNN(config.codebook_size, config.prior_channels,
                                   config.prior_layers)

    # -- grid <-> flat vectors -------------------------------------------------------------
    def to_flat(self, grid: Tensor) -> Tensor:
        """(B, D, H', W') -> (B, H' W' D), position-major."""
        return grid.permute(0, 2, 3, 1).reshape(grid.shape[0], -1)

    def to_grid(self, flat: Tensor) -> Tensor:
        """(B, H' W' D) -> (B, D, H', W')."""
        h, w = self.grid
        return flat.reshape(flat.shape[0], h, w, self.code_dim).permute(0, 3, 1, 2)

    def encode_grid(self, x: Tensor) -> Tensor:
        """Pre-quantisation encoder outputs z_e as a grid (B, D, H', W')."""
        if self.config.arch == "conv":
            return self.encoder(x)
        return self.to_grid(self.encoder(x))

    def decode_grid(self, zq: Tensor) -> Tensor:
        return self.decoder(zq if self.config.arch == "conv" else self.to_flat(zq))

    def quantise(self, ze: Tensor) -> tuple[Tensor, Tensor]:
        """(code indices (B, H', W'), quantised grid z_q (B, D, H', W')) of a grid z_e."""
        b, d, h, w = ze.shape
        idx = self.codebook.nearest(ze.permute(0, 2, 3, 1).reshape(-1, d))
        return idx.view(b, h, w), self.embed_codes(idx.view(b, h, w))

    def embed_codes(self, codes: Tensor) -> Tensor:
        """Code indices (B, H', W') -> their codebook rows as a grid (B, D, H', W')."""
        return self.codebook.embed[codes].permute(0, 3, 1, 2)

    @torch.no_grad()
    def code_indices(self, x: Tensor) -> Tensor:
        """Code grid (B, H', W') of ``x``, with the encoder in evaluation mode."""
        was = self.encoder.training
        self.encoder.eval()
        try:
            return self.quantise(self.encode_grid(x))[0]
        finally:
            self.encoder.train(was)

    # -- the surface -----------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, None]:
        """Pre-quantisation encoder outputs, flattened (see module docstring)."""
        return self.to_flat(self.encode_grid(x)), None

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Quantise each position of ``z`` to its nearest code, then decode."""
        return self.decode_grid(self.quantise(self.to_grid(z))[1])

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        ze = self.encode_grid(x)
        b, d = ze.shape[:2]
        flat = ze.permute(0, 2, 3, 1).reshape(-1, d)
        update = self.training and torch.is_grad_enabled()
        if update:
            self.codebook.restart_dead(flat.detach())
        idx = self.codebook.nearest(flat)
        zq = self.embed_codes(idx.view(b, *ze.shape[2:])).to(ze.dtype)
        if update:
            self.codebook.ema_update(flat.detach(), idx)
        commit_ex = (ze - zq.detach()).square().flatten(1).sum(1)
        zst = ze + (zq - ze).detach()  # straight-through: forward z_q, backward to z_e
        recon_ex = -self.likelihood.log_prob(x, self.decode_grid(zst))
        recon = recon_ex.mean()
        commit = commit_ex.mean()
        with torch.no_grad():
            p = torch.zeros(self.codebook.size, device=idx.device).index_add_(
                0, idx, torch.ones_like(idx, dtype=torch.float)) / idx.numel()  # no host sync
            perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        return LossParts(total=recon + self.config.commitment * commit, recon=recon,
                         kl=recon.new_zeros(()), per_example=recon_ex,
                         extras={"commit": commit.detach(), "perplexity": perplexity})

    def prior_loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        """-log p_prior(codes of x) per example (logged as ``kl``); ``recon`` is the frozen
        VQ-VAE's reconstruction term. Only the prior's parameters get gradients."""
        codes = self.code_indices(x)
        with torch.no_grad():
            was = self.decoder.training
            self.decoder.eval()
            recon_ex = -self.likelihood.log_prob(x, self.decode_grid(self.embed_codes(codes)))
            self.decoder.train(was)
        nll_ex = self.prior.nll(codes)
        nll = nll_ex.mean()
        return LossParts(total=nll, recon=recon_ex.mean(), kl=nll,
                         per_example=recon_ex + nll_ex.detach())

    def phases(self) -> list[TrainingPhase]:
        """"vq-vae" (all but the prior, the run's epochs), then "prior" (``prior_epochs``)."""
        main = [p for n, p in self.named_parameters() if not n.startswith("prior.")]
        out = [TrainingPhase("vq-vae", main, self.loss)]
        if self.config.prior_epochs > 0:
            out.append(TrainingPhase("prior", list(self.prior.parameters()), self.prior_loss,
                                     self.config.prior_epochs))
        return out

    # -- sampling and code statistics ------------------------------------------------------
    @torch.no_grad()
    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, H', W') code indices drawn autoregressively from the PixelCNN prior."""
        was = self.prior.training
        self.prior.eval()
        try:
            dev = self.codebook.embed.device
            return self.prior.sample(n, *self.grid, device=dev, generator=generator)
        finally:
            self.prior.train(was)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Codebook rows of a code grid drawn from the prior, flattened (n, latent_dim)."""
        return self.to_flat(self.embed_codes(self.sample_codes(n, generator)))

    def test_metrics(self, x: Any) -> dict[str, Any]:
        """metrics.json's codebook usage, perplexity and code size (``code_metrics``)."""
        return self.code_metrics(x)

    @torch.no_grad()
    def code_metrics(self, x: np.ndarray | Tensor, batch_size: int = 1024) -> dict[str, float]:
        """Codebook usage and perplexity of the codes of ``x`` (every position of every row)
        and the bits one code grid carries at most, log2(K) per position."""
        self.eval()
        dev = self.codebook.embed.device
        codes = []
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[start : start + batch_size]), dtype=torch.float32,
                                 device=dev)
            codes.append(self.code_indices(xb).cpu())
        idx = torch.cat(codes) if codes else torch.zeros(0, dtype=torch.long)
        out = code_statistics(idx, self.codebook.size)
        out["code_positions"] = self.grid[0] * self.grid[1]
        out["code_bits"] = out["code_positions"] * math.log2(self.codebook.size)
        return out
