"""The surface every model family shares, the loss record the trainer logs, and the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vaelab.errors import ConfigError
from vaelab.likelihoods import Likelihood, make_likelihood
from vaelab.models.config import ModelConfig


@dataclass
class LossParts:
    """One batch's objective. ``total`` is minimised; the rest are logged, in nats per example.

    ``recon`` is -E[log p(x|z)] and ``kl`` is KL(q(z|x) || p(z)), both batch means; ``extras``
    holds further terms (a label loss, the IWAE bound, ...). ``per_example`` is the negative ELBO
    (or reconstruction loss for AEs) per example, for evaluation.
    """

    total: Tensor
    recon: Tensor
    kl: Tensor
    per_example: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class ModelSpec:
    """What a model is built for: example shape, likelihood, label count."""

    input_shape: tuple[int, ...]
    likelihood: str
    num_classes: int | None = None


class BaseModel(nn.Module):
    """Common surface: ``encode``, ``decode``, ``loss``, ``sample``, ``reconstruct``.

    ``decode`` returns the likelihood's raw parameters; ``decode_mean`` returns data-space means.
    """

    variational: bool = True
    uses_labels: bool = False
    label_conditioned: bool = False
    """The decoder reads the label: samples of a chosen class (cvae)."""

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.input_shape = tuple(spec.input_shape)
        self.latent_dim = config.latent_dim
        self.likelihood: Likelihood = make_likelihood(spec.likelihood, config.sigma)
        self.kl_scale = 1.0
        """Set by the trainer each epoch for KL warm-up (1.0 outside training)."""

    # -- the surface -------------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Posterior mean and log-variance (log-variance None for deterministic codes)."""
        raise NotImplementedError

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        raise NotImplementedError

    def decode_mean(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decode(z, y))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        mu, _ = self.encode(x, y)
        return self.decode_mean(mu, y)

    @torch.no_grad()
    def sample(
        self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decoder means of n codes drawn from the prior."""
        return self.decode_mean(self.prior_sample(n, generator), y)

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes from the prior N(0, I) (an AE overrides this with its fitted code Gaussian)."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)


ModelFactory = Callable[[ModelConfig, ModelSpec], BaseModel]
MODELS: dict[str, type[BaseModel]] = {}
DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str) -> Callable[[type[BaseModel]], type[BaseModel]]:
    def deco(cls: type[BaseModel]) -> type[BaseModel]:
        MODELS[name] = cls
        DESCRIPTIONS[name] = description
        return cls

    return deco


def build_model(config: ModelConfig, spec: ModelSpec) -> BaseModel:
    """Instantiate the registered family ``config.model`` for ``spec``."""
    try:
        cls = MODELS[config.model]
    except KeyError:
        raise ConfigError(
            f"option 'model' got {config.model!r}; choose one of {', '.join(sorted(MODELS))}."
        ) from None
    if cls.uses_labels and not spec.num_classes:
        raise ConfigError(
            f"model '{config.model}' needs labels, but the data has none; use a labelled "
            "dataset or --label-column."
        )
    return cls(config, spec)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example and dimension: shape like ``mu``."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
