"""The ELBO and IWAE bound from the same K samples: IWAE >= ELBO per example by construction,
equal at K = 1, the K-sample ELBO unbiased for the closed-form ELBO, standard errors, and the
metrics.json / summary / report of small trained runs."""

import math

import numpy as np
import pytest
import torch

import vaelab
from vaelab.evaluate.full import k_sample_metrics
from vaelab.evaluate.iwae import importance_bounds, iwae_log_likelihood
from vaelab.evaluate.metrics import elbo_metrics, standard_error
from vaelab.models import ModelConfig, ModelSpec, build_model


def tiny_vae(likelihood: str, d: int = 6, latent: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(hidden=[8], latent_dim=latent), ModelSpec((d,), likelihood))


def linear_vae(d: int = 5, latent: int = 2, sigma: float = 0.7, seed: int = 0):
    """A random VAE with a linear Gaussian decoder, whose ELBO has a closed form."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(hidden=[], latent_dim=latent, sigma=sigma),
                        ModelSpec((d,), "gaussian"))
    return model.eval()


def closed_form_elbo(model, x: torch.Tensor, sigma: float) -> np.ndarray:
    """E_q log p(x|z) - KL(q || N(0, I)) per example for a linear decoder x ~ N(Wz + b, s^2)."""
    with torch.no_grad():
        mu, logvar = model.encode(x, None)
        var = logvar.exp()
        w, b = model.decoder.head.weight, model.decoder.head.bias
        d = x.shape[1]
        sq = (x - mu @ w.T - b).square().sum(1) + (var @ w.square().T).sum(1)
        rec = -0.5 * sq / sigma**2 - d * (0.5 * math.log(2 * math.pi) + math.log(sigma))
        kl = 0.5 * (mu.square() + var - 1 - logvar).sum(1)
        return (rec - kl).double().numpy()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_iwae_is_at_least_the_k_sample_elbo_for_every_example(likelihood):
    model = tiny_vae(likelihood).eval()
    x = torch.rand(40, 6).numpy()
    b = importance_bounds(model, x, k=17, chunk=5, batch_size=16, seed=2)
    assert b.iwae.shape == b.elbo.shape == (40,)
    assert np.all(b.iwae >= b.elbo - 1e-9)
    assert np.all(b.iwae > b.elbo)  # strictly, unless every log-weight is equal
    # the old entry point returns the same IWAE numbers from the same samples
    ll = iwae_log_likelihood(model, x, k=17, chunk=5, batch_size=16, seed=2)
    np.testing.assert_array_equal(ll, b.iwae)


def test_k_equal_one_gives_equal_bounds():
    model = tiny_vae("bernoulli").eval()
    x = (torch.rand(25, 6) > 0.5).float().numpy()
    b = importance_bounds(model, x, k=1, seed=0)
    np.testing.assert_allclose(b.iwae, b.elbo, rtol=0, atol=1e-12)
    m = k_sample_metrics(b)
    assert m["iwae_gap"] == pytest.approx(0.0, abs=1e-12)
    assert m["iwae_nll"] == pytest.approx(m["neg_elbo_k"], abs=1e-12)
    with pytest.raises(ValueError, match="k must be at least 1"):
        importance_bounds(model, x, k=0)


def test_k_sample_elbo_matches_the_closed_form_and_the_single_sample_elbo():
    sigma = 0.7
    model = linear_vae(sigma=sigma)
    x = torch.randn(64, 5)
    truth = closed_form_elbo(model, x, sigma).mean()
    # the K-sample ELBO over several seeds: unbiased for the closed form
    k_est = np.array([importance_bounds(model, x.numpy(), k=400, seed=s).elbo.mean()
                      for s in range(6)])
    k_se = k_est.std(ddof=1) / math.sqrt(len(k_est))
    assert abs(k_est.mean() - truth) < 4 * k_se + 1e-6
    # the single-sample ELBO of evaluate/metrics.py over many seeds: the same expectation
    one = np.array([-elbo_metrics(model, x.numpy(), seed=s)["neg_elbo"] for s in range(200)])
    one_se = one.std(ddof=1) / math.sqrt(len(one))
    assert abs(one.mean() - truth) < 4 * one_se + 1e-6
    assert abs(one.mean() - k_est.mean()) < 4 * math.hypot(one_se, k_se) + 1e-6
    # and the IWAE bound is above the ELBO on average (tighter bound on log p(x))
    assert importance_bounds(model, x.numpy(), k=400, seed=0).iwae.mean() > truth


def test_standard_errors_are_std_over_sqrt_n():
    assert standard_error(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        np.sqrt(5 / 3) / 2, rel=1e-12)
    assert math.isnan(standard_error(np.array([3.0])))
    model = tiny_vae("bernoulli").eval()
    x = (torch.rand(30, 6) > 0.5).float()
    b = importance_bounds(model, x.numpy(), k=9, seed=1)
    m = k_sample_metrics(b)
    n = len(x)
    assert m["neg_elbo_k_se"] == pytest.approx(np.std(-b.elbo, ddof=1) / np.sqrt(n), rel=1e-9)
    assert m["iwae_nll_se"] == pytest.approx(np.std(-b.iwae, ddof=1) / np.sqrt(n), rel=1e-9)
    assert m["iwae_gap_se"] == pytest.approx(np.std(b.iwae - b.elbo, ddof=1) / np.sqrt(n),
                                             rel=1e-9)
    assert m["iwae_gap"] == pytest.approx(m["neg_elbo_k"] - m["iwae_nll"], abs=1e-9)
    # the single-sample ELBO's standard error: per-example values of the same seeded sample
    got = elbo_metrics(model, x.numpy(), seed=4)
    torch.manual_seed(4)
    with torch.no_grad():
        per = model.loss(x).per_example.double().numpy()
    assert got["neg_elbo"] == pytest.approx(per.mean(), rel=1e-6)
    assert got["neg_elbo_se"] == pytest.approx(per.std(ddof=1) / np.sqrt(n), rel=1e-6)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("iwae_elbo") / "digits"
    return vaelab.train(dataset="digits", model="vae", latent_dim=2, epochs=1, hidden=[16],
                        subset=300, eval_k=20, progress=False, log=None, report=False,
                        out=str(out))


def test_metrics_summary_and_report_hold_the_same_k_pair(digits_run):
    from vaelab.pipeline import summary_lines
    from vaelab.report import render_report

    t = digits_run.metrics["test"]
    for key in ("neg_elbo", "neg_elbo_se", "neg_elbo_k", "neg_elbo_k_se", "iwae_nll",
                "iwae_nll_se", "iwae_gap", "iwae_gap_se", "iwae_k", "iwae_n"):
        assert isinstance(t[key], (int, float)) and math.isfinite(t[key]), key
    assert t["iwae_k"] == 20 and t["iwae_n"] == t["n_test"]
    assert t["iwae_nll"] <= t["neg_elbo_k"] and t["iwae_gap"] >= 0
    assert t["iwae_gap"] == pytest.approx(t["neg_elbo_k"] - t["iwae_nll"], rel=1e-6)
    assert 0 < t["iwae_nll_se"] < 0.5 * abs(t["iwae_nll"])
    lines = summary_lines(digits_run.metrics)
    assert lines[0].startswith("test: negative ELBO")
    assert (f"same K=20 samples per example: negative ELBO {t['neg_elbo_k']:.3f} +/- "
            f"{t['neg_elbo_k_se']:.3f}, IWAE NLL {t['iwae_nll']:.3f} +/- "
            f"{t['iwae_nll_se']:.3f}") in lines[1]
    text = render_report(digits_run.path)
    assert "same K = 20 posterior samples" in text
    assert "IWAE NLL is at most the negative ELBO" in text
    from vaelab.report.style import fmt

    assert f"{fmt(t['neg_elbo_k'])} ± {fmt(t['neg_elbo_k_se'])}" in text
    assert f"{fmt(t['iwae_nll'])} ± {fmt(t['iwae_nll_se'])}" in text


def test_small_iris_run_has_iwae_below_the_k_sample_elbo(tmp_path):
    run = vaelab.train(dataset="iris", model="vae", latent_dim=2, epochs=2, hidden=[8],
                       eval_k=50, progress=False, log=None, report=False,
                       out=str(tmp_path / "iris"))
    t = run.metrics["test"]
    assert t["n_test"] == t["iwae_n"] == 30
    assert t["iwae_nll"] <= t["neg_elbo_k"]
    assert t["neg_elbo_k_se"] > 0 and t["iwae_nll_se"] > 0
