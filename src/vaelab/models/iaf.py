"""VAE with an inverse autoregressive flow posterior (Kingma et al. 2016).

The encoder gives a diagonal Gaussian (mu, logvar) and a context vector h. A base sample
z_0 = mu + sigma_0 * eps goes through ``flow_steps`` steps, each a MADE network
(``vaelab.nets.made``) reading z and h and giving (m, s); with the gate sigma = sigmoid(s):

    z <- sigma * z + (1 - sigma) * m        (the paper's numerically stable, LSTM-like update)

Each step's Jacobian is triangular in its order with diagonal sigma, so log |det| = sum log sigma,
and log q(z_T | x) = log N(z_0; mu, sigma_0^2) - sum_t sum_i log sigma_t,i. The order is reversed
between steps so every coordinate can depend on every other one after two steps. The gate's bias
starts at ``GATE_BIAS`` (sigma near 0.9: each step starts close to the identity).

The prior is N(0, I). The KL is estimated at the sample: log q(z_T | x) - log p(z_T) (``kl``,
``per_example`` = single-sample negative ELBO; beta and warm-up apply, free bits do not). IWAE
evaluation uses the same log q with the flow's log-determinant (``log_weights``).

``encode(x)`` returns the flow's image of the base mean (the code the figures and the explorer
show; ``reconstruct`` decodes it) and the base log-variance plus 2 x the summed log-gates along
that path: per dimension an approximation of the posterior's spread, summed over dimensions the
exact log-volume change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vaelab.likelihoods import LOG_2PI
from vaelab.models.base import BaseModel, LossParts, ModelSpec, log_px_k, register_model
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder
from vaelab.nets.made import MADE

GATE_BIAS = 2.0
"""Initial bias of each step's gate pre-activation s (sigmoid(2) = 0.88)."""


class IAFStep(nn.Module):
    """One flow step: z -> sigma * z + (1 - sigma) * m with (m, s) = MADE(z, h)."""

    def __init__(self, dim: int, hidden: int, context_dim: int, reverse: bool) -> None:
        super().__init__()
        self.made = MADE(dim, hidden, context_dim, outputs=2, reverse=reverse)
        with torch.no_grad():
            self.made.out.bias[dim:].fill_(GATE_BIAS)

    def forward(self, z: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """The new z and log sigma (per dimension)."""
        m, s = self.made(z, h)
        gate = torch.sigmoid(s)
        return gate * z + (1 - gate) * m, nn.functional.logsigmoid(s)


@register_model("iaf", "VAE with an inverse autoregressive flow posterior (--flow-steps)")
class IAFVAE(BaseModel):
    variational = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        d, self.context_dim = config.latent_dim, config.flow_hidden
        self.encoder = build_encoder(config, self.input_shape, 2 * d + self.context_dim)
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)
        self.steps = nn.ModuleList(
            IAFStep(d, config.flow_hidden, self.context_dim, reverse=i % 2 == 1)
            for i in range(config.flow_steps))

    def base(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The base Gaussian's mean and log-variance and the context h."""
        d = self.latent_dim
        out = self.encoder(x)
        return out[:, :d], out[:, d : 2 * d], out[:, 2 * d :]

    def flow(self, z: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """z_T and the flow's log |det dz_T / dz_0| (per example)."""
        logdet = z.new_zeros(z.shape[0])
        for step in self.steps:
            z, log_gate = step(z, h)
            logdet = logdet + log_gate.sum(-1)
        return z, logdet

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar, h = self.base(x)
        z = mu
        for step in self.steps:
            z, log_gate = step(z, h)
            logvar = logvar + 2 * log_gate
        return z, logvar

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def _sample(self, mu: Tensor, logvar: Tensor, h: Tensor, eps: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:
        """z_T, log q(z_T | x) and log p(z_T) for base noise eps (rows of mu / logvar / h)."""
        z, logdet = self.flow(mu + torch.exp(0.5 * logvar) * eps, h)
        log_q = -0.5 * (eps.square() + logvar + LOG_2PI).sum(-1) - logdet
        log_p = -0.5 * (z.square() + LOG_2PI).sum(-1)
        return z, log_q, log_p

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu, logvar, h = self.base(x)
        z, log_q, log_p = self._sample(mu, logvar, h, torch.randn_like(mu))
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        kl_ex = log_q - log_p
        recon, kl = recon_ex.mean(), kl_ex.mean()
        return LossParts(total=recon + self.config.beta * self.kl_scale * kl, recon=recon, kl=kl,
                         per_example=recon_ex + kl_ex)

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Any:
        return self.base(x)

    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1,
                    generator: torch.Generator | None = None, posterior: Any = None) -> Tensor:
        """(k, batch) log p(x | z_T) + log p(z_T) - log q(z_T | x) with the flow's log-det."""
        mu, logvar, h = self.posterior(x) if posterior is None else posterior
        b, d = mu.shape
        eps = torch.randn((k, b, d), generator=generator, device=mu.device, dtype=mu.dtype)
        z, log_q, log_p = self._sample(mu.repeat(k, 1), logvar.repeat(k, 1), h.repeat(k, 1),
                                       eps.reshape(k * b, d))
        params = self.decode(z)
        params = params.reshape(k, b, *params.shape[1:])
        return log_px_k(self.likelihood, x, params) + (log_p - log_q).view(k, b)
