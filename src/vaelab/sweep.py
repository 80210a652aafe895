"""Grid sweeps: train every combination of option values, then compare the runs.

``--grid beta=0,0.25,1,2`` separates values with commas; for list-valued options use ``;``
between values (``--grid "hidden=128;512,256,128"``). Each combination trains into its own run
directory under the sweep folder (finished ones are kept unless ``force``); then
``comparison.csv`` / ``comparison.md`` hold one row per run, ``figures/`` one panel grid per
swept option (each metric against it) plus the runs' reconstructions and samples side by side,
and ``sweep.html`` all of it in one self-contained page.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing as mp
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from vaelab.config import Config, apply_overrides, option_index
from vaelab.errors import ConfigError
from vaelab.modelio import atomic_write_text

METRICS = ["neg_elbo", "neg_elbo_k", "iwae_nll", "recon_nll", "recon", "kl",
           "recon_mse", "active_units",
           "knn_accuracy", "linear_probe_accuracy", "frechet_distance"]

Grid = Mapping[str, Sequence[Any]] | Sequence[str]


def _text(value: Any) -> str:
    """A grid value as typed on the command line (lists comma-joined)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """["beta=0,1", "hidden=64;128,64"] -> {"beta": ["0", "1"], "hidden": ["64", "128,64"]}."""
    grid: dict[str, list[str]] = {}
    index = option_index()
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(f"--grid '{spec}' needs the form name=v1,v2 (e.g. beta=0,1,2).")
        name, values = spec.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in index:
            raise ConfigError(f"--grid names unknown option '{name}' (see `vaelab options`).")
        if name in grid:
            raise ConfigError(f"--grid gives option '{name}' twice; list all its values in one "
                              "--grid.")
        sep = ";" if ";" in values else ","
        vals = [v.strip() for v in values.split(sep) if v.strip()]
        if not vals:
            raise ConfigError(f"--grid {name} has no values; give them as {name}=v1,v2.")
        grid[name] = vals
    return grid


def normalise_grid(grid: Grid) -> dict[str, list[str]]:
    """A grid from ``--grid`` strings or a ``{option: [values]}`` mapping, as text values."""
    if isinstance(grid, str):
        grid = [grid]
    if not isinstance(grid, Mapping):
        return parse_grid(list(grid))
    index = option_index()
    out: dict[str, list[str]] = {}
    for name, values in grid.items():
        key = name.replace("-", "_")
        if key not in index:
            raise ConfigError(f"the sweep grid names unknown option '{name}' (see "
                              "`vaelab options`).")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"the sweep grid's '{name}' must be a non-empty list of values.")
        out[key] = [_text(v) for v in values]
    return out


def combo_name(combo: Mapping[str, str]) -> str:
    """Folder name of one combination: ``beta=0.25_latent_dim=8``."""
    return "_".join(f"{k}={v.replace(',', '-').replace(' ', '')}"
                    for k, v in combo.items()).replace("/", "over")


def _train_one(task: tuple[str | None, dict[str, Any], str, bool]) -> str:
    config, overrides, out, force = task
    from vaelab.pipeline import train

    train(config, force=force, log=None, **{**overrides, "out": out, "progress": False})
    return out


def threads_per_job(jobs: int) -> int:
    """CPU threads each of ``jobs`` parallel trainings gets (all cores shared, at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // jobs)


def sweep(config: str | Path | None, grid: Grid, *, out: str | Path = "runs/sweep",
          jobs: int = 1, force: bool = False, log: Callable[[str], None] | None = print,
          **overrides: Any) -> Path:
    """Train every combination of ``grid`` on top of ``config`` and write the comparison.

    ``grid`` is ``{"beta": [0, 1], "latent_dim": [2, 8]}`` or ``["beta=0,1", "latent_dim=2,8"]``;
    ``overrides`` (flat option names, e.g. ``epochs=5``) apply to every run. With ``jobs > 1``
    that many processes train at once, each with its share of the CPU threads (unless
    ``threads`` is given). Returns the sweep folder: one run directory per combination,
    comparison.csv, comparison.md, figures/ and sweep.html.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}.")
    grid = normalise_grid(grid)
    clash = sorted(set(grid) & {k.replace("-", "_") for k in overrides})
    if clash:
        raise ConfigError(f"option(s) {', '.join(clash)} are both swept and fixed; drop the "
                          "fixed value or the --grid.")
    root = Path(out)
    base = Config.from_toml(config) if config else Config()
    combos = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]
    for combo in combos:  # validate every combination before training any
        apply_overrides(base, {**overrides, **combo}, source="--grid")
    root.mkdir(parents=True, exist_ok=True)
    if jobs > 1 and "threads" not in overrides:
        overrides = {**overrides, "threads": threads_per_job(jobs)}
    tasks = []
    for combo in combos:
        target = root / combo_name(combo)
        if (target / "metrics.json").exists() and not force:
            if log:
                log(f"skip {target} (already trained; --force retrains)")
            continue
        tasks.append((str(config) if config else None, {**overrides, **combo}, str(target),
                      force or target.exists()))
    if log:
        log(f"sweep: {len(combos)} combinations, {len(tasks)} to train, {jobs} job(s) -> {root}")
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(min(jobs, len(tasks)),
                                 mp_context=mp.get_context("spawn")) as pool:
            for path in pool.map(_train_one, tasks):
                if log:
                    log(f"done {path}")
    else:
        for task in tasks:
            _train_one(task)
            if log:
                log(f"done {task[2]}")
    write_comparison(root, grid, combos)
    if log:
        log(f"comparison: {root / 'comparison.md'}, {root / 'sweep.html'}")
    return root


def collect(root: Path, combos: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One row per combination: its option values, its test metrics and its folder name."""
    rows = []
    for combo in combos:
        path = root / combo_name(combo)
        try:
            metrics = json.loads((path / "metrics.json").read_text()).get("test", {})
        except (OSError, ValueError):
            metrics = {}
        row: dict[str, Any] = {**combo}
        row.update({m: metrics[m] for m in METRICS if m in metrics})
        row["run"] = path.name
        rows.append(row)
    return rows


def write_comparison(root: Path, grid: dict[str, list[str]], combos: list[dict[str, str]]
                     ) -> list[dict[str, Any]]:
    """comparison.csv, comparison.md, figures/ and sweep.html of the sweep in ``root``."""
    from vaelab.report.sweep import render_sweep, write_sweep_figures

    rows = collect(root, combos)
    metrics = [m for m in METRICS if any(m in r for r in rows)]
    cols = [*grid, *metrics, "run"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(root / "comparison.csv", buf.getvalue())

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    md = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    md += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    atomic_write_text(root / "comparison.md", "\n".join(md) + "\n")
    write_sweep_figures(root, grid, rows, metrics)
    atomic_write_text(root / "sweep.html", render_sweep(root, grid, rows, cols))
    return rows
