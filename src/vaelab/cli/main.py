"""`vaelab` entry point: the command group, train, demo and the listing commands."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any

import click

from vaelab.cli.options import collect_overrides, config_options
from vaelab.errors import VaelabError


def _warm_worker() -> None:
    """Start vaelab's worker process before torch is imported, so its own imports (numpy,
    scikit-learn, matplotlib) run on the second core while this process imports torch and
    loads the data, not while it trains. Under torchrun only rank 0 starts one."""
    if os.environ.get("RANK", "0") == "0":
        from vaelab import worker

        worker.warm()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="vaelab")
def cli() -> None:
    """Train, evaluate and explore autoencoders and VAEs on tabular and image data."""


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file with [data], [model], [train] sections; flags override it.")
@click.option("--out", default=None, help="Run directory (default runs/<dataset>-<model>).")
@click.option("--force", is_flag=True,
              help="Replace an existing run directory (only once the new run has finished).")
@click.option("--resume", "resume", default=None, metavar="RUN",
              help="Continue an interrupted run from its last completed epoch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages.")
@config_options
def train(config_path: str | None, out: str | None, force: bool, resume: str | None,
          quiet: bool, **kwargs: Any) -> None:
    """Train a model and write its run directory (weights, history, metrics, figures, report)."""
    _warm_worker()
    from vaelab.pipeline import train as run_train

    overrides = collect_overrides(kwargs)
    if out is not None:
        overrides["out"] = out
    if quiet:
        overrides["progress"] = False
    run_train(config_path, force=force, resume=resume, log=None if quiet else click.echo,
              **overrides)


@cli.command()
@click.option("--out", default="runs/demo", show_default=True, help="Run directory.")
@click.option("--epochs", default=40, show_default=True, help="Training epochs.")
def demo(out: str, epochs: int) -> None:
    """Train a 2-D VAE on scikit-learn's Digits (under a minute on 2 CPU cores)."""
    _warm_worker()
    from vaelab.pipeline import train as run_train

    run = run_train(None, force=True, log=click.echo, dataset="digits", model="vae",
                    latent_dim=2, hidden=[256, 128], epochs=epochs, batch_size=64, lr=2e-3,
                    out=out)
    click.echo(f"done: open {Path(run.path, 'report.html').resolve()}")


@cli.command()
def options() -> None:
    """List every option (usable as --flag, in a TOML section, or in a sweep grid)."""
    from vaelab.cli.options import _doc
    from vaelab.config import option_index

    for name, (section, f) in option_index().items():
        default = f.default if f.default is not f.default_factory else None
        if callable(f.default_factory):  # type: ignore[arg-type]
            default = f.default_factory()  # type: ignore[misc]
        click.echo(f"[{section or 'top'}] {name} = {default!r}  {_doc(section, name)}")


@cli.command("models")
def list_models() -> None:
    """List the model families for --model."""
    from vaelab.models import DESCRIPTIONS

    for name, desc in sorted(DESCRIPTIONS.items()):
        click.echo(f"{name:12s} {desc}")


@cli.command("datasets")
def list_datasets() -> None:
    """List the named datasets for --dataset."""
    from vaelab.data.registry import DESCRIPTIONS

    for name, desc in sorted(DESCRIPTIONS.items()):
        click.echo(f"{name:14s} {desc}")


def _register_plugins() -> None:
    import vaelab.cli as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in ("main", "options"):
            continue
        mod = importlib.import_module(f"vaelab.cli.{info.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(cli)


_register_plugins()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors print one line and exit with status 2."""
    try:
        code = cli.main(args=argv, prog_name="vaelab", standalone_mode=False)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "vaelab"
        click.echo(f"vaelab: error: {exc.format_message()} (see `{cmd} --help`)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"vaelab: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except VaelabError as exc:
        click.echo(f"vaelab: error: {exc}", err=True)
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("vaelab: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        from vaelab.train.loop import Interrupted

        if not isinstance(exc, Interrupted):
            raise
        click.echo(f"vaelab: {exc}; the run directory is valid (run.json says so)", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``vaelab`` program (console script and ``python -m vaelab``): :func:`main`, and on
    success an exit that skips the interpreter's teardown.

    Every command has written and closed its files, trackers and run.json before it returns;
    what is left at exit is freeing torch, scikit-learn and matplotlib module by module, which
    took 0.7-1.5 s of a ``vaelab train`` on 2 cores. A failure exits the usual way.
    """
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)  # a worker process sees its pipe close and exits too
