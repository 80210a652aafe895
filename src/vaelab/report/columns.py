"""The report's "Columns" section for a table run: each column's fit, from metrics.json."""

from __future__ import annotations

import html
from typing import Any

from vaelab.report.style import fmt


def columns_section(section: dict[str, Any]) -> str:
    """A table, one row per column: type, observed test cells, cost per cell (model and
    marginal), its share of the reconstruction term, RMSE or accuracy (model and marginal)."""
    rows = section.get("per_column", [])
    if not rows:
        return ""
    head = ("<tr><th>column</th><th>type</th><th class=num>observed</th>"
            "<th class=num>nats / cell</th><th class=num>marginal</th><th class=num>share</th>"
            "<th class=num>RMSE or accuracy</th><th class=num>marginal</th></tr>")
    body = []
    for r in rows:
        gain = r.get("nll_marginal_per_cell", 0) - r.get("nll_per_cell", 0)
        mark = " class=diff" if "nll_per_cell" in r and gain < 0.02 else ""
        if r["kind"] == "numeric":
            q, qm = r.get("rmse"), r.get("rmse_marginal")
        else:
            q, qm = r.get("accuracy"), r.get("accuracy_marginal")
        body.append(
            f"<tr{mark}><td>{html.escape(str(r['name']))}</td><td>{html.escape(r['kind'])}</td>"
            f"<td class=num>{r.get('observed', '')}</td>"
            f"<td class=num>{fmt(r.get('nll_per_cell', float('nan')))}</td>"
            f"<td class=num>{fmt(r.get('nll_marginal_per_cell', float('nan')))}</td>"
            f"<td class=num>{fmt(r.get('share', float('nan')))}</td>"
            f"<td class=num>{fmt(q) if q is not None else ''}</td>"
            f"<td class=num>{fmt(qm) if qm is not None else ''}</td></tr>")
    note = ("<p class=note>Each column's own term of the likelihood on the test split "
            f"({html.escape(str(section.get('units', 'nats')))}; E<sub>q</sub>[-log p(cell | z)]"
            f" over {section.get('posterior_draws', 0)} posterior draws). <b>marginal</b> is the "
            "cost without the code (the training split's mean / std or frequencies): marked rows "
            "gain less than 0.02 nats per cell over it, so the model does not explain that "
            "column. <b>share</b>: of the reconstruction term "
            f"({fmt(section.get('recon_sum', float('nan')))} nats per row). RMSE in raw units "
            "for numeric columns, accuracy of the most probable value otherwise.</p>")
    return note + f"<div class=scroll><table>{head}{''.join(body)}</table></div>"
