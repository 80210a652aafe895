"""The seed experiments as recipes: one TOML each, shipped with vaelab.

The TOML files in this package are the source; ``examples/`` holds identical copies for
reading and for ``vaelab train --config examples/NAME.toml`` (tests/test_recipes.py keeps them
equal). A recipe is a normal config file whose optional ``[[runs]]`` tables name variants
(``name`` plus flat option overrides); ``run_recipe`` trains the main config and every variant
into sibling folders and, when there are several, writes ``compare.html`` beside them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError, DataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["available", "describe", "recipe_path", "run_recipe", "variants"]

MNIST_HINT = "; or run the recipe on --dataset mnist-5k or --dataset fashion-mnist instead"


def available() -> list[str]:
    """Names of the shipped recipes (file names without ``.toml``), sorted."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".toml"))


def recipe_path(name: str | Path) -> Path:
    """A recipe by name (``003_pytorch_vae`` or a unique prefix such as ``003``) or a path."""
    p = Path(name)
    if p.suffix == ".toml":
        if not p.exists():
            raise ConfigError(f"recipe file {p} does not exist; give a path to a TOML file or "
                              f"one of {', '.join(available())}.")
        return p
    matches = [n for n in available() if n == str(name)] or \
        [n for n in available() if n.startswith(str(name))]
    if len(matches) != 1:
        raise ConfigError(f"unknown recipe '{name}'; choose one of {', '.join(available())} "
                          "(a unique prefix such as 003 is enough).")
    return Path(str(resources.files(__package__) / f"{matches[0]}.toml"))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"recipe {path} cannot be read ({exc.strerror}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}.") from None


def variants(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """[(name, flat overrides)] for the main run ("main") and each [[runs]] table."""
    runs = _read(path).get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"{path}: 'runs' must be [[runs]] tables of options.")
    out: list[tuple[str, dict[str, Any]]] = [("main", {})]
    for i, r in enumerate(runs):
        r = dict(r)
        name = str(r.pop("name", f"variant{i + 1}"))
        if name in {n for n, _ in out}:
            raise ConfigError(f"{path}: two runs are named '{name}'; give each [[runs]] table "
                              "its own name.")
        out.append((name, r))
    return out


def describe(path: Path) -> str:
    """The recipe's first comment line (what it is), without the ``#``."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def run_recipe(name: str | Path, out: str | Path | None = None, *, force: bool = False,
               only: list[str] | None = None, log: Callable[[str], None] | None = print,
               **overrides: Any) -> list[Any]:
    """Train every run of a recipe and return the finished :class:`vaelab.Run` objects.

    ``name`` is a shipped recipe (``"004"`` or ``"004_autoencoders"``) or a TOML path; runs go
    to ``out/<variant>`` (default ``runs/<recipe>/<variant>``); ``only`` picks variants by
    name; ``overrides`` (flat option names such as ``epochs=1, subset=500,
    dataset="fashion-mnist"``) apply to every run.
    """
    from vaelab.pipeline import train

    path = recipe_path(name)
    root = Path(out) if out else Path("runs") / path.stem
    todo = variants(path)
    if only:
        unknown = sorted(set(only) - {n for n, _ in todo})
        if unknown:
            raise ConfigError(f"recipe {path.stem} has no run named {', '.join(unknown)}; it "
                              f"has {', '.join(n for n, _ in todo)}.")
        todo = [(n, o) for n, o in todo if n in only]
    main_dataset = _read(path).get("data", {}).get("dataset")
    runs = []
    for vname, extra in todo:
        target = root / vname
        if log:
            log(f"== {path.stem}: {vname} -> {target}")
        settings = {**extra, **overrides, "out": str(target)}
        try:
            runs.append(train(path, force=force, log=log, **settings))
        except DataError as exc:
            if settings.get("dataset", main_dataset) == "mnist" and "mnist-5k" not in str(exc):
                raise DataError(f"{exc}".rstrip(".") + MNIST_HINT + ".") from None
            raise
    if len(runs) > 1:
        from vaelab.report.compare import write_compare

        page = write_compare([r.path for r in runs], root / "compare.html")
        if log:
            log(f"comparison of the {len(runs)} runs: {page}")
    return runs
