"""Grid sweeps: train every combination of option values, then compare the runs.

``--grid beta=0,0.25,1,2`` separates values with commas; for list-valued options use ``;``
between values (``--grid "hidden=128;512,256,128"``). Each combination trains into its own run
directory under the sweep folder; then ``comparison.csv`` / ``comparison.md`` hold one row per
run and ``figures/`` one plot per (metric, parameter) plus side-by-side reconstructions and
samples.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.config import Config, apply_overrides, option_index
from vaelab.errors import ConfigError
from vaelab.modelio import atomic_write_text

METRICS = ["neg_elbo", "recon_nll", "iwae_nll", "recon", "kl", "recon_mse", "active_units",
           "knn_accuracy", "linear_probe_accuracy", "frechet_distance"]


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
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
        sep = ";" if ";" in values else ","
        vals = [v.strip() for v in values.split(sep) if v.strip()]
        if not vals:
            raise ConfigError(f"--grid {name} has no values.")
        grid[name] = vals
    return grid


def combo_name(combo: dict[str, str]) -> str:
    return "_".join(f"{k}={v.replace(',', '-')}" for k, v in combo.items()).replace("/", "over")


def _train_one(args: tuple[str | None, dict[str, Any], str, int, bool]) -> str:
    config, overrides, out, threads, force = args
    import torch

    from vaelab.pipeline import train

    if threads:
        torch.set_num_threads(threads)
    train(config, force=force, log=None, **{**overrides, "out": out, "progress": False})
    return out


def sweep(config: str | Path | None, grid: dict[str, list[str]] | list[str], *,
          out: str | Path = "runs/sweep", jobs: int = 1, force: bool = False, log=print,
          **overrides: Any) -> Path:
    """Train every combination of ``grid`` on top of ``config`` and write the comparison."""
    if isinstance(grid, list):
        grid = parse_grid(grid)
    root = Path(out)
    base = Config.from_toml(config) if config else Config()
    combos = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]
    for combo in combos:  # validate every combination before training any
        apply_overrides(base, {**overrides, **combo}, source="--grid")
    root.mkdir(parents=True, exist_ok=True)
    tasks = []
    for combo in combos:
        target = root / combo_name(combo)
        done = (target / "metrics.json").exists()
        if done and not force:
            if log:
                log(f"skip {target} (already trained; --force retrains)")
            continue
        tasks.append((str(config) if config else None, {**overrides, **combo}, str(target),
                      0, force or target.exists()))
    if log:
        log(f"sweep: {len(combos)} combinations, {len(tasks)} to train, {jobs} job(s) -> {root}")
    if jobs > 1 and len(tasks) > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        tasks = [(c, o, t, threads, f) for c, o, t, _, f in tasks]
        import multiprocessing as mp

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
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
        log(f"comparison: {root / 'comparison.md'}")
    return root


def collect(root: Path, grid: dict[str, list[str]], combos: list[dict[str, str]]
            ) -> list[dict[str, Any]]:
    rows = []
    for combo in combos:
        path = root / combo_name(combo)
        metrics = json.loads((path / "metrics.json").read_text()).get("test", {})
        row: dict[str, Any] = {**combo, "run": path.name}
        row.update({m: metrics.get(m) for m in METRICS if m in metrics})
        rows.append(row)
    return rows


def write_comparison(root: Path, grid: dict[str, list[str]], combos: list[dict[str, str]]
                     ) -> list[dict[str, Any]]:
    rows = collect(root, grid, combos)
    cols = list(grid) + [m for m in METRICS if any(m in r for r in rows)] + ["run"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(root / "comparison.csv", buf.getvalue())

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    md = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    md += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    atomic_write_text(root / "comparison.md", "\n".join(md) + "\n")
    sweep_figures(root, grid, rows, cols)
    return rows


def sweep_figures(root: Path, grid: dict[str, list[str]], rows: list[dict[str, Any]],
                  cols: list[str]) -> None:
    import matplotlib.image as mpimg

    from vaelab.plots.common import new_figure

    folder = root / "figures"
    folder.mkdir(exist_ok=True)
    metrics = [c for c in cols if c in METRICS]
    for param in grid:
        others = [p for p in grid if p != param]
        fig = new_figure(3.6 * len(metrics), 3.2)
        axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r[o] for o in others), []).append(r)
        for ax, m in zip(axes, metrics, strict=True):
            for key, members in groups.items():
                xs = [grid[param].index(r[param]) for r in members]
                ys = [r.get(m) if r.get(m) is not None else np.nan for r in members]
                label = ", ".join(f"{o}={v}" for o, v in zip(others, key, strict=True)) or None
                ax.plot(xs, ys, marker="o", label=label)
            ax.set_xticks(range(len(grid[param])), grid[param], fontsize=8)
            ax.set_xlabel(param)
            ax.set_title(m, fontsize=10)
            ax.grid(alpha=0.3)
        if others:
            axes[0].legend(fontsize=7)
        fig.savefig(folder / f"metrics_vs_{param}.png", dpi=100)
    for kind in ("reconstructions", "samples"):
        images = [(r["run"], root / r["run"] / "figures" / f"{kind}.png") for r in rows]
        images = [(n, p) for n, p in images if p.exists()]
        if not images:
            continue
        fig = new_figure(9, 1.9 * len(images))
        axes = np.atleast_1d(fig.subplots(len(images), 1, squeeze=False)[:, 0])
        for ax, (name, p) in zip(axes, images, strict=True):
            ax.imshow(mpimg.imread(p))
            ax.set_axis_off()
            ax.set_title(name, fontsize=9)
        fig.savefig(folder / f"{kind}_side_by_side.png", dpi=100)
