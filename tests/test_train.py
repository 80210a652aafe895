import numpy as np
import torch

from vaelab.data import DataConfig, load_data
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer
from vaelab.train.schedules import kl_warmup_factor, lr_factor


def test_loss_falls_on_digits_within_200_steps():
    data = load_data(DataConfig(dataset="digits"), seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=2, hidden=[64, 32]),
                        ModelSpec(data.example_shape, data.likelihood_hint))
    # 1294 rows / batch 64 -> 21 steps per epoch; 9 epochs = 189 steps
    cfg = TrainConfig(epochs=9, batch_size=64, lr=2e-3, progress=False)
    state = Trainer(model, cfg, torch.device("cpu")).fit(data.train.x, data.train.y,
                                                         data.val.x, data.val.y)
    first, last = state.history[0], state.history[-1]
    assert last["train_loss"] < 0.85 * first["train_loss"]
    assert last["val_loss"] < first["val_loss"]
    assert state.best_epoch >= 1 and state.best_state is not None


def test_early_stopping_stops():
    data = load_data(DataConfig(dataset="iris"), seed=0)
    model = build_model(ModelConfig(latent_dim=2, hidden=[8]),
                        ModelSpec(data.example_shape, "gaussian"))
    cfg = TrainConfig(epochs=500, batch_size=32, lr=1e-2, patience=3, progress=False)
    state = Trainer(model, cfg, torch.device("cpu")).fit(data.train.x, None,
                                                         data.val.x, None)
    assert state.stopped_early and len(state.history) < 500
    assert len(state.history) - state.best_epoch == 3


def test_schedules():
    cfg = TrainConfig(lr=1.0, lr_schedule="step", lr_step_size=2, lr_gamma=0.5, epochs=10)
    assert [lr_factor(cfg, e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cfg.lr_schedule = "exponential"
    assert np.isclose(lr_factor(cfg, 3), 0.125)
    cfg.lr_schedule, cfg.lr_min = "cosine", 0.1
    assert lr_factor(cfg, 0) == 1.0 and np.isclose(lr_factor(cfg, 10), 0.1)
    assert [kl_warmup_factor(4, e) for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_a_callback_can_stop_training_after_an_epoch(quick):
    """StopTraining from an epoch callback ends training there; the run finishes normally."""
    import json
    from pathlib import Path

    import vaelab
    from vaelab.train.loop import StopTraining

    seen = []

    def stop_after_two(trainer, epoch, row):
        seen.append(row["val_loss"])
        if epoch == 1:
            raise StopTraining("pruned by the test")

    run = vaelab.train(None, log=None, callbacks=[stop_after_two], **{**quick, "epochs": 5})
    out = Path(quick["out"])
    assert len(seen) == 2 and len(run.history) == 2
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    training = run.metrics["training"]
    assert training["epochs_run"] == 2 and training["stopped_early"] is True
    assert training["stop_reason"] == "pruned by the test"
    assert (out / "checkpoints").exists() and (out / "report.html").exists()


def test_without_a_validation_split_the_training_loss_picks_the_epoch(quick):
    """--val-fraction 0: no validation pass (no val_* columns), the best epoch is the one with
    the lowest training loss, and the first line says so instead of counting the training rows
    as validation rows."""
    import vaelab

    lines: list[str] = []
    run = vaelab.train(None, log=lines.append, report=False,
                       **{**quick, "val_fraction": 0.0, "epochs": 4})
    assert "no validation split: the training loss picks the best epoch" in lines[0]
    assert ", val " not in lines[0]
    assert all(not k.startswith("val_") for row in run.history for k in row)
    losses = [row["train_loss"] for row in run.history]
    assert run.metrics["training"]["best_epoch"] == losses.index(min(losses)) + 1
