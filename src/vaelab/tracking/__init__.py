"""Experiment trackers (TensorBoard, MLflow): thin adapters fed by the epoch callbacks and the
run directory. Each adapter module is imported only when ``log_to`` names it, so the core never
imports tensorboard or mlflow.

The pipeline drives a :class:`Trackers` group: ``start(work)`` once the run folder exists,
``callbacks`` after every epoch, ``finish(run)`` once the run is evaluated and its figures are
drawn, ``close(exc)`` when training fails or is interrupted. ``RUN/tracking.json`` remembers
what a resumed run continues (the MLflow run id, the steps per epoch).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vaelab.errors import ConfigError
from vaelab.modelio import atomic_write_text

if TYPE_CHECKING:
    from vaelab.config import Config
    from vaelab.run import Run
    from vaelab.train.loop import EpochCallback, Trainer

TRACKING_FILE = "tracking.json"

# name -> (adapter module, package it needs, pip extra)
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "tensorboard": ("vaelab.tracking.tensorboard", "tensorboard", "tensorboard"),
    "mlflow": ("vaelab.tracking.mlflow", "mlflow", "mlflow"),
}


class Tracker(Protocol):
    """What one tracker adapter implements (see :class:`Trackers` for when each is called)."""

    name: str

    def start(self, work: Path) -> None: ...

    def on_epoch(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None: ...

    def finish(self, run: Run, final_step: int) -> None: ...

    def close(self, exc: BaseException | None) -> None: ...


def read_tracking(run_dir: Path) -> dict[str, Any]:
    """RUN/tracking.json as a dict ({} when absent)."""
    p = Path(run_dir) / TRACKING_FILE
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def update_tracking(run_dir: Path, key: str, value: dict[str, Any]) -> None:
    """Set one section of RUN/tracking.json (written atomically)."""
    data = read_tracking(run_dir)
    data[key] = {**data.get(key, {}), **value}
    atomic_write_text(Path(run_dir) / TRACKING_FILE, json.dumps(data, indent=2))


def flat_params(cfg: Config) -> dict[str, Any]:
    """The whole config flattened to ``section.option`` keys (``model.beta``, ``data.dataset``)."""
    out: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def metric_name(key: str) -> str | None:
    """History column -> tracker metric name: train_loss -> train/loss, lr -> lr; epoch: None."""
    if key == "epoch":
        return None
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix):]}"
    return key


def _require(name: str) -> None:
    _, package, extra = ADAPTERS[name]
    try:
        importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"option 'log_to' asks for {name}, which is not installed; install it with "
            f"`pip install vaelab[{extra}]` (or drop {name} from --log-to)."
        ) from None


class Trackers:
    """The trackers of one run, called together; an empty group does nothing."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        self.steps_per_epoch: int | None = None
        self.work: Path | None = None

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def start(self, work: Path) -> None:
        """Open every tracker on the run folder ``work`` (before the first epoch)."""
        self.work = Path(work)
        self.steps_per_epoch = read_tracking(self.work).get("steps_per_epoch")
        for t in self.trackers:
            t.start(self.work)

    @property
    def callbacks(self) -> list[EpochCallback]:
        return [self._on_epoch] if self.trackers else []

    def _on_epoch(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        buf = trainer.last_epoch_steps
        if buf is not None and self.work is not None and len(buf) != self.steps_per_epoch:
            self.steps_per_epoch = len(buf)
            data = read_tracking(self.work)
            data["steps_per_epoch"] = self.steps_per_epoch
            atomic_write_text(self.work / TRACKING_FILE, json.dumps(data, indent=2))
        for t in self.trackers:
            t.on_epoch(trainer, epoch, row)

    def finish(self, run: Run, log: Any = None) -> None:
        """Log the finished run (test metrics, figures, artifacts, model) and close.

        A tracker that fails here says so through ``log`` and does not fail the run: its
        results are complete in the run folder.
        """
        epochs = int(run.metrics.get("training", {}).get("epochs_run", len(run.history)))
        final_step = epochs * (self.steps_per_epoch or 1)
        for t in self.trackers:
            try:
                t.finish(run, final_step)
            except Exception as exc:  # the run itself is finished and saved
                if log is not None:
                    log(f"{t.name}: could not log the finished run ({type(exc).__name__}: "
                        f"{exc}); the run folder is complete")
                t.close(exc)

    def close(self, exc: BaseException | None = None) -> None:
        """Close every tracker after a failure or interruption (``exc``); never raises."""
        for t in self.trackers:
            try:
                t.close(exc)
            except Exception:
                continue


def make_trackers(cfg: Config, run_dir: Path, resumed: bool = False, *,
                  main: bool = True) -> Trackers:
    """The trackers ``cfg.train.log_to`` asks for, on the run folder ``run_dir``.

    Raises :class:`ConfigError` before anything is written when a tracker's package is not
    installed. ``resumed`` continues the trackers of an interrupted run (``--resume``). Off the
    main process of a distributed run (``main=False``) the group is empty.
    """
    names = list(cfg.train.log_to)
    for name in names:
        if name not in ADAPTERS:
            raise ConfigError(f"option 'log_to' got {name!r}; choose from "
                              f"{', '.join(ADAPTERS)}.")
        _require(name)
    if not main:
        return Trackers([])
    trackers: list[Tracker] = []
    for name in names:
        module = importlib.import_module(ADAPTERS[name][0])
        trackers.append(module.make(cfg, Path(run_dir), resumed))
    return Trackers(trackers)
