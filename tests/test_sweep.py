"""Sweeps write one run and one comparison row per combination, plus figures and a page."""

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import vaelab
from vaelab.cli.main import cli
from vaelab.errors import ConfigError
from vaelab.sweep import combo_name, normalise_grid, parse_grid, sweep, threads_per_job

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "004_autoencoders.toml"
TINY = {"epochs": 1, "hidden": [16], "eval_k": 0, "subset": 300}


def test_parse_grid():
    g = parse_grid(["beta=0,0.5", "hidden=64;128,64", "latent-dim=2"])
    assert g == {"beta": ["0", "0.5"], "hidden": ["64", "128,64"], "latent_dim": ["2"]}
    with pytest.raises(ConfigError, match="unknown option 'betta'"):
        parse_grid(["betta=1"])
    with pytest.raises(ConfigError, match="name=v1,v2"):
        parse_grid(["beta"])
    with pytest.raises(ConfigError, match="'beta' twice"):
        parse_grid(["beta=0", "beta=1"])
    with pytest.raises(ConfigError, match="beta has no values"):
        parse_grid(["beta=,"])


def test_grid_as_mapping_and_folder_names():
    g = normalise_grid({"beta": [0, 0.25], "hidden": [[128], [64, 32]], "latent-dim": (2,)})
    assert g == {"beta": ["0", "0.25"], "hidden": ["128", "64,32"], "latent_dim": ["2"]}
    assert combo_name({"beta": "0.25", "hidden": "64,32"}) == "beta=0.25_hidden=64-32"
    with pytest.raises(ConfigError, match="non-empty list"):
        normalise_grid({"beta": 1})
    assert threads_per_job(1) >= threads_per_job(2) >= 1


def test_bad_value_or_clash_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="latent_dim"):
        sweep(None, ["latent_dim=2,zero"], out=tmp_path / "s", log=None, epochs=1)
    with pytest.raises(ConfigError, match="both swept and fixed"):
        sweep(None, {"beta": [0, 1]}, out=tmp_path / "s", log=None, beta=2)
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        sweep(None, {"beta": [0, 1]}, out=tmp_path / "s", log=None, jobs=0)
    assert not (tmp_path / "s").exists()


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.src: list[str] = []
        self.href: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "src" in a:
            self.src.append(a["src"])
        if "href" in a:
            self.href.append(a["href"])


def test_sweep_writes_a_row_per_combination(tmp_path):
    root = vaelab.sweep(None, {"model": ["ae", "vae"], "latent_dim": [2]}, out=tmp_path / "s",
                        log=None, **TINY)
    with open(root / "comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["model"], r["latent_dim"], r["run"]) for r in rows] == [
        ("ae", "2", "model=ae_latent_dim=2"), ("vae", "2", "model=vae_latent_dim=2")]
    assert all(float(r["recon_mse"]) > 0 for r in rows)
    assert rows[1]["neg_elbo"] and not rows[0]["neg_elbo"]  # an AE has no ELBO
    md = (root / "comparison.md").read_text().splitlines()
    assert len(md) == 2 + 2 and md[0].startswith("| model | latent_dim |")
    for f in ("metrics_vs_model.png", "metrics_vs_latent_dim.png",
              "reconstructions_side_by_side.png", "samples_side_by_side.png"):
        assert (root / "figures" / f).stat().st_size > 5000, f
    page = Links()
    page.feed((root / "sweep.html").read_text())
    assert len(page.src) == 4 and all(s.startswith("data:image/png;base64,") for s in page.src)
    runs = [h for h in page.href if not h.startswith("#")]
    assert runs == [f"{r['run'].replace('=', '%3D')}/report.html" for r in rows]
    assert all((root / r["run"] / "report.html").exists() for r in rows)

    stamp = (root / rows[0]["run"] / "metrics.json").stat().st_mtime_ns
    messages: list[str] = []
    sweep(None, ["model=ae,vae", "latent_dim=2"], out=root, log=messages.append, **TINY)
    assert (root / rows[0]["run"] / "metrics.json").stat().st_mtime_ns == stamp
    assert "2 combinations, 0 to train" in " ".join(messages)


@pytest.mark.slow
def test_sweep_cli_on_a_recipe_with_lists(tmp_path):
    out = CliRunner().invoke(cli, [
        "sweep", "--config", str(EXAMPLE), "--grid", "hidden=32;32,16",
        "--dataset", "digits", "--latent-dim", "4", "--epochs", "1", "--eval-k", "0",
        "--out", str(tmp_path / "s"), "-q"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader((tmp_path / "s" / "comparison.csv").read_text().splitlines()))
    assert [r["hidden"] for r in rows] == ["32", "32,16"]
    cfg = json.loads((tmp_path / "s" / "hidden=32-16" / "config.json").read_text())
    assert (cfg["model"]["hidden"], cfg["model"]["model"]) == ([32, 16], "ae")
    assert "sweep.html" in out.output


@pytest.mark.slow
def test_sweep_in_parallel_jobs(tmp_path):
    root = sweep(None, ["beta=0,1", "latent_dim=2,3"], out=tmp_path / "s", jobs=2, log=None,
                 **TINY)
    rows = list(csv.DictReader((root / "comparison.csv").read_text().splitlines()))
    assert {(r["beta"], r["latent_dim"]) for r in rows} == {("0", "2"), ("0", "3"), ("1", "2"),
                                                           ("1", "3")}
    cfg = json.loads((root / "beta=1_latent_dim=3" / "config.json").read_text())
    assert cfg["train"]["threads"] == threads_per_job(2)
    assert cfg["model"]["beta"] == 1.0
