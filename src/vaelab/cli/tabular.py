"""Table verbs over a run trained on a CSV: score (anomaly scores) and impute (fill gaps).
``vaelab sample RUN --out rows.csv`` (in analysis.py) writes synthetic rows."""

from __future__ import annotations

from pathlib import Path

import click

RUN = click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
DATA = click.option("--data", "data", required=True, type=click.Path(dir_okay=False),
                    help="The table to read (same columns as the run's; others are ignored).")


def _open(run_dir: str):
    from vaelab.run import Run, check_run_dir

    check_run_dir(Path(run_dir))
    return Run.load(run_dir)


def _check_out(out: str, data: str) -> Path:
    path = Path(out)
    if path.resolve() == Path(data).resolve():
        raise click.BadParameter("must not be the input file (it would be overwritten)",
                                 param_hint="--out")
    return path


def register(group: click.Group) -> None:
    @group.command()
    @RUN
    @DATA
    @click.option("--out", required=True, help="CSV of scores, one row per input row.")
    @click.option("--label-column", default=None,
                  help="Column marking the anomalies: ROC-AUC and average precision are printed.")
    @click.option("--anomaly-label", default=None,
                  help="Value of --label-column that marks an anomaly (default: 1 / true / yes / "
                       "anomaly when the column holds two values).")
    @click.option("-k", "--iwae-k", "k", default=100, show_default=True,
                  help="Importance samples per row (variational models).")
    @click.option("--seed", default=0, show_default=True)
    def score(run_dir: str, data: str, out: str, label_column: str | None,
              anomaly_label: str | None, k: int, seed: int) -> None:
        """One anomaly score per row of a table (higher = more unusual), with each column's
        part; ROC-AUC / average precision when a label column marks the anomalies."""
        from vaelab.tabular.score import score as run_score
        from vaelab.tabular.score import write_scores

        if k < 0:
            raise click.BadParameter("must be 0 or more", param_hint="--iwae-k")
        path = _check_out(out, data)
        res = run_score(_open(run_dir), data, k=k, seed=seed, label_column=label_column,
                        anomaly_label=anomaly_label)
        for w in res.warnings:
            click.echo(f"warning: {w}", err=True)
        write_scores(res, path)
        top = res.columns.mean(0)
        worst = ", ".join(f"{res.column_names[j]} {top[j]:.2f}" for j in top.argsort()[::-1][:3])
        click.echo(f"scored {len(res.score)} rows ({res.method}, nats): median "
                   f"{float(sorted(res.score)[len(res.score) // 2]):.3f}, max "
                   f"{float(res.score.max()):.3f}; largest mean column parts: {worst}")
        m = res.metrics
        if "roc_auc" in m:
            click.echo(f"anomalies marked by {label_column}: {m['anomalies']} of {m['n']}; "
                       f"ROC-AUC {m['roc_auc']:.4f}, average precision "
                       f"{m['average_precision']:.4f}")
        elif m:
            click.echo(f"{label_column} marks {m['anomalies']} of {m['n']} rows as anomalies; "
                       "ROC-AUC needs both kinds")
        click.echo(f"wrote {path}")

    @group.command()
    @RUN
    @DATA
    @click.option("--out", required=True, help="The completed table (CSV, the input's dialect).")
    @click.option("--samples", default=1, show_default=True,
                  help="Completed tables to draw (multiple imputation); more than 1 writes one "
                       "long table with a first column 'imputation'.")
    @click.option("-k", "--iwae-k", "k", default=100, show_default=True,
                  help="Posterior draws per row.")
    @click.option("--seed", default=0, show_default=True)
    def impute(run_dir: str, data: str, out: str, samples: int, k: int, seed: int) -> None:
        """Fill the missing cells of a table from the model's posterior."""
        from vaelab.tabular.impute import impute as run_impute
        from vaelab.tabular.impute import write_filled

        if not 1 <= samples <= 1000:
            raise click.BadParameter("must be between 1 and 1000", param_hint="--samples")
        if k < 1:
            raise click.BadParameter("must be at least 1", param_hint="--iwae-k")
        path = _check_out(out, data)
        run = _open(run_dir)
        table, filled, info = run_impute(run, data, samples=samples, k=k, seed=seed)
        for w in info["warnings"]:
            click.echo(f"warning: {w}", err=True)
        write_filled(run, table, filled, path)
        cols = ", ".join(f"{n} {c}" for n, c in info["per_column"].items() if c)
        click.echo(f"filled {info['missing']} missing cells in {info['rows']} rows"
                   + (f" ({cols})" if cols else "") +
                   (f", {samples} imputations" if samples > 1 else ""))
        click.echo(f"wrote {path}")
