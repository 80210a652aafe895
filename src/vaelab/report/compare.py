"""One self-contained HTML page comparing several runs: settings, metrics, figures side by side."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from vaelab.modelio import atomic_write_text
from vaelab.report.html import CSS, _fmt
from vaelab.run import check_run_dir

KEYS = [("model", "model"), ("model", "latent_dim"), ("model", "hidden"), ("model", "beta"),
        ("data", "dataset"), ("train", "epochs")]


def render_compare(run_dirs: list[str | Path]) -> str:
    runs = [Path(r) for r in run_dirs]
    for r in runs:
        check_run_dir(r)
    cfgs = [json.loads((r / "config.json").read_text()) for r in runs]
    mets = [json.loads((r / "metrics.json").read_text()).get("test", {})
            if (r / "metrics.json").exists() else {} for r in runs]
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in runs)
    rows = []
    for sec, key in KEYS:
        cells = "".join(f"<td>{html.escape(str(c.get(sec, {}).get(key)))}</td>" for c in cfgs)
        rows.append(f"<tr><td>{key}</td>{cells}</tr>")
    metric_names = [k for k in dict.fromkeys(k for m in mets for k in m)
                    if all(isinstance(m.get(k), (int, float)) or k not in m for m in mets)]
    for k in metric_names:
        cells = "".join(f"<td class=num>{_fmt(m[k]) if k in m else ''}</td>" for m in mets)
        rows.append(f"<tr><td>{html.escape(k)}</td>{cells}</tr>")
    table = f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"
    names = sorted({p.name for r in runs for p in (r / "figures").glob("*.png")})
    blocks = []
    for name in names:
        imgs = []
        for r in runs:
            p = r / "figures" / name
            if p.exists():
                data = base64.b64encode(p.read_bytes()).decode("ascii")
                name_ = html.escape(r.name)
                imgs.append(f'<figure style="flex:1;min-width:280px"><img alt="{name_}" '
                            f'src="data:image/png;base64,{data}"><figcaption>{name_}'
                            "</figcaption></figure>")
        blocks.append(f"<h3>{html.escape(name[:-4].replace('_', ' '))}</h3>"
                      f'<div style="display:flex;gap:12px;flex-wrap:wrap">{"".join(imgs)}</div>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaelab comparison</title>
<style>{CSS}</style></head><body><header><h1>vaelab comparison of {len(runs)} runs</h1>
<p>{html.escape(', '.join(str(r) for r in runs))}</p></header><main>
<section><h2>Settings and test metrics</h2>{table}</section>
<section><h2>Figures</h2>{''.join(blocks)}</section></main></body></html>
"""


def write_compare(run_dirs: list[str | Path], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render_compare(run_dirs))
    return out
