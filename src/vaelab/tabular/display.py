"""Encoded table rows as the explorer shows them: one entry per column, in its own units."""

from __future__ import annotations

from typing import Any

import numpy as np


def table_display(rows: np.ndarray, params: dict[str, Any]) -> list[dict[str, Any]]:
    """For each row a ``{"columns": [...]}``: numeric cells as value (raw units) and the
    training range; binary and categorical cells as probabilities over the named categories
    (one-hot for an input row, the decoder's probabilities for a decoded one); missing input
    cells with ``missing: true``."""
    rows = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
    out = []
    for r in rows:
        cells = []
        for d in params["columns"]:
            s = d["slot"]
            cell: dict[str, Any] = {"name": d["name"], "kind": d["kind"]}
            if r[d["mask_slot"]] < 0.5:
                cell["missing"] = True
            if d["kind"] == "numeric":
                cell["value"] = round(float(r[s] * d["std"] + d["mean"]), 6)
                cell["range"] = [d.get("min"), d.get("max")]
            elif d["kind"] == "binary":
                q = float(np.clip(r[s], 0, 1))
                cell["labels"] = list(d["categories"])
                cell["probs"] = [round(1 - q, 4), round(q, 4)]
            else:
                seen = [k for k, sl in enumerate(d["slots"]) if sl < d["width"] - 1]
                cell["labels"] = [d["categories"][k] for k in seen]
                cell["probs"] = [round(float(r[s + d["slots"][k]]), 4) for k in seen]
            cells.append(cell)
        out.append({"columns": cells})
    return out
