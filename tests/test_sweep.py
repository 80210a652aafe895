"""Sweeps write one run and one comparison row per combination."""

import csv

import pytest

from vaelab.errors import ConfigError
from vaelab.sweep import parse_grid, sweep


def test_parse_grid():
    g = parse_grid(["beta=0,0.5", "hidden=64;128,64", "latent-dim=2"])
    assert g == {"beta": ["0", "0.5"], "hidden": ["64", "128,64"], "latent_dim": ["2"]}
    with pytest.raises(ConfigError, match="unknown option 'betta'"):
        parse_grid(["betta=1"])
    with pytest.raises(ConfigError, match="name=v1,v2"):
        parse_grid(["beta"])


def test_bad_value_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="latent_dim"):
        sweep(None, ["latent_dim=2,zero"], out=tmp_path / "s", log=None, epochs=1)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sweep_writes_a_row_per_combination(tmp_path, jobs):
    root = sweep(None, ["model=ae,vae", "latent_dim=2,3"], out=tmp_path / "s", jobs=jobs,
                 log=None, epochs=1, hidden=[16], eval_k=5)
    with open(root / "comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {(r["model"], r["latent_dim"]) for r in rows} == {("ae", "2"), ("ae", "3"),
                                                           ("vae", "2"), ("vae", "3")}
    assert all(r["recon_mse"] for r in rows)
    assert (root / "comparison.md").read_text().count("\n") == 6
    for f in ("metrics_vs_model.png", "metrics_vs_latent_dim.png",
              "reconstructions_side_by_side.png", "samples_side_by_side.png"):
        assert (root / "figures" / f).exists(), f
