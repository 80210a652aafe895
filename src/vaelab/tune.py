"""Hyper-parameter tuning with Optuna: a search space over vaelab's flat options, TPE sampling,
pruning from the per-epoch validation loss, one run directory per trial.

``search`` entries read ``name=distribution(args)``: ``loguniform(a,b)``, ``uniform(a,b)``,
``int(a,b)``, ``int(a,b,log)`` or ``choice(v1,v2,...)`` (``;`` separates values of list options:
``hidden=choice(64;128,64)``). The study lives in an Optuna storage (``sqlite:///OUT/tune.db`` by
default, an RDB URL such as ``postgresql://...`` when several machines tune one study); running
the same call again continues it until it holds ``trials`` finished (complete + pruned) trials.
Optuna and Plotly are imported only here, when tuning (``pip install vaelab[tune]``).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import re
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaelab.config import Config, apply_overrides, option_index
from vaelab.errors import ConfigError, VaelabError

if TYPE_CHECKING:
    import optuna

Log = Callable[[str], None]

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
MAXIMISE = {"knn_accuracy", "linear_probe_accuracy", "binary_accuracy", "explained_variance",
            "silhouette", "active_units"}
"""Test metrics where larger is better; every other metric is minimised."""
TEST_METRICS = {"neg_elbo", "neg_elbo_k", "iwae_nll", "iwae_gap", "recon_nll", "recon", "kl",
                "recon_mse", "frechet_distance", *MAXIMISE}
METRICS = ("val_loss", *sorted(TEST_METRICS))
NOT_COMPARABLE = {"beta", "model", "iwae_k", "likelihood", "sigma", "preprocess", "free_bits"}
"""Options whose values change what the validation loss measures."""
RUN_PREFIX = "trial-"
MAX_FAILURES_IN_A_ROW = 3
POLL_SECONDS = 2.0


def require_optuna() -> Any:
    """Import Optuna (and check Plotly), or raise one sentence naming the extra to install."""
    try:
        import optuna
        import plotly  # noqa: F401
    except ImportError:
        raise VaelabError("tuning needs Optuna and Plotly; install them with "
                          "`pip install vaelab[tune]`.") from None
    return optuna


# -- the search space ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One searched option: its distribution and range (or choices)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    spec: str = ""

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this option's value for ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


_SPEC = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.S)


def _base_hint(name: str) -> Any:
    """The option's declared type without ``| None``."""
    import types
    import typing

    from vaelab.config import _hint

    hint = _hint(option_index()[name][1])
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def parse_param(spec: str, base: Config | None = None) -> Param:
    """Parse and check one ``name=distribution(args)``; raise ConfigError in one sentence."""
    base = base or Config()
    m = _SPEC.match(spec)
    if m is None:
        raise ConfigError(f"--search '{spec}' needs the form name=distribution(args), e.g. "
                          "beta=loguniform(0.1,4), latent_dim=int(2,64) or model=choice(vae,iwae).")
    name, dist, inner = m.group(1).replace("-", "_"), m.group(2).lower(), m.group(3).strip()
    index = option_index()
    if name not in index:
        raise ConfigError(f"--search '{spec}' names unknown option '{name}' (see "
                          "`vaelab options`).")
    if name in ("out", "name"):
        raise ConfigError(f"--search cannot vary '{name}'; tuning names every trial's run "
                          "itself (set the folder with --out).")
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"--search '{spec}' uses unknown distribution '{dist}'; use "
                          f"{', '.join(d + '(...)' for d in DISTRIBUTIONS)}.")
    hint = _base_hint(name)
    if dist == "choice":
        sep = ";" if ";" in inner else ","
        raw = [v.strip() for v in inner.split(sep) if v.strip()]
        if len(raw) < 1 or len(set(raw)) != len(raw):
            raise ConfigError(f"--search '{spec}' needs distinct values, e.g. "
                              f"{name}=choice(a,b,c).")
        values = tuple(_choice_value(name, v, hint, base, spec) for v in raw)
        return Param(name, "choice", choices=values, spec=spec)
    if hint not in (int, float):
        raise ConfigError(f"--search '{spec}': option '{name}' is not numeric; use "
                          f"{name}=choice(...) with its values.")
    args = [a.strip() for a in inner.split(",")]
    log = dist == "loguniform"
    if dist == "int":
        if hint is not int:
            raise ConfigError(f"--search '{spec}': option '{name}' takes real numbers; use "
                              f"uniform(a,b) or loguniform(a,b).")
        if len(args) == 3 and args[2].lower() == "log":
            log, args = True, args[:2]
        if len(args) != 2:
            raise ConfigError(f"--search '{spec}' needs int(low,high) or int(low,high,log).")
    elif hint is int:
        raise ConfigError(f"--search '{spec}': option '{name}' takes integers; use "
                          f"int(a,b) or int(a,b,log).")
    elif len(args) != 2:
        raise ConfigError(f"--search '{spec}' needs two numbers: {dist}(low,high).")
    try:
        low, high = (int(a) if dist == "int" else float(a) for a in args)
    except ValueError:
        raise ConfigError(f"--search '{spec}' has a bound that is not "
                          f"{'an integer' if dist == 'int' else 'a number'}.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"--search '{spec}' needs a range with low < high.")
    if log and low <= 0:
        raise ConfigError(f"--search '{spec}' is log-scaled, so its low bound must be "
                          "positive.")
    for bound in (low, high):  # both ends must be values the option accepts
        try:
            apply_overrides(base, {name: bound}, source="--search")
        except ConfigError as exc:
            raise ConfigError(f"--search '{spec}': bound {bound} is refused: {_reason(exc)}; "
                              "narrow the range.") from None
    return Param(name, dist if dist != "loguniform" else "uniform", float(low), float(high),
                 log, spec=spec)


def _choice_value(name: str, text: str, hint: Any, base: Config, spec: str) -> Any:
    """A choice coerced to the option's type (numbers stay numbers), checked like a flag."""
    try:
        cfg = apply_overrides(base, {name: text}, source="--search")
    except ConfigError as exc:
        raise ConfigError(f"--search '{spec}': value '{text}' is refused: {_reason(exc)}; "
                          "drop it from the choices.") from None
    if name == "model":
        from vaelab.models import MODELS

        if text not in MODELS:
            raise ConfigError(f"--search '{spec}': '{text}' is not a registered model; choose "
                              f"from {', '.join(sorted(MODELS))} (see `vaelab models`).")
    section, _ = option_index()[name]
    value = getattr(cfg if section is None else getattr(cfg, section), name)
    return value if isinstance(value, (bool, int, float, str)) or value is None else text


def _reason(exc: ConfigError) -> str:
    """A config error's message as a clause (no source prefix, no advice, no full stop)."""
    text = str(exc).removeprefix("--search: ")
    return text.split("; fix it in")[0].rstrip(".")


def parse_search(search: Sequence[str] | str, base: Config | None = None) -> list[Param]:
    """Parse every ``--search`` spec (all are checked before any trial starts)."""
    if isinstance(search, str):
        search = [search]
    params: list[Param] = []
    for spec in search:
        p = parse_param(spec, base)
        if any(q.name == p.name for q in params):
            raise ConfigError(f"--search gives option '{p.name}' twice; keep one distribution "
                              "for it.")
        params.append(p)
    if not params:
        raise ConfigError("tuning needs at least one --search, e.g. --search "
                          "\"beta=loguniform(0.1,4)\".")
    return params


def metric_direction(metric: str, direction: str | None = None) -> str:
    """``minimize`` or ``maximize`` for ``metric`` (accuracies up, losses down) unless given."""
    if metric not in METRICS:
        raise ConfigError(f"--metric '{metric}' is unknown; use val_loss or a test metric: "
                          f"{', '.join(sorted(TEST_METRICS))}.")
    if direction is None:
        return "maximize" if metric in MAXIMISE else "minimize"
    d = direction.lower().replace("minimise", "minimize").replace("maximise", "maximize")
    if d not in ("minimize", "maximize"):
        raise ConfigError(f"--direction '{direction}' must be minimize or maximize.")
    return d


# -- the study ----------------------------------------------------------------------------------
@dataclass
class TuneSetup:
    """Everything a worker needs (picklable, so worker processes get the same)."""

    base: Config
    params: list[Param]
    trials: int
    metric: str
    direction: str
    out: Path
    storage: str
    study_name: str
    seed: int
    pruner: str = "median"
    prune_startup: int = 5
    prune_warmup: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What must match when a study is continued (stored in the study's user attrs)."""
        return {"metric": self.metric, "direction": self.direction,
                "search": [p.spec for p in self.params]}


@dataclass
class TuneResult:
    """What :func:`tune` returns: the study and where its results are."""

    study: optuna.Study
    out: Path
    page: Path
    best_run: Path | None
    best_value: float | None
    best_params: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        return trial_counts(self.study)


def default_storage(out: Path) -> str:
    return f"sqlite:///{out.resolve() / 'tune.db'}"


def redact(url: str) -> str:
    """A storage URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def make_storage(url: str) -> Any:
    """Optuna's RDB storage for ``url``, with heartbeats so a killed worker's trial is failed
    and retried once (SQLite gets a long lock timeout for several local workers)."""
    optuna = require_optuna()
    if "://" not in url:
        raise ConfigError(f"--storage '{url}' is not a database URL; use e.g. "
                          "sqlite:///runs/tune/tune.db or postgresql://user:pass@host/db.")
    import inspect

    from optuna.exceptions import ExperimentalWarning

    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    cb_arg = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in params \
        else "failed_trial_callback"
    kwargs: dict[str, Any] = {"heartbeat_interval": 20, "grace_period": 60}
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    last: Exception | None = None
    for attempt in range(6):  # workers starting together may race creating the tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", FutureWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine, **kwargs,
                                                  **{cb_arg: retry_cls(max_retry=1)})
        except ImportError as exc:
            raise ConfigError(f"--storage {redact(url)} needs its database driver ({exc}); "
                              "e.g. pip install psycopg2-binary for postgresql.") from None
        except Exception as exc:  # sqlalchemy OperationalError and friends
            last = exc
            time.sleep(0.3 * (attempt + 1))
    raise ConfigError(f"cannot open the study storage {redact(url)} ({redact(str(last))}); "
                      "check the URL "
                      "and that the database is reachable.")


def make_sampler(seed: int) -> Any:
    """TPE seeded per trial from (``seed``, trial number): reproducible, and workers that start
    together do not draw the same random start-up points."""
    optuna = require_optuna()
    import numpy as np

    class PerTrialTPE(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._by_trial: dict[int, Any] = {}

        def _tpe(self, trial: Any) -> Any:
            s = self._by_trial.get(trial.number)
            if s is None:
                state = int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0])
                s = self._by_trial[trial.number] = optuna.samplers.TPESampler(seed=state)
            return s

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return self._tpe(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return self._tpe(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            return self._tpe(trial).sample_independent(study, trial, name, dist)

        def before_trial(self, study: Any, trial: Any) -> None:
            self._tpe(trial).before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._tpe(trial).after_trial(study, trial, state, values)
            self._by_trial.pop(trial.number, None)

        def reseed_rng(self) -> None:
            pass

    return PerTrialTPE()


def make_pruner(setup: TuneSetup) -> Any:
    optuna = require_optuna()
    if setup.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=setup.prune_startup,
                                       n_warmup_steps=setup.prune_warmup)


def open_study(setup: TuneSetup) -> optuna.Study:
    """Create the study or load it; refuse to continue one started with another setup."""
    optuna = require_optuna()
    storage = make_storage(setup.storage)
    study = optuna.create_study(storage=storage, study_name=setup.study_name,
                                direction=setup.direction, load_if_exists=True,
                                sampler=make_sampler(setup.seed), pruner=make_pruner(setup))
    ident = setup.identity()
    saved = study.user_attrs.get("vaelab")
    if saved is None:
        study.set_user_attr("vaelab", ident)
    elif saved != ident or study.direction.name.lower() != setup.direction:
        raise ConfigError(
            f"study '{setup.study_name}' in {redact(setup.storage)} was started with "
            f"--metric {saved.get('metric')} and --search {' '.join(saved.get('search', []))}; "
            "run it with the same settings to continue it, or choose another --study-name.")
    return study


def trial_counts(study: optuna.Study) -> dict[str, int]:
    from optuna.trial import TrialState

    counts = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] += 1
    counts["finished"] = counts["complete"] + counts["pruned"]
    return counts


class _Surplus(Exception):
    """This trial was created after the study already had its trials (a race between workers)."""


class _Objective:
    """Train one trial's run and return its metric; prune from the per-epoch validation loss."""

    def __init__(self, setup: TuneSetup, log: Log | None) -> None:
        self.setup = setup
        self.log = log
        self.errors: list[str] = []
        self.finished = 0

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Exact total across workers: count finished trials and those running before ours."""
        from optuna.trial import TrialState

        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        taken = sum(1 for t in trial.study.get_trials(deepcopy=False)
                    if t.state in finished
                    or (t.state == TrialState.RUNNING and t.number < trial.number))
        return taken >= self.setup.trials

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        s = self.setup
        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise _Surplus
        values = {p.name: p.suggest(trial) for p in s.params}
        run_dir = s.out / f"{RUN_PREFIX}{trial.number:04d}"
        trial.set_user_attr("run", run_dir.name)
        trial.set_user_attr("host", socket.gethostname())
        rows: list[dict[str, Any]] = []
        pruned: list[str] = []
        sign = 1.0 if s.direction == "minimize" else -1.0

        def on_epoch(trainer: Any, epoch: int, row: dict[str, Any]) -> None:
            from vaelab.train.loop import StopTraining

            rows.append(row)
            value = row.get("val_loss", row.get("train_loss"))
            if value is None or not math.isfinite(value):
                return
            trial.report(sign * float(value), int(row["epoch"]))
            if trial.should_prune():
                pruned.append(f"pruned by Optuna after epoch {row['epoch']}: validation loss "
                              f"{value:.4g} is worse than the median of earlier trials")
                raise StopTraining(pruned[-1])

        from vaelab.pipeline import train

        shown = " ".join(f"{k}={_show(v)}" for k, v in values.items())
        try:
            train(s.base, log=None, report=False, callbacks=[on_epoch],
                  **{**s.overrides, **values, "out": str(run_dir), "progress": False})
            metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            value = self._value(metrics, rows, run_dir)
        except VaelabError as exc:
            self.errors.append(str(exc))
            trial.set_user_attr("error", str(exc))
            if self.log:
                self.log(f"trial {trial.number}: {shown} failed: {exc}")
            raise
        self.errors.clear()
        self.finished += 1
        trial.set_user_attr("epochs", len(rows))
        best_val = min((r["val_loss"] for r in rows if "val_loss" in r), default=None)
        if best_val is not None:
            trial.set_user_attr("val_loss", best_val)
        for k in sorted(TEST_METRICS):
            v = metrics.get("test", {}).get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                trial.set_user_attr(k, float(v))
        if pruned:
            trial.set_user_attr("stop_reason", pruned[-1])
            if self.log:
                self.log(f"trial {trial.number}: {shown} pruned after epoch {len(rows)} "
                         f"-> {run_dir}")
            raise optuna.TrialPruned(pruned[-1])
        if self.log:
            self.log(f"trial {trial.number}: {shown} -> {s.metric} {value:.4g} ({run_dir})")
        return value

    def _value(self, metrics: dict[str, Any], rows: list[dict[str, Any]], run_dir: Path) -> float:
        metric = self.setup.metric
        if metric == "val_loss":
            vals = [r["val_loss"] for r in rows if "val_loss" in r]
            value = min(vals) if vals else None
        else:
            value = metrics.get("test", {}).get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise VaelabError(f"run {run_dir} has no finite {metric} (its model may not report "
                              "it); choose another --metric.")
        return float(value)


def _show(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_worker(setup: TuneSetup, log: Log | None = print) -> int:
    """Run trials into the study until it holds ``setup.trials`` finished ones; return how many
    this worker finished. Safe to run on several processes or machines at once."""
    optuna = require_optuna()
    from optuna.exceptions import ExperimentalWarning

    study = open_study(setup)
    objective = _Objective(setup, log)
    waiting = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a killed worker's trial: failed, retried
        c = trial_counts(study)
        if c["finished"] >= setup.trials:
            return objective.finished
        if c["finished"] + c["running"] >= setup.trials:
            # the last trials run elsewhere: wait, and take over if one of them fails
            if log and not waiting:
                log(f"waiting for {c['running']} trial(s) running in other workers")
            waiting = True
            time.sleep(POLL_SECONDS)
            continue
        waiting = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                study.optimize(objective, n_trials=1, catch=(VaelabError,))
        except _Surplus:
            continue
        if len(objective.errors) >= MAX_FAILURES_IN_A_ROW:
            raise VaelabError(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed; the last: "
                              f"{objective.errors[-1]}")


def _worker_process(args: tuple[TuneSetup, bool]) -> int:
    setup, verbose = args
    quiet_optuna()
    return run_worker(setup, print if verbose else None)


def quiet_optuna() -> None:
    """Optuna logs only errors: vaelab prints one line per trial itself, failures included."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def tune(
    config: Config | dict | str | Path | None = None,
    search: Sequence[str] | str = (),
    *,
    trials: int = 20,
    metric: str = "val_loss",
    direction: str | None = None,
    out: str | Path = "runs/tune",
    storage: str | None = None,
    study_name: str | None = None,
    pruner: str = "median",
    prune_startup: int = 5,
    prune_warmup: int = 0,
    jobs: int = 1,
    log: Log | None = print,
    **overrides: Any,
) -> TuneResult:
    """Tune ``search`` over ``config`` with Optuna until the study has ``trials`` finished trials.

    ``search`` holds specs such as ``"beta=loguniform(0.1,4)"``, ``"latent_dim=int(2,64)"``,
    ``"model=choice(vae,iwae)"``; ``overrides`` (flat option names, e.g. ``epochs=20``) apply to
    every trial, and its ``seed`` also seeds the TPE sampler. ``metric`` is ``val_loss`` (best
    validation loss of the run) or a test metric of metrics.json (``neg_elbo``, ``iwae_nll``,
    ``knn_accuracy``...), minimised or maximised as it reads unless ``direction`` says.
    ``pruner`` ``median`` stops a trial whose validation loss is worse than the median of
    earlier trials at the same epoch (after ``prune_startup`` trials and ``prune_warmup``
    epochs); ``none`` never prunes. Each trial trains into ``out/trial-NNNN``; the study is
    stored in ``storage`` (default ``sqlite:///out/tune.db``) under ``study_name`` (default: the
    name of ``out``), and calling again continues it. ``jobs`` worker processes run trials at
    once on this machine; other machines join by calling with the same ``storage``. Writes
    ``out/tune.html`` and the best trial's report.html; returns a :class:`TuneResult`.
    """
    from vaelab.pipeline import resolve_config

    require_optuna()
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {trials}.")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}.")
    if pruner not in ("median", "none"):
        raise ConfigError(f"--pruner '{pruner}' is unknown; use median or none.")
    if prune_startup < 0 or prune_warmup < 0:
        raise ConfigError("--prune-startup and --prune-warmup must be zero or more.")
    overrides = {k.replace("-", "_"): v for k, v in overrides.items()}
    if "out" in overrides:
        raise ConfigError("pass the tuning folder as out=..., not as a run option.")
    base = resolve_config(config)
    fixed = apply_overrides(base, overrides, source="option")  # check the fixed options
    params = parse_search(search, fixed)
    clash = sorted({p.name for p in params} & set(overrides))
    if clash:
        raise ConfigError(f"option(s) {', '.join(clash)} are both searched and fixed; drop the "
                          "fixed value or the --search.")
    direction = metric_direction(metric, direction)
    if fixed.data.val_fraction == 0 and (metric == "val_loss" or pruner != "none"):
        raise ConfigError("tuning on val_loss or with pruning needs a validation split; set "
                          "--val-fraction above 0, or use a test --metric with --pruner none.")
    root = Path(out)
    name = study_name or root.resolve().name
    url = storage or default_storage(root)
    if log and metric == "val_loss":
        varied = sorted({p.name for p in params} & NOT_COMPARABLE)
        if varied:
            log(f"note: searching {', '.join(varied)} changes what the validation loss "
                "measures; --metric neg_elbo or iwae_nll compares such trials fairly.")
    if jobs > 1 and "threads" not in overrides:
        from vaelab.sweep import threads_per_job

        overrides = {**overrides, "threads": threads_per_job(jobs)}
    setup = TuneSetup(base=base, params=params, trials=trials, metric=metric,
                      direction=direction, out=root, storage=url, study_name=name,
                      seed=fixed.train.seed, pruner=pruner, prune_startup=prune_startup,
                      prune_warmup=prune_warmup, overrides=overrides)
    root.mkdir(parents=True, exist_ok=True)
    quiet_optuna()
    study = open_study(setup)
    c = trial_counts(study)
    if not study.get_trials(deepcopy=False) and any(root.glob(f"{RUN_PREFIX}*")):
        raise ConfigError(f"{root} already holds trial runs but study '{name}' in "
                          f"{redact(url)} has no trials; choose another --out.")
    if log:
        log(f"tune: study '{name}' in {redact(url)}: {c['finished']} of {trials} trials "
            f"finished; {metric} ({direction[:3]}imise), {jobs} job(s) -> {root}")
    try:
        if jobs > 1 and c["finished"] < trials:
            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
                list(pool.map(_worker_process, [(setup, log is not None)] * jobs))
        else:
            run_worker(setup, log)
    except VaelabError:
        finish(study, setup, None)  # tune.html shows the failed trials
        raise
    return finish(study, setup, log)


def finish(study: optuna.Study, setup: TuneSetup, log: Log | None = print) -> TuneResult:
    """Write the best trial's report and ``tune.html``; return the result."""
    from vaelab.report.tune import write_tune_page

    best = best_trial(study)
    best_run: Path | None = None
    if best is not None:
        best_run = setup.out / str(best.user_attrs.get("run", f"{RUN_PREFIX}{best.number:04d}"))
        if (best_run / "metrics.json").exists() and not (best_run / "report.html").exists():
            from vaelab.report import write_report

            write_report(best_run)
    page = write_tune_page(study, setup)
    c = trial_counts(study)
    if log:
        log(f"tune: {c['complete']} complete, {c['pruned']} pruned, {c['fail']} failed")
        if best is not None:
            where = best_run if best_run and best_run.exists() else \
                f"{best_run} on {best.user_attrs.get('host', 'another machine')}"
            log(f"best trial {best.number}: {setup.metric} {best.value:.4g} with "
                + " ".join(f"{k}={_show(v)}" for k, v in best.params.items()))
            log(f"best run: {where}" + (f" (report: {best_run / 'report.html'})"
                                        if best_run and (best_run / 'report.html').exists()
                                        else ""))
        log(f"tuning page: {page}")
    return TuneResult(study=study, out=setup.out, page=page, best_run=best_run,
                      best_value=None if best is None else best.value,
                      best_params={} if best is None else dict(best.params))


def best_trial(study: optuna.Study) -> Any:
    """The best complete trial, or None when no trial has completed."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial
