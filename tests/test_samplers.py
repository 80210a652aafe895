"""Samplers: the GMM on codes saved without pickle, its choice of components, and its use by
`vaelab sample`, the explorer, the report and the Fréchet distances."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient

import vaelab
from vaelab.cli.main import cli
from vaelab.errors import ConfigError, RunDirError
from vaelab.samplers import GMMSampler, PriorSampler, fit_gmm, fit_sampler, load_sampler


def three_blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 5.0, 1.0]])
    comp = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return centres[comp] + rng.standard_normal((n, 3)) * np.array([1.0, 0.5, 0.3])


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    torch.set_num_threads(1)
    return vaelab.train(dataset="digits", model="ae", latent_dim=4, epochs=15, hidden=[64],
                        progress=False, log=None, eval_k=5, report=True,
                        out=str(tmp_path_factory.mktemp("s") / "ae"))


def test_gmm_round_trips_through_safetensors_and_json_exactly(tmp_path):
    gmm = fit_gmm(three_blobs(2000, 0), three_blobs(500, 1), seed=0)
    gmm.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gmm.json", "gmm.safetensors"]
    back = GMMSampler.load(tmp_path)
    for a, b in ((gmm.weights, back.weights), (gmm.means, back.means),
                 (gmm.covariances, back.covariances)):
        assert np.array_equal(a, b)
    assert np.array_equal(gmm.sample_numpy(300, seed=7), back.sample_numpy(300, seed=7))
    assert not np.array_equal(back.sample_numpy(300, seed=7), back.sample_numpy(300, seed=8))
    assert back.info == json.loads((tmp_path / "gmm.json").read_text())
    # the rebuilt density is the fitted one: its validation score is reproduced from the files
    val = three_blobs(500, 1)
    assert back.log_prob(val).mean() == pytest.approx(back.info["val_log_likelihood"], rel=1e-6)


def test_components_are_chosen_by_validation_likelihood():
    gmm = fit_gmm(three_blobs(3000, 0), three_blobs(1000, 1), seed=0)
    scores = {c["k"]: c["val_log_likelihood"] for c in gmm.info["candidates"]}
    assert gmm.n_components == max(scores, key=scores.get)
    assert gmm.n_components not in (1, 20) and scores[gmm.n_components] > scores[1] + 0.5
    exact = fit_gmm(three_blobs(3000, 0), three_blobs(1000, 1), seed=0, candidates=(1, 2, 3))
    assert exact.n_components == 3
    samples = exact.sample_numpy(20000, seed=0)
    assert abs((samples[:, 0] < -2).mean() - 0.5) < 0.02  # the heaviest blob keeps its weight


def test_a_fifth_of_training_codes_is_held_out_without_validation_codes():
    gmm = fit_gmm(three_blobs(1000, 0), None, seed=0, candidates=(1, 2))
    assert (gmm.info["n_fit"], gmm.info["n_val"]) == (800, 200)


def test_prior_sampler_is_the_models_prior_sample(ae_run):
    gen = torch.Generator().manual_seed(3)
    expected = ae_run.model.prior_sample(5, generator=gen)
    assert torch.equal(PriorSampler(ae_run.model).codes(5, seed=3), expected)


def test_fit_is_saved_reused_and_refitted_for_other_weights(ae_run):
    fitted = fit_sampler(ae_run, "gmm")
    folder = ae_run.path / "samplers"
    info = json.loads((folder / "gmm.json").read_text())
    assert info["k"] in (1, 2, 5, 10, 20) and len(info["candidates"]) >= 3
    assert info["n_fit"] == len(ae_run.data.train) and info["n_val"] == len(ae_run.data.val)
    fresh = vaelab.Run.load(ae_run.path)
    loaded = load_sampler(fresh, "gmm", fit=False)
    assert np.array_equal(loaded.means, fitted.means)
    info["weights_sha256"] = "0" * 64  # as if the weights had changed since (resume)
    (folder / "gmm.json").write_text(json.dumps(info))
    with pytest.raises(RunDirError, match="--sampler gmm"):
        load_sampler(vaelab.Run.load(ae_run.path), "gmm", fit=False)
    refit = load_sampler(vaelab.Run.load(ae_run.path), "gmm")
    assert json.loads((folder / "gmm.json").read_text())["weights_sha256"] != "0" * 64
    assert np.allclose(refit.means, loaded.means)  # same codes, same seed: same mixture
    with pytest.raises(ConfigError, match="'sampler'"):
        load_sampler(ae_run, "flow")


def test_sample_command_with_the_gmm_sampler(ae_run, tmp_path):
    out = tmp_path / "g"
    res = CliRunner().invoke(cli, ["sample", str(ae_run.path), "-n", "12", "--sampler", "gmm",
                                   "--seed", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    arr = np.load(out.with_suffix(".npy"))
    assert arr.shape == (12, 1, 8, 8) and out.with_suffix(".png").exists()
    again = vaelab.Run.load(ae_run.path).sample(12, seed=4, sampler="gmm")
    assert np.allclose(ae_run.preprocessor.inverse(again), arr)
    res = CliRunner().invoke(cli, ["sample", str(ae_run.path), "--sampler", "flow"])
    assert res.exit_code != 0 and "flow" in res.output


def test_explorer_samples_from_either_sampler(ae_run):
    from vaelab.explorer import create_app

    client = TestClient(create_app(ae_run.path))
    assert client.get("/api/info").json()["samplers"] == ["prior", "gmm"]
    g = client.post("/api/sample", json={"n": 5, "seed": 2, "sampler": "gmm"}).json()
    p = client.post("/api/sample", json={"n": 5, "seed": 2}).json()
    assert len(g["outputs"]) == len(p["outputs"]) == 5 and g["z"] != p["z"]
    gmm = load_sampler(vaelab.Run.load(ae_run.path), "gmm")
    assert np.allclose(g["z"], gmm.sample_numpy(5, seed=2), atol=1e-6)
    bad = client.post("/api/sample", json={"n": 5, "sampler": "flow"})
    assert bad.status_code == 422 and "sampler" in bad.json()["detail"]
    assert 'id="sampler"' in client.get("/").text


def test_report_embeds_the_gmm_samples_beside_the_prior_samples(ae_run):
    index = json.loads((ae_run.path / "figures" / "index.json").read_text())
    assert index["samples_gmm.png"]["order"] == index["samples.png"]["order"] + 1
    html = (ae_run.path / "report.html").read_text(encoding="utf-8")
    assert 'id="fig-samples_gmm"' in html and "GMM on the codes" in html


def test_gmm_samples_are_closer_to_the_data_than_the_ae_prior(ae_run):
    t = ae_run.metrics["test"]
    # measured on this run: prior 16.2, GMM 14.6 (Fashion-MNIST, 10 epochs: 90 vs 2.4)
    assert t["frechet_distance_gmm"] < 0.97 * t["frechet_distance"]


def test_cvae_samples_its_labels_from_one_gmm(tmp_path):
    run = vaelab.train(dataset="digits", model="cvae", latent_dim=3, epochs=2, hidden=[32],
                       progress=False, log=None, eval_k=0, report=False,
                       out=str(tmp_path / "cvae"))
    out = run.sample(6, seed=0, y=np.full(6, 3), sampler="gmm")
    assert out.shape == (6, 1, 8, 8)
    assert load_sampler(run, "gmm").info["n_fit"] == len(run.data.train)
