"""MLflow adapter (``--log-to mlflow``): one MLflow run per vaelab run.

Default store: ``sqlite:///<folder holding the run>/mlruns.db`` with artifacts in
``<folder holding the run>/mlartifacts`` (experiment = that folder's name, run = the run
folder's name); ``--mlflow-uri`` points at a tracking server instead. Logged: the whole config
as ``section.option`` parameters, the metrics with the same global steps as TensorBoard, at the
end the test metrics, the run folder as artifacts (without checkpoints/) and the model as a
pyfunc (``runs:/<run id>/model``, see :mod:`vaelab.tracking.pyfunc`). The run id is kept in
RUN/tracking.json, so ``--resume`` continues the same MLflow run and logs only steps after
the last one it already holds.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaelab.tracking import flat_params, metric_name, read_tracking, update_tracking
from vaelab.tracking.tensorboard import STEP_PARTS

if TYPE_CHECKING:
    from vaelab.config import Config
    from vaelab.run import Run
    from vaelab.train.loop import Trainer

BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_BATCH = 100
MODEL_ARTIFACT = "model"
SKIP_ARTIFACTS = {"checkpoints", "tensorboard", "tracking.json", "REPLACES"}


def default_uri(run_dir: Path) -> str:
    """``sqlite:///`` file beside the run folder."""
    return f"sqlite:///{(Path(run_dir).resolve().parent / 'mlruns.db').as_posix()}"


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """No progress bars or 'no input example' warnings while the model is saved."""
    import os
    import warnings

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


class MlflowTracker:
    """Logs one vaelab run into one MLflow run (see module docstring)."""

    name = "mlflow"

    def __init__(self, cfg: Config, run_dir: Path, resumed: bool) -> None:
        from mlflow import MlflowClient

        self.cfg = cfg
        self.final = Path(run_dir)
        self.resumed = resumed
        saved = read_tracking(run_dir).get("mlflow", {}) if resumed else {}
        self.uri = cfg.train.mlflow_uri or saved.get("tracking_uri") or default_uri(run_dir)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id: str | None = saved.get("run_id")
        self.last_step = -1  # steps up to this one are already in the MLflow run
        self.done = False

    def start(self, work: Path) -> None:
        from mlflow.entities import Param

        client = self.client
        if self.run_id is not None:
            client.update_run(self.run_id, status="RUNNING")
            for key in ("step/loss", "train/loss"):
                hist = client.get_metric_history(self.run_id, key)
                if hist:
                    self.last_step = max(self.last_step, *(m.step for m in hist))
        else:
            exp_name = self.final.resolve().parent.name or "vaelab"
            exp = client.get_experiment_by_name(exp_name)
            if exp is not None:
                exp_id = exp.experiment_id
            else:
                location = None
                if self.cfg.train.mlflow_uri is None:
                    location = (self.final.resolve().parent / "mlartifacts").as_uri()
                exp_id = client.create_experiment(exp_name, artifact_location=location)
            run = client.create_run(exp_id, run_name=self.final.name,
                                    tags={"vaelab.run_dir": str(self.final.resolve()),
                                          "vaelab.model": self.cfg.model.model})
            self.run_id = run.info.run_id
            params = [Param(k, _param_text(v)[:6000]) for k, v in flat_params(self.cfg).items()]
            for i in range(0, len(params), PARAM_BATCH):
                client.log_batch(self.run_id, params=params[i : i + PARAM_BATCH])
        update_tracking(work, "mlflow", {"run_id": self.run_id, "tracking_uri": self.uri})

    def _log(self, values: list[tuple[str, float, int]]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, s) for k, v, s in values if s > self.last_step]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH])

    def on_epoch(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        buf = trainer.last_epoch_steps
        steps = len(buf) if buf is not None else 1
        first = epoch * steps
        values: list[tuple[str, float, int]] = []
        if buf is not None:
            names = [*STEP_PARTS, *trainer.extra_names]
            vals = buf[:, : len(names)].float().cpu().numpy()
            for i, step_vals in enumerate(vals):
                values += [(f"step/{n}", float(v), first + i + 1)
                           for n, v in zip(names, step_vals, strict=True)]
        end = first + steps
        for key, value in row.items():
            name = metric_name(key)
            if name is not None and isinstance(value, (int, float)):
                values.append((name, float(value), end))
        values.append(("epoch", float(epoch + 1), end))
        self._log(values)

    def finish(self, run: Run, final_step: int) -> None:
        test = run.metrics.get("test", {})
        self.last_step = -1  # test metrics are new even when the run had finished before
        self._log([(f"test/{k}", float(v), final_step) for k, v in test.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)])
        for entry in sorted(run.path.iterdir()):
            if entry.name in SKIP_ARTIFACTS or entry.name.startswith("."):
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.run_id, str(entry), entry.name)
            else:
                self.client.log_artifact(self.run_id, str(entry))
        self._log_model(run)
        self.client.set_terminated(self.run_id, "FINISHED")
        self.done = True

    def _log_model(self, run: Run) -> None:
        """The run's model.safetensors + model.json as a pyfunc at ``runs:/<id>/model``."""
        import mlflow.pyfunc

        from vaelab.tracking import pyfunc

        with tempfile.TemporaryDirectory(prefix="vaelab-mlflow-") as tmp, _quiet_mlflow():
            files = Path(tmp) / "vaelab_model"
            files.mkdir()
            for name in ("model.safetensors", "model.json"):
                shutil.copy2(run.path / name, files / name)
            target = Path(tmp) / MODEL_ARTIFACT
            mlflow.pyfunc.save_model(
                str(target), python_model=pyfunc.CODE_PATH,
                artifacts={"vaelab_model": str(files)}, signature=pyfunc.signature(),
                pip_requirements=["vaelab", "mlflow"],
            )
            self.client.log_artifacts(self.run_id, str(target), MODEL_ARTIFACT)

    def close(self, exc: BaseException | None) -> None:
        if self.run_id is None or self.done:
            return
        interrupted = exc is None or isinstance(exc, KeyboardInterrupt) or \
            type(exc).__name__ == "Interrupted"
        self.client.set_terminated(self.run_id, "KILLED" if interrupted else "FAILED")
        self.done = True


def make(cfg: Config, run_dir: Path, resumed: bool) -> MlflowTracker:
    return MlflowTracker(cfg, run_dir, resumed)
