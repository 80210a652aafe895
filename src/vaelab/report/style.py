"""Shared look of the HTML pages: one stylesheet, the page frame, number formatting, embedding.

Every page is one self-contained file: styles inline, images as ``data:`` URLs, no script, no
font or CDN request, so it opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

CSS = """
:root{--ink:#1d232a;--muted:#5b6470;--line:#e3e6ea;--accent:#1d3557;--soft:#f0f2f5}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
color:var(--ink);background:#f6f7f9;line-height:1.45}
header{background:var(--accent);color:#fff;padding:18px 28px 12px}
header h1{margin:0;font-size:22px;font-weight:650}
header p{margin:4px 0 0;opacity:.85;font-size:14px}
nav{margin-top:10px;font-size:13px} nav a{color:#cfe0f5;text-decoration:none;margin-right:16px}
nav a:hover{color:#fff;text-decoration:underline}
main{max-width:1180px;margin:0 auto;padding:10px 28px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:16px 0;
padding:14px 22px 18px}
h2{font-size:19px;margin:4px 0 12px;color:var(--accent)}
h3{font-size:15px;margin:18px 0 8px}
table{border-collapse:collapse;font-size:13.5px;margin:4px 0 8px}
td,th{border-bottom:1px solid var(--line);padding:4px 12px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:700;color:#14632b}
tr.diff td:first-child{border-left:3px solid #e0a800}
.scroll{overflow-x:auto}
figure{margin:0 0 26px} figure img{max-width:100%;height:auto;border:1px solid var(--line);
border-radius:4px;display:block;margin:0 auto}
figcaption{font-size:14px;color:#3b434c;margin:8px auto 0;max-width:900px}
figcaption b{color:var(--ink)}
details{margin:8px 0} summary{cursor:pointer;color:var(--accent);font-weight:600;font-size:14px}
pre{background:var(--soft);padding:10px;overflow:auto;font-size:12px;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 170px;border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .v{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums}
.card .k{font-size:13px;font-weight:600;color:var(--accent)}
.card .d{font-size:12px;color:var(--muted);margin-top:4px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:2px 24px;
font-size:14px;margin:0}
.facts div{display:flex;justify-content:space-between;border-bottom:1px dotted var(--line);
padding:3px 0}
.facts dt{color:var(--muted)} .facts dd{margin:0 0 0 12px;font-weight:600;text-align:right;
  overflow-wrap:anywhere;min-width:0}
.advice{background:#fff6db;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0;
font-size:14px}
.ok{background:#e8f5ec;border-left:4px solid #2e8b57;padding:8px 12px;margin:8px 0;font-size:14px}
.note{color:var(--muted);font-size:13px}
.toc{columns:3 220px;font-size:14px;margin:0 0 14px;padding-left:18px}
.toc a{color:var(--accent)}
.row{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start}
.row figure{flex:1 1 300px;min-width:260px;margin-bottom:10px}
.row figcaption{text-align:center;font-weight:600}
.strip{display:flex;gap:8px;overflow-x:auto;padding-bottom:6px}
.strip figure{flex:0 0 auto;margin:0} .strip img{width:210px}
.strip figcaption{text-align:center;font-size:12px;margin-top:2px}
"""


def fmt(v: Any) -> str:
    """A number as users read it (4 significant digits), anything else escaped."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v).lower()
    if isinstance(v, float):
        if v != v:  # NaN
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    if isinstance(v, (list, tuple)):
        return html.escape(", ".join(str(x) for x in v) or "[]")
    return html.escape(str(v))


def png_data_url(source: Path | bytes) -> str:
    """``data:image/png;base64,...`` for a PNG file or bytes."""
    data = source.read_bytes() if isinstance(source, Path) else source
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib Figure rendered to PNG bytes (for figures made on the fly)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole HTML document: header with a link per section, then the sections.

    ``sections`` holds (anchor id, heading, inner HTML); empty inner HTML drops the section.
    """
    sections = [s for s in sections if s[2]]
    nav = "".join(f'<a href="#{sid}">{html.escape(head)}</a>' for sid, head, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{html.escape(head)}</h2>\n{inner}\n</section>'
                     for sid, head, inner in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vaelab">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>
<nav>{nav}</nav></header>
<main>
{body}
</main></body></html>
"""
