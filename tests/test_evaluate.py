"""Evaluation: IWAE against a closed-form likelihood, active units, label structure, Fréchet
distance, diagnostics and the metrics.json of a trained run."""

import json

import numpy as np
import pytest
import torch

import vaelab
from vaelab.evaluate import encode_dataset
from vaelab.evaluate.diagnostics import diagnose
from vaelab.evaluate.fid import feature_net, features, frechet_distance
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.latent_metrics import active_units, label_structure, pca_share
from vaelab.models import ModelConfig, ModelSpec, build_model


def linear_gaussian_vae(d=5, latent=2, sigma=0.5, seed=0, correlated=True):
    """x = W z + b + N(0, sigma^2 I), z ~ N(0, I); the encoder gives the exact posterior mean
    and the diagonal of the exact posterior covariance (exact when latent = 1)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, latent, generator=g)
    if correlated and latent > 1:
        w[:, 1] = 0.8 * w[:, 0] + 0.4 * w[:, 1]  # correlated columns: a non-diagonal posterior
    b = torch.randn(d, generator=g)
    cov_post = torch.linalg.inv(torch.eye(latent) + w.T @ w / sigma**2)
    a = cov_post @ w.T / sigma**2
    model = build_model(ModelConfig(hidden=[], latent_dim=latent, sigma=sigma),
                        ModelSpec((d,), "gaussian"))
    with torch.no_grad():
        model.decoder.head.weight.copy_(w)
        model.decoder.head.bias.copy_(b)
        enc = model.encoder.head
        enc.weight.zero_()
        enc.weight[:latent] = a
        enc.bias[:latent] = -a @ b
        enc.bias[latent:] = torch.log(torch.diagonal(cov_post))
    marginal = torch.distributions.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(d))
    return model.eval(), marginal


def test_iwae_matches_the_closed_form_and_tightens_with_k():
    model, marginal = linear_gaussian_vae()
    x = marginal.sample(torch.Size([200]))
    truth = marginal.log_prob(x).numpy()
    est = {k: iwae_log_likelihood(model, x.numpy(), k=k, chunk=64, seed=1).mean()
           for k in (1, 10, 1000)}
    gap = {k: truth.mean() - v for k, v in est.items()}
    assert gap[1] > gap[10] > gap[1000] > -0.01
    assert gap[1000] < 0.02
    assert gap[1] > 0.05  # the diagonal posterior is really an approximation here


def test_iwae_with_the_exact_posterior_is_exact_for_any_k():
    model, marginal = linear_gaussian_vae(d=4, latent=1, seed=5)
    x = marginal.sample(torch.Size([50]))
    truth = marginal.log_prob(x).numpy()
    for k in (1, 7):
        est = iwae_log_likelihood(model, x.numpy(), k=k, chunk=3, seed=0)
        np.testing.assert_allclose(est, truth, atol=1e-3)


def test_iwae_chunking_and_batching_do_not_change_the_estimate():
    model, marginal = linear_gaussian_vae(seed=2)
    x = marginal.sample(torch.Size([30])).numpy()
    a = iwae_log_likelihood(model, x, k=300, chunk=300, seed=3)
    b = iwae_log_likelihood(model, x, k=300, chunk=7, batch_size=8, seed=3)
    assert a.shape == (30,) and np.isfinite(a).all() and abs(a.mean() - b.mean()) < 0.05


def test_iwae_needs_a_posterior_and_takes_labels_for_a_cvae(rng):
    ae = build_model(ModelConfig(model="ae", hidden=[8], latent_dim=2),
                     ModelSpec((6,), "bernoulli"))
    with pytest.raises(ValueError, match="variational"):
        iwae_log_likelihood(ae, np.zeros((2, 6), np.float32), k=2)
    cvae = build_model(ModelConfig(model="cvae", hidden=[8], latent_dim=2),
                       ModelSpec((6,), "bernoulli", num_classes=3))
    x = (rng.random((5, 6)) > 0.5).astype(np.float32)
    ll = iwae_log_likelihood(cvae, x, np.array([0, 1, 2, -1, 1]), k=20, chunk=6)
    assert ll.shape == (5,) and np.isfinite(ll).all() and (ll < 0).all()


def test_active_units_on_a_model_that_uses_exactly_m_dimensions(rng):
    d, latent, m = 8, 6, 3
    model = build_model(ModelConfig(hidden=[], latent_dim=latent), ModelSpec((d,), "gaussian"))
    with torch.no_grad():
        head = model.encoder.head
        head.weight.zero_()
        head.bias.zero_()
        head.weight[:m] = torch.randn(m, d)  # only the first m posterior means depend on x
    mu, logvar = encode_dataset(model, rng.normal(size=(400, d)).astype(np.float32))
    n, var = active_units(mu)
    assert n == m and var.shape == (latent,) and logvar.shape == (400, latent)
    assert (var[m:] == 0).all() and (var[:m] > 0.1).all()


def test_label_structure_and_pca_share(rng):
    y = np.repeat(np.arange(3), 100)
    z = rng.normal(size=(300, 4)) * 0.2 + np.eye(4)[y] * 3
    out = label_structure(z[::2], y[::2], z[1::2], y[1::2])
    assert out["knn_accuracy"] > 0.95 and out["linear_probe_accuracy"] > 0.95
    assert out["silhouette"] > 0.5 and out["chance_accuracy"] == pytest.approx(50 / 150)
    line = np.column_stack([np.arange(50.0), np.zeros(50), np.zeros(50)])
    assert pca_share(line, 1) == pytest.approx(1.0)
    iso = rng.normal(size=(20000, 4))
    assert pca_share(iso, 2) == pytest.approx(0.5, abs=0.02)
    assert label_structure(z, np.full(300, -1), z, y) == {}  # no labelled training rows


def test_frechet_distance_known_answer(rng):
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2 + 1
    # ||mu||^2 = 3, trace term 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, b) == pytest.approx(6.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_feature_extractor_is_cached_and_deterministic(tmp_path, rng, monkeypatch):
    x = rng.random((300, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    net = feature_net(x, y, 3, cache=tmp_path)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    import vaelab.evaluate.fid as fid

    monkeypatch.setattr(fid, "train_feature_net", lambda *a: pytest.fail("retrained"))
    again = feature_net(x, y, 3, cache=tmp_path)
    np.testing.assert_array_equal(features(net, x), features(again, x))
    monkeypatch.undo()
    fresh = feature_net(x, y, 3, cache=None)  # the same recipe gives the same extractor
    np.testing.assert_allclose(features(fresh, x), features(net, x), atol=1e-5)
    feature_net(x, np.where(y == 0, -1, y), 3, cache=tmp_path)  # other rows: another entry
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


CFG = {"model": {"latent_dim": 8, "beta": 1.0, "sigma": 1.0}, "resolved": {"likelihood":
                                                                          "bernoulli"}}


def _issues(metrics, cfg=CFG, data_range=(0.0, 1.0), variational=True):
    return [d["issue"] for d in diagnose(metrics, cfg, data_range, variational)]


def test_diagnostics_find_each_problem_and_advise():
    healthy = {"kl": 20.0, "neg_elbo": 80.0, "active_units": 8, "explained_variance": 0.8}
    assert _issues(healthy) == []
    found = diagnose({**healthy, "kl": 0.01, "active_units": 0}, CFG, (0, 1), True)
    assert found[0]["issue"] == "posterior collapse" and "--kl-warmup-epochs" in found[0]["advice"]
    assert _issues({**healthy, "active_units": 2}) == ["few active units"]
    blurry = _issues({**healthy, "explained_variance": 0.3},
                     {**CFG, "model": {**CFG["model"], "beta": 4.0}})
    assert blurry == ["over-weighted KL (blurry reconstructions)"]
    two_d = {**CFG, "model": {"latent_dim": 2, "beta": 1.0}}
    assert _issues({**healthy, "active_units": 2, "explained_variance": 0.3}, two_d) == \
        ["blurry reconstructions (small latent)"]
    # blurry with a KL that is a tiny share of the bound: not over-weighted, undertrained
    young = _issues({**healthy, "kl": 1.0, "neg_elbo": 2000.0, "explained_variance": 0.1})
    assert young == ["underfitting reconstructions"]
    assert _issues(healthy, data_range=(-2.1, 3.0)) == ["likelihood does not fit the data range"]
    gauss = {**CFG, "resolved": {"likelihood": "gaussian"}}
    assert _issues(healthy, gauss) == ["likelihood too flat for the data range"]
    mixed = {**CFG, "resolved": {"likelihood": "mixed"}}  # a table by column
    assert _issues({**healthy, "explained_variance": 0.1}, mixed) == []
    ae = {"recon_nll": 30.0, "active_units": 8, "explained_variance": 0.2}
    assert _issues(ae, gauss, variational=False) == ["underfitting reconstructions"]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    return vaelab.train(dataset="digits", model="vae", latent_dim=2, epochs=3, hidden=[32],
                        eval_k=20, progress=False, log=None, report=False, out=str(out))


def test_metrics_json_of_a_vae_run(vae_run):
    m = json.loads((vae_run.path / "metrics.json").read_text())
    t = m["test"]
    for key in ("neg_elbo", "recon", "kl", "iwae_nll", "recon_mse", "binary_accuracy",
                "active_units", "knn_accuracy", "linear_probe_accuracy", "silhouette",
                "pca2_variance_share", "frechet_distance", "frechet_features"):
        assert key in t, key
    assert t["units"] == "nats per example" and t["iwae_k"] == 20
    assert t["n_test"] == t["iwae_n"] == len(vae_run.data.test)
    assert t["neg_elbo"] == pytest.approx(t["recon"] + t["kl"], rel=1e-4)
    assert t["iwae_nll"] < t["neg_elbo"] + 0.5  # IWAE is the tighter bound (up to noise)
    assert 0 <= t["binary_accuracy"] <= 1 and 0 <= t["active_units"] <= 2
    assert isinstance(m["diagnostics"], list) and m["training"]["epochs_run"] == 3


def test_evaluate_run_recomputes_with_another_k_and_keeps_training_info(vae_run):
    from vaelab.pipeline import evaluate_run, summary_lines

    before = vae_run.metrics["test"]
    m = evaluate_run(vae_run, iwae_k=50)
    assert m["test"]["iwae_k"] == 50 and "training" in m
    assert m["test"]["neg_elbo"] == pytest.approx(before["neg_elbo"])  # seeded: reproducible
    lines = summary_lines(m)
    assert "K=50" in lines[1] and lines[0].startswith("test: negative ELBO")
    m0 = evaluate_run(vae_run, iwae_k=0)
    assert "iwae_nll" not in m0["test"]


def test_deterministic_autoencoder_gets_reconstruction_and_latent_metrics(tmp_path):
    run = vaelab.train(dataset="iris", model="ae", latent_dim=2, epochs=2, hidden=[8],
                       progress=False, log=None, report=False, out=str(tmp_path / "ae"))
    t = run.metrics["test"]
    assert "neg_elbo" not in t and "iwae_nll" not in t and "kl" not in t
    assert {"recon_nll", "recon_mse", "active_units", "knn_accuracy"} <= set(t)
    assert "binary_accuracy" not in t and "frechet_distance" not in t  # standardised table


def test_the_extractor_key_is_the_hash_of_the_rows_bytes_however_they_are_read():
    """Hashing a block at a time (no copy of the rows) keeps the cache key of one float32
    array's bytes, for plain arrays, rows with unlabelled ones between, and integer pixels."""
    import hashlib

    from vaelab.data.preprocessing import Preprocessor
    from vaelab.evaluate import fid

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2500, 1, 4, 4)).astype(np.uint8)
    pre = Preprocessor("minmax", {"min": 0.0, "max": 255.0})
    floats = pre._transform(pixels)
    y = rng.integers(0, 3, 2500)
    y[[5, 1700]] = -1  # unlabelled rows are skipped
    keep, ys = fid._labelled(y)
    rows = floats[keep]
    want = hashlib.sha256(f"{fid.RECIPE}|3|{rows.shape}".encode())
    want.update(rows.tobytes())
    want.update(ys.tobytes())
    for x in (floats, pre.transform(pixels, keep_pixels=True)):
        assert fid.extractor_key(x, keep, ys, 3) == want.hexdigest()[:32]
        assert np.array_equal(fid._rows(x, keep), rows)
