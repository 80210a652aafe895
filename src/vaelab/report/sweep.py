"""Figures and the HTML page of a sweep: metrics against each swept option, and the runs'
reconstructions and samples side by side (one row per run, same test inputs and prior codes).

A sweep may grid over the data, likelihood or preprocessing; runs are then split into groups of
comparable runs (``report.compare.comparison_group``) and each group gets its own metric panels:
losses of different data never share an axis, and no figure plots a metric against an option
whose values only separate such groups.
"""

from __future__ import annotations

import html
import json
import math
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from vaelab.report.compare import comparison_group, group_members
from vaelab.report.style import fmt, page, png_data_url

METRIC_TITLES = {
    "neg_elbo": "negative ELBO (nats, lower better)",
    "neg_elbo_k": "negative ELBO, K samples (nats, lower better)",
    "iwae_nll": "IWAE NLL (nats, lower better)",
    "recon_nll": "reconstruction NLL (AE; lower better)",
    "recon": "reconstruction term (nats)",
    "kl": "KL (nats)",
    "recon_mse": "reconstruction MSE (lower better)",
    "active_units": "active latent units",
    "knn_accuracy": "latent kNN accuracy",
    "linear_probe_accuracy": "latent linear-probe accuracy",
    "frechet_distance": "Fréchet distance (lower better)",
}

NOTES = {
    "metrics": "Each panel is one test metric; the x axis the values of the swept option in the "
               "order given, one line per setting of the other swept options. Runs on different "
               "data, likelihoods or preprocessing get their own panels (titled with them): "
               "their losses are not comparable.",
    "reconstructions": "The same test inputs (top row) reconstructed by every run of the sweep, "
                       "one row each. Sharper rows mean a more informative code; a lower beta "
                       "or a wider latent usually sharpens them.",
    "samples": "Decoder means for the same prior codes z ~ N(0, I) in every run, one row each. "
               "Rows that look like data mean the latent space is filled without holes; a "
               "higher beta usually gives more plausible but blurrier samples.",
}


def run_groups(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The comparison group of each row's run (data · likelihood · preprocessing)."""
    out = []
    for r in rows:
        try:
            cfg = json.loads((root / str(r["run"]) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cfg = {}
        out.append(comparison_group(cfg if isinstance(cfg, dict) else {}))
    return out


def varies_within_groups(param: str, rows: list[dict[str, Any]], groups: list[str]) -> bool:
    """Whether ``param`` takes two or more values among the runs of some group."""
    return any(len({str(rows[i][param]) for i in idx}) > 1
               for idx in group_members(groups).values())


def metric_figure(param: str, values: list[str], grid: dict[str, list[str]],
                  rows: list[dict[str, Any]], metrics: list[str],
                  groups: list[str] | None = None) -> Any:
    """One panel per metric with the metric against ``param``; lines = other options' values.

    With two or more ``groups`` (labels aligned with ``rows``), each group gets its own block
    of panels, titled with its label.
    """
    from vaelab.plots.common import new_figure

    groups = groups if groups is not None else [""] * len(rows)
    members = group_members(groups)
    blocks = []  # (group label, its rows, the metrics it has)
    for label, idx in members.items():
        sub = [rows[i] for i in idx]
        have = [m for m in metrics if any(r.get(m) not in (None, "") for r in sub)]
        blocks.append((label, sub, have or metrics))
    ncols = min(4, max(len(b[2]) for b in blocks))
    nrows = sum(math.ceil(len(b[2]) / ncols) for b in blocks)
    fig = new_figure(3.4 * ncols, 2.7 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False))
    others = [p for p in grid if p != param]
    keys = list(dict.fromkeys(tuple(str(r[o]) for o in others) for r in rows))
    colours = {k: f"C{i % 10}" for i, k in enumerate(keys)}
    handles: dict[str, Any] = {}
    row0 = 0
    for label, sub, have in blocks:
        lines: dict[tuple, list[dict[str, Any]]] = {}
        for r in sub:
            lines.setdefault(tuple(str(r[o]) for o in others), []).append(r)
        used = math.ceil(len(have) / ncols)
        panel_axes = axes[row0 : row0 + used].ravel()
        row0 += used
        for ax, m in zip(panel_axes, have, strict=False):
            for key, members_ in lines.items():
                members_ = sorted(members_, key=lambda r: values.index(str(r[param])))
                xs = [values.index(str(r[param])) for r in members_]
                ys = [float(r[m]) if r.get(m) not in (None, "") else np.nan for r in members_]
                name = ", ".join(f"{o}={v}" for o, v in zip(others, key, strict=True)) or param
                (line,) = ax.plot(xs, ys, marker="o", label=name, color=colours[key])
                handles.setdefault(name, line)
            ax.set_xticks(range(len(values)), values, fontsize=8)
            ax.set_xlim(-0.3, len(values) - 0.7)
            ax.set_xlabel(param, fontsize=9)
            title = METRIC_TITLES.get(m, m)
            if len(members) > 1:
                title = f"{title}\n{textwrap.fill(label, 44)}"
            ax.set_title(title, fontsize=9.5 if len(members) == 1 else 8.5)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        for ax in panel_axes[len(have):]:
            ax.set_axis_off()
    fig.suptitle(f"test metrics against {param}", fontsize=12)
    if others:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(len(handles), 6), fontsize=8.5, frameon=False)
    return fig


def _label(row: dict[str, Any], grid: dict[str, list[str]]) -> str:
    return ", ".join(f"{p}={row[p]}" for p in grid)


def image_rows(root: Path, grid: dict[str, list[str]], rows: list[dict[str, Any]], kind: str,
               n: int = 10) -> Any | None:
    """Reconstructions of the same test inputs, or samples of the same prior codes, one row per
    run; None when the data are not images (then the runs' own figures are stacked instead)."""
    from vaelab.figures import display_range
    from vaelab.plots.common import new_figure, show_image, tile, unit_range
    from vaelab.run import Run

    strips: list[tuple[str, np.ndarray]] = []
    top: np.ndarray | None = None
    for r in rows:
        run = Run.load(root / r["run"])
        test = run.data.test
        if np.asarray(test.x[:1]).ndim != 4:
            return None
        lo, hi = display_range(run)
        pre = run.preprocessor
        if kind == "reconstructions":
            x = np.asarray(test.x[:n])
            y = test.y[:n] if test.y is not None else None
            if top is None:
                top = unit_range(pre.inverse(x), lo, hi)
            out = run.reconstruct(x, y)
        else:
            out = run.sample(n, seed=0)
        strips.append((_label(r, grid), unit_range(pre.inverse(out), lo, hi)))
    if not strips:
        return None
    panels = ([("test inputs", top)] if top is not None else []) + strips
    aspect = panels[0][1].shape[-1] / panels[0][1].shape[-2]
    fig = new_figure(0.9 * n * aspect + 0.4, 1.15 * len(panels) + 0.4)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, squeeze=False)[:, 0])
    for ax, (label, imgs) in zip(axes, panels, strict=True):
        show_image(ax, tile(imgs, ncols=n))
        ax.set_title(label, loc="left", fontsize=9, pad=3)
    fig.suptitle("reconstructions of the same test inputs" if kind == "reconstructions"
                 else "samples from the same prior codes", fontsize=11)
    return fig


def stacked_pngs(root: Path, rows: list[dict[str, Any]], kind: str) -> Any | None:
    """The runs' own ``figures/<kind>.png`` in a grid (fallback for non-image data)."""
    import matplotlib.image as mpimg

    from vaelab.plots.common import new_figure

    images = [(r["run"], root / r["run"] / "figures" / f"{kind}.png") for r in rows]
    images = [(name, p) for name, p in images if p.exists()]
    if not images:
        return None
    ncols = min(2, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig = new_figure(6 * ncols, 3.4 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (name, p) in zip(axes, images, strict=False):
        ax.imshow(mpimg.imread(p))
        ax.set_title(name, fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    return fig


def write_sweep_figures(root: Path, grid: dict[str, list[str]], rows: list[dict[str, Any]],
                        metrics: list[str]) -> list[Path]:
    """figures/metrics_vs_<option>.png and {reconstructions,samples}_side_by_side.png."""
    from vaelab.plots.common import close

    folder = root / "figures"
    folder.mkdir(exist_ok=True)
    written = []
    groups = run_groups(root, rows)
    several = len(set(groups)) > 1
    if metrics:
        for param, values in grid.items():
            if several and not varies_within_groups(param, rows, groups):
                # its values only separate incomparable runs (e.g. the dataset): no figure
                (folder / f"metrics_vs_{param}.png").unlink(missing_ok=True)
                continue
            fig = metric_figure(param, values, grid, rows, metrics, groups)
            path = folder / f"metrics_vs_{param}.png"
            fig.savefig(path, dpi=100)
            close(fig)
            written.append(path)
    for kind in ("reconstructions", "samples"):
        fig = image_rows(root, grid, rows, kind) or stacked_pngs(root, rows, kind)
        if fig is None:
            continue
        path = folder / f"{kind}_side_by_side.png"
        fig.savefig(path, dpi=100)
        close(fig)
        written.append(path)
    return written


def render_sweep(root: Path, grid: dict[str, list[str]], rows: list[dict[str, Any]],
                 cols: list[str]) -> str:
    """sweep.html: the comparison table, the sweep figures and a link to each run's report.

    When the runs fall into several comparison groups (data · likelihood · preprocessing), a
    "compared within" column names each run's group.
    """
    groups = run_groups(root, rows)
    several = len(set(groups)) > 1
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    head += "<th>compared within</th>" if several else ""
    body = []
    for r, group in zip(rows, groups, strict=True):
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "run":
                link = quote(f"{v}/report.html")
                cells.append(f'<td><a href="{link}">{html.escape(str(v))}</a></td>')
            else:
                cls = " class=num" if isinstance(v, (int, float)) else ""
                cells.append(f"<td{cls}>{fmt(v)}</td>")
        if several:
            cells.append(f"<td>{html.escape(group)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = (f"<div class=scroll><table><tr>{head}</tr>{''.join(body)}</table></div>"
             "<p class=note>One row per combination (comparison.csv / comparison.md hold the "
             "same); the run column links to each run's own report. "
             "<code>vaelab compare RUN...</code> puts chosen runs' figures side by side."
             + (" The runs use different data, likelihoods or preprocessing: compare losses "
                "only between rows with the same \"compared within\" value; the figures below "
                "give each such group its own panels and plot nothing against an option that "
                "only separates groups." if several else "") + "</p>")
    figs = []
    for p in sorted((root / "figures").glob("metrics_vs_*.png")):
        figs.append(f'<figure><img alt="{html.escape(p.stem)}" src="{png_data_url(p)}">'
                    f"<figcaption><b>{html.escape(p.stem.replace('_', ' '))}.</b> "
                    f"{html.escape(NOTES['metrics'])}</figcaption></figure>")
    side = []
    for kind in ("reconstructions", "samples"):
        p = root / "figures" / f"{kind}_side_by_side.png"
        if p.exists():
            side.append(f'<figure><img alt="{kind}" src="{png_data_url(p)}"><figcaption>'
                        f"<b>{kind.capitalize()}.</b> {html.escape(NOTES[kind])}</figcaption>"
                        "</figure>")
    grid_text = "; ".join(f"{k} = {', '.join(v)}" for k, v in grid.items())
    return page(f"vaelab sweep: {len(rows)} runs", f"{grid_text} · {root}", [
        ("table", "Comparison", table),
        ("metrics", "Metrics against each swept option", "".join(figs)),
        ("images", "Reconstructions and samples side by side", "".join(side)),
    ])
