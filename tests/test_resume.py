"""A real `python -m vaelab train` process killed (SIGKILL) or interrupted (SIGINT, once or
twice) and resumed ends with the same history and metrics as an uninterrupted run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import vaelab
from vaelab.modelio import load_tensors

pytestmark = pytest.mark.slow

ARGS = ["--dataset", "digits", "--epochs", "8", "--batch-size", "16", "--hidden", "64",
        "--dropout", "0.1", "--eval-k", "5", "--seed", "3", "--checkpoint-every", "0", "-q"]


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaelab", "train", *args],
                          capture_output=True, text=True, timeout=300)


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vaelab", "train", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epoch(out: Path, epoch: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until checkpoints/LATEST names a checkpoint with at least ``epoch`` epochs."""
    deadline = time.time() + timeout
    latest = out / "checkpoints" / "LATEST"
    while time.time() < deadline:
        if latest.exists() and int(latest.read_text().strip().split("-")[1]) >= epoch:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the epoch in time")


def _history(out: Path) -> list[dict]:
    with open(out / "history.csv") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


def _test_metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())["test"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("ref") / "run"
    res = _train(*ARGS, "--out", str(ref))
    assert res.returncode == 0, res.stderr
    return ref


def _resume_and_compare(out: Path, ref: Path) -> None:
    res = _train("--resume", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert _history(out) == _history(ref)
    got, want = _test_metrics(out), _test_metrics(ref)
    for key in ("neg_elbo", "recon", "kl", "iwae_nll"):
        assert got[key] == pytest.approx(want[key], abs=1e-9), key
    assert vaelab.Run.load(out).status == "finished"


def _interrupt(out: Path, epoch: int, *signals: int) -> str:
    """Start a run, wait for ``epoch`` to be checkpointed, send ``signals``; return stderr."""
    proc = _start(out)
    _wait_for_epoch(out, epoch, proc)
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.001)
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return err


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_epoch(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    _resume_and_compare(out, reference)


def test_first_sigint_saves_a_valid_run_that_resumes_exactly(tmp_path, reference):
    out = tmp_path / "int"
    err = _interrupt(out, 2, signal.SIGINT)
    assert "interrupted" in err and "run directory is valid" in err
    run = vaelab.Run.load(out)  # a loadable run: model from the best weights so far
    status = run.saved_json("run.json")
    assert run.status == "interrupted" and status["epochs"] >= 2
    assert status["resume"] == f"vaelab train --resume {out}"
    assert len(run.history) == status["epochs"]
    assert all(torch.isfinite(v).all() for v in load_tensors(out / "model.safetensors").values())
    _resume_and_compare(out, reference)


def test_second_sigint_stops_at_once_and_the_run_stays_valid(tmp_path, reference):
    out = tmp_path / "int2"
    _interrupt(out, 1, signal.SIGINT, signal.SIGINT)
    run = vaelab.Run.load(out)
    assert run.status == "interrupted" and run.history
    _resume_and_compare(out, reference)
