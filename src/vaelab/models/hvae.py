"""Two-stochastic-layer hierarchical VAE with top-down inference (ladder VAE, Sønderby et al.
2016).

Generative model: z2 ~ N(0, I), z1 ~ p(z1 | z2) = N(mu_p(z2), diag(var_p(z2))) (a small MLP),
x ~ p(x | z1) (the usual decoder, reading z1 of size ``latent_dim``). z2 has ``top_latent_dim``
dimensions (0 = half of latent_dim, at least 1).

Inference: a deterministic bottom-up pass (the usual encoder to a feature vector d1, one more
dense layer to d2) gives Gaussian "likelihood" terms (mu_hat_i, var_hat_i) for each layer. Then
top-down: q(z2 | x) = N(mu_hat_2, var_hat_2); after sampling z2, q(z1 | x, z2) is the
precision-weighted combination of the bottom-up term and the prior p(z1 | z2):
var_q = 1 / (1/var_hat_1 + 1/var_p), mu_q = var_q (mu_hat_1/var_hat_1 + mu_p/var_p).

KL: KL(q(z2|x) || N(0, I)) + KL(q(z1|x,z2) || p(z1|z2)) at the sampled z2, both in closed form;
they are logged as ``kl_z2`` and ``kl_z1`` (extras; their sum is ``kl``). recon + kl is the
single-sample negative ELBO; beta and warm-up scale both terms, free bits do not apply.

The code: ``encode(x)`` returns q(z1 | x, z2 = E[z2 | x]), the bottom layer, because that is what
the decoder reads: reconstructions, latent plots, traversals and the explorer all decode z1.
``prior_sample`` draws z2 ~ N(0, I), then z1 ~ p(z1 | z2). ``layer_posteriors`` returns both
layers' posterior means / log-variances (for active units per layer). IWAE evaluation
(``log_weights``) samples z2 then z1 and uses log p(x|z1) + log p(z1|z2) + log p(z2) -
log q(z1|x,z2) - log q(z2|x).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vaelab.likelihoods import LOG_2PI
from vaelab.models.base import (
    BaseModel,
    LossParts,
    ModelSpec,
    gaussian_kl,
    log_px_k,
    register_model,
)
from vaelab.models.config import ModelConfig
from vaelab.nets import build_decoder, build_encoder
from vaelab.nets.blocks import activation

DEFAULT_WIDTH = 64
"""Width of the ladder's dense layers when ``hidden`` is empty (otherwise hidden[-1])."""


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * ((z - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def gaussian_kl_two(mu_q: Tensor, lv_q: Tensor, mu_p: Tensor, lv_p: Tensor) -> Tensor:
    """KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)) per dimension."""
    return 0.5 * (lv_p - lv_q + (torch.exp(lv_q) + (mu_q - mu_p).square()) * torch.exp(-lv_p)
                  - 1.0)


def precision_merge(mu_a: Tensor, lv_a: Tensor, mu_b: Tensor, lv_b: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Product of two diagonal Gaussians, renormalised: (mu, logvar) of the combination."""
    lv = -torch.logaddexp(-lv_a, -lv_b)
    mu = (mu_a * torch.exp(lv - lv_a) + mu_b * torch.exp(lv - lv_b))
    return mu, lv


@register_model("hvae", "two-layer hierarchical VAE, top-down inference (ladder VAE; "
                        "--top-latent-dim)")
class HierarchicalVAE(BaseModel):
    variational = True
    prior_name = "prior p(z1)"

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        d1 = config.latent_dim
        d2 = config.top_latent_dim or max(1, d1 // 2)
        self.top_dim = d2
        width = config.hidden[-1] if config.hidden else DEFAULT_WIDTH
        self.encoder = build_encoder(config, self.input_shape, width)
        self.up_act = activation(config.activation)
        self.q1_head = nn.Linear(width, 2 * d1)
        self.up2 = nn.Sequential(nn.Linear(width, width), activation(config.activation))
        self.q2_head = nn.Linear(width, 2 * d2)
        self.p1_net = nn.Sequential(nn.Linear(d2, width), activation(config.activation),
                                    nn.Linear(width, 2 * d1))
        self.decoder = build_decoder(config, self.input_shape, self.likelihood.params_per_feature)

    # -- pieces --------------------------------------------------------------------------------
    def bottom_up(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(mu_hat_1, logvar_hat_1) of the bottom-up term for z1 and q(z2 | x)'s (mu, logvar)."""
        h1 = self.up_act(self.encoder(x))
        mu1, lv1 = self.q1_head(h1).chunk(2, dim=1)
        mu2, lv2 = self.q2_head(self.up2(h1)).chunk(2, dim=1)
        return mu1, lv1, mu2, lv2

    def prior_z1(self, z2: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of p(z1 | z2)."""
        mu, lv = self.p1_net(z2).chunk(2, dim=1)
        return mu, lv

    def layer_posteriors(self, x: Tensor, y: Tensor | None = None
                         ) -> dict[str, tuple[Tensor, Tensor]]:
        """Each layer's posterior (mu, logvar): z2's q(z2|x), z1's q(z1 | x, z2 = E[z2|x])."""
        mu1, lv1, mu2, lv2 = self.bottom_up(x)
        mu_p, lv_p = self.prior_z1(mu2)
        return {"z1": precision_merge(mu1, lv1, mu_p, lv_p), "z2": (mu2, lv2)}

    @torch.no_grad()
    def test_metrics(self, x: Any, batch_size: int = 1024) -> dict[str, Any]:
        """Active units of each stochastic layer (posterior means' variance over ``x`` above
        0.01): ``active_units_z1`` and ``active_units_z2``."""
        from vaelab.evaluate.latent_metrics import active_units

        self.eval()
        dev = next(self.parameters()).device
        means: dict[str, list[np.ndarray]] = {"z1": [], "z2": []}
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[start : start + batch_size]), dtype=torch.float32,
                                 device=dev)
            for name, (mu, _) in self.layer_posteriors(xb).items():
                means[name].append(mu.float().cpu().numpy())
        return {f"active_units_{name}": active_units(np.concatenate(m))[0]
                for name, m in means.items() if m}

    # -- the surface ---------------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The bottom layer's posterior q(z1 | x, z2 = E[z2 | x]): the code the decoder reads."""
        return self.layer_posteriors(x)["z1"]

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu1, lv1, mu2, lv2 = self.bottom_up(x)
        z2 = mu2 + torch.exp(0.5 * lv2) * torch.randn_like(mu2)
        mu_p, lv_p = self.prior_z1(z2)
        mu_q, lv_q = precision_merge(mu1, lv1, mu_p, lv_p)
        z1 = mu_q + torch.exp(0.5 * lv_q) * torch.randn_like(mu_q)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z1))
        kl1_ex = gaussian_kl_two(mu_q, lv_q, mu_p, lv_p).sum(1)
        kl2_ex = gaussian_kl(mu2, lv2).sum(1)
        kl_ex = kl1_ex + kl2_ex
        recon, kl = recon_ex.mean(), kl_ex.mean()
        return LossParts(total=recon + self.config.beta * self.kl_scale * kl, recon=recon, kl=kl,
                         per_example=recon_ex + kl_ex,
                         extras={"kl_z1": kl1_ex.mean(), "kl_z2": kl2_ex.mean()})

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z1 codes from the generative model: z2 ~ N(0, I), then z1 ~ p(z1 | z2)."""
        dev = next(self.parameters()).device
        z2 = torch.randn(n, self.top_dim, generator=generator, device=dev)
        mu, lv = self.prior_z1(z2)
        return mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=generator, device=dev)

    def posterior(self, x: Tensor, y: Tensor | None = None) -> Any:
        return self.bottom_up(x)

    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1,
                    generator: torch.Generator | None = None, posterior: Any = None) -> Tensor:
        """(k, batch) log p(x, z1, z2) - log q(z1, z2 | x) with z2 ~ q(z2|x), z1 ~ q(z1|x,z2)."""
        mu1, lv1, mu2, lv2 = self.posterior(x) if posterior is None else posterior
        b = x.shape[0]
        dev = mu1.device
        eps2 = torch.randn((k * b, self.top_dim), generator=generator, device=dev,
                           dtype=mu2.dtype)
        mu2k, lv2k = mu2.repeat(k, 1), lv2.repeat(k, 1)
        z2 = mu2k + torch.exp(0.5 * lv2k) * eps2
        mu_p, lv_p = self.prior_z1(z2)
        mu_q, lv_q = precision_merge(mu1.repeat(k, 1), lv1.repeat(k, 1), mu_p, lv_p)
        eps1 = torch.randn(mu_q.shape, generator=generator, device=dev, dtype=mu_q.dtype)
        z1 = mu_q + torch.exp(0.5 * lv_q) * eps1
        params = self.decode(z1)
        params = params.reshape(k, b, *params.shape[1:])
        log_prior = -0.5 * (z2.square() + LOG_2PI).sum(-1) + log_normal(z1, mu_p, lv_p)
        log_q = (-0.5 * (eps2.square() + lv2k + LOG_2PI).sum(-1)
                 - 0.5 * (eps1.square() + lv_q + LOG_2PI).sum(-1))
        return log_px_k(self.likelihood, x, params) + (log_prior - log_q).view(k, b)
