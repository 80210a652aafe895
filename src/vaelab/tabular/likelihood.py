"""The likelihood of a table by column: the sum of one term per observed cell, in nats.

- numeric columns: Gaussian with a mean and a log-variance from the decoder (standard deviation
  at least 0.01 and at most 10, in standardised units);
- binary columns: Bernoulli on a logit;
- categorical columns: softmax over the categories seen in training plus "unknown".

The decoder gives two outputs per encoded slot (``params_per_feature = 2``): a location (mean,
logit) and a log-variance used by numeric slots only, so every model family builds its decoder
as for any other likelihood. Missing cells (observed flag 0 in the encoded row, see
``vaelab.data.encoding``) contribute nothing: the model learns from the observed cells.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vaelab.likelihoods import Likelihood, bernoulli_nll

LOG_2PI = math.log(2 * math.pi)
LOGVAR_MIN = 2 * math.log(0.01)
LOGVAR_MAX = 2 * math.log(10.0)


class MixedLikelihood(Likelihood):
    """Per-column likelihood of an encoded table (``columns``: the fitted encoding's list)."""

    name = "mixed"
    params_per_feature = 2

    def __init__(self, columns: list[dict[str, Any]]) -> None:
        self.columns = columns
        self.n_columns = len(columns)
        self.width = max(d["mask_slot"] for d in columns) + 1
        self._index: dict[str, dict[str, Any]] = {}

    def _idx(self, device: torch.device) -> dict[str, Any]:
        """Index tensors on ``device``, built on first use (never at construction, so a model
        built on the meta device holds none)."""
        key = str(device)
        if key not in self._index:
            def t(v: list[int]) -> Tensor:
                return torch.tensor(v, dtype=torch.long, device=device)

            kinds = [d["kind"] for d in self.columns]
            num = [j for j, k in enumerate(kinds) if k == "numeric"]
            bin_ = [j for j, k in enumerate(kinds) if k == "binary"]
            cat = [j for j, k in enumerate(kinds) if k == "categorical"]
            order = num + bin_ + cat
            self._index[key] = {
                "num_slots": t([self.columns[j]["slot"] for j in num]),
                "bin_slots": t([self.columns[j]["slot"] for j in bin_]),
                "cat": [(self.columns[j]["slot"], self.columns[j]["width"]) for j in cat],
                "mask": t([d["mask_slot"] for d in self.columns]),
                "inverse": t(sorted(range(len(order)), key=order.__getitem__)),
            }
        return self._index[key]

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        p = params.reshape(params.shape[0], 2, self.width)
        return p[:, 0], p[:, 1]

    def per_column(self, x: Tensor, params: Tensor) -> Tensor:
        """(batch, columns) log-density of each cell; 0 for missing cells."""
        ix = self._idx(x.device)
        x = x.reshape(x.shape[0], -1)
        loc, aux = self._split(params)
        terms = []
        if len(ix["num_slots"]):
            s = ix["num_slots"]
            lv = aux[:, s].clamp(LOGVAR_MIN, LOGVAR_MAX)
            terms.append(-0.5 * ((x[:, s] - loc[:, s]).square() * torch.exp(-lv) + lv + LOG_2PI))
        if len(ix["bin_slots"]):
            s = ix["bin_slots"]
            terms.append(-bernoulli_nll(loc[:, s], x[:, s]))
        for start, width in ix["cat"]:
            logp = F.log_softmax(loc[:, start : start + width], dim=1)
            terms.append((x[:, start : start + width] * logp).sum(1, keepdim=True))
        return torch.cat(terms, dim=1)[:, ix["inverse"]] * x[:, ix["mask"]]

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        return self.per_column(x, params).sum(1)

    def _pieces(self, params: Tensor, sample: bool, generator: torch.Generator | None
                ) -> Tensor:
        loc, aux = self._split(params)
        b = loc.shape[0]
        pieces = []
        for d in self.columns:
            s, w = d["slot"], d["width"]
            if d["kind"] == "numeric":
                mu = loc[:, s : s + 1]
                if sample:
                    std = torch.exp(0.5 * aux[:, s : s + 1].clamp(LOGVAR_MIN, LOGVAR_MAX))
                    noise = torch.randn(mu.shape, generator=generator, device=mu.device)
                    mu = mu + std * noise
                pieces.append(mu)
            elif d["kind"] == "binary":
                p = torch.sigmoid(loc[:, s : s + 1])
                pieces.append(torch.bernoulli(p, generator=generator) if sample else p)
            else:
                logits = loc[:, s : s + w]
                if not sample:
                    pieces.append(torch.softmax(logits, dim=1))
                    continue
                known = logits[:, : w - 1] if w > 1 else logits  # never draw "unknown"
                k = torch.multinomial(torch.softmax(known, dim=1), 1, generator=generator)
                pieces.append(F.one_hot(k[:, 0], w).to(loc.dtype))
        pieces.append(loc.new_ones(b, self.n_columns))
        return torch.cat(pieces, dim=1)

    def mean(self, params: Tensor) -> Tensor:
        """Encoded-row means: numeric means, binary probabilities, category probabilities, and
        observed flags 1."""
        return self._pieces(params, False, None)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Encoded rows drawn cell by cell (categories never "unknown")."""
        return self._pieces(params, True, generator)

    def describe(self) -> str:
        kinds = [d["kind"] for d in self.columns]
        parts = [f"{kinds.count(k)} {k}" for k in ("numeric", "binary", "categorical")
                 if kinds.count(k)]
        return ("per-column: " + ", ".join(parts) + " (Gaussian with learned variance, "
                "Bernoulli, softmax); missing cells left out; nats")
