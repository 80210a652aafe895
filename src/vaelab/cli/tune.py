"""`vaelab tune`: hyper-parameter search with Optuna (vaelab.tune)."""

from __future__ import annotations

from typing import Any

import click

from vaelab.cli.options import collect_overrides, config_options


def register(group: click.Group) -> None:
    @group.command("tune")
    @click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                  help="Base TOML config; flags override it.")
    @click.option("--search", "search", multiple=True, required=True, metavar="SPEC",
                  help="name=loguniform(a,b) | uniform(a,b) | int(a,b[,log]) | "
                       "choice(v1,v2,...) (repeat for more options).")
    @click.option("--trials", default=20, show_default=True,
                  help="Finished (complete + pruned) trials the study should hold in total.")
    @click.option("--metric", default="val_loss", show_default=True,
                  help="val_loss (best validation loss) or a test metric of metrics.json "
                       "(neg_elbo, iwae_nll, knn_accuracy, ...).")
    @click.option("--direction", type=click.Choice(["minimize", "maximize"]), default=None,
                  help="Override the metric's direction (losses minimised, accuracies "
                       "maximised).")
    @click.option("--out", default="runs/tune", show_default=True,
                  help="Folder for the trials' run directories, tune.db and tune.html.")
    @click.option("--storage", default=None, metavar="URL",
                  help="Optuna storage URL (default sqlite:///OUT/tune.db); a shared "
                       "postgresql://... lets several machines tune one study.")
    @click.option("--study-name", default=None, help="Study name (default: the name of OUT).")
    @click.option("--pruner", type=click.Choice(["median", "none"]), default="median",
                  show_default=True, help="Stop trials whose validation loss is worse than "
                                          "the median of earlier trials at the same epoch.")
    @click.option("--prune-startup", default=5, show_default=True,
                  help="Trials that finish before any trial is pruned.")
    @click.option("--prune-warmup", default=0, show_default=True,
                  help="Epochs of every trial that are never pruned.")
    @click.option("--jobs", default=1, show_default=True,
                  help="Worker processes on this machine (sharing the storage).")
    @click.option("--quiet", "-q", is_flag=True)
    @config_options
    def tune_cmd(config_path: str | None, search: tuple[str, ...], trials: int, metric: str,
                 direction: str | None, out: str, storage: str | None, study_name: str | None,
                 pruner: str, prune_startup: int, prune_warmup: int, jobs: int, quiet: bool,
                 **kwargs: Any) -> None:
        """Tune options with Optuna: TPE sampling, pruning, one run directory per trial.

        Example: vaelab tune --config base.toml --search "beta=loguniform(0.1,4)" --search
        "latent_dim=int(2,64)" --trials 50 --metric val_loss. Running the same command again
        continues the study; --seed seeds the sampler and every trial's training. Results:
        OUT/trial-NNNN/ per trial, OUT/tune.db, OUT/tune.html and the best trial's report.
        """
        from vaelab.tune import tune

        result = tune(config_path, list(search), trials=trials, metric=metric,
                      direction=direction, out=out, storage=storage, study_name=study_name,
                      pruner=pruner, prune_startup=prune_startup, prune_warmup=prune_warmup,
                      jobs=jobs, log=None if quiet else click.echo, **collect_overrides(kwargs))
        if quiet:
            if result.best_run is not None:
                click.echo(f"best run: {result.best_run}")
            click.echo(f"tuning page: {result.page}")
