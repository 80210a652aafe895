"""benchmarks/zoo.py's helpers: paired differences, the verdicts, the doc's generated blocks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ZOO = Path(__file__).resolve().parent.parent / "benchmarks" / "zoo.py"


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("zoo_benchmark", ZOO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_paired_difference_is_tighter_than_the_two_errors(zoo):
    rng = np.random.default_rng(0)
    base = rng.normal(250.0, 60.0, 2000)  # images differ a lot ...
    other = base - 1.0 + rng.normal(0.0, 2.0, 2000)  # ... the two models on one image little
    d, s = zoo.paired(other, base)
    assert d == pytest.approx(float(np.mean(other - base)))
    assert s == pytest.approx(float(np.std(other - base, ddof=1) / np.sqrt(2000)))
    assert s < 0.1 * zoo.se(base)


def _row(key: str, arch: str = "mlp", **kw):
    model = key.rsplit("-", 1)[0]
    return {"key": key, "model": model, "arch": arch, "frechet_gmm": None,
            "frechet_prior": None, **kw}


def test_verdicts_name_met_and_missed_targets(zoo):
    rows = [_row("vae-mlp", iwae_minus_vae=0.0, iwae_minus_vae_se=0.0),
            _row("vamp-mlp", iwae_minus_vae=-0.7, iwae_minus_vae_se=0.1),
            _row("hvae-mlp", iwae_minus_vae=-0.3, iwae_minus_vae_se=0.1),
            _row("iwae-mlp", iwae_minus_vae=-0.05, iwae_minus_vae_se=0.02),
            _row("ae-mlp", frechet_gmm=3.0, frechet_prior=90.0),
            _row("wae-mlp", frechet_gmm=80.0, frechet_prior=70.0)]
    lines = {line.split("**")[1]: line for line in zoo.verdicts(rows)}
    assert lines["vamp (mlp)"].endswith("**met**.")
    assert lines["hvae (mlp)"].endswith("**missed**.")  # 0.3 < the 0.5 nat margin
    assert lines["iwae (mlp)"].endswith("**met**.")
    assert lines["ae (mlp)"].endswith("**met**.")
    assert lines["wae (mlp)"].endswith("**missed**.")
    assert "iaf (mlp)" not in lines and "rae (mlp)" not in lines  # rows not run: no verdict


def test_generated_blocks_keep_the_prose_around_them(zoo):
    text = "# Zoo\n\nintro\n\n<!-- zoo:table -->\nold\n<!-- /zoo:table -->\n\nwhy it falls short\n"
    new = zoo.replace_block(text, "table", ["| a |", "| 1 |"])
    assert new == ("# Zoo\n\nintro\n\n<!-- zoo:table -->\n| a |\n| 1 |\n<!-- /zoo:table -->\n\n"
                   "why it falls short\n")
    assert zoo.replace_block(new, "table", ["| a |", "| 1 |"]) == new
    added = zoo.replace_block(new, "targets", ["- x"])
    assert added.startswith(new.rstrip("\n")) and added.endswith(
        "<!-- zoo:targets -->\n- x\n<!-- /zoo:targets -->\n")


def test_conv_rows_take_their_own_cpu_length(zoo):
    p = zoo.Protocol(conv_subset=5000, conv_iwae_k=200, conv_iwae_rows=500)
    mlp = p.options(zoo.Row("vae", "mlp"))
    conv = p.options(zoo.Row("vamp", "conv"))
    assert "subset" not in mlp and (mlp["eval_k"], mlp["eval_rows"], mlp["epochs"]) == \
        (1000, 2000, 20)
    assert (conv["subset"], conv["eval_k"], conv["eval_rows"], conv["epochs"]) == \
        (5000, 200, 500, 10)
    text = " ".join(zoo.protocol_text(p, {"n_test": 10000}))
    assert "Conv rows at a CPU length: 5,000 training rows" in text and "K = 200" in text
    same = " ".join(zoo.protocol_text(zoo.Protocol(), {"n_test": 10000}))
    assert "CPU length" not in same


def test_table_names_each_rows_k_when_they_differ(zoo):
    base = {"nll_kind": "neg_elbo", "nll": 100.0, "nll_se": 1.0, "iwae_nll_se": 0.5,
            "frechet_prior": 10.0, "frechet_gmm": None, "active_units": 5, "latent_dim": 20,
            "knn_accuracy": 0.7, "train_seconds": 3.0, "parameters": 10}
    rows = [{**base, "key": "vae-mlp", "name": "vae", "model": "vae", "arch": "mlp",
             "iwae_nll": 95.0, "iwae_k": 1000},
            {**base, "key": "vae-conv", "name": "vae", "model": "vae", "arch": "conv",
             "iwae_nll": 90.0, "iwae_k": 200}]
    lines = zoo.table(rows)
    assert "K=200 / 1000" in lines[0]
    assert "95.00 ± 0.50 (K=1000)" in lines[2] and "90.00 ± 0.50 (K=200)" in lines[3]
    assert "(K=" not in "".join(zoo.table(rows[:1])[2:])
