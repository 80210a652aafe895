"""Draw a figure from a plotting function's name and its array arguments, and save it as PNG.

What vaelab's worker process runs to draw a run's figures beside the main process
(``vaelab.figures.Drawing``): it needs matplotlib and numpy only.
"""

from __future__ import annotations

import importlib
from typing import Any

from vaelab.plots.common import add_note, close, save_figure


def draw_to_file(function: str, args: tuple, kwargs: dict[str, Any], note: str | None,
                 path: str) -> str:
    """``module:function(*args, **kwargs)``, the note under it, saved to ``path``."""
    module, _, name = function.partition(":")
    if not module.startswith("vaelab.plots."):
        raise ValueError(f"{function} is not a vaelab plotting function")
    fig = getattr(importlib.import_module(module), name)(*args, **kwargs)
    save_figure(add_note(fig, note), path)
    close(fig)
    return path
