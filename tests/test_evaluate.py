"""Evaluation: IWAE against a closed-form likelihood, active units, metrics, figures, verbs."""

import json
import math

import numpy as np
import pytest
import torch

import vaelab
from vaelab.cli.main import main
from vaelab.evaluate.fid import frechet_distance
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.latent_metrics import active_units, label_structure, pca_share
from vaelab.latent import attribute_vector, grid_codes, interpolate, traverse
from vaelab.models import ModelConfig, ModelSpec, build_model


def linear_gaussian_vae(d=5, latent=2, sigma=0.5, seed=0):
    """x = W z + b + N(0, sigma^2 I), z ~ N(0, I); encoder = exact posterior mean, diagonal
    of the exact posterior covariance (so q is close to, not equal to, the posterior)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, latent, generator=g)
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


def test_iwae_chunking_does_not_change_the_estimate():
    model, marginal = linear_gaussian_vae(seed=2)
    x = marginal.sample(torch.Size([30])).numpy()
    a = iwae_log_likelihood(model, x, k=300, chunk=300, seed=3)
    b = iwae_log_likelihood(model, x, k=300, chunk=7, seed=3)
    assert np.isfinite(a).all() and abs(a.mean() - b.mean()) < 0.05


def test_active_units_counts_the_used_dimensions():
    rng = np.random.default_rng(0)
    m = 3
    mu = np.zeros((500, 6))
    mu[:, :m] = rng.normal(size=(500, m))          # used: mean moves with x
    mu[:, m:] = rng.normal(scale=0.01, size=(500, 6 - m))  # unused: stays at the prior mean
    n, var = active_units(mu)
    assert n == m and var.shape == (6,)


def test_label_structure_and_pca_share():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    z = rng.normal(size=(300, 4)) * 0.2 + np.eye(4)[y] * 3
    out = label_structure(z[::2], y[::2], z[1::2], y[1::2])
    assert out["knn_accuracy"] > 0.95 and out["linear_probe_accuracy"] > 0.95
    assert out["silhouette"] > 0.5
    line = np.column_stack([np.arange(50.0), np.zeros(50), np.zeros(50)])
    assert pca_share(line, 1) == pytest.approx(1.0)


def test_frechet_distance_known_answer():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2 + 1
    # ||mu||^2 = 3, trace term 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, b) == pytest.approx(6.0, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_latent_operations():
    z, values = grid_codes(4, 3.0)
    assert z.shape == (16, 2) and values[0] == -3 and tuple(z[0]) == (-3.0, 3.0)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    lin = interpolate(a, b, 5, "linear")
    sph = interpolate(a, b, 5, "slerp")
    assert np.allclose(lin[0], a) and np.allclose(lin[-1], b)
    assert np.allclose(np.linalg.norm(sph, axis=1), 1.0, atol=1e-6)  # stays on the circle
    t = traverse(np.zeros(3), 1, np.array([-1.0, 2.0]))
    assert t.tolist() == [[0, -1, 0], [0, 2, 0]]
    mu = np.array([[0.0, 0], [2, 0], [0, 4], [0, 6]])
    assert attribute_vector(mu, np.array([0, 0, 1, 1]), 0, 1).tolist() == [-1, 5]


@pytest.fixture(scope="module")
def run8(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae8"
    return vaelab.train(dataset="digits", model="dae", latent_dim=4, epochs=3, hidden=[32],
                        progress=False, log=None, out=str(out))


def test_metrics_json_holds_every_metric(run8):
    m = json.loads((run8.path / "metrics.json").read_text())
    t = m["test"]
    for key in ("recon_nll", "recon_mse", "binary_accuracy", "active_units", "knn_accuracy",
                "linear_probe_accuracy", "silhouette", "pca2_variance_share",
                "frechet_distance"):
        assert key in t, key
    assert "neg_elbo" not in t  # a DAE has no ELBO
    assert isinstance(m["diagnostics"], list)


def test_every_figure_renders(run8):
    names = {p.stem for p in (run8.path / "figures").glob("*.png")}
    assert {"training_curves", "reconstructions", "samples", "latent_scatter", "latent_tsne",
            "latent_traversals", "latent_histograms", "interpolation", "attribute_vectors",
            "denoising"} <= names
    index = json.loads((run8.path / "figures" / "index.json").read_text())
    assert all(len(v["how_to_read"]) > 40 for v in index.values())


VERBS = [["evaluate", "--iwae-k", "20"], ["sample", "-n", "8"], ["reconstruct"],
         ["interpolate", "--steps", "4"], ["traverse", "--dim", "1"], ["encode"],
         ["plot", "--only", "samples"]]


@pytest.mark.parametrize("verb", VERBS, ids=[v[0] for v in VERBS])
def test_cli_verbs_write_files(run8, verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb[0], str(run8.path), *verb[1:]])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    written = [w for line in out.splitlines() if line.startswith("wrote ")
               for w in line[6:].split(" and ")]
    assert written
    for w in written:
        assert (run8.path / w.split(" (")[0]).exists() or \
            __import__("pathlib").Path(w.split(" (")[0]).exists(), w


def test_decode_verb_round_trip(run8, tmp_path, capsys):
    codes = tmp_path / "codes.csv"
    with pytest.raises(SystemExit):
        main(["encode", str(run8.path), "--out", str(codes)])
    with pytest.raises(SystemExit) as exc:
        main(["decode", str(run8.path), str(codes)])
    assert exc.value.code == 0
    assert np.load(run8.path / "outputs" / "decoded_codes.npy").shape[0] == len(run8.data.test)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(SystemExit) as exc:
        main(["decode", str(run8.path), str(bad)])
    assert exc.value.code == 2
    assert "codes of length 3 but the model's latent has 4" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_cli_verbs_fail_clearly_on_a_wrong_run_dir(tmp_path, verb, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    for target in (tmp_path / "missing", tmp_path / "half"):
        with pytest.raises(SystemExit) as exc:
            main([verb, str(target)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(target) in err[0]


def test_figure_functions_render_on_tiny_arrays():
    from vaelab.plots import analysis as pa
    from vaelab.plots import image_grid, latent_scatter, reconstructions, samples

    imgs = np.random.default_rng(0).random((9, 1, 5, 5))
    figs = [pa.manifold_grid(imgs, np.linspace(-3, 3, 3), (0, 1)),
            pa.traversals(imgs[:6], [0, 1], np.linspace(-1, 1, 3), (0, 1), np.ones(2)),
            pa.latent_histograms(np.random.default_rng(0).normal(size=(50, 3))),
            pa.interpolation(imgs[:4], imgs[4:8], (0, 1)),
            pa.attribute_vectors(imgs[:3], imgs[3:6], "t", (0, 1)),
            pa.denoising_triplets(imgs[:3], imgs[3:6], imgs[6:9], (0, 1)),
            image_grid(imgs), reconstructions(imgs[:3], imgs[3:6]),
            reconstructions(np.ones((3, 4)), np.zeros((3, 4)), feature_names=list("abcd")),
            samples(np.ones((5, 4))),
            latent_scatter(np.random.default_rng(0).normal(size=(30, 3)),
                           np.arange(30) % 3)]
    for f in figs:
        assert f.axes and all(math.isfinite(v) for v in f.get_size_inches())
