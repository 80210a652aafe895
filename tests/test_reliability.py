"""Reliability without subprocesses: mid-epoch checkpoints, non-finite steps, run folders that
are refused before training, --force that never loses a finished run (see test_resume.py for
the SIGKILL / SIGINT tests on a real process)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vaelab
from vaelab.errors import ConfigError, DataError, RunDirError, TrainingError
from vaelab.modelio import load_tensors
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train import signals
from vaelab.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Interrupted, Trainer

SMALL = {"dataset": "digits", "hidden": [16], "latent_dim": 2, "batch_size": 64, "eval_k": 5,
         "progress": False, "seed": 4, "report": False, "log": None}


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures are not the subject here; skipping them keeps these runs at a second each."""
    import vaelab.figures

    monkeypatch.setattr(vaelab.figures, "render_figures", lambda run, *a, **k: [])


class StopAfter:
    """A stop flag that turns on after ``k`` steps (as a first Ctrl-C would)."""

    def __init__(self, k: int) -> None:
        self.k = k

    @property
    def requested(self) -> bool:
        self.k -= 1
        return self.k < 0


def _no_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def _csv(path: Path) -> list[dict]:
    with open(path / "history.csv") as fh:
        return _no_time(list(csv.DictReader(fh)))


def _trainer(ckpt: Path | None = None, stop=None, **cfg) -> Trainer:
    torch.manual_seed(1)
    model = build_model(ModelConfig(hidden=[16], latent_dim=2, dropout=0.1),
                        ModelSpec((10,), "bernoulli"))
    tc = TrainConfig(**{"epochs": 4, "batch_size": 16, "progress": False, "seed": 5, **cfg})
    return Trainer(model, tc, torch.device("cpu"), checkpoint_dir=ckpt, stop_flag=stop,
                   dynamic_binarize=True)


X = np.random.default_rng(0).random((203, 10)).astype(np.float32)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("stop_at", [5, 30])  # inside epoch 1 / inside epoch 3 (13 steps each)
def test_mid_epoch_stop_then_resume_equals_an_uninterrupted_run(tmp_path, fused, stop_at):
    """Dropout, dynamic binarisation and the reparameterisation all draw from the global RNG,
    the row order from the trainer's generator: all are restored at the step."""
    ref = _trainer(fused_step=fused).fit(X, None, X[:50], None)
    t = _trainer(tmp_path, StopAfter(stop_at), fused_step=fused)
    with pytest.raises(Interrupted) as info:
        t.fit(X, None, X[:50], None)
    assert info.value.saved
    cp = latest_checkpoint(tmp_path)
    assert cp is not None and cp.name.endswith(f"-step-{info.value.step:05d}")
    resumed = _trainer(tmp_path, fused_step=fused).fit(X, None, X[:50], None, resume_from=cp)
    assert _no_time(resumed.history) == _no_time(ref.history)
    assert resumed.best_epoch == ref.best_epoch
    assert all(torch.equal(resumed.best_state[k], ref.best_state[k]) for k in ref.best_state)


def test_resume_from_every_epoch_checkpoint(tmp_path):
    ref = _trainer().fit(X, None, X[:50], None)
    for epoch in (1, 3):
        d = tmp_path / str(epoch)
        _trainer(d, epochs=epoch).fit(X, None, X[:50], None)
        out = _trainer(d).fit(X, None, X[:50], None, resume_from=latest_checkpoint(d))
        assert _no_time(out.history) == _no_time(ref.history)


def _saves(monkeypatch) -> list[int]:
    """The epochs the trainer writes checkpoints for, in order (the saves still happen)."""
    from vaelab.train import checkpoint as ck

    seen: list[int] = []
    real = ck.save_checkpoint

    def spy(folder, trainer, epoch, partial=None):
        seen.append(epoch if partial is None else -epoch)
        return real(folder, trainer, epoch, partial)

    monkeypatch.setattr(ck, "save_checkpoint", spy)
    return seen


def test_checkpoints_are_spaced_by_time_and_the_last_epoch_is_always_written(tmp_path,
                                                                             monkeypatch):
    """checkpoint_every: 0 writes after every epoch; seconds write after the first epoch that
    ends that long after the last checkpoint, and always after the last epoch (a checkpoint
    of a small model's 0.3-s epoch cost a sixth of its training time)."""
    seen = _saves(monkeypatch)
    _trainer(tmp_path / "every", checkpoint_every=0).fit(X, None)
    assert seen == [1, 2, 3, 4]
    seen.clear()
    _trainer(tmp_path / "end", checkpoint_every=1e9).fit(X, None)
    assert seen == [4] and latest_checkpoint(tmp_path / "end").name == "epoch-0004"
    seen.clear()

    def slow_after(*epochs: int):
        return lambda trainer, epoch, row: time.sleep(0.6) if epoch + 1 in epochs else None

    t = _trainer(tmp_path / "timed", checkpoint_every=0.5)
    t.callbacks.append(slow_after(1, 3))  # 0.6 s after epochs 1 and 3; the others take ms
    t.fit(X, None)
    assert seen == [1, 3, 4]


def test_early_stop_and_budget_stop_write_their_last_epoch(tmp_path, monkeypatch):
    seen = _saves(monkeypatch)
    t = _trainer(tmp_path / "patience", checkpoint_every=1e9, epochs=40, patience=1,
                 lr=0.3)
    state = t.fit(X, None, X[:50], None)
    assert state.stopped_early and seen == [len(state.history)]
    resumed = _trainer(tmp_path / "patience", checkpoint_every=1e9, epochs=40, patience=1,
                       lr=0.3).fit(X, None, X[:50], None,
                                   resume_from=latest_checkpoint(tmp_path / "patience"))
    assert len(resumed.history) == len(state.history)  # it had stopped: nothing more to do


def test_ctrl_c_between_epochs_writes_the_epochs_no_checkpoint_holds(tmp_path, monkeypatch):
    """A first Ctrl-C at the first step of epoch 3, with no checkpoint written yet (they are
    spaced by time): the two complete epochs are written, and resuming from them equals an
    uninterrupted run."""
    ref = _trainer().fit(X, None, X[:50], None)
    seen = _saves(monkeypatch)
    t = _trainer(tmp_path, StopAfter(26), checkpoint_every=1e9)  # 13 steps an epoch
    with pytest.raises(Interrupted, match="in epoch 3 at step 0"):
        t.fit(X, None, X[:50], None)
    assert seen == [2] and latest_checkpoint(tmp_path).name == "epoch-0002"
    resumed = _trainer(tmp_path).fit(X, None, X[:50], None,
                                     resume_from=latest_checkpoint(tmp_path))
    assert _no_time(resumed.history) == _no_time(ref.history)


class NanGradAt:
    """A gradient hook that turns one step's gradient into NaN (the loss stays finite)."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return grad * float("nan") if self.calls == self.step else grad


@pytest.mark.parametrize(("bad", "epoch", "step"), [
    (13 + 4, 2, 5),    # NaN gradient in step 4 of epoch 2: step 5's loss is the first NaN
    (26, 2, 13),       # NaN gradient in the last step: every loss finite, the weights are not
])
def test_non_finite_gradient_stops_with_epoch_and_step_and_keeps_best(tmp_path, bad, epoch,
                                                                       step):
    t = _trainer(tmp_path, fused_step=False, checkpoint_every=0)  # one after every epoch
    next(t.model.parameters()).register_hook(NanGradAt(bad))
    with pytest.raises(TrainingError, match=rf"epoch {epoch}, step {step} of 13; lower --lr, "
                                            r"add --grad-clip .* likelihood"):
        t.fit(X, None, X[:50], None)
    assert t.state.best_epoch == 1 and len(t.state.history) == 1
    assert all(torch.isfinite(v).all() for v in t.state.best_state.values())
    assert latest_checkpoint(tmp_path).name == "epoch-0001"  # no NaN checkpoint written
    weights = load_tensors(latest_checkpoint(tmp_path) / "state.safetensors")
    assert all(torch.isfinite(v).all() for k, v in weights.items() if k.startswith("model."))


def test_grad_clip_bounds_the_update(tmp_path):
    t = _trainer(fused_step=False, grad_clip=1e-3, epochs=1)
    before = [p.detach().clone() for p in t.model.parameters()]
    t.fit(X, None)
    moved = max(float((p.detach() - b).abs().max()) for p, b in zip(t.model.parameters(), before,
                                                          strict=True))
    assert 0 < moved < 1e-2 * 14  # Adam moves each weight by about lr per step


def test_pipeline_failure_is_written_and_keeps_finite_best_weights(tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(TrainingError, match=r"non-finite in epoch \d+, step \d+ of \d+"):
        vaelab.train(dataset="iris", likelihood="gaussian", sigma=1e-3, lr=50.0, epochs=30,
                     hidden=[8], progress=False, log=None, out=str(out))
    status = vaelab.Run(out, vaelab.Config()).saved_json("run.json")
    assert status["status"] == "failed" and "lower --lr" in status["message"]
    if status["best_epoch"] > 0:
        assert all(torch.isfinite(v).all()
                   for v in load_tensors(out / "model.safetensors").values())


@contextlib.contextmanager
def _ctrl_c_after(k: int):
    yield StopAfter(k)


def test_ctrl_c_mid_epoch_writes_a_valid_interrupted_run_that_resumes_exactly(tmp_path,
                                                                             monkeypatch):
    ref = vaelab.train(**SMALL, epochs=3, out=str(tmp_path / "ref"))
    out = tmp_path / "int"
    with monkeypatch.context() as m, \
            pytest.raises(Interrupted, match="after step 9 of epoch 2"):  # 21 steps an epoch
        m.setattr(signals, "graceful_sigint", lambda log=None: _ctrl_c_after(30))
        vaelab.train(**SMALL, epochs=3, out=str(out))
    run = vaelab.Run.load(out)
    assert run.status == "interrupted"
    status = run.saved_json("run.json")
    assert (status["epochs"], status["step"]) == (1, 9)
    assert status["resume"] == f"vaelab train --resume {out}"
    assert len(run.history) == 1
    resumed = vaelab.train(resume=out, log=None, report=False)
    assert resumed.status == "finished"
    assert _csv(out) == _csv(ref.path)
    assert resumed.metrics["test"]["neg_elbo"] == pytest.approx(
        ref.metrics["test"]["neg_elbo"], abs=1e-9)


def test_a_failed_force_replacement_never_destroys_the_finished_run(tmp_path):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=1, out=str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(TrainingError):
        vaelab.train(dataset="iris", likelihood="gaussian", sigma=1e-3, lr=50.0, epochs=30,
                     hidden=[8], progress=False, log=None, out=str(out), force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    vaelab.train(**SMALL, epochs=2, out=str(out), force=True)
    assert len(_csv(out)) == 2 and not (tmp_path / ".r.new").exists()
    assert vaelab.Run.load(out).status == "finished"


def test_an_interrupted_force_replacement_keeps_the_old_run_and_resumes_into_it(
        tmp_path, monkeypatch):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=1, out=str(out))
    before = (out / "model.safetensors").read_bytes()
    with monkeypatch.context() as m, pytest.raises(Interrupted):
        m.setattr(signals, "graceful_sigint", lambda log=None: _ctrl_c_after(30))
        vaelab.train(**{**SMALL, "latent_dim": 3}, epochs=2, out=str(out), force=True)
    assert (out / "model.safetensors").read_bytes() == before
    assert vaelab.Run.load(out).status == "finished"
    work = tmp_path / ".r.new"
    assert json.loads((work / "run.json").read_text())["status"] == "interrupted"
    vaelab.train(resume=work, log=None, report=False)
    assert not work.exists()
    run = vaelab.Run.load(out)
    assert run.config.model.latent_dim == 3 and len(run.history) == 2
    assert json.loads((out / "config.json").read_text())["out"] == str(out)


def test_resume_a_finished_run_only_to_train_longer(tmp_path):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=2, out=str(out))
    with pytest.raises(RunDirError, match="already finished its 2 epochs; pass --epochs"):
        vaelab.train(resume=out, log=None)
    run = vaelab.train(resume=out, epochs=3, log=None, report=False)
    assert len(run.history) == 3 and run.metrics["training"]["resumed"]


def test_resume_refuses_changes_that_alter_the_model(tmp_path):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=1, out=str(out))
    with pytest.raises(ConfigError, match=r"latent_dim cannot change .* start a new run"):
        vaelab.train(resume=out, latent_dim=5, log=None)
    with pytest.raises(ConfigError, match="drop --config"):
        vaelab.train({"model": {"latent_dim": 2}}, resume=out, log=None)
    with pytest.raises(RunDirError, match=r"has no config.json"):
        vaelab.train(resume=tmp_path / "nowhere", log=None)


def test_damaged_or_missing_checkpoints(tmp_path):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=1, out=str(out))
    ckpts = out / "checkpoints"
    (ckpts / "LATEST").write_text("epoch-0042\n")  # points nowhere: the newest complete wins
    (ckpts / ".epoch-0002.tmp-999").mkdir()         # a save cut short by a kill
    assert latest_checkpoint(ckpts).name == "epoch-0001"
    (ckpts / "epoch-0001" / "state.safetensors").write_bytes(b"\x80\x04junk")
    with pytest.raises(RunDirError, match=r"checkpoint .* is unreadable"):
        vaelab.train(resume=out, epochs=2, log=None)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((out / "config.json").read_text())
    with pytest.raises(RunDirError, match="no completed epoch"):
        vaelab.train(resume=empty, log=None)


def test_a_checkpoint_from_another_model_is_refused(tmp_path):
    t = _trainer(tmp_path, epochs=1)
    t.fit(X, None)
    other = Trainer(build_model(ModelConfig(hidden=[8], latent_dim=2), ModelSpec((10,),
                                                                                "bernoulli")),
                    TrainConfig(progress=False), torch.device("cpu"))
    other.generator = torch.Generator()
    with pytest.raises(RunDirError, match="does not fit this run"):
        load_checkpoint(other, latest_checkpoint(tmp_path))


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    t = _trainer(tmp_path, epochs=1)
    t.fit(X, None)
    before = sorted(p.name for p in tmp_path.iterdir())
    from vaelab.train import checkpoint as ck

    def crash(*a, **k):
        raise OSError("disk full")

    with monkeypatch.context() as m, pytest.raises(OSError):
        m.setattr(ck, "save_safetensors", crash)
        save_checkpoint(tmp_path, t, 2)
    assert latest_checkpoint(tmp_path).name == "epoch-0001"
    save_checkpoint(tmp_path, t, 2)  # the next save sweeps the half-written folder away
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "epoch-0002"]
    assert before == ["LATEST", "epoch-0001"]


def test_an_existing_run_is_refused_before_data_or_training(tmp_path, monkeypatch):
    out = tmp_path / "r"
    vaelab.train(**SMALL, epochs=1, out=str(out))
    snapshot = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(RunDirError, match=r"already holds a run; choose another --out, add "
                                          r"--force .* or --resume"):
        vaelab.train(**SMALL, epochs=1, out=str(out))
    # a bad setting or bad data fails first and leaves the run alone, even with --force
    with pytest.raises(ConfigError):
        vaelab.train(**SMALL, epochs=-1, out=str(out), force=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    with pytest.raises(DataError):
        vaelab.train(**{k: v for k, v in SMALL.items() if k != "dataset"}, data=str(bad),
                     epochs=1, out=str(out), force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == snapshot
    # a non-empty folder that is not a run is never replaced
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"x")
    with pytest.raises(RunDirError, match="is not a vaelab run"):
        vaelab.train(**SMALL, epochs=1, out=str(other), force=True)


@pytest.mark.parametrize("where", ["under a file", "/proc"])
def test_an_unwritable_location_is_refused_before_training(tmp_path, monkeypatch, where):
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    if where == "under a file":
        (tmp_path / "file.txt").write_text("x")
        out = tmp_path / "file.txt" / "run"
    else:
        out = Path("/proc/vaelab-run")
    with pytest.raises(RunDirError, match=r"cannot write to .*; choose another --out"):
        vaelab.train(**SMALL, epochs=1, out=str(out))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes through chmod")
def test_a_read_only_folder_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("training started"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RunDirError, match="cannot write to"):
            vaelab.train(**SMALL, epochs=1, out=str(ro / "run"))
    finally:
        ro.chmod(0o700)
