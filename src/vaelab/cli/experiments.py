"""Recipes, sweeps and reports: run-recipe, recipes, sweep, report, compare."""

from __future__ import annotations

from typing import Any

import click

from vaelab.cli.options import collect_overrides, config_options


def register(group: click.Group) -> None:
    @group.command("recipes")
    def list_recipes() -> None:
        """List the seed experiments shipped as recipes."""
        from vaelab.recipes import available, recipe_path, variants

        for name in available():
            runs = [v for v, _ in variants(recipe_path(name))]
            click.echo(f"{name:26s} runs: {', '.join(runs)}")

    @group.command("run-recipe")
    @click.argument("name")
    @click.option("--out", default=None, help="Folder for the recipe's runs (runs/NAME).")
    @click.option("--force", is_flag=True, help="Replace existing runs.")
    @click.option("--quiet", "-q", is_flag=True)
    @config_options
    def run_recipe_cmd(name: str, out: str | None, force: bool, quiet: bool,
                       **kwargs: Any) -> None:
        """Run a seed experiment (every run it holds); flags override all its runs."""
        from vaelab.recipes import run_recipe

        overrides = collect_overrides(kwargs)
        if quiet:
            overrides["progress"] = False
        runs = run_recipe(name, out, force=force, log=None if quiet else click.echo,
                          **overrides)
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
    @config_options
    def sweep_cmd(config_path: str | None, grids: tuple[str, ...], jobs: int, out: str,
                  force: bool, **kwargs: Any) -> None:
        """Train every combination of the grid and write a comparison table and figures."""
        from vaelab.sweep import sweep

        if jobs < 1:
            raise click.BadParameter("must be at least 1", param_hint="--jobs")
        sweep(config_path, list(grids), out=out, jobs=jobs, force=force, log=click.echo,
              **collect_overrides(kwargs))

    @group.command("report")
    @click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
    def report_cmd(run_dir: str) -> None:
        """(Re)write RUN/report.html: one self-contained file."""
        from pathlib import Path

        from vaelab.report import write_report
        from vaelab.run import check_run_dir

        check_run_dir(Path(run_dir))
        click.echo(f"wrote {write_report(run_dir)}")

    @group.command("compare")
    @click.argument("run_dirs", nargs=-1, required=True, metavar="RUN...")
    @click.option("--out", default="compare.html", show_default=True)
    def compare_cmd(run_dirs: tuple[str, ...], out: str) -> None:
        """One HTML report across runs: settings, metrics and figures side by side."""
        from vaelab.report.compare import write_compare

        click.echo(f"wrote {write_compare(list(run_dirs), out)}")
