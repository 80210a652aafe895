"""Samplers: where the codes of generated examples come from, fitted on a run and saved in it.

- ``prior``: the model's own ``prior_sample`` (N(0, I) for VAEs and the WAE; the Gaussian
  fitted to the training codes for AE-like models).
- ``gmm``: a Gaussian mixture fitted to the posterior means of the training split ("ex-post
  density estimation", Ghosh et al. 2020). The number of components is chosen among
  ``GMM_CANDIDATES`` by the mean log-likelihood of the validation split's codes; full
  covariances where the training codes are plenty for them (``FULL_COVARIANCE_ROWS`` rows per
  parameter), diagonal ones otherwise. Saved as ``RUN/samplers/gmm.safetensors`` (weights,
  means, covariances, float64) and ``gmm.json`` (the choice, the validation scores and the
  weights file's fingerprint); loading rebuilds it from those numbers alone, no pickle, and
  samples with numpy, so a seed gives the same codes before and after saving.

Label-conditioned models (cvae): one mixture over the codes of every class (each training row
encoded with its own label); samples are decoded with the label asked for, as with the prior.
The code of a cvae is meant to carry what the label does not, so its codes share one density.

``vaelab sample``, the report's figures, the Fréchet distances in metrics.json and the
explorer all go through ``load_sampler``; a GMM is fitted on first use and reused after.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.errors import ConfigError, RunDirError

if TYPE_CHECKING:
    import torch

    from vaelab.models import BaseModel
    from vaelab.run import Run

SAMPLERS = ("prior", "gmm")
GMM_CANDIDATES = (1, 2, 5, 10, 20)
"""Numbers of mixture components tried; the validation codes' log-likelihood picks one."""
FULL_COVARIANCE_ROWS = 5
"""Full covariances when there are at least this many training codes per fitted parameter."""
MAX_FIT_CODES = 5000
"""Training codes a GMM is fitted on at most (a seeded subset): full-covariance EM on 20,000
20-D codes took 6.5 s of one core, on 5,000 1.5 s, for the same chosen K on Fashion-MNIST."""
MAX_VAL_CODES = 2000
FOLDER = "samplers"


def check_sampler_name(name: str) -> None:
    if name not in SAMPLERS:
        raise ConfigError(f"option 'sampler' got {name!r}; choose one of {', '.join(SAMPLERS)}.")


class PriorSampler:
    """The model's own prior: codes from ``model.prior_sample`` with a seeded generator."""

    name = "prior"

    def __init__(self, model: BaseModel) -> None:
        self.model = model

    def codes(self, n: int, seed: int = 0, device: torch.device | str | None = None
              ) -> torch.Tensor:
        import torch

        dev = torch.device(device) if device is not None else \
            next(self.model.parameters()).device
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        return self.model.prior_sample(n, generator=gen).to(dev)

    def describe(self) -> str:
        return "the model's prior"


class GMMSampler:
    """A Gaussian mixture over codes: ``weights`` (K,), ``means`` (K, d), ``covariances``
    (K, d, d), all float64; ``info`` holds how it was chosen (see ``fit_gmm``)."""

    name = "gmm"

    def __init__(self, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                 info: dict[str, Any] | None = None) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.covariances = np.asarray(covariances, dtype=np.float64)
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise ValueError(f"GMM shapes do not agree: weights {self.weights.shape}, means "
                             f"{self.means.shape}, covariances {self.covariances.shape}")
        self.weights = self.weights / self.weights.sum()
        self.cholesky = np.linalg.cholesky(self.covariances)
        self.info = dict(info or {})

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def sample_numpy(self, n: int, seed: int = 0) -> np.ndarray:
        """n codes (float64): a component by its weight, then its mean + L @ N(0, I)."""
        rng = np.random.default_rng(seed)
        comp = rng.choice(self.n_components, size=n, p=self.weights)
        eps = rng.standard_normal((n, self.means.shape[1]))
        return self.means[comp] + np.einsum("nij,nj->ni", self.cholesky[comp], eps)

    def codes(self, n: int, seed: int = 0, device: torch.device | str | None = None
              ) -> torch.Tensor:
        import torch

        return torch.as_tensor(self.sample_numpy(n, seed), dtype=torch.float32, device=device)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log density of each row of z under the mixture (nats)."""
        z = np.asarray(z, dtype=np.float64)
        d = z.shape[1]
        parts = []
        for w, mu, chol in zip(self.weights, self.means, self.cholesky, strict=True):
            sol = np.linalg.solve(chol, (z - mu).T)  # L^-1 (z - mu)
            logdet = 2.0 * np.log(np.diag(chol)).sum()
            parts.append(np.log(w) - 0.5 * (d * np.log(2 * np.pi) + logdet
                                             + np.square(sol).sum(0)))
        stacked = np.stack(parts)
        top = stacked.max(0)
        return top + np.log(np.exp(stacked - top).sum(0))

    def describe(self) -> str:
        return f"a {self.n_components}-component Gaussian mixture fitted to the training codes"

    # -- files ------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        import torch

        from vaelab.modelio import atomic_write_text, save_safetensors

        folder.mkdir(parents=True, exist_ok=True)
        save_safetensors({"weights": torch.from_numpy(self.weights),
                          "means": torch.from_numpy(self.means),
                          "covariances": torch.from_numpy(self.covariances)},
                         folder / "gmm.safetensors")
        atomic_write_text(folder / "gmm.json", json.dumps(self.info, indent=2))

    @classmethod
    def load(cls, folder: Path) -> GMMSampler:
        from vaelab.modelio import load_tensors

        meta_path = folder / "gmm.json"
        try:
            info = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{meta_path} is missing or not valid JSON ({exc}); delete "
                              f"{folder} and sample again to refit it.") from None
        t = load_tensors(folder / "gmm.safetensors")
        missing = {"weights", "means", "covariances"} - set(t)
        if missing:
            raise RunDirError(f"{folder / 'gmm.safetensors'} lacks {', '.join(sorted(missing))};"
                              f" delete {folder} and sample again to refit it.")
        return cls(t["weights"].double().numpy(), t["means"].double().numpy(),
                   t["covariances"].double().numpy(), info)


def _covariance_type(n_rows: int, k: int, d: int) -> str:
    params = k * (d + d * (d + 1) // 2)
    return "full" if n_rows >= FULL_COVARIANCE_ROWS * params else "diag"


def fit_gmm(train: np.ndarray, val: np.ndarray | None, *, seed: int = 0,
            candidates: tuple[int, ...] = GMM_CANDIDATES) -> GMMSampler:
    """Fit one mixture per candidate K on ``train`` codes, keep the best on ``val`` codes.

    Without validation codes a fifth of the training codes is held out. Scores are the mean
    log-likelihood per validation code (nats); the saved mixture is the one that was scored.
    """
    return GMMSampler(*fit_gmm_arrays(train, val, seed, candidates))


def fit_gmm_arrays(train: np.ndarray, val: np.ndarray | None, seed: int = 0,
                   candidates: tuple[int, ...] = GMM_CANDIDATES
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """:func:`fit_gmm` as plain arrays (weights, means, covariances, info), on one thread:
    what vaelab's worker process runs (``vaelab.worker``)."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    train = np.asarray(train, dtype=np.float64)
    if val is None or len(val) < 2:
        order = rng.permutation(len(train))
        cut = max(len(train) // 5, 1)
        val, train = train[order[:cut]], train[order[cut:]]
    val = np.asarray(val, dtype=np.float64)
    if len(train) > MAX_FIT_CODES:
        train = train[rng.choice(len(train), MAX_FIT_CODES, replace=False)]
    if len(val) > MAX_VAL_CODES:
        val = val[rng.choice(len(val), MAX_VAL_CODES, replace=False)]
    n, d = train.shape
    if n < 2:
        raise ValueError(f"a GMM needs at least 2 training codes, got {n}")
    reg = 1e-6 * max(float(train.var(0).mean()), 1e-12)
    scores: list[dict[str, Any]] = []
    best: tuple[float, Any, str] | None = None
    for k in candidates:
        if k > n // 2 and k > 1:
            continue
        cov = _covariance_type(n, k, d)
        with threadpool_limits(1):  # 20-D matrices: more threads only wait on each other
            gm = GaussianMixture(n_components=k, covariance_type=cov, reg_covar=reg,
                                 max_iter=200, n_init=1, random_state=seed).fit(train)
        score = float(gm.score(val))
        scores.append({"k": k, "covariance": cov, "val_log_likelihood": score,
                       "converged": bool(gm.converged_)})
        if best is None or score > best[0]:
            best = (score, gm, cov)
    assert best is not None
    score, gm, cov = best
    covs = gm.covariances_
    if cov == "diag":
        covs = np.stack([np.diag(c) for c in covs])
    info = {"sampler": "gmm", "k": int(gm.n_components), "covariance": cov,
            "val_log_likelihood": score, "candidates": scores,
            "n_fit": int(n), "n_val": len(val), "latent_dim": int(d), "seed": seed,
            "fitted_on": "posterior means of the training split",
            "scored_on": "posterior means of the validation split (mean log-likelihood, nats)"}
    return gm.weights_, gm.means_, covs, info


def weights_fingerprint(run: Run) -> str | None:
    """SHA-256 of the run's model.safetensors (a refit is due when the weights change)."""
    p = run.path / "model.safetensors"
    if not p.exists():
        return None
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _codes(run: Run, split: str) -> np.ndarray | None:
    """Posterior means of (a seeded subset of) a split's rows."""
    from vaelab.evaluate.metrics import encode_subset

    data = getattr(run.data, split)
    if data is None or len(data) == 0:
        return None
    limit = MAX_FIT_CODES if split == "train" else MAX_VAL_CODES
    return encode_subset(run.model, data.x, data.y, limit, run.config.train.seed)[0]


def start_fit(run: Run) -> None:
    """Encode the codes now and fit the GMM in vaelab's worker process (``vaelab.worker``)
    while the caller goes on; the next ``load_sampler(run, "gmm")`` waits for that fit. Does
    nothing when the run already has a GMM for its weights."""
    from vaelab import worker

    pending = run.__dict__.setdefault("_pending", {})
    if "gmm" in pending or _saved_gmm(run) is not None:
        return
    pending["gmm"] = (time.perf_counter(), worker.submit(
        "gmm", _codes(run, "train"), _codes(run, "val"), run.config.train.seed))


def fit_sampler(run: Run, name: str = "gmm") -> PriorSampler | GMMSampler:
    """Fit the sampler ``name`` on the run, save it under RUN/samplers and return it."""
    check_sampler_name(name)
    if name == "prior":
        return PriorSampler(run.model)
    pending = run.__dict__.setdefault("_pending", {})
    if "gmm" not in pending:
        pending["gmm"] = (time.perf_counter(), None)
    t0, future = pending.pop("gmm")
    if future is not None:
        parts = future.result()
    else:
        parts = fit_gmm_arrays(_codes(run, "train"), _codes(run, "val"), run.config.train.seed)
    sampler = GMMSampler(*parts)
    sampler.info["weights_sha256"] = weights_fingerprint(run)
    sampler.info["fit_seconds"] = round(time.perf_counter() - t0, 3)
    sampler.save(run.path / FOLDER)
    run.__dict__.setdefault("_samplers", {})[name] = sampler
    return sampler


def _saved_gmm(run: Run) -> GMMSampler | None:
    """The GMM saved in the run folder, if it was fitted on the run's current weights."""
    cache = run.__dict__.setdefault("_samplers", {})
    if "gmm" in cache:
        return cache["gmm"]
    folder = run.path / FOLDER
    if (folder / "gmm.json").exists() and (folder / "gmm.safetensors").exists():
        sampler = GMMSampler.load(folder)
        if sampler.info.get("weights_sha256") == weights_fingerprint(run):
            cache["gmm"] = sampler
            return sampler
    return None


def load_sampler(run: Run, name: str = "prior", *, fit: bool = True
                 ) -> PriorSampler | GMMSampler:
    """The sampler ``name`` of the run: the prior, or the saved GMM (fitted and saved first
    when missing or fitted on other weights, unless ``fit`` is False)."""
    check_sampler_name(name)
    if name == "prior":
        return PriorSampler(run.model)
    sampler = _saved_gmm(run)
    if sampler is not None:
        return sampler
    if not fit:
        raise RunDirError(f"{run.path / FOLDER} holds no GMM fitted on this run's weights; run "
                          f"`vaelab sample {run.path} --sampler gmm` to fit one.")
    return fit_sampler(run, name)


__all__ = ["GMM_CANDIDATES", "SAMPLERS", "GMMSampler", "PriorSampler", "fit_gmm",
           "fit_gmm_arrays", "fit_sampler", "load_sampler", "start_fit"]
