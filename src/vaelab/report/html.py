"""Build report.html from a run directory: config, metrics, and every figure with notes."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from vaelab.modelio import atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85}
main{max-width:1100px;margin:0 auto;padding:18px 28px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:16px 0;
padding:14px 20px}
h2{font-size:18px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:14px}
td,th{border-bottom:1px solid #e3e6ea;padding:4px 12px;text-align:left}
th{background:#f0f2f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0 0 22px} figure img{max-width:100%;border:1px solid #e3e6ea}
figcaption{font-size:14px;color:#444;margin-top:6px} figcaption b{color:#1d232a}
details pre{background:#f0f2f5;padding:10px;overflow:auto;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 170px;border:1px solid #e3e6ea;border-radius:6px;padding:10px 12px}
.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .k{font-size:13px;font-weight:600;color:#1d3557}
.card .d{font-size:12px;color:#555;margin-top:4px}
.advice{background:#fff6db;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0;
font-size:14px}
table{width:auto}
"""

HEADLINE = [
    ("neg_elbo", "negative ELBO", "nats per test example; lower is better (an upper bound on "
     "-log p(x))"),
    ("iwae_nll", "IWAE NLL", "importance-weighted estimate of -log p(x), K = {iwae_k}"),
    ("recon_nll", "reconstruction NLL", "nats per test example (deterministic autoencoder)"),
    ("recon", "reconstruction", "-E[log p(x|z)], nats per example"),
    ("kl", "KL", "KL(q(z|x) || N(0, I)), nats per example"),
    ("active_units", "active units", "of {latent_dim} latent dimensions carry information"),
    ("knn_accuracy", "latent kNN accuracy", "labels predicted from 5 nearest codes (chance "
     "{chance_accuracy:.2f})"),
    ("frechet_distance", "Fréchet distance", "samples vs test images in a small classifier's "
     "features; lower is better"),
]


def summary_cards(test: dict[str, Any]) -> str:
    cards = []
    for key, title, desc in HEADLINE:
        if key not in test or not isinstance(test[key], (int, float)):
            continue
        try:
            text = desc.format(**test)
        except (KeyError, ValueError):
            text = desc.split("{")[0]
        cards.append(f'<div class=card><div class=k>{html.escape(title)}</div>'
                     f'<div class=v>{_fmt(test[key])}</div><div class=d>{html.escape(text)}'
                     "</div></div>")
    return f'<div class=cards>{"".join(cards)}</div>'


def advice_blocks(diagnostics: list[dict[str, str]]) -> str:
    if not diagnostics:
        return "<p>No problem detected by the diagnostics.</p>"
    return "".join(
        f'<div class=advice><b>{html.escape(d["issue"])}</b> ({html.escape(d["evidence"])}): '
        f'{html.escape(d["advice"])}</div>' for d in diagnostics)



def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return html.escape(str(v))


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for section, values in metrics.items():
        if not isinstance(values, dict):
            rows.append(f"<tr><td>{html.escape(section)}</td>"
                        f"<td class=num>{_fmt(values)}</td></tr>")
            continue
        for k, v in values.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            rows.append(f"<tr><td>{html.escape(section)}.{html.escape(k)}</td>"
                        f"<td class=num>{_fmt(v)}</td></tr>")
    return "<table><tr><th>metric</th><th>value</th></tr>" + "".join(rows) + "</table>"


def figure_blocks(folder: Path) -> str:
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    files = sorted(folder.glob("*.png"),
                   key=lambda p: (index.get(p.name, {}).get("order", 1000), p.name))
    out = []
    for p in files:
        meta = index.get(p.name, {})
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        title = html.escape(meta.get("title", p.stem.replace("_", " ")))
        how = html.escape(meta.get("how_to_read", ""))
        out.append(
            f'<figure id="fig-{html.escape(p.stem)}"><img alt="{title}" '
            f'src="data:image/png;base64,{data}"><figcaption><b>{title}.</b> {how}</figcaption>'
            "</figure>"
        )
    return "\n".join(out)


def render_report(run_dir: str | Path) -> str:
    """Return the report of the run in ``run_dir`` as one HTML string."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    model = config.get("model", {})
    data = config.get("data", {})
    title = f"vaelab run: {model.get('model', '?')} on {data.get('data') or data.get('dataset')}"
    subtitle = (f"latent dim {model.get('latent_dim')}, likelihood "
                f"{config.get('resolved', {}).get('likelihood', '?')}, "
                f"{config.get('train', {}).get('epochs')} epochs, seed "
                f"{config.get('train', {}).get('seed')}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)} &middot;
{html.escape(str(run_dir))}</p></header><main>
<section><h2>Test metrics</h2>{summary_cards(metrics.get("test", {}))}
<h3>Diagnostics</h3>{advice_blocks(metrics.get("diagnostics", []))}
<details><summary>All metrics</summary>{metrics_table(
    {k: v for k, v in metrics.items() if k != "diagnostics"})}</details></section>
<section><h2>Figures</h2>{figure_blocks(run_dir / "figures")}</section>
<section><h2>Configuration</h2><details><summary>config.json</summary>
<pre>{html.escape(json.dumps(config, indent=2))}</pre></details></section>
</main></body></html>
"""


def write_report(run: Any) -> Path:
    """Write report.html into the run directory (``run`` is a Run or a path)."""
    run_dir = Path(getattr(run, "path", run))
    path = run_dir / "report.html"
    atomic_write_text(path, render_report(run_dir))
    return path
