"""Disentanglement metrics against known answers (disentanglement_lib's bands): a code that
copies the factors scores >= 0.9, an all-zero code <= 0.2, duplicated latents give MIG <= 0.1;
the run-level section in metrics.json on shapes and on a table with factor columns."""

import json

import numpy as np
import pytest

from vaelab.errors import ConfigError
from vaelab.evaluate.disentangle import (
    Protocol,
    dci_scores,
    informative_factors,
    mig,
    resolve_protocol,
    score_all,
)


class Identity:
    """Three factors of ten values each; the observation is the factor vector."""

    kind, limit = "identity", None
    names, sizes = ["f0", "f1", "f2"], [10, 10, 10]

    def sample_factors(self, n, rng):
        return np.stack([rng.integers(0, s, n) for s in self.sizes], 1)

    def sample(self, n, rng):
        f = self.sample_factors(n, rng)
        return f, f.astype(np.float32)

    def sample_observations(self, n, rng):
        return self.sample(n, rng)[1]

    def sample_fixed(self, n, rng):
        k = int(rng.integers(3))
        f = self.sample_factors(n, rng)
        f[:, k] = f[0, k]
        return k, f.astype(np.float32)


SMALL = Protocol("test", 500, 250, 64, 200, 100, 500, dci_trees=20)
SCORES = ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness_test",
          "sap_continuous", "factorvae_accuracy")


@pytest.fixture(scope="module")
def scored():
    truth = Identity()
    return {name: score_all(truth, enc, SMALL, seed=0) for name, enc in {
        "copy": lambda x: x + 0.0,
        "zeros": np.zeros_like,
        "twice": lambda x: np.hstack([x, x]),
    }.items()}


def test_a_code_that_copies_the_factors_scores_at_least_0_9(scored):
    for key in SCORES:
        assert scored["copy"][key] >= 0.9, key
    # the discrete SAP (one-dimension linear SVMs, the library's dSprites setting) cannot
    # isolate the middle values of an ordinal factor: it stays well below 0.9 even here
    assert 0.1 < scored["copy"]["sap"] < 0.9


def test_an_all_zero_code_scores_at_most_0_2(scored):
    for key in (*SCORES, "sap"):
        assert scored["zeros"][key] <= 0.2, key
    assert scored["zeros"]["factorvae_active_dims"] == 0


def test_duplicated_latents_give_a_mig_of_at_most_0_1(scored):
    twice = scored["twice"]
    assert twice["mig"] <= 0.1
    assert twice["sap_continuous"] <= 0.2 and twice["sap"] <= 0.2
    assert twice["dci_informativeness_test"] >= 0.9  # the information is all there
    assert twice["dci_completeness"] < scored["copy"]["dci_completeness"] - 0.2


def test_codes_wider_than_64_dimensions_skip_the_classifier_scores():
    wide = score_all(Identity(), lambda x: np.hstack([x, np.zeros((len(x), 67))]), SMALL)
    assert wide["mig"] >= 0.9 and wide["factorvae_accuracy"] >= 0.9
    assert wide["dci_disentanglement"] is None and wide["sap"] is None
    assert "70 dimensions" in wide["skipped"]


def test_dci_from_importance_matrices_by_hand():
    assert dci_scores(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dci_scores(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-9)
    # one code explains both factors: disentanglement 0 for it, completeness 1
    d, c = dci_scores(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-9) and c == pytest.approx(1.0)


def test_mig_and_the_most_informative_factor_of_each_dimension():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 8, (3000, 2))
    codes = np.stack([f[:, 1] + 0.1 * rng.normal(size=3000), rng.normal(size=3000)], 1)
    m = mig(codes, f)
    assert m["per_factor"][1] > 0.8 and m["per_factor"][0] < 0.05
    section = {"factors": ["a", "b"], "mutual_information": m["mi"].tolist(),
               "factor_entropy": m["entropy"].tolist()}
    labels = informative_factors(section)
    assert labels[0][0] == "b" and labels[0][1] > 0.8 and labels[1][1] < 0.05


def test_protocols_and_a_clear_error():
    assert resolve_protocol("auto", "cpu").name == "reduced"
    assert resolve_protocol("auto", "cuda").name == "full"
    assert resolve_protocol("full", "cpu").num_train == 10000
    assert resolve_protocol("off", "cuda") is None
    with pytest.raises(ConfigError, match="option 'factor_metrics' got 'some'"):
        resolve_protocol("some", "cpu")


def test_a_run_on_a_table_with_factor_columns_gets_the_section(tmp_path):
    import vaelab

    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, (240, 2))
    x = np.hstack([f + 0.1 * rng.normal(size=(240, 2)), rng.normal(size=(240, 2))])
    lines = ["a,b,c,d,u,v"] + [",".join([*(f"{v:.3f}" for v in r), str(u), str(v)])
                               for r, (u, v) in zip(x, f, strict=True)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    run = vaelab.train(data=str(tmp_path / "t.csv"), factor_columns=["u", "v"], latent_dim=2,
                       hidden=[16], epochs=2, eval_k=0, progress=False, log=None,
                       report=False, out=str(tmp_path / "run"), threads=1)
    section = json.loads((run.path / "metrics.json").read_text())["disentanglement"]
    assert section["factors"] == ["u", "v"] and section["protocol"]["source"] == "rows"
    assert section["counts"]["train"] + section["counts"]["test"] <= 240
    assert 0 <= section["mig"] <= 1 and "sklearn" in section
    assert np.asarray(section["mutual_information"]).shape == (2, 2)


@pytest.mark.slow
def test_a_shapes_run_scores_figures_reports_and_labels_the_explorer(tmp_path, monkeypatch):
    import matplotlib.image as mpimg
    from fastapi.testclient import TestClient

    import vaelab
    from vaelab.evaluate import disentangle
    from vaelab.explorer import create_app

    monkeypatch.setitem(disentangle.PROTOCOLS, "reduced",
                        Protocol("reduced", 300, 150, 32, 60, 30, 300, dci_trees=5))
    run = vaelab.train(dataset="shapes", subset=256, val_fraction=0.0002, test_fraction=0.0004,
                       model="beta-tc-vae", beta=6.0, latent_dim=3, hidden=[32], epochs=1,
                       batch_size=64, eval_k=0, progress=False, log=None,
                       out=str(tmp_path / "run"), threads=1)
    section = run.metrics["disentanglement"]
    assert section["protocol"]["source"] == "rendered" and section["counts"]["train"] == 300
    assert section["factors"] == ["shape", "scale", "orientation", "position_x", "position_y"]
    index = json.loads((run.path / "figures" / "index.json").read_text())
    for name in ("factor_mutual_information.png", "factor_traversals.png"):
        assert name in index
        assert mpimg.imread(run.path / "figures" / name)[..., :3].std() > 0.02
    assert 'id="disentanglement"' in (run.path / "report.html").read_text()
    info = TestClient(create_app(run.path)).get("/api/info").json()
    assert len(info["dim_labels"]) == 3 and info["dim_labels"][0].startswith("z1: ")
