"""`vaelab.train`: data -> model -> train -> evaluate -> figures / report, into a run directory."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vaelab
from vaelab.config import Config, apply_overrides
from vaelab.data import DataSplits, load_data
from vaelab.errors import RunDirError, RunFailed, VaelabError
from vaelab.modelio import atomic_write_text, save_model
from vaelab.models import ModelSpec, build_model
from vaelab.run import Run, write_history
from vaelab.status import one_line, write_status
from vaelab.train.device import resolve_device, seed_everything
from vaelab.train.loop import EpochCallback, Trainer

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


def prepare_run_dir(path: Path, *, force: bool = False) -> Path:
    """Check ``path`` before training and return the folder to train into.

    An existing run is refused unless ``force``; with ``force`` the new run is trained in a
    hidden sibling and replaces the old one only when it has finished (``swap_into_place``),
    so a failed or interrupted replacement never destroys a finished result. A location that
    cannot be written is refused.
    """
    work = path
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
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
        work = path.with_name(f".{path.name}.new")
        if work.exists():
            shutil.rmtree(work)
    try:
        work.mkdir(parents=True, exist_ok=True)
        probe = work / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(
            f"cannot write to {path} ({exc.strerror}); choose another --out."
        ) from None
    return work


def swap_into_place(work: Path, final: Path) -> None:
    """Replace ``final`` by the finished run in ``work`` (no-op when they are the same)."""
    if work == final:
        return
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)  # from here until the next rename the finished run is in `old`
    work.rename(final)
    (final / REPLACES).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


REPLACES = "REPLACES"  # in a --force replacement: the run folder it replaces when finished


RESUME_OPTIONS = {"epochs", "time_budget", "patience", "min_delta", "progress", "device",
                  "threads", "sample_every_epoch"}


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> Config:
    """The saved config of ``run_dir`` with the few options that may change on resume."""
    from vaelab.errors import ConfigError

    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise RunDirError(f"{run_dir} has no config.json; it is not a vaelab run to resume.")
    raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    saved = Config.from_dict({k: v for k, v in raw.items() if k in ("data", "model", "train",
                                                                       "name")},
                             source=str(cfg_path))
    changed = sorted(k for k in overrides if k.replace("-", "_") not in RESUME_OPTIONS
                     and k != "out")
    if changed:
        raise ConfigError(
            f"--resume continues {run_dir} with its saved settings; option(s) "
            f"{', '.join(changed)} cannot change (only {', '.join(sorted(RESUME_OPTIONS))} "
            "can) - start a new run instead."
        )
    cfg = apply_overrides(saved, {k: v for k, v in overrides.items() if k != "out"})
    cfg.out = str(run_dir)
    return cfg


def model_spec(cfg: Config, data: DataSplits) -> ModelSpec:
    lik = cfg.model.likelihood
    if lik == "auto":
        lik = data.likelihood_hint
    pre = data.preprocessor
    return ModelSpec(input_shape=tuple(data.example_shape), likelihood=lik,
                     num_classes=data.num_classes,
                     columns=pre.params["columns"] if pre.kind == "columns" else None)


def environment() -> dict[str, Any]:
    return {
        "vaelab": vaelab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_config(path: Path, cfg: Config, data: DataSplits, device: torch.device,
                 spec: ModelSpec, out: Path | None = None) -> None:
    payload = cfg.to_dict()
    payload["out"] = str(out or path)
    source = payload["data"].get("data")
    if source and "://" not in source and Path(source).expanduser().exists():
        # the run reads its data again (plot, evaluate, explore, resume) from any folder
        payload["data"]["data"] = str(Path(source).expanduser().resolve())
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
    resume: str | Path | None = None,
    log: Log | None = print,
    report: bool = True,
    callbacks: list[EpochCallback] | None = None,
    **overrides: Any,
) -> Run:
    """Train a model as ``config`` says and return the finished :class:`Run`.

    ``config`` is a Config, a nested dict, or a TOML path; keyword overrides use flat option
    names (``latent_dim=2``, ``epochs=5``, ``out="runs/x"``). ``resume`` continues an
    interrupted run directory from its last completed epoch. ``callbacks`` are called as
    ``cb(trainer, epoch, history_row)`` after every epoch; one may raise
    :class:`~vaelab.train.loop.StopTraining` to end training there. The run directory holds
    config.json, run.json, model.safetensors + model.json, history.csv, metrics.json,
    latents.npz, checkpoints/, figures/*.png and report.html.
    """
    from vaelab.train import distributed
    from vaelab.train.loop import Interrupted
    from vaelab.train.signals import graceful_sigint

    say = log or (lambda msg: None)
    if resume is not None:
        if config is not None:
            from vaelab.errors import ConfigError

            raise ConfigError("--resume takes its settings from the run; drop --config.")
        cfg = resume_config(Path(resume), overrides)
    else:
        cfg = resolve_config(config, **overrides)
    dinfo = distributed.init_from_env(cfg.train.device)
    if not dinfo.is_main:  # under torchrun only rank 0 talks and writes
        say = lambda msg: None  # noqa: E731
    out = cfg.run_dir()
    from vaelab.tracking import make_trackers

    trackers = make_trackers(cfg, out, resumed=resume is not None, main=dinfo.is_main)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    from vaelab.train.fused import may_apply

    if not may_apply(cfg):  # the fused step's LeanAdam never imports torch's compiler
        _preload_optimizer_support()  # in a thread, while the data loads
    data = load_data(cfg.data, seed=cfg.train.seed, batch_size=cfg.train.batch_size)
    for note in data.info.get("notes", []):  # a table's detected types, gaps, unseen values
        say(note if note.startswith("warning:") else f"note: {note}")
    device = distributed.device_for_rank(resolve_device(cfg.train.device))
    seed_everything(cfg.train.seed)
    spec = model_spec(cfg, data)
    model = build_model(cfg.model, spec)
    checkpoint = None
    final = out  # where the finished run ends up
    if resume is not None:
        work = out
        checkpoint = resumable_checkpoint(work, cfg.train.epochs)
        if (work / REPLACES).exists():  # an interrupted --force replacement
            final = Path((work / REPLACES).read_text(encoding="utf-8").strip())
    elif dinfo.is_main:
        work = prepare_run_dir(out, force=force)
        write_config(work, cfg, data, device, spec, out=out)
        if work != out:
            atomic_write_text(work / REPLACES, str(out))
    else:
        work = out
    distributed.barrier()
    if dinfo.is_main:
        write_status(work, "running")
    shape = spec.input_shape
    kind = {1: "grey", 3: "RGB"}.get(shape[0], f"{shape[0]}-channel") if len(shape) == 3 else ""
    images = f"{'x'.join(map(str, shape))} {kind} images; " if kind else ""
    # without a validation split the training loss picks the best epoch
    val = f"val {len(data.val)}" if data.val is not data.train else \
        "no validation split: the training loss picks the best epoch"
    say(f"{'resuming' if checkpoint else 'training'} {cfg.model.model} on "
        f"{data.info['source']} (train {len(data.train)}, {val}, test "
        f"{len(data.test)}; {images}{spec.likelihood} likelihood) on {device} -> {out}")

    from vaelab.train.callbacks import default_callbacks

    if dinfo.is_main:  # the worker imports scikit-learn while the data loads
        from vaelab import worker

        worker.warm()
        if (os.cpu_count() or 1) <= torch.get_num_threads():
            # its imports would take a core from the training threads, which then wait on each
            # other: epoch 1 took 0.3-0.6 s longer; what is left of them (usually nothing)
            # is waited for instead
            worker.wait_ready(timeout=3.0)
    with graceful_sigint(say) as stop:
        try:
            trackers.start(work)
            trainer = Trainer(
                model, cfg.train, device,
                dynamic_binarize=data.preprocessor.kind == "binarize-dynamic",
                callbacks=default_callbacks(cfg, work, data) + trackers.callbacks
                + list(callbacks or []),
                log=say,
                checkpoint_dir=work / "checkpoints",
                stop_flag=stop,
            )
        except Exception as exc:
            trackers.close(exc)
            if dinfo.is_main:
                write_status(work, "failed", stage="setting up training", epochs=0,
                             message=one_line(exc))
            raise
        t0 = time.perf_counter()
        try:
            state = trainer.fit(data.train.x, data.train.y,
                                data.val.x if data.val is not data.train else None,
                                data.val.y if data.val is not data.train else None,
                                resume_from=checkpoint)
        except (Interrupted, KeyboardInterrupt, Exception) as exc:
            if dinfo.is_main:
                _save_partial(trainer, work, exc, say)
            trackers.close(exc)
            raise
    elapsed = time.perf_counter() - t0
    from vaelab.train.perf import restore_cpu_allocator

    restore_cpu_allocator()  # the training loop's kept buffers go back to the OS
    dist_info = {}
    if dinfo.active:
        same = distributed.parameters_identical(model)
        dist_info = {"distributed": {"world_size": dinfo.world_size, "params_identical": same}}
        say(f"data-parallel over {dinfo.world_size} processes; parameters identical on all "
            f"ranks: {same}")
        if not dinfo.is_main:
            return None  # type: ignore[return-value]
    try:
        trainer.restore_best()
        write_history(work / "history.csv", state.history)
        save_model(model, work, extra={"best_epoch": state.best_epoch})
    except Exception as exc:
        write_status(work, "failed", stage="saving the model", epochs=state.epochs_done,
                     best_epoch=state.best_epoch, message=one_line(exc))
        trackers.close(exc)
        raise
    run = Run(work, cfg, model=model, data=data)
    try:
        finish_run(run, state_info={
            "best_epoch": state.best_epoch,
            "epochs_run": state.epochs_done,
            "stopped_early": state.stopped_early,
            "stop_reason": state.stop_reason,
            "train_seconds": elapsed,
            "resumed": checkpoint is not None,
            **(trainer.budget.summary() if trainer.budget is not None else {}),
            **dist_info,
        }, log=say, report=report)
    except KeyboardInterrupt as exc:  # training is done; evaluation / figures can be redone
        write_status(work, "interrupted", stage="evaluation", epochs=state.epochs_done,
                     best_epoch=state.best_epoch, resume=f"vaelab train --resume {work}")
        trackers.close(exc)
        raise
    except RunFailed as exc:
        trackers.close(exc)
        if work != final:
            raise RunFailed(f"{exc} The previous run in {final} is untouched; the new one stays "
                            f"in {work}.") from exc.__cause__
        raise
    trackers.finish(run, say)  # test metrics, figures, artifacts, model; never fails the run
    if work != final:
        swap_into_place(work, final)
        run.path = final
        say(f"replaced the previous run in {final}")
    return run


def _preload_optimizer_support() -> None:
    """Import torch._dynamo in a background thread: every torch optimiser imports it on first
    use (about 1 s on 2 cores), and reading and decoding the data leaves a core for it."""
    import sys
    import threading

    if "torch._dynamo" not in sys.modules:
        threading.Thread(target=__import__, args=("torch._dynamo",), daemon=True,
                         name="vaelab-preload").start()


def resumable_checkpoint(work: Path, epochs: int) -> Path:
    """The checkpoint ``--resume`` continues from; refuse runs that cannot be continued."""
    from vaelab.train.checkpoint import checkpoint_info, latest_checkpoint

    checkpoint = latest_checkpoint(work / "checkpoints")
    if checkpoint is None:
        raise RunDirError(f"{work} has no completed epoch to resume from; start it again "
                          "with --force.")
    done, step = checkpoint_info(checkpoint)
    status = Run(work, Config()).saved_json("run.json").get("status")
    if status == "finished" and not step and done >= epochs:
        raise RunDirError(f"{work} has already finished its {done} epochs; pass --epochs with "
                          f"more than {done} to train it longer.")
    try:
        probe = work / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to {work} ({exc.strerror}); it cannot be resumed "
                          "there.") from None
    return checkpoint


def _save_partial(trainer: Trainer, work: Path, exc: BaseException, say: Log) -> None:
    """Keep what an interrupted or failed run has: status, history, best weights.

    run.json is written first (each file atomically) and further Ctrl-C are ignored while
    these few small files are written, so the folder is valid whenever this returns.
    """
    from vaelab.train.loop import Interrupted
    from vaelab.train.signals import sigint_ignored

    state = trainer.state
    status = "failed" if not isinstance(exc, (Interrupted, KeyboardInterrupt)) else "interrupted"
    saved_step = exc.step if isinstance(exc, Interrupted) and exc.saved else 0
    can_resume = status == "interrupted" and (state.epochs_done or saved_step)
    final = work
    if (work / REPLACES).exists():
        final = Path((work / REPLACES).read_text(encoding="utf-8").strip())
    with sigint_ignored():
        write_status(work, status, epochs=state.epochs_done, step=saved_step,
                     best_epoch=state.best_epoch,
                     message=str(exc) if isinstance(exc, VaelabError) else one_line(exc),
                     resume=f"vaelab train --resume {work}" if can_resume else None)
        if state.history:
            write_history(work / "history.csv", state.history)
        if state.best_state is not None:
            trainer.restore_best()
            save_model(trainer.model, work, extra={"best_epoch": state.best_epoch})
    where = f"{state.epochs_done} complete epoch(s)" + \
        (f" and {saved_step} step(s) of the next" if saved_step else "")
    say(f"run {status} after {where}; best weights and history are in {work}"
        + (f"; continue with `vaelab train --resume {work}`" if can_resume else "")
        + (f"; the previous run in {final} is untouched" if final != work else ""))


def evaluate_run(run: Run, extra: dict[str, Any] | None = None, *,
                 iwae_k: int | None = None, iwae_rows: int | None = None,
                 log: Log | None = None,
                 on_latents: Callable[[Run], None] | None = None) -> dict[str, Any]:
    """Compute every test metric and the diagnostics; write metrics.json (keeps other keys).

    ``iwae_k`` importance samples for the IWAE estimate on the first ``iwae_rows`` test rows
    (defaults: the run's ``eval_k`` and ``eval_rows``; K 0 skips it, rows 0 takes all). The
    test latents (latents.npz) are re-encoded, so a resumed run never reuses the codes of its
    earlier weights. ``on_latents(run)`` is called as soon as they are (to start work that
    needs them in the background).
    """
    from vaelab.evaluate.diagnostics import diagnose
    from vaelab.evaluate.full import compute_metrics

    k = run.config.train.eval_k if iwae_k is None else iwae_k
    rows = run.config.train.eval_rows if iwae_rows is None else iwae_rows
    metrics = dict(run.metrics)
    (run.path / "latents.npz").unlink(missing_ok=True)
    run.__dict__.pop("_pending", None)  # background work started for earlier weights
    test = compute_metrics(run, iwae_k=k, iwae_rows=rows, seed=run.config.train.seed,
                           log=log or (lambda m: None), on_latents=on_latents)
    metrics["test"] = test
    from vaelab.evaluate.disentangle import factor_metrics

    factors = factor_metrics(run)  # only when the data carries factors
    if factors is not None:
        metrics["disentanglement"] = factors
    if run.model.spec.columns is not None:  # a table by column: each column's own terms
        from vaelab.evaluate.columns import column_metrics

        metrics["columns"] = column_metrics(run, seed=run.config.train.seed)
    x = np.asarray(run.data.test.x[:2000])  # model space: what the likelihood sees
    lo, hi = (float(np.min(x)), float(np.max(x))) if len(x) else (0.0, 1.0)
    metrics["diagnostics"] = diagnose(test, run.saved_json("config.json"), (lo, hi),
                                      run.model.variational)
    if extra:
        metrics.update(extra)
    atomic_write_text(run.path / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The few lines printed after training or `vaelab evaluate`."""
    t = metrics["test"]
    lines = []
    if "neg_elbo" in t:
        lines.append(f"test: negative ELBO {t['neg_elbo']:.3f} (reconstruction {t['recon']:.3f}"
                     f", KL {t['kl']:.3f}) nats per example, one posterior sample each")
    else:
        lines.append(f"test: reconstruction NLL {t['recon_nll']:.3f} nats per example")
    if "iwae_nll" in t:
        n_iw = t.get("iwae_n", t["n_test"])
        part = "" if n_iw >= t["n_test"] else f" of the first {n_iw} test examples"

        def pm(key: str) -> str:
            se = t.get(f"{key}_se")
            return f"{t[key]:.3f}" + (f" +/- {se:.3f}" if isinstance(se, (int, float))
                                         and np.isfinite(se) else "")

        if "neg_elbo_k" in t:  # the pair from the same K samples: IWAE <= ELBO per example
            lines.append(f"      same K={t['iwae_k']} samples per example{part}: negative ELBO "
                         f"{pm('neg_elbo_k')}, IWAE NLL {pm('iwae_nll')} nats "
                         "(+/- standard error over examples)")
        else:  # metrics.json written before the K-sample ELBO was recorded
            lines.append(f"      IWAE NLL estimate {t['iwae_nll']:.3f} nats (K={t['iwae_k']}"
                         f"{part})")
    extra = [f"active units {t['active_units']}/{t['latent_dim']}",
             f"recon MSE {t['recon_mse']:.4g}"]
    if "knn_accuracy" in t:
        extra.append(f"latent kNN accuracy {t['knn_accuracy']:.3f}, linear probe "
                     f"{t['linear_probe_accuracy']:.3f}")
    if "frechet_distance" in t:
        extra.append(f"Frechet distance {t['frechet_distance']:.2f}")
    if "class_consistency" in t:
        extra.append(f"samples of a chosen class read as that class "
                     f"{t['class_consistency']:.0%}")
    lines.append("      " + ", ".join(extra))
    if "columns" in metrics:
        from vaelab.evaluate.columns import worst_columns

        worst = ", ".join(f"{r['name']} {r['nll_per_cell']:.2f} / {r['nll_marginal_per_cell']:.2f}"
                          for r in worst_columns(metrics["columns"]))
        lines.append(f"      columns least explained (nats per cell, model / marginal): {worst}")
    if "disentanglement" in metrics:
        from vaelab.evaluate.disentangle import summary_line

        lines.append("      " + summary_line(metrics["disentanglement"]))
    for d in metrics.get("diagnostics", []):
        lines.append(f"advice: {d['issue']} ({d['evidence']}): {d['advice']}")
    return lines


def finish_run(run: Run, state_info: dict[str, Any], log: Log, report: bool = True) -> None:
    """Evaluate, encode the test set, render figures and the report of a trained run; print
    the test metrics and the diagnostics with advice.

    A failing step raises :class:`RunFailed` after run.json says ``failed`` with the step, the
    error and the commands that redo what is missing (``vaelab.status``); the model and every
    file already written stay.
    """
    from vaelab.figures import render_figures, start_background
    from vaelab.status import mark_finish_failed

    info = {"epochs": state_info["epochs_run"], "best_epoch": state_info["best_epoch"]}
    step = "evaluate"
    try:
        with cores_beside_worker():
            t0 = time.perf_counter()
            metrics = evaluate_run(run, {"training": state_info}, on_latents=start_background)
            for line in summary_lines(metrics):
                log(line)
            t1 = time.perf_counter()
            log(f"best epoch {state_info['best_epoch']} of {state_info['epochs_run']}; "
                f"evaluated in {t1 - t0:.1f} s")
            step = "plot"
            figures = render_figures(run)
            t2 = time.perf_counter()
            log(f"figures: {len(figures)} in {run.path / 'figures'} ({t2 - t1:.1f} s)")
            step = "report"
            # the result is complete: the report states it as finished
            write_status(run.path, "finished", **info)
            if report:
                from vaelab.report import write_report

                path = write_report(run)
                log(f"report: {path}")
            t3 = time.perf_counter()
            seconds = {"train": round(float(state_info.get("train_seconds", 0.0)), 3),
                       "evaluate": round(t1 - t0, 3), "figures": round(t2 - t1, 3),
                       "report": round(t3 - t2, 3), "finish": round(t3 - t0, 3)}
            write_status(run.path, "finished", **info, seconds=seconds)
    except Exception as exc:
        raise RunFailed(mark_finish_failed(run.path, step, exc, **info)) from exc


@contextlib.contextmanager
def cores_beside_worker() -> Iterator[None]:
    """One torch and one BLAS thread fewer while vaelab's worker process computes beside this
    one (two threads on two busy cores wait on each other: 2-4x slower small matrix products;
    numpy's linear probe took 0.32 s beside a busy core with two BLAS threads, 0.13 s with
    one)."""
    from vaelab import worker

    n = torch.get_num_threads()
    if n <= 1 or not worker.active():
        yield
        return
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n - 1)
    try:
        with threadpool_limits(limits=n - 1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(n)
