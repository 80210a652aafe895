"""The report's "Disentanglement" section for data with known factors, from metrics.json."""

from __future__ import annotations

import html
from typing import Any

from vaelab.report.style import fmt

SCORES = (
    ("mig", "MIG", "gap between the two dimensions most informative about a factor, / H(factor)"),
    ("dci_disentanglement", "DCI disentanglement", "each dimension explains one factor"),
    ("dci_completeness", "DCI completeness", "each factor is explained by one dimension"),
    ("dci_informativeness_test", "DCI informativeness", "test accuracy of the boosted trees"),
    ("sap", "SAP", "gap between the best two one-dimension linear classifiers"),
    ("factorvae_accuracy", "FactorVAE score", "majority-vote accuracy, one factor fixed"),
)


def disentanglement_section(section: dict[str, Any]) -> str:
    """Score cards, the per-factor MIG and the protocol the numbers were measured with."""
    cards = "".join(
        f"<div class=card><div class=k>{html.escape(title)}</div>"
        f"<div class=v>{fmt(section[key])}</div><div class=d>{html.escape(desc)}</div></div>"
        for key, title, desc in SCORES if isinstance(section.get(key), (int, float)))
    factors = section.get("factors", [])
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td class=num>{size}</td>"
        f"<td class=num>{fmt(h)}</td><td class=num>{fmt(g)}</td></tr>"
        for name, size, h, g in zip(factors, section.get("factor_sizes", []),
                                    section.get("factor_entropy", []),
                                    section.get("mig_per_factor", []), strict=False))
    table = ("<table><tr><th>factor</th><th class=num>values</th><th class=num>entropy "
             f"(nats)</th><th class=num>MIG</th></tr>{rows}</table>") if rows else ""
    p = section.get("protocol", {})
    counts = section.get("counts", {})
    note = (
        f"<p class=note>Scored on the posterior means of {counts.get('train', '?')} training and "
        f"{counts.get('test', '?')} test points drawn from the "
        f"{'full factor grid' if p.get('source') == 'rendered' else 'rows of the data'} "
        f"(<b>{html.escape(str(p.get('name', '?')))}</b> protocol: {p.get('fv_train', '?')} / "
        f"{p.get('fv_eval', '?')} FactorVAE votes of {p.get('fv_batch', '?')}, "
        f"{html.escape(str(p.get('dci_classifier', '')))}, "
        f"{html.escape(str(p.get('sap_classifier', '')))}; scikit-learn "
        f"{html.escape(str(section.get('sklearn', '?')))}). The continuous SAP variant is "
        f"{fmt(section.get('sap_continuous', float('nan')))}. The figures "
        "<i>Factors x code dimensions</i> and <i>Latent traversals by factor</i> show which "
        "dimension carries which factor.</p>")
    if section.get("skipped"):
        note += f"<p class=note>Skipped: {html.escape(str(section['skipped']))}.</p>"
    return f"<div class=cards>{cards}</div>{note}{table}"
