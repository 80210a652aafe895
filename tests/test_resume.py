"""Resume after a crash, Ctrl-C, and runs that must never be left broken."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vaelab
from vaelab.errors import RunDirError, TrainingError

ARGS = ["--dataset", "digits", "--epochs", "12", "--batch-size", "16", "--hidden", "64",
        "--seed", "3", "-q"]


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vaelab", "train", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(out: Path, epoch: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        latest = out / "checkpoints" / "LATEST"
        if latest.exists() and int(latest.read_text().strip().split("-")[1]) >= epoch:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("training did not reach the epoch in time")


def _history(out: Path) -> list[dict]:
    with open(out / "history.csv") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    ref = tmp_path / "ref"
    assert subprocess.run([sys.executable, "-m", "vaelab", "train", *ARGS, "--out", str(ref)],
                          capture_output=True, timeout=300).returncode == 0
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_epoch(out, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    res = subprocess.run([sys.executable, "-m", "vaelab", "train", "--resume", str(out), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert _history(out) == _history(ref)
    m_ref = json.loads((ref / "metrics.json").read_text())["test"]
    m_out = json.loads((out / "metrics.json").read_text())["test"]
    assert m_out["neg_elbo"] == pytest.approx(m_ref["neg_elbo"], abs=1e-6)
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_first_sigint_stops_cleanly_and_can_resume(tmp_path):
    out = tmp_path / "int"
    proc = _start(out)
    _wait_for_epoch(out, 2, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "interrupted" and status["epochs"] >= 2
    assert (out / "model.safetensors").exists() and (out / "history.csv").exists()
    vaelab.Run.load(out)  # the folder is a loadable run
    res = subprocess.run([sys.executable, "-m", "vaelab", "train", "--resume", str(out), "-q"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(_history(out)) == 12


def test_non_finite_loss_names_epoch_and_step_and_keeps_best(tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(TrainingError, match=r"epoch \d+, step \d+ of \d+; lower --lr"):
        vaelab.train(dataset="iris", likelihood="gaussian", sigma=1e-3, lr=50.0, epochs=30,
                     hidden=[8], progress=False, log=None, out=str(out))
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "failed" and "non-finite" in status["message"]


def test_resume_refuses_model_changes_and_empty_runs(tmp_path):
    out = tmp_path / "r"
    vaelab.train(dataset="digits", epochs=1, hidden=[16], progress=False, log=None,
                 out=str(out), report=False)
    from vaelab.errors import ConfigError

    with pytest.raises(ConfigError, match="latent_dim cannot change"):
        vaelab.train(resume=out, latent_dim=5, log=None)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((out / "config.json").read_text())
    with pytest.raises(RunDirError, match="no completed epoch"):
        vaelab.train(resume=tmp_path / "empty", log=None)


def test_force_keeps_the_old_run_until_the_new_one_finishes(tmp_path):
    out = tmp_path / "r"
    vaelab.train(dataset="digits", epochs=1, hidden=[16], progress=False, log=None,
                 out=str(out), report=False)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(TrainingError):
        vaelab.train(dataset="iris", likelihood="gaussian", sigma=1e-3, lr=50.0, epochs=30,
                     hidden=[8], progress=False, log=None, out=str(out), force=True)
    assert (out / "model.safetensors").read_bytes() == before  # the finished run survives
    vaelab.train(dataset="digits", epochs=2, hidden=[16], progress=False, log=None,
                 out=str(out), force=True, report=False)
    assert len(_history(out)) == 2 and not (tmp_path / ".r.new").exists()


def test_unwritable_output_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="cannot write to"):
        vaelab.train(dataset="digits", epochs=1, progress=False, log=None,
                     out=str(blocker / "run"))
