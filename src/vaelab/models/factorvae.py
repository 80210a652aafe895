"""FactorVAE (Kim & Mnih 2018): a VAE whose objective adds gamma times the total correlation
of the aggregate posterior, TC = KL(q(z) || prod_j q(z_j)), estimated by a discriminator D
with the density-ratio trick:

    TC ~ E_q(z)[log D(z) - log(1 - D(z))] = mean over the batch of (logit_0 - logit_1),

where D (an MLP on codes with two logits, leaky ReLU 0.2) tells codes of q(z) (class 0) from
codes with every dimension shuffled independently across the batch, samples of
prod_j q(z_j) (class 1). D has its own Adam (``discriminator_lr``, betas 0.5 / 0.9, as in the
paper) and is trained by cross-entropy after every VAE update on that batch's codes and their
shuffle: a :class:`~vaelab.models.base.Companion` of the training phase, so the trainer steps
it and checkpoints its optimiser like any other state (its weights are in the model files).

``kl`` and ``per_example`` are the true KL and negative ELBO; ``tc`` is D's estimate and
``disc_acc`` D's accuracy on codes and their shuffle (0.5 = it cannot tell; in training, that of
D's previous step). The VAE's gradient reaches z through D but never D's weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.models.base import (
    Companion,
    LossParts,
    ModelSpec,
    TrainingPhase,
    gaussian_kl,
    register_model,
    reparameterize,
)
from vaelab.models.config import ModelConfig
from vaelab.models.vae import VAE

DISCRIMINATOR_LAYERS = 6
DISCRIMINATOR_BETAS = (0.5, 0.9)


def discriminator_sizes(config: ModelConfig) -> list[int]:
    """``discriminator_hidden``, or 6 layers of 100 x latent_dim units, at most 1000 (the
    paper's 6 x 1000 at its latent size 10; smaller codes get a smaller network)."""
    if config.discriminator_hidden is not None:
        return list(config.discriminator_hidden)
    return [min(1000, 100 * config.latent_dim)] * DISCRIMINATOR_LAYERS


class Discriminator(nn.Module):
    """Codes (B, D) -> two logits: class 0 "from q(z)", class 1 "from the shuffled codes"."""

    def __init__(self, latent_dim: int, hidden: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = latent_dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
            prev = h
        layers.append(nn.Linear(prev, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Every column of ``z`` shuffled independently across the rows: a sample of the
    product of the marginals of the rows' distribution."""
    keys = torch.rand(z.shape, generator=generator, device=z.device)
    return z.gather(0, keys.argsort(dim=0))


def density_ratio_tc(logits: Tensor) -> Tensor:
    """The TC estimate log D(z) / (1 - D(z)) = logit_0 - logit_1, averaged over codes."""
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_accuracy(joint: Tensor, shuffled: Tensor) -> Tensor:
    """Mean of D's accuracy on codes (logits ``joint``) and on shuffled codes."""
    return 0.5 * ((joint.argmax(1) == 0).float().mean() + (shuffled.argmax(1) == 1).float().mean())


def logits_loss(joint: Tensor, shuffled: Tensor) -> Tensor:
    """Cross-entropy of D's logits on codes (class 0) and shuffled codes (class 1), averaged."""
    zeros = torch.zeros(len(joint), dtype=torch.long, device=joint.device)
    return 0.5 * (F.cross_entropy(joint, zeros) + F.cross_entropy(shuffled, zeros + 1))


def discriminator_loss(disc: nn.Module, z: Tensor, z_perm: Tensor) -> Tensor:
    """Cross-entropy of D on codes (class 0) and shuffled codes (class 1), averaged."""
    return logits_loss(disc(z), disc(z_perm))


@register_model("factor-vae", "FactorVAE: gamma x total correlation from a discriminator on "
                              "shuffled codes, trained with its own Adam")
class FactorVAE(VAE):
    variational = True

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__(config, spec)
        self.discriminator = Discriminator(config.latent_dim, discriminator_sizes(config))
        self._codes: Tensor | None = None
        self._acc: Tensor | None = None

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        recon_ex = -self.likelihood.log_prob(x, self.decode(z))
        kl_ex = gaussian_kl(mu, logvar).sum(1)
        step = self.training and torch.is_grad_enabled()
        disc = list(self.discriminator.parameters())
        for p in disc:  # the VAE's gradient flows through D to z, never into D's weights
            p.requires_grad_(False)
        try:
            logits = self.discriminator(z)
        finally:
            for p in disc:
                p.requires_grad_(True)
        tc = density_ratio_tc(logits)
        codes = z.detach()
        if step:
            self._codes = codes  # what the discriminator's step trains on
            acc = self._acc if self._acc is not None else logits.new_tensor(0.5)
        else:
            with torch.no_grad():
                acc = discriminator_accuracy(logits.detach(),
                                             self.discriminator(permute_dims(codes)))
        recon, kl = recon_ex.mean(), kl_ex.mean()
        cfg = self.config
        total = recon + self.kl_scale * (cfg.beta * kl + cfg.factor_gamma * tc)
        return LossParts(total=total, recon=recon, kl=kl, per_example=recon_ex + kl_ex,
                         extras={"tc": tc.detach(), "disc_acc": acc})

    def discriminator_step_loss(self) -> Tensor:
        """The discriminator's loss on the codes of the last training batch (its accuracy
        there is what the next training step logs as ``disc_acc``)."""
        if self._codes is None:
            raise RuntimeError("the discriminator trains on the codes of a training step; "
                               "call loss() in training mode first")
        z, self._codes = self._codes, None
        joint, shuffled = self.discriminator(z), self.discriminator(permute_dims(z))
        self._acc = discriminator_accuracy(joint.detach(), shuffled.detach())
        return logits_loss(joint, shuffled)

    def phases(self) -> list[TrainingPhase]:
        """One phase over the VAE's parameters, with the discriminator as its companion."""
        disc = list(self.discriminator.parameters())
        own = {id(p) for p in disc}
        vae = [p for p in self.parameters() if id(p) not in own]
        companion = Companion("discriminator", disc, self.discriminator_step_loss,
                              lr=self.config.discriminator_lr, betas=DISCRIMINATOR_BETAS)
        return [TrainingPhase("model", vae, self.loss, companions=[companion])]
