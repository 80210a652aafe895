"""vaelab.tune: search-space specs, a tiny study (run dirs, tune.db, tune.html, best report),
resume to the total, pruning, and two worker processes sharing one SQLite study."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("plotly")

from optuna.trial import TrialState  # noqa: E402

from vaelab.config import Config  # noqa: E402
from vaelab.errors import ConfigError, VaelabError  # noqa: E402
from vaelab.tune import (  # noqa: E402
    TuneSetup,
    default_storage,
    metric_direction,
    parse_param,
    parse_search,
    require_optuna,
    tune,
)

TINY = {"dataset": "digits", "epochs": 1, "subset": 240, "eval_k": 4, "hidden": [32],
        "batch_size": 64, "threads": 1}
SEARCH = ["beta=loguniform(0.1,4)", "latent_dim=int(2,6)", "model=choice(vae,iwae)"]


# -- specs -------------------------------------------------------------------------------------
def test_parse_good_specs() -> None:
    beta = parse_param("beta=loguniform(0.1,4)")
    assert (beta.kind, beta.low, beta.high, beta.log) == ("uniform", 0.1, 4.0, True)
    assert parse_param("dropout = uniform(0, 0.5)").log is False
    dim = parse_param("latent-dim=int(2,64)")
    assert (dim.name, dim.kind, dim.low, dim.high, dim.log) == ("latent_dim", "int", 2, 64, False)
    assert parse_param("latent_dim=int(2,64,log)").log is True
    model = parse_param("model=choice(vae,iwae)")
    assert model.choices == ("vae", "iwae")
    assert parse_param("hidden=choice(64;128,64)").choices == ("64", "128,64")
    assert parse_param("batch_size=choice(32,64)").choices == (32, 64)  # numbers stay numbers
    assert [p.name for p in parse_search(SEARCH)] == ["beta", "latent_dim", "model"]


@pytest.mark.parametrize("spec, words", [
    ("model=choice(vae,iwae,vampire)", ["'vampire' is not a registered model", "iwae", "vae"]),
    ("bogus=uniform(0,1)", ["unknown option 'bogus'"]),
    ("beta=normal(0,1)", ["unknown distribution 'normal'"]),
    ("beta=loguniform(0,4)", ["low bound must be positive"]),
    ("beta=uniform(4,1)", ["low < high"]),
    ("beta=uniform(1,x)", ["not a number"]),
    ("beta=uniform(1)", ["two numbers"]),
    ("latent_dim=loguniform(2,8)", ["takes integers", "int(a,b)"]),
    ("lr=int(1,3)", ["takes real numbers"]),
    ("latent_dim=int(0,8)", ["bound 0 is refused", "latent_dim"]),
    ("dropout=uniform(0,1.5)", ["bound 1.5 is refused", "dropout"]),
    ("activation=choice(relu,foo)", ["value 'foo' is refused"]),
    ("activation=uniform(0,1)", ["not numeric", "choice"]),
    ("out=choice(a,b)", ["cannot vary 'out'"]),
    ("beta", ["name=distribution(args)"]),
])
def test_parse_bad_specs(spec: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_param(spec)
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    assert msg.endswith(".") and "\n" not in msg


def test_parse_search_refuses_duplicates_and_empty() -> None:
    with pytest.raises(ConfigError, match="twice"):
        parse_search(["beta=uniform(0,1)", "beta=loguniform(0.1,1)"])
    with pytest.raises(ConfigError, match="at least one --search"):
        parse_search([])


def test_metric_direction() -> None:
    assert metric_direction("val_loss") == "minimize"
    assert metric_direction("iwae_nll") == "minimize"
    assert metric_direction("knn_accuracy") == "maximize"
    assert metric_direction("neg_elbo", "maximise") == "maximize"
    with pytest.raises(ConfigError, match="--metric 'nope'"):
        metric_direction("nope")


def test_tune_checks_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both searched and fixed"):
        tune(None, SEARCH, out=tmp_path, log=None, beta=1.0)
    with pytest.raises(ConfigError, match="registered model"):
        tune(None, ["model=choice(vae,vampire)"], out=tmp_path, log=None)
    with pytest.raises(ConfigError, match="--trials"):
        tune(None, SEARCH, trials=0, out=tmp_path, log=None)
    assert not (tmp_path / "tune.db").exists()


def test_missing_optuna_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(VaelabError, match=re.escape("pip install vaelab[tune]")):
        require_optuna()


def test_cli_bad_spec_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from vaelab.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["tune", "--search", "model=choice(vae,vampire)", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a registered model" in err


# -- the page's failure cases, without training ----------------------------------------------
def _setup(tmp_path: Path) -> TuneSetup:
    return TuneSetup(base=Config(), params=parse_search(["beta=uniform(0.5,2)"]), trials=3,
                     metric="val_loss", direction="minimize", out=tmp_path,
                     storage="sqlite:///x.db", study_name="s", seed=0)


@pytest.mark.parametrize("values, notes", [
    ([], ["no trial has completed yet", "at least 2 complete trials"]),
    ([(1.0, 10.0)], ["at least 2 complete trials (there are 1)"]),
    ([(1.0, 10.0), (1.0, 11.0)], ["no searched option took more than one value"]),
])
def test_page_notes_instead_of_plots(tmp_path: Path, values: list[tuple[float, float]],
                                     notes: list[str]) -> None:
    from optuna.distributions import FloatDistribution

    from vaelab.report.tune import render_tune_page

    study = optuna.create_study()
    for beta, value in values:
        study.add_trial(optuna.trial.create_trial(
            params={"beta": beta}, distributions={"beta": FloatDistribution(0.5, 2)},
            value=value))
    text = render_tune_page(study, _setup(tmp_path))
    for note in notes:
        assert note in text


# -- a tiny study ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "study"
    result = tune(None, SEARCH, trials=4, out=out, log=None, pruner="none", **TINY)
    assert result.best_run is not None and result.page == out / "tune.html"
    return out


def _load(out: Path) -> optuna.Study:
    return optuna.load_study(study_name=out.name, storage=default_storage(out))


def test_study_writes_runs_db_and_page(study_dir: Path) -> None:
    study = _load(study_dir)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    for t in trials:
        run = study_dir / f"trial-{t.number:04d}"
        assert t.user_attrs["run"] == run.name
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        assert (run / "metrics.json").exists()
    assert (study_dir / "tune.db").exists()
    best = study_dir / study.best_trial.user_attrs["run"]
    assert (best / "report.html").exists()
    page = (study_dir / "tune.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # plotly.js inlined, no CDN
    assert page.count("<script") >= 4
    for heading in ("Optimisation history", "Parameter importances", "Parallel coordinates",
                    "Trials"):
        assert heading in page
    assert page.count('class="plotly-graph-div"') >= 3 or "Not drawn" in page
    assert f'href="{best.name}/report.html"' in page


def test_resume_continues_to_the_total(study_dir: Path) -> None:
    tune(None, SEARCH, trials=5, out=study_dir, log=None, pruner="none", **TINY)
    study = _load(study_dir)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert sorted(t.number for t in finished) == list(range(5))
    assert sorted(p.name for p in study_dir.glob("trial-*")) == \
        [f"trial-{i:04d}" for i in range(5)]
    # the same command once more has nothing left to do
    tune(None, SEARCH, trials=5, out=study_dir, log=None, pruner="none", **TINY)
    assert len(_load(study_dir).trials) == 5
    with pytest.raises(ConfigError, match="was started with"):
        tune(None, SEARCH, trials=5, out=study_dir, log=None, metric="iwae_nll", **TINY)


def test_a_trial_beyond_the_total_is_refused(tmp_path: Path) -> None:
    """Workers racing for the last trial: finished + earlier running trials fill the total."""
    from vaelab.tune import _Objective

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0))
    first, second = study.ask(), study.ask()  # two workers each start one (both RUNNING)
    objective = _Objective(dataclasses.replace(_setup(tmp_path), trials=2), log=None)
    assert not objective._surplus(first)  # 1 finished + 0 running before it
    assert objective._surplus(second)  # 1 finished + trial `first` running before it
    study.tell(first, state=TrialState.FAIL)  # the earlier one failed: room again
    assert not objective._surplus(second)


# -- pruning -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_pruning_stops_a_bad_trial(tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    out.mkdir()
    study = optuna.create_study(storage=default_storage(out), study_name="pruned")
    study.enqueue_trial({"lr": 1e-2})  # learns
    study.enqueue_trial({"lr": 1e-6})  # barely moves: worse than the median at epoch 1
    result = tune(None, ["lr=loguniform(1e-6,1e-2)"], trials=2, out=out, log=None,
                  pruner="median", prune_startup=1, **{**TINY, "epochs": 3})
    states = {t.number: t.state for t in result.study.trials}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.PRUNED}
    training = json.loads((out / "trial-0001" / "metrics.json").read_text())["training"]
    assert training["epochs_run"] == 1 and training["stopped_early"]
    assert "pruned" in training["stop_reason"]
    assert result.best_run == out / "trial-0000"
    assert "pruned after epoch 1" in (out / "tune.html").read_text(encoding="utf-8")


# -- two workers, one SQLite study -------------------------------------------------------------
@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    args = [sys.executable, "-m", "vaelab", "tune", "--out", str(out), "--trials", "6",
            "--quiet", *[a for s in SEARCH for a in ("--search", s)],
            *[a for k, v in TINY.items()
              for a in (f"--{k.replace('_', '-')}", ",".join(map(str, v))
                        if isinstance(v, list) else str(v))]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
        assert "tuning page" in stdout
    study = _load(out)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 6  # exactly the total: none lost, none extra
    numbers = [t.number for t in finished]
    assert len(set(numbers)) == 6
    runs = sorted(t.user_attrs["run"] for t in finished)
    assert runs == sorted(p.name for p in out.glob("trial-*"))  # one run dir per trial
    assert all((out / r / "metrics.json").exists() for r in runs)
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    params = {tuple(sorted(t.params.items())) for t in finished}
    assert len(params) == 6  # per-trial seeds: the two workers did not draw the same points
    assert (out / "tune.html").exists()
