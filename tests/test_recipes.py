"""The seed experiments as recipes: packaged = examples/, they parse, and each one trains."""

import filecmp
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import vaelab
from vaelab.cli.main import cli
from vaelab.config import Config, apply_overrides
from vaelab.errors import ConfigError, DataError
from vaelab.recipes import available, describe, recipe_path, run_recipe, variants

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEEDS = ["000", "001", "002", "003", "004"]
EXTRA = ["005"]
"""Recipes that are not seed notebooks: settings chosen by a benchmark ("Recommended: ...")."""


def test_examples_are_the_packaged_recipes():
    names = available()
    assert [n[:3] for n in names] == SEEDS + EXTRA
    assert sorted(p.stem for p in EXAMPLES.glob("*.toml")) == names
    for name in names:
        assert filecmp.cmp(EXAMPLES / f"{name}.toml", recipe_path(name), shallow=False), name
        assert name in (EXAMPLES / "README.md").read_text()


@pytest.mark.parametrize("name", available())
def test_every_run_of_every_recipe_is_a_valid_config(name):
    path = recipe_path(name)
    main = Config.from_toml(EXAMPLES / f"{name}.toml")  # what `vaelab train --config` runs
    kind = "Recommended:" if name[:3] in EXTRA else f"Seed {name[:3]}:"
    assert describe(path).startswith(kind)
    for _, extra in variants(path):
        apply_overrides(Config.from_toml(path), extra)
    assert main.train.seed == (1 if name[:3] in EXTRA else 0)  # 005: the seed it was measured at


def test_recipes_hold_the_seeds_settings():
    c1 = Config.from_toml(recipe_path("001"))
    assert (c1.model.hidden, c1.model.latent_dim, c1.train.batch_size, c1.train.epochs) == \
        ([512, 256], 2, 128, 20)
    c2 = Config.from_toml(recipe_path("002"))
    assert c2.model.hidden == [512, 256, 128, 64] and c2.model.batch_norm
    assert c2.model.activation == "leaky_relu" and c2.train.lr_schedule != "constant"
    assert (c2.train.epochs, c2.train.batch_size) == (150, 256)
    c3 = Config.from_toml(recipe_path("003"))
    assert (c3.model.hidden, c3.model.latent_dim, c3.train.batch_size) == ([400, 100], 20, 64)
    assert c3.train.sample_every_epoch
    runs = dict(variants(recipe_path("004")))
    assert list(runs) == ["main", "deep-ae", "denoising-ae"]
    assert runs["denoising-ae"]["model"] == "dae" and runs["denoising-ae"]["noise_factor"] == 0.5
    c0 = Config.from_toml(recipe_path("000"))
    assert (c0.model.model, c0.model.latent_dim, c0.data.preprocess) == \
        ("guided-vae", 2, "standardize")
    assert {o.get("dataset") for _, o in variants(recipe_path("000"))} == {None, "iris"}


def test_recipe_names_and_errors(tmp_path):
    assert recipe_path("003").name == "003_pytorch_vae.toml"
    assert recipe_path("004_autoencoders").name == "004_autoencoders.toml"
    with pytest.raises(ConfigError, match=r"unknown recipe '0'.*000_digits_iris_guided"):
        recipe_path("0")
    with pytest.raises(ConfigError, match="does not exist"):
        recipe_path(tmp_path / "nope.toml")
    bad = tmp_path / "twice.toml"
    bad.write_text('[[runs]]\nname = "a"\n[[runs]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="two runs are named 'a'"):
        variants(bad)
    with pytest.raises(ConfigError, match="no run named nope"):
        run_recipe("004", tmp_path / "r", only=["nope"], log=None)


def test_mnist_failure_names_the_offline_datasets(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise DataError("mnist: train-images-idx3-ubyte.gz cannot be downloaded.")

    monkeypatch.setattr("vaelab.pipeline.train", offline)
    with pytest.raises(DataError, match="--dataset mnist-5k or --dataset fashion-mnist"):
        run_recipe("001", tmp_path / "r", log=None, epochs=1)


def test_recipes_cli_lists_every_recipe():
    out = CliRunner().invoke(cli, ["recipes"])
    assert out.exit_code == 0, out.output
    for name in available():
        assert name in out.output
    assert "main, deep-ae, denoising-ae" in out.output


def test_run_recipe_cli_with_overrides(tmp_path):
    out = CliRunner().invoke(cli, ["run-recipe", "000", "--only", "iris-guided", "--epochs", "2",
                                   "--eval-k", "0", "--out", str(tmp_path / "r"), "-q"])
    assert out.exit_code == 0, out.output
    cfg = json.loads((tmp_path / "r" / "iris-guided" / "config.json").read_text())
    assert (cfg["data"]["dataset"], cfg["model"]["model"], cfg["train"]["epochs"]) == \
        ("iris", "guided-vae", 2)
    assert "report.html" in out.output
    assert not (tmp_path / "r" / "main").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", available())
def test_each_recipe_runs_one_epoch_on_a_subset(name, tmp_path):
    extra: dict = {} if name.startswith("000") else {"dataset": "mnist-5k"}
    budget = recipe_path(name).read_text().count("time_budget =") > 0
    if budget:  # a recipe with a time budget: a tiny budget here (it decides the epochs)
        extra["time_budget"] = "1s"
    runs = vaelab.run_recipe(name, tmp_path / name, log=None, epochs=1, subset=300, eval_k=0,
                             progress=False, **extra)
    assert [r.path.name for r in runs] == [v for v, _ in variants(recipe_path(name))]
    for run in runs:
        assert (run.path / "report.html").exists()
        m = json.loads((run.path / "metrics.json").read_text())["test"]
        assert "active_units" in m
        if budget:
            training = json.loads((run.path / "metrics.json").read_text())["training"]
            assert training["time_budget_s"] == 1.0
            assert len(run.history) == training["epochs_bought"] >= 1
        else:
            assert len(run.history) == 1
    if len(runs) > 1:
        assert (tmp_path / name / "compare.html").exists()
    if name.startswith("000"):
        assert runs[2].config.data.dataset == "iris"
        assert json.loads((runs[0].path / "config.json").read_text())["resolved"][
            "likelihood"] == "gaussian"
    if name.startswith("003"):
        assert (runs[0].path / "figures" / "epochs" / "samples_epoch_001.png").exists()
        assert "Samples after every epoch" in (runs[0].path / "report.html").read_text()
    if name.startswith("004"):
        assert (runs[2].path / "figures" / "denoising.png").exists()
        assert (runs[0].path / "figures" / "latent_tsne.png").exists()
