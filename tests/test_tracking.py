"""Experiment tracking (``log_to``): TensorBoard and MLflow, read back with their own readers.

One module-scoped run logs to both, is interrupted by a callback after its second epoch (which
the trackers have already logged, but whose checkpoint was never written) and is resumed: the
readers must then show every step exactly once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab.config import Config
from vaelab.errors import ConfigError
from vaelab.train.loop import Interrupted

EPOCHS = 3


def _overrides(out: Path, **extra) -> dict:
    return {"dataset": "digits", "epochs": EPOCHS, "batch_size": 128, "hidden": [32],
            "latent_dim": 2, "eval_k": 2, "progress": False, "out": str(out), **extra}


def _interrupt_after(epoch: int):
    def cb(trainer, e, row):
        if e + 1 == epoch:
            raise Interrupted(e + 1, 0)
    return cb


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> Path:
    """A run logged to TensorBoard and MLflow, interrupted after epoch 2 and resumed."""
    out = tmp_path_factory.mktemp("tracking") / "runs" / "run"
    with pytest.raises(Interrupted):  # raised by a callback: epoch 1's checkpoint is kept
        vaelab.train(None, log=None, report=False, callbacks=[_interrupt_after(2)],
                     **_overrides(out, log_to=["tensorboard", "mlflow"], sample_every_epoch=True,
                                  checkpoint_every=0))
    assert vaelab.Run.load(out).status == "interrupted"
    vaelab.train(resume=out, log=None, report=False)
    return out


def _steps(out: Path) -> int:
    return json.loads((out / "tracking.json").read_text())["steps_per_epoch"]


# -- options ---------------------------------------------------------------------------------

def test_log_to_is_a_list_option_from_flags_toml_and_dicts(tmp_path):
    cfg = Config.from_dict({"train": {"log_to": ["tensorboard", "mlflow"]}})
    assert cfg.train.log_to == ["tensorboard", "mlflow"]
    from vaelab.config import apply_overrides

    cfg = apply_overrides(Config(), {"log-to": "mlflow,tensorboard", "mlflow_uri": "http://h"})
    assert cfg.train.log_to == ["mlflow", "tensorboard"] and cfg.train.mlflow_uri == "http://h"
    assert Config().train.log_to == [] and Config().train.mlflow_uri is None
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nlog_to = ["tensorboard"]\n')
    assert Config.from_toml(toml).train.log_to == ["tensorboard"]


def test_train_command_has_the_flags():
    from click.testing import CliRunner

    from vaelab.cli.main import cli

    res = CliRunner().invoke(cli, ["train", "--help"])
    assert "--log-to" in res.output and "--mlflow-uri" in res.output
    assert "--log LOG_TO" in res.output  # the spelling: --log tensorboard


def test_log_flag_spelling_trains_with_tensorboard(tmp_path):
    from vaelab.cli.main import main

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        main(["train", "--dataset", "digits", "--epochs", "1", "--subset", "200", "--quiet",
              "--log", "tensorboard", "--out", str(out)])
    assert done.value.code == 0
    assert json.loads((out / "config.json").read_text())["train"]["log_to"] == ["tensorboard"]
    assert any((out / "tensorboard").iterdir())


def test_unknown_tracker_is_one_config_error():
    with pytest.raises(ConfigError, match=r"option 'log_to' got 'wandb'; choose from "
                                          r"tensorboard, mlflow") as err:
        Config.from_dict({"log_to": "tensorboard,wandb"})
    assert str(err.value).count(".") <= 3  # one sentence (the dots of the example flag aside)


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_missing_package_names_the_pip_command_before_training(tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=rf"pip install vaelab\[{name}\]"):
        vaelab.train(None, log=None, **_overrides(out, log_to=[name]))
    assert not out.exists()  # refused before the run folder was made


def test_the_core_does_not_import_trackers():
    import subprocess

    code = ("import sys, vaelab, vaelab.pipeline, vaelab.cli.main; "
            "print(sorted(m for m in ('mlflow', 'tensorboard', 'torch.utils.tensorboard') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# -- TensorBoard -------------------------------------------------------------------------------

def _accumulator(out: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"),
                           size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.slow
def test_tensorboard_scalars_have_every_step_once_after_resume(tracked):
    acc = _accumulator(tracked)
    n = _steps(tracked)
    tags = acc.Tags()["scalars"]
    for part in ("step/loss", "step/recon", "step/kl"):
        steps = [e.step for e in acc.Scalars(part)]
        assert steps == list(range(1, EPOCHS * n + 1)), part
    history = vaelab.Run.load(tracked).history
    for tag, col in (("train/loss", "train_loss"), ("val/kl", "val_kl"), ("lr", "lr")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [n * (i + 1) for i in range(EPOCHS)], tag
        assert [e.value for e in events] == pytest.approx([r[col] for r in history], rel=1e-6)
    # the per-step values average (weighted by rows) to the epoch's train loss
    step_loss = np.array([e.value for e in acc.Scalars("step/loss")]).reshape(EPOCHS, n)
    assert step_loss.mean(1) == pytest.approx([r["train_loss"] for r in history], rel=0.05)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    raw = EventAccumulator(str(tracked / "tensorboard"), size_guidance={"scalars": 0},
                           purge_orphaned_data=False)
    raw.Reload()  # the interrupted attempt had logged epoch 2 before its checkpoint existed
    assert len(raw.Scalars("step/loss")) > EPOCHS * n
    metrics = vaelab.Run.load(tracked).metrics["test"]
    assert acc.Scalars("test/neg_elbo")[-1].value == pytest.approx(metrics["neg_elbo"])
    assert "beta" in tags


@pytest.mark.slow
def test_tensorboard_images_hparams_and_projector(tracked):
    acc = _accumulator(tracked)
    n = _steps(tracked)
    images = acc.Tags()["images"]
    grids = acc.Images("samples/epochs")
    assert [g.step for g in grids] == [n * (i + 1) for i in range(EPOCHS)]
    assert grids[0].width > 0 and grids[0].encoded_image_string[:4] == b"\x89PNG"
    pngs = sorted(p.stem for p in (tracked / "figures").glob("*.png"))
    assert pngs and all(f"figures/{p}" in images for p in pngs)

    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert {m.name.tag for m in exp.experiment.metric_infos} >= {"test/neg_elbo"}
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model.latent_dim"].number_value == 2
    assert start.hparams["data.dataset"].string_value == "digits"

    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    config = text_format.Parse((tracked / "tensorboard" / "projector_config.pbtxt").read_text(),
                               projector_config_pb2.ProjectorConfig())
    (emb,) = config.embeddings
    base = tracked / "tensorboard"
    mu = np.loadtxt(base / emb.tensor_path, delimiter="\t")
    latents = vaelab.Run.load(tracked).latents()
    assert mu.shape == latents["mu"].shape
    assert mu == pytest.approx(latents["mu"], abs=1e-4)
    labels = (base / emb.metadata_path).read_text().split("\n")
    assert labels[: len(mu)] == [str(int(v)) for v in latents["y"]]
    assert (base / emb.sprite.image_path).exists() and list(emb.sprite.single_image_dim) == [8, 8]


# -- MLflow ------------------------------------------------------------------------------------

def _mlflow(out: Path):
    from mlflow import MlflowClient

    info = json.loads((out / "tracking.json").read_text())["mlflow"]
    assert info["tracking_uri"] == f"sqlite:///{(out.parent / 'mlruns.db').as_posix()}"
    return MlflowClient(info["tracking_uri"]), info["run_id"], info["tracking_uri"]


@pytest.mark.slow
def test_mlflow_params_metrics_and_artifacts(tracked):
    client, run_id, _ = _mlflow(tracked)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == tracked.name
    params = run.data.params
    assert params["model.latent_dim"] == "2" and params["data.dataset"] == "digits"
    assert params["model.hidden"] == "32" and params["train.log_to"] == "tensorboard,mlflow"
    n = _steps(tracked)
    steps = [m.step for m in client.get_metric_history(run_id, "step/loss")]
    assert sorted(steps) == list(range(1, EPOCHS * n + 1))  # no duplicates after the resume
    hist = sorted(client.get_metric_history(run_id, "train/loss"), key=lambda m: m.step)
    history = vaelab.Run.load(tracked).history
    assert [m.step for m in hist] == [n * (i + 1) for i in range(EPOCHS)]
    assert [m.value for m in hist] == pytest.approx([r["train_loss"] for r in history])
    test = vaelab.Run.load(tracked).metrics["test"]
    assert run.data.metrics["test/neg_elbo"] == pytest.approx(test["neg_elbo"])
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.json", "metrics.json", "history.csv", "model.safetensors", "figures",
            "model"} <= top
    assert "checkpoints" not in top
    figures = {Path(a.path).name for a in client.list_artifacts(run_id, "figures")}
    assert {p.name for p in (tracked / "figures").glob("*.png")} <= figures
    assert tracked.parent.joinpath("mlartifacts").is_dir()


@pytest.mark.slow
def test_mlflow_pyfunc_encodes_and_decodes_like_vaelab(tracked):
    import mlflow
    import pandas as pd

    from vaelab.evaluate import encode_dataset

    _, run_id, uri = _mlflow(tracked)
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    run = vaelab.Run.load(tracked)
    x = np.asarray(run.data.test.x[:16])
    mu, _ = encode_dataset(run.model, x)
    z = model.predict(x)
    assert z == pytest.approx(mu, abs=1e-5)
    z_df = model.predict(pd.DataFrame(x.reshape(len(x), -1)))
    assert z_df == pytest.approx(mu, abs=1e-5)
    rec = model.predict(z, params={"method": "decode"})
    assert rec.shape == x.shape
    assert rec == pytest.approx(run.reconstruct(x), abs=1e-5)
    assert model.unwrap_python_model().decode(z) == pytest.approx(run.decode(z), abs=1e-5)
    assert model.predict(x, params={"method": "reconstruct"}) == pytest.approx(
        run.reconstruct(x), abs=1e-5)


# -- sweeps ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_sweep_gives_each_run_its_own_tensorboard_folder(tmp_path):
    from vaelab.sweep import sweep

    root = sweep(None, {"beta": [0.5, 1.0]}, out=tmp_path / "sw", log=None,
                 **{k: v for k, v in _overrides(tmp_path, epochs=1, eval_k=0).items()
                    if k != "out"}, log_to=["tensorboard"])
    dirs = sorted(p for p in root.iterdir() if (p / "config.json").exists())
    assert len(dirs) == 2
    for d in dirs:
        acc = _accumulator(d)
        assert len(acc.Scalars("train/loss")) == 1
        assert json.loads((d / "config.json").read_text())["train"]["log_to"] == ["tensorboard"]
