"""``tune.html``: one offline page for a tuning study.

Optimisation history, parameter importances, parallel coordinates and validation loss per epoch
from ``optuna.visualization`` (Plotly; its JavaScript is inlined once, no CDN), then a table of
every trial with a link to its run directory. A plot that cannot be drawn yet (too few trials,
nothing varies) is replaced by a note saying why.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vaelab.modelio import atomic_write_text
from vaelab.report.style import fmt, page

if TYPE_CHECKING:
    import optuna

    from vaelab.tune import TuneSetup

NOTES = {
    "history": "Each dot is one complete trial's value of the tuned metric, in the order the "
               "trials started; the line is the best value so far. A line that has stopped "
               "falling (or rising, when maximising) says more trials are unlikely to help.",
    "importance": "How much of the variation in the metric each searched option explains "
                  "across the complete trials (Optuna's default importance evaluator). With "
                  "few trials these shares are rough; an option near zero can be fixed.",
    "parallel": "One line per complete trial through the value of every searched option; the "
                "colour is the metric. Follow the best-coloured lines to see which ranges "
                "work together.",
    "intermediate": "Validation loss after every epoch of every trial (negated when the metric "
                    "is maximised). Pruned trials stop early: the pruner found them worse "
                    "than the median of earlier trials at the same epoch.",
}


def _has_varying_param(trials: list[Any]) -> bool:
    names = {k for t in trials for k in t.params}
    return any(len({repr(t.params.get(k)) for t in trials}) > 1 for k in names)


class _Plots:
    """Render figures to HTML; the first one carries plotly.js inline, the rest reuse it."""

    def __init__(self) -> None:
        self.js_done = False

    def html(self, fig: Any) -> str:
        fig.update_layout(template="plotly_white", height=440,
                          margin={"l": 60, "r": 30, "t": 50, "b": 50})
        out = fig.to_html(full_html=False, include_plotlyjs=not self.js_done,
                          config={"displaylogo": False, "responsive": True})
        self.js_done = True
        return out


def _figure(plots: _Plots, key: str, make: Any, study: Any, why_not: str | None) -> str:
    if why_not:
        return f'<p class="note">Not drawn: {html.escape(why_not)}</p>'
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = make(study)
    except Exception as exc:  # an Optuna plot that cannot be made for this study
        return f'<p class="note">Not drawn: {html.escape(str(exc) or type(exc).__name__)}.</p>'
    return f"<figure>{plots.html(fig)}<figcaption>{NOTES[key]}</figcaption></figure>"


def _link(setup: TuneSetup, t: Any) -> str:
    run = t.user_attrs.get("run")
    if not run:
        return ""
    folder = setup.out / run
    if not folder.exists():
        host = t.user_attrs.get("host")
        return fmt(run) + (f' <span class="note">on {fmt(host)}</span>' if host else "")
    target = f"{run}/report.html" if (folder / "report.html").exists() else f"{run}/"
    return f'<a href="{quote(target)}">{fmt(run)}</a>'


def _status(t: Any) -> str:
    if t.state.name == "PRUNED":
        return f"pruned after epoch {t.user_attrs.get('epochs', t.last_step)}"
    if t.state.name == "FAIL" and t.user_attrs.get("error"):
        return "failed: " + str(t.user_attrs["error"])
    return t.state.name.lower()


def render_tune_page(study: optuna.Study, setup: TuneSetup) -> str:
    """The HTML of ``tune.html`` for ``study``."""
    import optuna.visualization as vis
    from optuna.trial import TrialState

    from vaelab.tune import best_trial, redact, trial_counts

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = trial_counts(study)
    best = best_trial(study)
    metric, direction = setup.metric, setup.direction
    plots = _Plots()

    # best trial
    if best is None:
        best_html = '<p class="note">No trial has completed yet.</p>'
    else:
        run = best.user_attrs.get("run", "")
        cards = [f'<div class="card"><div class="k">{fmt(metric)} ({direction[:3]}imised)</div>'
                 f'<div class="v">{fmt(best.value)}</div><div class="d">trial {best.number}'
                 "</div></div>"]
        cards += [f'<div class="card"><div class="k">{fmt(k)}</div><div class="v">{fmt(v)}'
                  "</div></div>" for k, v in best.params.items()]
        report = setup.out / run / "report.html"
        where = (f'<p>Run directory: {_link(setup, best)}'
                 + (" (its report)" if report.exists() else "") + "</p>") if run else ""
        best_html = f'<div class="cards">{"".join(cards)}</div>{where}'

    # plots
    n_c = len(complete)
    history = _figure(plots, "history", vis.plot_optimization_history, study,
                      None if n_c else "no trial has completed yet.")
    why_imp = None
    if n_c < 2:
        why_imp = f"importances need at least 2 complete trials (there are {n_c})."
    elif not _has_varying_param(complete):
        why_imp = "no searched option took more than one value among the complete trials."
    importance = _figure(plots, "importance", vis.plot_param_importances, study, why_imp)
    parallel = _figure(plots, "parallel", vis.plot_parallel_coordinate, study,
                       None if n_c else "no trial has completed yet.")
    has_steps = any(t.intermediate_values for t in trials)
    intermediate = _figure(plots, "intermediate", vis.plot_intermediate_values, study,
                           None if has_steps else "no trial has reported an epoch yet.")

    # trials table
    names = [p.name for p in setup.params]
    head = ("<tr><th class='num'>trial</th><th>state</th>"
            + "".join(f"<th>{fmt(n)}</th>" for n in names)
            + f"<th class='num'>{fmt(metric)}</th><th class='num'>best val_loss</th>"
            "<th class='num'>epochs</th><th>run</th></tr>")
    rows = []
    for t in trials:
        value = t.value if t.state == TrialState.COMPLETE else None
        cls = " class='num best'" if best is not None and t.number == best.number else \
            " class='num'"
        rows.append(
            f"<tr><td class='num'>{t.number}</td><td>{fmt(_status(t))}</td>"
            + "".join(f"<td>{fmt(t.params.get(n))}</td>" for n in names)
            + f"<td{cls}>{fmt(value)}</td><td class='num'>{fmt(t.user_attrs.get('val_loss'))}"
            f"</td><td class='num'>{fmt(t.user_attrs.get('epochs'))}</td>"
            f"<td>{_link(setup, t)}</td></tr>")
    table = f"<div class='scroll'><table>{head}{''.join(rows)}</table></div>" if rows else \
        '<p class="note">No trials yet.</p>'

    # set-up
    fixed = ", ".join(f"{k}={v}" for k, v in setup.overrides.items()) or "none"
    setup_html = (
        "<dl class='facts'>"
        + "".join(f"<div><dt>{html.escape(k)}</dt><dd>{fmt(v)}</dd></div>" for k, v in [
            ("study", setup.study_name), ("storage", redact(setup.storage)),
            ("metric", f"{metric} ({direction})"), ("trials wanted", setup.trials),
            ("sampler", f"TPE, seed {setup.seed}"),
            ("pruner", "none" if setup.pruner == "none" else
             f"median (after {setup.prune_startup} trials, {setup.prune_warmup} warm-up "
             "epochs)"),
        ])
        + "</dl><h3>Search space</h3><ul>"
        + "".join(f"<li><code>{fmt(p.spec)}</code></li>" for p in setup.params)
        + f"</ul><p>Fixed options: <code>{fmt(fixed)}</code></p>"
        + "<p class='note'>Running the same command again continues this study until it has "
        "the wanted number of finished (complete + pruned) trials; other machines join it with "
        "the same --storage and --study-name.</p>")

    failed = sum(1 for t in trials if t.state == TrialState.FAIL)
    subtitle = (f"{counts['complete']} complete, {counts['pruned']} pruned, {failed} failed, "
                f"{counts['running']} running of {setup.trials} wanted; metric {metric}")
    return page(f"Tuning study {setup.study_name}", subtitle, [
        ("best", "Best trial", best_html),
        ("history", "Optimisation history", history),
        ("importance", "Parameter importances", importance),
        ("parallel", "Parallel coordinates", parallel),
        ("epochs", "Validation loss per epoch", intermediate),
        ("trials", "Trials", table),
        ("setup", "Set-up", setup_html),
    ])


def write_tune_page(study: optuna.Study, setup: TuneSetup) -> Path:
    """Write ``tune.html`` into the tuning folder and return its path."""
    path = setup.out / "tune.html"
    atomic_write_text(path, render_tune_page(study, setup))
    return path
