"""Observation models p(x | z): log-densities summed over features, one value per example.

Decoders output raw parameters; a likelihood turns them into a log-probability, a mean (for
display) and samples. Bernoulli works on logits (never sigmoid then BCE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


class Likelihood:
    """Base class: ``params_per_feature`` raw outputs per data feature."""

    name = "base"
    params_per_feature = 1

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x | params), summed over all non-batch dimensions: shape (batch,)."""
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """E[x | params], in the data's (preprocessed) space."""
        raise NotImplementedError

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def _flat_sum(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def sigmoid_and_log_abs(logits: Tensor) -> tuple[Tensor, Tensor]:
    """sigmoid(l) and log sigmoid(|l|) = log max(s, 1 - s), in vectorised passes that never
    overflow (the logits are clamped to +-80 for the sigmoid only)."""
    s = torch.sigmoid(logits.clamp(-80.0, 80.0))
    return s, torch.maximum(s, 1.0 - s).log_()


class _LogisticNLL(torch.autograd.Function):
    """softplus(l) - x l elementwise (softplus(l) alone without ``x``) from one sigmoid:
    relu(l) - log sigmoid(|l|) - x l, with the gradient (sigmoid(l) - x) * g."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor | None) -> Tensor:  # type: ignore[override]
        s, log_m = sigmoid_and_log_abs(logits)
        out = logits.clamp_min(0.0).sub_(log_m)
        if x is None:
            ctx.save_for_backward(s)
            return out
        ctx.save_for_backward(s, x)
        return out.sub_(x * logits)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        s, *x = ctx.saved_tensors
        return grad * (s - x[0] if x else s), None  # targets needing a gradient use PyTorch's op


def softplus(logits: Tensor) -> Tensor:
    """log(1 + exp(logits)), elementwise, as ``F.softplus`` but without its slow path.

    PyTorch's softplus, log-sigmoid and BCE-with-logits take a slow path on the CPU for strongly
    negative logits (a trained image model's background pixels), up to ten times slower there;
    the sigmoid of clamped logits never does. The absolute error is below float32's spacing
    near 1 (6e-8 per element); the value itself is not clamped.
    """
    return _LogisticNLL.apply(logits, None)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """Elementwise binary cross-entropy on logits (as ``F.binary_cross_entropy_with_logits``
    with ``reduction="none"``), without its slow path for strongly negative logits. Half
    precision logits are computed in float32, as autocast does for that op."""
    if x.requires_grad:
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return _LogisticNLL.apply(logits, x)


class Bernoulli(Likelihood):
    """Bernoulli on logits; also the usual choice for intensities in [0, 1] (continuous BCE)."""

    name = "bernoulli"

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return -_flat_sum(bernoulli_nll(params, x))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    def describe(self) -> str:
        return "Bernoulli on logits (binary cross-entropy, nats)"


class Gaussian(Likelihood):
    """Gaussian with a fixed standard deviation ``sigma``.

    The reported log-likelihood includes the constant -D/2 log(2 pi sigma^2), so numbers are
    true log-densities in nats, comparable with other Gaussian models.
    """

    name = "gaussian"

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = float(sigma)
        self._log_norm = 0.5 * LOG_2PI + math.log(self.sigma)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        sq = (x - params).square() * (0.5 / self.sigma**2)
        d = x[0].numel()
        return -_flat_sum(sq) - d * self._log_norm

    def mean(self, params: Tensor) -> Tensor:
        return params

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(params.shape, generator=generator, device=params.device)
        return params + self.sigma * noise

    def describe(self) -> str:
        return (f"Gaussian, fixed sigma={self.sigma:g} "
                "(includes the -D/2 log(2 pi sigma^2) constant)")


class GaussianLearned(Likelihood):
    """Gaussian whose mean and log-variance per feature both come from the decoder."""

    name = "gaussian-learned"
    params_per_feature = 2

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = params.chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        mu, logvar = self._split(params)
        return -0.5 * _flat_sum((x - mu).square() * torch.exp(-logvar) + logvar + LOG_2PI)

    def mean(self, params: Tensor) -> Tensor:
        return self._split(params)[0]

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mu, logvar = self._split(params)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * noise

    def describe(self) -> str:
        return "Gaussian with learned per-feature variance (full log-density, nats)"


def make_likelihood(name: str, sigma: float = 1.0,
                    columns: list[dict] | None = None) -> Likelihood:
    """The likelihood called ``name``; ``columns`` (a table's fitted encoding) makes the
    per-column "mixed" one (vaelab.tabular.likelihood) and allows no other."""
    from vaelab.errors import ConfigError

    if columns is not None or name == "mixed":
        if columns is None:
            raise ConfigError("--likelihood mixed models a CSV / TSV table column by column; "
                              "use it with --data table.csv (and --preprocess auto).")
        if name != "mixed":
            raise ConfigError(
                f"--likelihood {name} does not fit a table read column by column (numeric, "
                "binary, categorical); leave --likelihood auto (per column), or pass "
                "--preprocess standardize to model an all-numeric table as one vector.")
        from vaelab.tabular.likelihood import MixedLikelihood

        return MixedLikelihood(columns)
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(sigma)
    if name == "gaussian-learned":
        return GaussianLearned()
    raise ConfigError(
        f"option 'likelihood' got {name!r}; choose bernoulli, gaussian, gaussian-learned or "
        "mixed."
    )
