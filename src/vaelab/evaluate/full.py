"""All test-split metrics of a run (what metrics.json holds under "test")."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.evaluate.iwae import KSampleBounds, importance_bounds
from vaelab.evaluate.latent_metrics import (
    LABEL_TRAIN_ROWS,
    active_units,
    label_structure,
    pca_share,
)
from vaelab.evaluate.metrics import elbo_metrics, encode_subset, standard_error

if TYPE_CHECKING:
    from vaelab.run import Run


@torch.no_grad()
def reconstruction_metrics(run: Run, x: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
    """MSE (model space), share of variance explained and, for [0, 1] data, binary accuracy."""
    sq = 0.0
    hits = 0.0
    bounded = run.preprocessor.bounded_unit
    for i in range(0, len(x), 1024):
        xb = np.asarray(x[i : i + 1024], dtype=np.float32)
        rec = run.reconstruct(xb, None if y is None else y[i : i + 1024])
        sq += float(np.sum((rec - xb) ** 2))
        if bounded:
            hits += float(np.sum((rec > 0.5) == (xb > 0.5)))
    n_values = len(x) * int(np.prod(x.shape[1:]))
    mse = sq / n_values
    var = _mean_feature_variance(x[: min(len(x), 5000)])
    out = {"recon_mse": mse, "explained_variance": 1.0 - mse / var if var > 0 else float("nan")}
    if bounded:
        out["binary_accuracy"] = hits / n_values
    return out


def _mean_feature_variance(x: np.ndarray, block: int = 1024) -> float:
    """Mean over features of each feature's variance across rows (float64 sums, a block of
    rows at a time: no float64 copy of the whole array)."""
    n = len(x)
    if n == 0:
        return float("nan")
    s1 = s2 = 0.0
    for i in range(0, n, block):
        b = np.asarray(x[i : i + block], dtype=np.float64).reshape(min(block, n - i), -1)
        s1 = s1 + b.sum(0)
        s2 = s2 + np.square(b).sum(0)
    mean = s1 / n
    return float(np.maximum(s2 / n - mean**2, 0.0).mean())


def k_sample_metrics(bounds: KSampleBounds) -> dict[str, float]:
    """Means over examples of -ELBO and -IWAE from the same K samples, with standard errors.

    ``iwae_gap`` = neg_elbo_k - iwae_nll >= 0; its standard error is that of the per-example
    differences (paired), smaller than the two standard errors suggest.
    """
    neg_elbo, neg_iwae = -bounds.elbo, -bounds.iwae
    gap = bounds.iwae - bounds.elbo
    return {"neg_elbo_k": float(neg_elbo.mean()), "neg_elbo_k_se": standard_error(neg_elbo),
            "iwae_nll": float(neg_iwae.mean()), "iwae_nll_se": standard_error(neg_iwae),
            "iwae_gap": float(gap.mean()), "iwae_gap_se": standard_error(gap)}


def compute_metrics(run: Run, *, iwae_k: int = 100, iwae_rows: int | None = None, seed: int = 0,
                    fid: bool = True, log=lambda msg: None,
                    on_latents: Callable[[Run], None] | None = None) -> dict[str, Any]:
    """Every metric of the test split, in nats per example where it is a log-likelihood.

    ``neg_elbo`` is the single-sample estimate over the whole test split. The K-sample pair
    ``neg_elbo_k`` / ``iwae_nll`` comes from the same ``iwae_k`` posterior samples of each of
    the first ``iwae_rows`` test examples (None or 0: all of them; ``iwae_n`` says how many),
    so iwae_nll <= neg_elbo_k by construction; see ``k_sample_metrics``. The GMM sampler is
    fitted in vaelab's worker process meanwhile (``samplers.start_fit``); ``on_latents(run)``
    is called once the test codes are encoded.
    """
    from vaelab.samplers import start_fit

    model = run.model
    data = run.data
    test = data.test
    t0 = time.perf_counter()
    lat = run.latents()  # the test codes first: later steps and figures read them
    start_fit(run)  # the GMM sampler's fit runs in the worker while the metrics below run here
    if on_latents is not None:  # queued behind the GMM, which the metrics need first
        on_latents(run)
    m: dict[str, Any] = {}
    base = elbo_metrics(model, test.x, test.y, seed=seed)
    if model.variational:
        m.update(base)
    else:
        m.update({"recon_nll": base["recon"], "n_test": base["n_test"], "units": base["units"],
                  "likelihood": base["likelihood"]})
    m.update(reconstruction_metrics(run, test.x, test.y))
    if model.variational and iwae_k > 0:
        n_iw = len(test) if not iwae_rows else min(len(test), iwae_rows)
        bounds = importance_bounds(model, test.x[:n_iw],
                                   None if test.y is None else test.y[:n_iw], k=iwae_k,
                                   seed=seed)
        m.update(k_sample_metrics(bounds))
        m["iwae_k"] = iwae_k
        m["iwae_n"] = n_iw
    m.update(model.test_metrics(test.x))  # a family's own numbers (codebook use, layers' units)
    au, _ = active_units(lat["mu"])
    m["active_units"] = au
    m["latent_dim"] = int(lat["mu"].shape[1])
    if lat["mu"].shape[1] >= 2:
        m["pca2_variance_share"] = pca_share(lat["mu"], 2)
    if test.y is not None and data.train.y is not None:
        z_train, y_train = encode_subset(model, data.train.x, data.train.y, LABEL_TRAIN_ROWS,
                                         seed)
        m.update(label_structure(z_train, y_train, lat["mu"], test.y, seed))
        if fid and test.x.ndim == 4:
            m.update(fid_metric(run, seed, samplers=("prior", "gmm")))
            if model.label_conditioned:  # does it generate the class asked for?
                from vaelab.evaluate.conditional import class_consistency

                m.update(class_consistency(run, seed=seed))
    m["eval_seconds"] = time.perf_counter() - t0
    return m


def fid_metric(run: Run, seed: int = 0, n: int = 2000,
               cache: Path | bool | None = True,
               samplers: tuple[str, ...] = ("prior",)) -> dict[str, Any]:
    """Fréchet distance between ``n`` prior samples and ``n`` test images (see ``fid.py``).

    ``cache``: True = vaelab's cache folder, a path, or None / False to always retrain.
    ``samplers`` (vaelab.samplers): one distance each, ``frechet_distance`` for the prior and
    ``frechet_distance_<name>`` for the others (``gmm``: fitted and saved on first use).
    """
    from vaelab.evaluate.fid import DESCRIPTION, feature_net, features, frechet_distance

    if cache is True:
        from vaelab.data.download import cache_dir

        cache = cache_dir() / "fid"
    data = run.data
    classes = data.num_classes or 1
    net = feature_net(data.train.x, data.train.y, classes, cache or None)
    real = np.asarray(data.test.x[:n])
    real_features = features(net, real)
    out: dict[str, Any] = {}
    for name in samplers:
        fake = run.sample(len(real), seed=seed, sampler=name)
        key = "frechet_distance" if name == "prior" else f"frechet_distance_{name}"
        out[key] = frechet_distance(features(net, fake), real_features)
    return {**out, "frechet_features": DESCRIPTION, "frechet_n": len(real)}
