"""`vaelab.train`: data -> model -> train -> evaluate -> figures / report, into a run directory."""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vaelab
from vaelab.config import Config, apply_overrides
from vaelab.data import DataSplits, load_data
from vaelab.errors import RunDirError
from vaelab.evaluate import elbo_metrics
from vaelab.modelio import atomic_write_text, save_model
from vaelab.models import ModelSpec, build_model
from vaelab.run import Run, write_history
from vaelab.train.device import resolve_device, seed_everything
from vaelab.train.loop import Trainer

Log = Callable[[str], None]


def resolve_config(config: Config | dict | str | Path | None = None, **overrides: Any) -> Config:
    """Accept a Config, a dict, or a TOML path; then apply flat keyword overrides."""
    if config is None:
        cfg = Config()
    elif isinstance(config, Config):
        cfg = config
    elif isinstance(config, dict):
        cfg = Config.from_dict(config)
    else:
        cfg = Config.from_toml(config)
    return apply_overrides(cfg, overrides, source="argument") if overrides else cfg


def prepare_run_dir(path: Path, *, force: bool = False) -> None:
    """Refuse an existing run (unless ``force``) or an unwritable location before training."""
    if path.exists() and any(path.iterdir()):
        if not force:
            raise RunDirError(
                f"{path} already holds a run; choose another --out, add --force to replace it, "
                "or --resume to continue it."
            )
        if not (path / "config.json").exists():
            raise RunDirError(
                f"{path} is not empty and is not a vaelab run; refusing to overwrite it with "
                "--force - choose another --out."
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to {path} ({exc.strerror}); choose another --out.")\
            from None


def model_spec(cfg: Config, data: DataSplits) -> ModelSpec:
    lik = cfg.model.likelihood
    if lik == "auto":
        lik = data.likelihood_hint
    return ModelSpec(input_shape=tuple(data.example_shape), likelihood=lik,
                     num_classes=data.num_classes)


def environment() -> dict[str, Any]:
    return {
        "vaelab": vaelab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_config(path: Path, cfg: Config, data: DataSplits, device: torch.device,
                 spec: ModelSpec) -> None:
    payload = cfg.to_dict()
    payload["out"] = str(path)
    payload["resolved"] = {
        "device": str(device),
        "likelihood": spec.likelihood,
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
    }
    payload["data_info"] = data.info
    payload["preprocessing"] = data.preprocessor.to_dict()
    payload["label_names"] = data.label_names
    payload["versions"] = environment()
    atomic_write_text(path / "config.json", json.dumps(payload, indent=2))


def train(
    config: Config | dict | str | Path | None = None,
    *,
    force: bool = False,
    log: Log | None = print,
    report: bool = True,
    **overrides: Any,
) -> Run:
    """Train a model as ``config`` says and return the finished :class:`Run`.

    ``config`` is a Config, a nested dict, or a TOML path; keyword overrides use flat option
    names (``latent_dim=2``, ``epochs=5``, ``out="runs/x"``). The run directory holds
    config.json, model.safetensors + model.json, history.csv, metrics.json, latents.npz,
    figures/*.png and report.html.
    """
    say = log or (lambda msg: None)
    cfg = resolve_config(config, **overrides)
    from vaelab.train import distributed

    dinfo = distributed.init_from_env(cfg.train.device)
    if not dinfo.is_main:  # under torchrun only rank 0 talks and writes
        say = lambda msg: None  # noqa: E731
    out = cfg.run_dir()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = load_data(cfg.data, seed=cfg.train.seed, batch_size=cfg.train.batch_size)
    device = distributed.device_for_rank(resolve_device(cfg.train.device))
    seed_everything(cfg.train.seed)
    spec = model_spec(cfg, data)
    model = build_model(cfg.model, spec)
    if dinfo.is_main:
        prepare_run_dir(out, force=force)
        write_config(out, cfg, data, device, spec)
    distributed.barrier()
    say(f"training {cfg.model.model} on {data.info['source']} "
        f"(train {len(data.train)}, val {len(data.val)}, test {len(data.test)}; "
        f"{spec.likelihood} likelihood) on {device} -> {out}")

    from vaelab.train.callbacks import default_callbacks

    trainer = Trainer(
        model, cfg.train, device,
        dynamic_binarize=data.preprocessor.kind == "binarize-dynamic",
        callbacks=default_callbacks(cfg, out, data),
        log=say,
    )
    t0 = time.perf_counter()
    state = trainer.fit(data.train.x, data.train.y,
                        data.val.x if data.val is not data.train else None,
                        data.val.y if data.val is not data.train else None)
    elapsed = time.perf_counter() - t0
    dist_info = {}
    if dinfo.active:
        same = distributed.parameters_identical(model)
        dist_info = {"distributed": {"world_size": dinfo.world_size, "params_identical": same}}
        say(f"data-parallel over {dinfo.world_size} processes; parameters identical on all "
            f"ranks: {same}")
        if not dinfo.is_main:
            return None  # type: ignore[return-value]
    trainer.restore_best()
    write_history(out / "history.csv", state.history)
    save_model(model, out, extra={"best_epoch": state.best_epoch})
    run = Run(out, cfg, model=model, data=data)
    finish_run(run, state_info={
        "best_epoch": state.best_epoch,
        "epochs_run": state.epochs_done,
        "stopped_early": state.stopped_early,
        "train_seconds": elapsed,
        **dist_info,
    }, log=say, report=report)
    return run


def evaluate_run(run: Run, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compute the test metrics and write metrics.json (keeps keys others added)."""
    test = run.data.test
    metrics = dict(run.metrics)
    metrics["test"] = {**metrics.get("test", {}),
                       **elbo_metrics(run.model, test.x, test.y, seed=run.config.train.seed)}
    if extra:
        metrics.update(extra)
    atomic_write_text(run.path / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def finish_run(run: Run, state_info: dict[str, Any], log: Log, report: bool = True) -> None:
    """Evaluate, encode the test set, render figures and the report of a trained run."""
    from vaelab.figures import render_figures

    metrics = evaluate_run(run, {"training": state_info})
    run.latents()
    t = metrics["test"]
    log(f"test: negative ELBO {t['neg_elbo']:.3f}, reconstruction {t['recon']:.3f}, "
        f"KL {t['kl']:.3f} nats per example (best epoch {state_info['best_epoch']})")
    render_figures(run)
    if report:
        from vaelab.report import write_report

        path = write_report(run)
        log(f"report: {path}")
