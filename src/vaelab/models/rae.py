"""Regularised deterministic autoencoder (RAE, Ghosh et al. 2020).

The objective per batch is

    reconstruction NLL + rae_z_weight * mean |z|^2 / 2 + rae_reg_weight * decoder penalty

with the decoder penalty (``rae_reg``):

- ``l2``: the sum of the squared decoder parameters (weight decay on the decoder, RAE-L2);
- ``gp``: the batch mean of |grad_z sum_j D_j(z)|^2, the squared gradient of the decoder's
  summed data-space output with respect to the code (a gradient penalty on the decoder,
  RAE-GP); computed with autograd (``create_graph`` in training so it is optimised);
- ``none``: only the code penalty (the paper's plain "RAE").

The code penalty keeps the codes from growing without bound while the decoder is shrunk. An
RAE has no prior: the paper samples from a density fitted to the training codes afterwards
("ex-post"), which is vaelab's GMM sampler (``vaelab sample RUN --sampler gmm``). Its own
``prior_sample`` is the AE's Gaussian fitted to the training codes. Reported numbers are the
reconstruction NLL (``variational = False``); the penalties are logged as ``z_penalty`` and
``decoder_reg``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.errors import ConfigError
from vaelab.models.ae import AE
from vaelab.models.base import LossParts, ModelSpec, register_model
from vaelab.models.config import ModelConfig

RAE_REGULARISERS = ("l2", "gp", "none")


@register_model("rae", "regularised autoencoder (|z|^2 plus L2 or gradient penalty on the decoder)")
class RAE(AE):
    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        if config.rae_reg not in RAE_REGULARISERS:
            raise ConfigError(f"option 'rae_reg' got {config.rae_reg!r}; choose one of "
                              f"{', '.join(RAE_REGULARISERS)}.")
        for name in ("rae_z_weight", "rae_reg_weight"):
            if getattr(config, name) < 0:
                raise ConfigError(f"option '{name}' got {getattr(config, name)}; use a weight "
                                  ">= 0.")

    def code_penalty(self, z: Tensor) -> Tensor:
        """|z|^2 / 2 per example, shape (n,)."""
        return 0.5 * z.square().sum(1)

    def l2_penalty(self) -> Tensor:
        """Sum of the squared decoder parameters."""
        return sum(p.square().sum() for p in self.decoder.parameters())  # type: ignore[return-value]

    def gradient_penalty(self, z: Tensor, params: Tensor | None = None) -> Tensor:
        """Batch mean of |d/dz sum_j mean_j(z)|^2 for the decoder's data-space mean.

        ``params``: the decoder's output for z when already computed. Differentiable (part of
        the objective) when gradients are on; under ``no_grad`` (the validation objective,
        test metrics) it is measured on a detached copy of z.
        """
        if torch.is_inference_mode_enabled():
            return z.new_full((), float("nan"))  # autograd is off entirely: not measurable
        if torch.is_grad_enabled() and z.requires_grad:
            out = self.likelihood.mean(self.decode(z) if params is None else params)
            (g,) = torch.autograd.grad(out.sum(), z, create_graph=True)
            return g.square().sum(1).mean()
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.decode_mean(zz).sum(), zz)
        return g.square().sum(1).mean().detach()

    def decoder_penalty(self, z: Tensor, params: Tensor | None = None) -> Tensor:
        """The ``rae_reg`` term (``params``: the decoder's output for z, when computed)."""
        if self.config.rae_reg == "l2":
            return self.l2_penalty()
        if self.config.rae_reg == "gp":
            return self.gradient_penalty(z, params)
        return z.new_zeros(())

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        z, _ = self.encode(x)
        if self.training:
            self._track_codes(z.detach())
        params = self.decode(z)
        recon_ex = -self.likelihood.log_prob(x, params)
        recon = recon_ex.mean()
        z_pen = self.code_penalty(z).mean()
        reg = self.decoder_penalty(z, params)
        cfg = self.config
        total = recon + cfg.rae_z_weight * z_pen + cfg.rae_reg_weight * reg
        return LossParts(total=total, recon=recon, kl=recon.new_zeros(()), per_example=recon_ex,
                         extras={"z_penalty": z_pen, "decoder_reg": reg})
