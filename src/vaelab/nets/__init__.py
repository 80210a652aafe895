"""Network building blocks: encoders and decoders from a small spec (MLP or convolutional)."""

from __future__ import annotations

from torch import nn

from vaelab.errors import ConfigError
from vaelab.models.config import ModelConfig
from vaelab.nets.mlp import MLPDecoder, MLPEncoder


def build_encoder(
    cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int, cond_dim: int = 0
) -> nn.Module:
    """Encoder of ``cfg.arch`` mapping an example (and condition) to ``out_features``."""
    if cfg.arch == "mlp":
        return MLPEncoder(input_shape, cfg.hidden, out_features, cond_dim=cond_dim,
                          activation=cfg.activation, batch_norm=cfg.batch_norm,
                          dropout=cfg.dropout)
    if cfg.arch == "conv":
        from vaelab.nets.conv import ConvEncoder

        return ConvEncoder(input_shape, cfg, out_features, cond_dim=cond_dim)
    raise ConfigError(f"option 'arch' got {cfg.arch!r}; choose mlp or conv.")


def build_decoder(
    cfg: ModelConfig, output_shape: tuple[int, ...], params_per_feature: int, cond_dim: int = 0
) -> nn.Module:
    """Decoder of ``cfg.arch`` mapping a code (and condition) to likelihood parameters."""
    hidden = cfg.decoder_hidden if cfg.decoder_hidden is not None else list(reversed(cfg.hidden))
    if cfg.arch == "mlp":
        return MLPDecoder(cfg.latent_dim, hidden, output_shape,
                          params_per_feature=params_per_feature, cond_dim=cond_dim,
                          activation=cfg.activation, batch_norm=cfg.batch_norm,
                          dropout=cfg.dropout)
    if cfg.arch == "conv":
        from vaelab.nets.conv import ConvDecoder

        return ConvDecoder(output_shape, cfg, params_per_feature, cond_dim=cond_dim)
    raise ConfigError(f"option 'arch' got {cfg.arch!r}; choose mlp or conv.")
