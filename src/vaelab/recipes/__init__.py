"""The seed experiments as recipes: one TOML each, shipped with vaelab (copies in examples/).

A recipe is a config file whose optional ``[[runs]]`` tables name variants (flat overrides
plus ``name``); ``run_recipe`` trains the main config and every variant into sibling folders.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def available() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir()
                  if p.name.endswith(".toml"))


def recipe_path(name: str) -> Path:
    """A recipe by name (``003_pytorch_vae`` or a unique prefix such as ``003``) or a path."""
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return p
    matches = [n for n in available() if n == name or n.startswith(name)]
    if len(matches) != 1:
        raise ConfigError(f"unknown recipe '{name}'; choose one of {', '.join(available())}.")
    return Path(str(resources.files(__package__) / f"{matches[0]}.toml"))


def variants(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """[(name, flat overrides)] for the main run ("main") and each [[runs]] table."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    runs = raw.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"{path}: 'runs' must be [[runs]] tables of options.")
    out: list[tuple[str, dict[str, Any]]] = [("main", {})]
    for i, r in enumerate(runs):
        r = dict(r)
        name = str(r.pop("name", f"variant{i + 1}"))
        out.append((name, r))
    return out


def run_recipe(name: str, out: str | Path | None = None, *, force: bool = False,
               log=print, **overrides: Any) -> list[Any]:
    """Train every run of a recipe; ``overrides`` (e.g. epochs=1, subset=500) apply to all."""
    from vaelab.pipeline import train

    path = recipe_path(name)
    root = Path(out) if out else Path("runs") / path.stem
    runs = []
    for vname, extra in variants(path):
        target = root / vname
        if log:
            log(f"== {path.stem}: {vname} -> {target}")
        runs.append(train(path, force=force, log=log, **{**extra, **overrides,
                                                          "out": str(target)}))
    return runs
