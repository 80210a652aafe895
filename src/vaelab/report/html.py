"""Build report.html from a run directory.

Sections: a summary of the run, the test metrics (headline cards, diagnostics, the full table),
training (curves, per-epoch history, per-epoch sample grids when saved), every figure listed in
``figures/index.json`` with its title and how-to-read note, and the configuration (options that
differ from the defaults marked). It reads only the run directory's files.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import struct
from pathlib import Path
from typing import Any

from vaelab.modelio import atomic_write_text
from vaelab.report.style import CSS, fmt, page, png_data_url

__all__ = ["CSS", "render_report", "write_report"]

_fmt = fmt  # older name, kept for importers

HEADLINE = [
    ("neg_elbo_k", "negative ELBO", "mean -log w over the same K = {iwae_k} samples as the IWAE "
     "NLL; nats per test example (an upper bound on -log p(x))"),
    ("neg_elbo", "negative ELBO", "nats per test example; lower is better (an upper bound on "
     "-log p(x))"),
    ("iwae_nll", "IWAE NLL", "importance-weighted estimate of -log p(x), K = {iwae_k}"),
    ("recon_nll", "reconstruction NLL", "nats per test example (deterministic autoencoder)"),
    ("recon", "reconstruction", "-E[log p(x|z)], one posterior sample per example; nats"),
    ("kl", "KL", "KL(q(z|x) || N(0, I)), nats per example"),
    ("recon_mse", "reconstruction MSE", "mean squared error per value, in the model's input "
     "units"),
    ("active_units", "active units", "of {latent_dim} latent dimensions carry information"),
    ("knn_accuracy", "latent kNN accuracy", "labels predicted from 5 nearest codes (chance "
     "{chance_accuracy:.2f})"),
    ("frechet_distance", "Fréchet distance", "samples vs test images in a small classifier's "
     "features; lower is better"),
    ("class_consistency", "class consistency", "share of samples of a chosen class that the "
     "classifier reads as that class (on real test images: {class_consistency_real:.2f})"),
]

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "train_recon", "val_recon", "train_kl",
                   "val_kl", "lr", "beta", "time_s"]
MAX_EPOCH_GRIDS = 12


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _value(test: dict[str, Any], key: str) -> str:
    """The metric, with "± standard error" when ``<key>_se`` is a finite number."""
    se = test.get(f"{key}_se")
    if isinstance(se, (int, float)) and math.isfinite(se):
        return f"{fmt(test[key])} ± {fmt(se)}"
    return fmt(test[key])


def summary_cards(test: dict[str, Any]) -> str:
    """Headline cards; with the K-sample pair the single-sample ELBO is left to the table."""
    cards = []
    for key, title, desc in HEADLINE:
        if key not in test or not isinstance(test[key], (int, float)):
            continue
        if key == "neg_elbo" and "neg_elbo_k" in test:
            continue
        try:
            text = desc.format(**test)
        except (KeyError, ValueError, IndexError):
            text = desc.split("{")[0].rstrip(" ,=K")
        cards.append(f'<div class=card><div class=k>{html.escape(title)}</div>'
                     f'<div class=v>{_value(test, key)}</div><div class=d>{html.escape(text)}'
                     "</div></div>")
    return f'<div class=cards>{"".join(cards)}</div>' if cards else ""


def bounds_note(test: dict[str, Any]) -> str:
    """How the negative ELBO / IWAE NLL pair was estimated (empty without the pair)."""
    if not all(isinstance(test.get(k), (int, float)) for k in ("neg_elbo_k", "iwae_nll")):
        return ""
    n_iw, n_test = test.get("iwae_n"), test.get("n_test")
    rows = (f"the {n_test}" if n_iw == n_test or n_iw is None else
            f"the first {n_iw} of the {n_test}")
    gap = ""
    if isinstance(test.get("iwae_gap"), (int, float)):
        gap = f" (here by {_value(test, 'iwae_gap')} nats)"
    single = ""
    if isinstance(test.get("neg_elbo"), (int, float)):
        single = (f" The table's <code>test.neg_elbo</code> ({_value(test, 'neg_elbo')}) is a "
                  "separate estimate with one posterior sample per example over the whole test "
                  "split; on a small test split it can fall below the IWAE NLL by chance.")
    return (f"<p class=note>The negative ELBO and the IWAE NLL come from the same "
            f"K = {html.escape(str(test.get('iwae_k', '?')))} posterior samples z<sub>k</sub> "
            f"~ q(z|x) of each of {html.escape(rows)} test examples: the ELBO is the mean of "
            "log w<sub>k</sub>, the IWAE bound the log of the mean of w<sub>k</sub>, so the "
            "IWAE NLL is at most the negative ELBO for every example"
            f"{gap}. ± is the standard error over the test examples (std / &radic;n).{single}"
            "</p>")


def advice_blocks(diagnostics: list[dict[str, str]]) -> str:
    if not diagnostics:
        return '<div class=ok>No problem detected by the diagnostics.</div>'
    return "".join(
        f'<div class=advice><b>{html.escape(str(d.get("issue", "")))}</b> '
        f'({html.escape(str(d.get("evidence", "")))}): {html.escape(str(d.get("advice", "")))}'
        "</div>" for d in diagnostics)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Every metric as a row; nested sections as ``section.key``."""
    rows = []
    for section, values in metrics.items():
        items = values.items() if isinstance(values, dict) else [("", values)]
        for k, v in items:
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            name = f"{section}.{k}" if k else section
            cls = "num" if isinstance(v, (int, float)) else ""
            rows.append(f"<tr><td>{html.escape(name)}</td><td class='{cls}'>{fmt(v)}</td></tr>")
    if not rows:
        return ""
    head = "<tr><th>metric</th><th class=num>value</th></tr>"
    half = (len(rows) + 1) // 2 if len(rows) > 12 else len(rows)
    tables = [f'<div class=scroll style="flex:1 1 420px"><table style="width:100%">{head}'
              f'{"".join(part)}</table></div>' for part in (rows[:half], rows[half:]) if part]
    return f"<div class=row>{''.join(tables)}</div>"


def parameter_count(run_dir: Path) -> int | None:
    """Number of weights in model.safetensors, read from its JSON header (no tensor loaded)."""
    path = run_dir / "model.safetensors"
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for name, meta in header.items():
        if name == "__metadata__" or not isinstance(meta, dict):
            continue
        count = 1
        for d in meta.get("shape", []):
            count *= int(d)
        total += count
    return total


def facts(run_dir: Path, config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Key facts of the run as a definition grid."""
    model, train = config.get("model", {}), config.get("train", {})
    info = config.get("data_info", {})
    resolved = config.get("resolved", {})
    training = metrics.get("training", {})
    status = _read_json(run_dir / "run.json").get("status")
    sizes = info.get("sizes", {})
    n_params = parameter_count(run_dir)
    items: list[tuple[str, Any]] = [
        ("dataset", info.get("source") or config.get("data", {}).get("dataset")),
        ("rows train / val / test",
         " / ".join(str(sizes.get(k, "?")) for k in ("train", "val", "test")) if sizes else None),
        ("input shape", " x ".join(str(d) for d in resolved.get("input_shape", [])) or None),
        ("preprocessing", info.get("preprocessing", {}).get("kind")
         or config.get("preprocessing", {}).get("kind")),
        ("model", model.get("model")),
        ("architecture", f"{model.get('arch', 'mlp')} "
         f"{'-'.join(str(h) for h in model.get('hidden', []))}"),
        ("latent dimensions", model.get("latent_dim")),
        ("likelihood", resolved.get("likelihood")),
        ("beta", model.get("beta") if model.get("model") not in ("ae", "dae") else None),
        ("parameters", f"{n_params:,}" if n_params else None),
        ("epochs run", training.get("epochs_run", train.get("epochs"))),
        ("best epoch (kept)", training.get("best_epoch")),
        ("stopped early", training.get("stopped_early")),
        ("training time", f"{training['train_seconds']:.1f} s"
         if isinstance(training.get("train_seconds"), (int, float)) else None),
        ("batch size / lr", f"{train.get('batch_size')} / {train.get('lr')}"),
        ("device", resolved.get("device")),
        ("seed", train.get("seed")),
        ("status", status),
        ("vaelab / torch", " / ".join(str(config.get("versions", {}).get(k, "?"))
                                      for k in ("vaelab", "torch"))),
    ]
    cells = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{fmt(v)}</dd></div>"
                    for k, v in items if v not in (None, ""))
    return f"<dl class=facts>{cells}</dl>"


def _figure(path: Path, meta: dict[str, Any]) -> str:
    title = html.escape(str(meta.get("title", path.stem.replace("_", " "))))
    how = html.escape(str(meta.get("how_to_read", "")))
    return (f'<figure id="fig-{html.escape(path.stem)}"><img alt="{title}" loading="eager" '
            f'src="{png_data_url(path)}"><figcaption><b>{title}.</b> {how}</figcaption>'
            "</figure>")


def figure_index(folder: Path) -> tuple[list[Path], dict[str, Any]]:
    """The PNGs of ``folder`` in the order index.json gives (unlisted ones last)."""
    index = _read_json(folder / "index.json")
    files = sorted(folder.glob("*.png"),
                   key=lambda p: (index.get(p.name, {}).get("order", 1000), p.name))
    return files, index


def figure_blocks(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """Every figure of ``folder`` (except ``skip``) with a table of contents."""
    files, index = figure_index(folder)
    files = [p for p in files if p.name not in skip]
    if not files:
        return ""
    toc = "".join(
        f'<li><a href="#fig-{html.escape(p.stem)}">'
        f'{html.escape(str(index.get(p.name, {}).get("title", p.stem.replace("_", " "))))}'
        "</a></li>" for p in files)
    return f"<ul class=toc>{toc}</ul>" + "\n".join(_figure(p, index.get(p.name, {}))
                                                    for p in files)


def history_table(history: list[dict[str, str]]) -> str:
    if not history:
        return ""
    cols = [c for c in HISTORY_COLUMNS if c in history[0]]
    cols += [c for c in history[0] if c not in cols]
    head = "".join(f"<th class=num>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in history:
        cells = []
        for c in cols:
            v: Any = row.get(c, "")
            with contextlib.suppress(TypeError, ValueError):
                v = int(v) if c == "epoch" else float(v)
            cells.append(f"<td class=num>{fmt(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<details><summary>History: {len(history)} epoch(s), one row each (history.csv)"
            f"</summary><div class=scroll><table><tr>{head}</tr>{''.join(body)}</table></div>"
            "</details>")


def _read_history(path: Path) -> list[dict[str, str]]:
    import csv

    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def epoch_strip(folder: Path) -> str:
    """The per-epoch sample grids (``sample_every_epoch``), at most MAX_EPOCH_GRIDS of them."""
    files = sorted(folder.glob("*.png"))
    if not files:
        return ""
    keep = files
    if len(files) > MAX_EPOCH_GRIDS:
        step = (len(files) - 1) / (MAX_EPOCH_GRIDS - 1)
        keep = [files[round(i * step)] for i in range(MAX_EPOCH_GRIDS)]
    figs = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="{png_data_url(p)}">'
        f"<figcaption>epoch {html.escape(p.stem.rsplit('_', 1)[-1].lstrip('0') or '0')}"
        "</figcaption></figure>" for p in keep)
    shown = "" if len(keep) == len(files) else f" ({len(keep)} of {len(files)} shown)"
    return ("<h3>Samples after every epoch</h3><p class=note>The same prior codes decoded after "
            f"each epoch{shown}: watch digits emerge from noise and sharpen as training goes on."
            f"</p><div class=strip>{figs}</div>")


def config_tables(config: dict[str, Any]) -> str:
    """One table per section; options that differ from vaelab's defaults are marked."""
    try:
        from vaelab.config import Config

        defaults = Config().to_dict()
    except Exception:  # the report must render even if the defaults cannot be built
        defaults = {}
    blocks = []
    for section in ("data", "model", "train"):
        values = config.get(section)
        if not isinstance(values, dict):
            continue
        rows = []
        for k, v in values.items():
            default = defaults.get(section, {}).get(k, v)
            changed = default != v
            mark = " class=diff" if changed else ""
            shown = "none" if default is None else fmt(default)
            note = f" <span class=note>(default {shown})</span>" if changed else ""
            rows.append(f"<tr{mark}><td>{html.escape(k)}</td><td>{fmt(v)}{note}</td></tr>")
        blocks.append(f'<div style="flex:1 1 320px"><h3>[{section}]</h3><table>'
                      f"{''.join(rows)}</table></div>")
    raw = html.escape(json.dumps(config, indent=2))
    return ("<p class=note>Options marked on the left differ from vaelab's defaults; any of them "
            "is a <code>--flag</code>, a TOML key or a <code>--grid</code> name.</p>"
            f"<div class=row>{''.join(blocks)}</div>"
            f"<details><summary>config.json as written</summary><pre>{raw}</pre></details>")


def _epochs_text(config: dict, metrics: dict) -> str:
    """The epochs trained as the run ended: '48 epochs (time budget 20s)', '12 of 50 epochs
    (stopped early)', '50 epochs'; the configured count while no metrics exist."""
    planned = config.get("train", {}).get("epochs")
    training = metrics.get("training", {})
    run = training.get("epochs_run")
    if run is None:
        return f"{planned} epochs"
    if training.get("time_budget_s"):
        from vaelab.train.budget import format_duration

        return f"{run} epochs (time budget {format_duration(training['time_budget_s'])})"
    if training.get("stopped_early") or run != planned:
        return f"{run} of {planned} epochs" + (" (stopped early)"
                                               if training.get("stopped_early") else "")
    return f"{run} epochs"


def render_report(run_dir: str | Path) -> str:
    """Return the report of the run in ``run_dir`` as one HTML string."""
    run_dir = Path(run_dir)
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    model = config.get("model", {})
    data = config.get("data", {})
    source = config.get("data_info", {}).get("source") or data.get("data") or data.get("dataset")
    title = f"vaelab run: {model.get('model', '?')} on {source}"
    subtitle = (f"{run_dir.resolve().name} · latent dim {model.get('latent_dim')}, "
                f"{config.get('resolved', {}).get('likelihood', '?')} likelihood, "
                f"{_epochs_text(config, metrics)}, seed "
                f"{config.get('train', {}).get('seed')} · {run_dir}")
    test = metrics.get("test", {})
    figures = run_dir / "figures"
    curves = figures / "training_curves.png"
    _, index = figure_index(figures)
    training = ""
    if curves.exists():
        training += _figure(curves, index.get(curves.name, {}))
    training += history_table(_read_history(run_dir / "history.csv"))
    training += epoch_strip(figures / "epochs")
    metric_html = ""
    if test:
        metric_html = (summary_cards(test) + bounds_note(test) + "<h3>Diagnostics</h3>"
                       + advice_blocks(metrics.get("diagnostics", []))
                       + "<h3>All metrics</h3>" + metrics_table(
                           {k: v for k, v in metrics.items()
                            if k not in ("diagnostics", "columns", "disentanglement")}))
    columns = ""
    if isinstance(metrics.get("columns"), dict):  # a table run: each column's fit
        from vaelab.report.columns import columns_section

        columns = columns_section(metrics["columns"])
    return page(title, subtitle, [
        ("summary", "Summary", facts(run_dir, config, metrics)),
        ("metrics", "Test metrics", metric_html),
        *([("columns", "Columns", columns)] if columns else []),
        *([("disentanglement", "Disentanglement", _disentanglement(metrics))]
          if isinstance(metrics.get("disentanglement"), dict) else []),
        ("training", "Training", training),
        ("figures", "Figures", figure_blocks(figures, skip=(curves.name,))),
        ("config", "Configuration", config_tables(config)),
    ])


def _disentanglement(metrics: dict[str, Any]) -> str:
    from vaelab.report.disentangle import disentanglement_section

    return disentanglement_section(metrics["disentanglement"])


def write_report(run: Any) -> Path:
    """Write report.html into the run directory (``run`` is a Run or a path)."""
    run_dir = Path(getattr(run, "path", run))
    path = run_dir / "report.html"
    atomic_write_text(path, render_report(run_dir))
    return path
