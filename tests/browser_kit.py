"""Headless Chromium for the browser tests: one launch with the same flags everywhere."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium (``apt-get install chromium``), driven by Playwright."""

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
"""Offline and quiet: no sandbox (containers), no GPU, no background requests."""


def launch_chromium(p: Any) -> Any:
    """A headless Chromium browser from a ``sync_playwright()`` context ``p``."""
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
