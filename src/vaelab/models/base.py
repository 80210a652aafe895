"""The surface every model family shares, the loss record the trainer logs, and the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from vaelab.errors import ConfigError
from vaelab.likelihoods import (
    LOG_2PI,
    Bernoulli,
    Gaussian,
    GaussianLearned,
    Likelihood,
    make_likelihood,
    softplus,
)
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
class Companion:
    """A second network trained step for step with a phase (FactorVAE's discriminator): after
    every update of the phase's parameters the trainer runs ``zero_grad``, ``loss()``
    (no arguments: it reads what the phase's loss just cached on the model), ``backward`` and
    a step of its own Adam over ``parameters`` (``lr``, ``betas``, constant rate). Its weights
    are part of the model; its optimiser state is checkpointed under ``name``."""

    name: str
    parameters: list[nn.Parameter]
    loss: Callable[[], Tensor]
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class TrainingPhase:
    """One stage of training, read by the trainer: its own Adam over ``parameters``, minimising
    ``loss(x, y) -> LossParts`` for ``epochs`` epochs (None = the run's ``epochs`` option).
    ``companions`` are networks with their own optimisers stepped after each update."""

    name: str
    parameters: list[nn.Parameter]
    loss: Callable[[Tensor, Tensor | None], LossParts]
    epochs: int | None = None
    companions: list[Companion] = field(default_factory=list)


@dataclass
class ModelSpec:
    """What a model is built for: example shape, likelihood, label count."""

    input_shape: tuple[int, ...]
    likelihood: str
    num_classes: int | None = None
    columns: list[dict[str, Any]] | None = None
    """A table's fitted column encoding (vaelab.data.encoding), for the "mixed" likelihood."""


class BaseModel(nn.Module):
    """Common surface: ``encode``, ``decode``, ``loss``, ``sample``, ``reconstruct``.

    ``decode`` returns the likelihood's raw parameters; ``decode_mean`` returns data-space means.
    """

    variational: bool = True
    uses_labels: bool = False
    label_conditioned: bool = False
    """The decoder reads the label: samples of a chosen class (cvae)."""
    prior_name: str = "N(0, 1)"
    """What ``prior_sample`` draws from, as the figures name it."""
    prior_draws: int = 20_000
    """Codes the latent histograms draw from an overridden ``prior_sample`` as the prior's
    curve; 0 where sampling is sequential (the VQ-VAE's PixelCNN): N(0, 1) is shown instead."""

    def __init__(self, config: ModelConfig, spec: ModelSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.input_shape = tuple(spec.input_shape)
        self.latent_dim = config.latent_dim
        from vaelab.nets.pixel_context import with_pixel_context

        self.likelihood: Likelihood = with_pixel_context(
            make_likelihood(spec.likelihood, config.sigma, columns=spec.columns),
            self.input_shape, config.pixel_context)
        self.kl_scale = 1.0
        """Set by the trainer each epoch for KL warm-up (1.0 outside training)."""
        self.train_rows: int | None = None
        """Rows of the training split, set by the trainer (capacity annealing counts epochs
        with it); None for a model that was not trained in this process."""

    # -- the surface -------------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Posterior mean and log-variance (log-variance None for deterministic codes)."""
        raise NotImplementedError

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def loss(self, x: Tensor, y: Tensor | None = None) -> LossParts:
        raise NotImplementedError

    def phases(self) -> list[TrainingPhase]:
        """Training phases in order (the trainer runs each with its own optimiser). Default:
        one phase over every parameter with ``loss``, for the run's ``epochs``."""
        return [TrainingPhase("model", list(self.parameters()), self.loss)]

    def decode_mean(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decode(z, y))

    def test_metrics(self, x: Any) -> dict[str, Any]:
        """The family's own numbers on the test inputs ``x`` (model space, possibly a lazy
        array), merged into metrics.json's "test" section; none by default."""
        return {}

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

    # -- importance weights (IWAE evaluation) ------------------------------------------------
    def posterior(self, x: Tensor, y: Tensor | None = None) -> Any:
        """What ``log_weights`` needs from one encoder pass over ``x``, computed once per batch
        and reused for every chunk of K: by default the Gaussian's ``(mu, logvar)``."""
        return self.encode(x, y)

    def log_weights(
        self,
        x: Tensor,
        y: Tensor | None = None,
        k: int = 1,
        generator: torch.Generator | None = None,
        posterior: Any = None,
    ) -> Tensor:
        """(k, batch) log importance weights log p(x, z_k) - log q(z_k | x), z_k ~ q(z | x).

        The default is a diagonal Gaussian q and an N(0, I) prior; families with another
        posterior or prior (a flow, a mixture prior, several stochastic layers) override it so
        IWAE evaluation uses their true log-densities. ``posterior`` is ``self.posterior(x, y)``
        when the caller already has it; ``generator`` draws the noise.
        """
        mu, logvar = self.posterior(x, y) if posterior is None else posterior
        std = torch.exp(0.5 * logvar)
        b, latent = mu.shape
        eps = torch.randn((k, b, latent), generator=generator, device=mu.device)
        z = mu + std * eps
        yk = None if y is None else y.repeat(k)
        params = self.decode(z.reshape(k * b, latent), yk)
        params = params.reshape(k, b, *params.shape[1:])
        return (log_px_k(self.likelihood, x, params)
                - 0.5 * (z.square() + LOG_2PI).sum(-1)
                + 0.5 * (eps.square() + LOG_2PI).sum(-1) + torch.log(std).sum(-1))


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


def log_px_k(lik: Likelihood, x: Tensor, params: Tensor) -> Tensor:
    """log p(x | params) for params of shape (k, b, ...) and x of shape (b, ...): (k, b).

    x is broadcast over k, never copied k times (the Bernoulli term is x.logits -
    softplus(logits)); likelihoods without a fast path fall back to ``log_prob``. A pixel
    context (``nets/pixel_context.py``) depends on x only: it is added once to all k."""
    from vaelab.nets.pixel_context import PixelContextLikelihood

    if isinstance(lik, PixelContextLikelihood):
        params, lik = lik.shift(x, params), lik.base
    k, b = params.shape[:2]
    xf = x.reshape(b, -1)
    pf = params.reshape(k, b, -1)
    if type(lik) is Bernoulli:
        return torch.einsum("kbd,bd->kb", pf, xf) - softplus(pf).sum(-1)
    if type(lik) is Gaussian:
        d = xf.shape[1]
        return -0.5 / lik.sigma**2 * (pf - xf).square().sum(-1) - d * lik._log_norm
    if type(lik) is GaussianLearned:
        mu, logvar = params.reshape(k * b, *params.shape[2:]).chunk(2, dim=1)
        mu, logvar = mu.reshape(k, b, -1), logvar.clamp(-10, 10).reshape(k, b, -1)
        return -0.5 * ((xf - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)
    xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    return lik.log_prob(xk, params.reshape(k * b, *params.shape[2:])).view(k, b)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example and dimension: shape like ``mu``."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
