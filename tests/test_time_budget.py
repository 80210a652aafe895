"""--time-budget: epochs until the budget is spent, the cosine schedule over the budget, the
budget and the epochs it bought in metrics.json, and resume continuing with what is left.

Epoch wall times are fixed by the test (every epoch "costs" one second), so the stopping epoch
and the learning rates are known answers, not timings."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vaelab
from vaelab.errors import ConfigError
from vaelab.train import budget as budget_mod
from vaelab.train.config import TrainConfig, parse_duration
from vaelab.train.schedules import cosine_factor, lr_factor


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), (45.5, 45.5), ("90s", 90), ("5m", 300), ("5min", 300), ("1h30m", 5400),
    ("2h", 7200), ("1m30s", 90), ("0.5m", 30),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "5 minutes", "m", "1x"])
def test_bad_durations_are_one_sentence(text, tmp_path):
    with pytest.raises(ConfigError, match=r"option 'time_budget' got .*90s, 5m, 1h30m") as err:
        vaelab.train(dataset="iris", time_budget=text, log=None, out=str(tmp_path))
    assert "\n" not in str(err.value)


def test_budget_prediction():
    b = budget_mod.TimeBudget(10.0)
    assert b.next_fits() and b.progress == 0  # the first epoch always runs
    for w in (2.0, 3.0, 1.0):
        b.add(w)
    assert b.spent == 6.0 and b.progress == 0.6
    assert b.next_fits()  # 6 + mean(2, 3, 1) = 8 <= 10
    b.add(3.0)  # 9 + mean(3, 1, 3) > 10
    assert not b.next_fits()


def test_auto_schedule_is_cosine_over_the_budget_only():
    cfg = TrainConfig(lr=1.0, lr_min=0.1, epochs=10)
    assert lr_factor(cfg, 5) == 1.0  # auto without a budget: constant
    cfg.time_budget = "1m"
    assert lr_factor(cfg, 0, progress=0.0) == 1.0
    assert np.isclose(lr_factor(cfg, 99, progress=0.5), cosine_factor(cfg, 0.5))
    assert np.isclose(lr_factor(cfg, 3, progress=1.0), 0.1)


@pytest.fixture
def one_second_epochs(monkeypatch):
    """Every epoch's wall time counts as exactly 1 s against the budget."""
    real_add = budget_mod.TimeBudget.add
    monkeypatch.setattr(budget_mod.TimeBudget, "add", lambda self, w: real_add(self, 1.0))


SMALL = dict(dataset="iris", latent_dim=2, hidden=[8], batch_size=32, lr=1e-2, eval_k=5,
             progress=False, report=False, log=None)


def test_budget_buys_epochs_with_the_cosine_over_it(tmp_path, one_second_epochs):
    run = vaelab.train(**SMALL, time_budget="5.5s", epochs=2, out=str(tmp_path / "r"))
    # 5 epochs spend 5 s; a sixth (predicted 1 s) would end at 6 s > 5.5 s. --epochs 2 is ignored
    assert len(run.history) == 5
    lrs = [r["lr"] for r in run.history]
    want = [1e-2 * cosine_factor(run.config.train, i / 5.5) for i in range(5)]
    np.testing.assert_allclose(lrs, want, rtol=1e-6)
    training = json.loads((run.path / "metrics.json").read_text())["training"]
    assert training["time_budget_s"] == 5.5 and training["epochs_bought"] == 5
    assert training["budget_spent_s"] == 5.0
    assert "time budget of 5.5s is spent" in training["stop_reason"]
    assert not training["stopped_early"]


def test_resume_continues_with_what_is_left(tmp_path, one_second_epochs):
    out = tmp_path / "r"
    vaelab.train(**SMALL, time_budget="3s", out=str(out))
    run = vaelab.train(resume=out, time_budget="6s", log=None, progress=False, report=False)
    assert len(run.history) == 6  # 3 epochs, then 3 more within the larger budget
    training = json.loads((run.path / "metrics.json").read_text())["training"]
    assert training["epochs_bought"] == 6 and training["budget_spent_s"] == 6.0
