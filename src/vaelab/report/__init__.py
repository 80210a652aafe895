"""Self-contained HTML report of a run (images embedded, no network requests)."""

from vaelab.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
