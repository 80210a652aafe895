"""Data-parallel training under torchrun: two CPU processes with gloo."""

import csv
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_gloo_processes_agree_and_learn(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "vaelab", "train", "--dataset", "digits", "--epochs", "6",
           "--hidden", "64", "--device", "cpu", "--out", str(out), "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["distributed"] == {"world_size": 2, "params_identical": True}
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])


def test_sharding_is_a_partition(monkeypatch):
    from vaelab.train import distributed

    parts = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "info", lambda r=rank: distributed.DistInfo(r, 3, r))
        parts.append(distributed.shard_rows(10, seed=1))
    flat = sorted(int(i) for p in parts for i in p)
    assert all(len(p) == 3 for p in parts)
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
