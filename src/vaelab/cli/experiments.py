"""Recipes, sweeps and reports: run-recipe, recipes, sweep, report, compare."""

from __future__ import annotations

from typing import Any

import click

from vaelab.cli.options import collect_overrides, config_options


def register(group: click.Group) -> None:
    @group.command("recipes")
    def list_recipes() -> None:
        """List the seed experiments shipped as recipes."""
        from vaelab.recipes import available, describe, recipe_path, variants

        for name in available():
            path = recipe_path(name)
            runs = [v for v, _ in variants(path)]
            click.echo(f"{name:26s} {describe(path)}")
            click.echo(f"{'':26s} runs: {', '.join(runs)}")

    @group.command("run-recipe")
    @click.argument("recipe", metavar="NAME")
    @click.option("--out", default=None, help="Folder for the recipe's runs (runs/NAME).")
    @click.option("--force", is_flag=True, help="Replace existing runs.")
    @click.option("--only", multiple=True, metavar="RUN",
                  help="Train only this run of the recipe (repeat for more; see `vaelab "
                       "recipes`).")
    @click.option("--quiet", "-q", is_flag=True)
    @config_options
    def run_recipe_cmd(recipe: str, out: str | None, force: bool, only: tuple[str, ...],
                       quiet: bool, **kwargs: Any) -> None:
        """Run a seed experiment NAME (e.g. 003 or 003_pytorch_vae): every run it holds.

        Flags override all its runs, e.g. --epochs 1 --subset 500 for a quick look, or
        --dataset fashion-mnist / mnist-5k where MNIST cannot be downloaded.
        """
        from vaelab.recipes import run_recipe

        overrides = collect_overrides(kwargs)
        if quiet:
            overrides["progress"] = False
        runs = run_recipe(recipe, out, force=force, only=list(only) or None,
                          log=None if quiet else click.echo, **overrides)
        for r in runs:
            click.echo(f"report: {r.path / 'report.html'}")

    @group.command("sweep")
    @click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                  help="Base TOML config.")
    @click.option("--grid", "grids", multiple=True, required=True,
                  help="name=v1,v2,... (repeat for more options; ';' separates list values).")
    @click.option("--jobs", default=1, show_default=True, help="Runs trained in parallel.")
    @click.option("--out", default="runs/sweep", show_default=True)
    @click.option("--force", is_flag=True, help="Retrain combinations already done.")
    @click.option("--quiet", "-q", is_flag=True)
    @config_options
    def sweep_cmd(config_path: str | None, grids: tuple[str, ...], jobs: int, out: str,
                  force: bool, quiet: bool, **kwargs: Any) -> None:
        """Train every combination of the grid and write a comparison table and figures.

        Example: vaelab sweep --config base.toml --grid beta=0,0.25,1,2 --grid
        latent_dim=2,8,32 --jobs 2. Results: OUT/comparison.csv, comparison.md, figures/,
        sweep.html and one run directory per combination.
        """
        from vaelab.sweep import sweep

        if jobs < 1:
            raise click.BadParameter("must be at least 1", param_hint="--jobs")
        root = sweep(config_path, list(grids), out=out, jobs=jobs, force=force,
                     log=None if quiet else click.echo, **collect_overrides(kwargs))
        click.echo(f"sweep page: {root / 'sweep.html'}")

    @group.command("report")
    @click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
    def report_cmd(run_dir: str) -> None:
        """(Re)write RUN/report.html: one self-contained file."""
        from pathlib import Path

        from vaelab.report import write_report
        from vaelab.run import check_run_dir
        from vaelab.status import redo_step

        check_run_dir(Path(run_dir))
        with redo_step(Path(run_dir), "report"):
            path = write_report(run_dir)
        click.echo(f"wrote {path}")

    @group.command("compare")
    @click.argument("run_dirs", nargs=-1, required=True, metavar="RUN...")
    @click.option("--out", default="compare.html", show_default=True)
    def compare_cmd(run_dirs: tuple[str, ...], out: str) -> None:
        """One HTML report across runs: settings, metrics and figures side by side."""
        from vaelab.report.compare import write_compare

        click.echo(f"wrote {write_compare(list(run_dirs), out)}")
