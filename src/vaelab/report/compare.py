"""One self-contained HTML page comparing runs: settings, metrics, curves and figures side by side.

Settings that differ between the runs are listed first and marked. Losses are comparable only
between runs on the same data, likelihood and preprocessing (``comparison_group``): in the
metrics table the best run of each metric whose direction is known is in bold green among the
runs of its group only, and each group's training curves get their own plot. Each figure of the
runs' ``figures/`` folders is shown in a row, one per run, under its title and how-to-read note.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from vaelab.errors import RunDirError
from vaelab.modelio import atomic_write_text
from vaelab.report.style import figure_png, fmt, page, png_data_url

KEY_SETTINGS = [("data", "dataset"), ("model", "model"), ("model", "latent_dim"),
                ("model", "hidden"), ("model", "beta"), ("train", "epochs")]
LOWER_IS_BETTER = {"neg_elbo", "neg_elbo_k", "iwae_nll", "recon_nll", "recon", "recon_mse",
                   "frechet_distance"}
HIGHER_IS_BETTER = {"knn_accuracy", "linear_probe_accuracy", "silhouette", "explained_variance",
                    "binary_accuracy"}
IGNORED = {"progress", "device", "threads", "out"}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def comparison_group(config: dict[str, Any]) -> str:
    """The label of the runs whose losses are comparable with this one's: its data (dataset
    name or data path), resolved likelihood and preprocessing, e.g. "iris · gaussian
    likelihood · standardize preprocessing". Read from a run's config.json."""
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    info = config.get("data_info") if isinstance(config.get("data_info"), dict) else {}
    resolved = config.get("resolved") if isinstance(config.get("resolved"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    source = data.get("data") or data.get("dataset") or info.get("source") or "unknown data"
    lik = resolved.get("likelihood") or model.get("likelihood") or "unknown"
    pre = info.get("preprocessing") or config.get("preprocessing")
    kind = pre.get("kind") if isinstance(pre, dict) else None
    kind = kind or (data.get("preprocess") if data.get("preprocess") != "auto" else None)
    parts = [str(source), f"{lik} likelihood"] + ([f"{kind} preprocessing"] if kind else [])
    return " · ".join(parts)


def group_members(groups: list[str]) -> dict[str, list[int]]:
    """Group label -> indexes of its runs, in order of first appearance."""
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return members


def labels(runs: list[Path]) -> list[str]:
    """Short unique names: the folder name, with parents added until the names differ."""
    depth = 1
    while depth < 6:
        names = ["/".join(r.resolve().parts[-depth:]) for r in runs]
        if len(set(names)) == len(names):
            return names
        depth += 1
    return [f"{i + 1}: {n}" for i, n in enumerate(names)]


def settings_table(cfgs: list[dict[str, Any]], names: list[str]) -> str:
    keys: list[tuple[str, str]] = list(KEY_SETTINGS)
    for sec in ("data", "model", "train"):
        for k in dict.fromkeys(k for c in cfgs for k in c.get(sec, {})):
            if k in IGNORED or (sec, k) in keys:
                continue
            if len({json.dumps(c.get(sec, {}).get(k)) for c in cfgs}) > 1:
                keys.append((sec, k))
    rows = []
    for sec, key in sorted(keys, key=lambda sk: _differs(cfgs, sk) is False):
        values = [c.get(sec, {}).get(key) for c in cfgs]
        mark = " class=diff" if _differs(cfgs, (sec, key)) else ""
        cells = "".join(f"<td>{fmt(v)}</td>" for v in values)
        rows.append(f"<tr{mark}><td>{html.escape(key)}</td>{cells}</tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    return (f"<div class=scroll><table><tr><th>option</th>{head}</tr>{''.join(rows)}</table>"
            "</div><p class=note>Marked rows differ between the runs; other options are equal "
            "(see each run's report.html for all of them).</p>")


def _differs(cfgs: list[dict[str, Any]], sk: tuple[str, str]) -> bool:
    return len({json.dumps(c.get(sk[0], {}).get(sk[1])) for c in cfgs}) > 1


def best_flags(vals: list[float | None], key: str, groups: list[str]) -> list[bool]:
    """Which values are the best of their group (ties all marked); none for a metric without
    a direction or a group with fewer than two values."""
    flags = [False] * len(vals)
    if key not in LOWER_IS_BETTER and key not in HIGHER_IS_BETTER:
        return flags
    pick = min if key in LOWER_IS_BETTER else max
    for idx in group_members(groups).values():
        present = [vals[i] for i in idx if vals[i] is not None]
        if len(present) < 2:
            continue
        best = pick(present)
        for i in idx:
            flags[i] = vals[i] is not None and vals[i] == best
    return flags


def metrics_table(mets: list[dict[str, Any]], names: list[str],
                  groups: list[str] | None = None) -> str:
    """Every numeric test metric per run; the best is marked only within a ``groups`` label
    (default: one group)."""
    groups = groups if groups is not None else [""] * len(mets)
    keys = [k for k in dict.fromkeys(k for m in mets for k in m)
            if any(isinstance(m.get(k), (int, float)) and not isinstance(m.get(k), bool)
                   for m in mets)]
    rows = []
    for k in keys:
        vals = [m.get(k) if isinstance(m.get(k), (int, float)) else None for m in mets]
        flags = best_flags(vals, k, groups)
        cells = "".join(f"<td class='num{' best' if f else ''}'>{fmt(v)}</td>"
                        for v, f in zip(vals, flags, strict=True))
        rows.append(f"<tr><td>{html.escape(k)}</td>{cells}</tr>")
    head = "".join(f"<th class=num>{html.escape(n)}</th>" for n in names)
    if not rows:
        return "<p>No run has test metrics yet (metrics.json).</p>"
    members = group_members(groups)
    several = len(members) > 1
    group_row = ""
    if several:
        group_row = ("<tr><td>compared within</td>"
                     + "".join(f"<td>{html.escape(g)}</td>" for g in groups) + "</tr>")
    rule = ("Bold green: the best run for metrics with a direction (lower negative ELBO / NLL / "
            "error / Fréchet distance; higher accuracy / silhouette), chosen only among runs on "
            "the same data, likelihood and preprocessing")
    if len(mets) == 1:
        rule = "One run: nothing is ranked"
    elif not any(len(idx) > 1 for idx in members.values()):
        rule = ("No run is marked best: no two runs share data, likelihood and preprocessing, "
                "and losses (and most other metrics) are comparable only between such runs")
    elif several:
        rule += " (the \"compared within\" row); runs on different data are never ranked"
    return (f"<div class=scroll><table><tr><th>test metric</th>{head}</tr>{group_row}"
            f"{''.join(rows)}</table></div><p class=note>{html.escape(rule)}.</p>")


def _history(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            conv = {}
            for k, v in row.items():
                try:
                    conv[k] = float(v)
                except (TypeError, ValueError):
                    continue
            out.append(conv)
    return out


def curve_panels(runs: list[Path], names: list[str],
                 groups: list[str] | None = None) -> list[tuple[str, Any]]:
    """One matplotlib figure per group of comparable runs (see ``comparison_group``) that has a
    history: train and validation objective per epoch, titled with the group's label."""
    groups = groups if groups is not None else [""] * len(runs)
    hist = [_history(r / "history.csv") for r in runs]
    from vaelab.plots.common import new_figure

    out = []
    for label, idx in group_members(groups).items():
        if not any(hist[i] for i in idx):
            continue
        fig = new_figure(11, 3.8)
        axes = fig.subplots(1, 2)
        for ax, key, title in ((axes[0], "train_loss", "training objective"),
                               (axes[1], "val_loss", "validation objective")):
            for i in idx:
                pts = [(r["epoch"], r[key]) for r in hist[i] if "epoch" in r and key in r]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o" if len(pts) < 30 else None,
                            markersize=3, label=names[i])
            ax.set_title(title, fontsize=11)
            ax.set_xlabel("epoch")
            ax.set_ylabel("nats per example")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=8, loc="best")
        if label:
            fig.suptitle(label, fontsize=12)
        out.append((label, fig))
    return out


def curves_figure(runs: list[Path], names: list[str], groups: list[str] | None = None) -> str:
    """Train and validation loss per epoch of every run: one plot per group of comparable runs
    (runs on different data or likelihoods never share axes)."""
    from vaelab.plots.common import close

    blocks = []
    for label, fig in curve_panels(runs, names, groups):
        data = figure_png(fig)
        close(fig)
        which = f" of the runs on {label}" if label else ""
        alt = f"training curves{which or ' of all runs'}"
        blocks.append(
            f'<figure><img alt="{html.escape(alt)}" src="{png_data_url(data)}">'
            f"<figcaption><b>Training curves{html.escape(which)}.</b> The objective per epoch "
            "(left: training, right: validation). Curves still falling at the end mean more "
            "epochs would help; a validation curve that turns up means overfitting."
            "</figcaption></figure>")
    if len(blocks) > 1:
        blocks.insert(0, "<p class=note>One plot per group of runs on the same data, "
                         "likelihood and preprocessing: objectives of different data are not "
                         "comparable and would share no useful scale.</p>")
    return "".join(blocks)


def figure_rows(runs: list[Path], names: list[str]) -> str:
    indexes = [_json(r / "figures" / "index.json") for r in runs]
    order: dict[str, float] = {}
    for idx, r in zip(indexes, runs, strict=True):
        for p in (r / "figures").glob("*.png"):
            order.setdefault(p.name, idx.get(p.name, {}).get("order", 1000))
    blocks = []
    for fname in sorted(order, key=lambda n: (order[n], n)):
        meta = next((i[fname] for i in indexes if fname in i), {})
        title = html.escape(str(meta.get("title", fname[:-4].replace("_", " "))))
        how = html.escape(str(meta.get("how_to_read", "")))
        imgs = []
        for r, name in zip(runs, names, strict=True):
            p = r / "figures" / fname
            cell = (f'<img alt="{html.escape(name)}: {title}" src="{png_data_url(p)}">'
                    if p.exists() else '<p class=note>(not drawn for this run)</p>')
            imgs.append(f"<figure>{cell}<figcaption>{html.escape(name)}</figcaption></figure>")
        blocks.append(f'<h3 id="fig-{html.escape(fname[:-4])}">{title}</h3>'
                      f"<p class=note>{how}</p><div class=row>{''.join(imgs)}</div>")
    return "\n".join(blocks)


def render_compare(run_dirs: list[str | Path]) -> str:
    """The comparison page of ``run_dirs`` (each a finished run directory) as one string."""
    runs = [Path(r) for r in run_dirs]
    for r in runs:
        if not (r / "config.json").exists():
            raise RunDirError(f"{r} has no config.json; pass run directories written by "
                              "vaelab train.")
    names = labels(runs)
    cfgs = [_json(r / "config.json") for r in runs]
    mets = [_json(r / "metrics.json").get("test", {}) for r in runs]
    groups = [comparison_group(c) for c in cfgs]
    return page(f"vaelab comparison of {len(runs)} runs", " · ".join(names), [
        ("settings", "Settings", settings_table(cfgs, names)),
        ("metrics", "Test metrics", metrics_table(mets, names, groups)),
        ("training", "Training", curves_figure(runs, names, groups)),
        ("figures", "Figures", figure_rows(runs, names)),
    ])


def write_compare(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write the comparison page of ``run_dirs`` to ``out`` and return its path."""
    if len(run_dirs) < 1:
        raise RunDirError("compare needs at least one run directory.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_compare(run_dirs))
    return out
