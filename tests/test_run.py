import json

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab.errors import RunDirError
from vaelab.modelio import load_model, save_model
from vaelab.pipeline import evaluate_run


def test_save_load_round_trips_bit_for_bit(tmp_path):
    from vaelab.models import ModelConfig, ModelSpec, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=2, hidden=[16], batch_norm=True),
                        ModelSpec((4,), "gaussian"))
    model.train()
    model.loss(torch.randn(8, 4)).total.backward()  # moves batch-norm buffers
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    on_disk = load_file(str(tmp_path / "model.safetensors"))
    assert all(torch.equal(on_disk[k], a[k]) for k in a)


def test_run_load_reproduces_test_metrics(tmp_path, quick):
    run = vaelab.train(log=None, report=False, **quick)
    saved = json.loads((run.path / "metrics.json").read_text())["test"]["neg_elbo"]
    again = vaelab.Run.load(run.path)
    metrics = evaluate_run(again)
    assert abs(metrics["test"]["neg_elbo"] - saved) < 1e-4


def test_existing_run_dir_is_refused(tmp_path, quick):
    vaelab.train(log=None, report=False, **quick)
    with pytest.raises(RunDirError, match="already holds a run"):
        vaelab.train(log=None, report=False, **quick)
    vaelab.train(log=None, report=False, force=True, **quick)


def test_run_load_on_missing_folder(tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        vaelab.Run.load(tmp_path / "nope")


def test_a_run_on_a_relative_data_path_loads_from_any_folder(tmp_path, monkeypatch):
    """--data given relative to the folder training ran in: config.json keeps the absolute
    path, so `vaelab plot RUN` from another folder finds the table (it said 'does not exist')."""
    import numpy as np

    work, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{a:.3f},{b:.3f}" for a, b in rng.normal(size=(80, 2)))
    (work / "t.csv").write_text("a,b\n" + rows + "\n")
    monkeypatch.chdir(work)
    vaelab.train(data="t.csv", epochs=1, hidden=[8], latent_dim=2, eval_k=2, progress=False,
                 log=None, report=False, out="runs/r")
    saved = json.loads((work / "runs" / "r" / "config.json").read_text())["data"]["data"]
    assert saved == str((work / "t.csv").resolve())
    monkeypatch.chdir(elsewhere)
    run = vaelab.Run.load(work / "runs" / "r")
    assert len(run.data.test) > 0
