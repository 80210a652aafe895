"""Fill a table's missing cells from the model's posterior (``vaelab impute``).

Each row is encoded from its observed cells (missing ones zero with observed flag 0, as in
training); K codes are drawn from the encoder's posterior and weighted by importance
p(x_obs, z) / q(z | x_obs) (vaelab.tabular.rows.posterior_predictions). One imputation
(``samples=1``) takes the weighted posterior mean of a numeric cell and the most probable
category of a categorical or binary one; ``samples=M`` draws M completed tables (multiple
imputation): a code by its weight, then each missing cell from p(cell | code). Observed cells are
never changed; numbers stay within the training range and integers stay integers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaelab.errors import VaelabError
from vaelab.tabular.rows import posterior_predictions, raw_from_encoded, read_rows, table_params

if TYPE_CHECKING:
    from vaelab.data.tabular import TextTable
    from vaelab.run import Run


def fill_codes(run: Run, codes: np.ndarray, x: np.ndarray, *, samples: int = 1, k: int = 100,
               seed: int = 0) -> list[np.ndarray]:
    """``samples`` copies of the raw codes with every missing cell filled."""
    model = run.model
    if samples > 1 and not model.variational:
        raise VaelabError(f"multiple imputation (--samples {samples}) draws from the posterior; "
                          f"{run.config.model.model} is a deterministic autoencoder - use "
                          "--samples 1 or a variational model.")
    params, w = posterior_predictions(run, x, k=k, seed=seed)
    lik = model.likelihood
    kk, n = w.shape
    missing = ~np.isfinite(codes)
    out = []
    if samples <= 1:
        means = lik.mean(params.reshape(kk * n, -1)).reshape(kk, n, -1)
        mean = (w[..., None] * means).sum(0).cpu().numpy()
        out.append(raw_from_encoded(run, mean))
    else:
        gen = torch.Generator(device=w.device).manual_seed(seed + 1)
        for _ in range(samples):
            pick = torch.multinomial(w.T, 1, generator=gen)[:, 0]  # one code per row
            chosen = params[pick, torch.arange(n, device=w.device)]
            out.append(raw_from_encoded(run, lik.sample(chosen, generator=gen).cpu().numpy()))
    return [np.where(missing, filled, codes) for filled in out]


def impute(run: Run, data: str | Path, *, samples: int = 1, k: int = 100, seed: int = 0
           ) -> tuple[TextTable, list[np.ndarray], dict[str, Any]]:
    """The table ``data`` and its completed raw codes (one array per imputation), plus counts
    and warnings."""
    params = table_params(run)
    table, codes, x, _, warnings = read_rows(run, data)
    filled = fill_codes(run, codes, x, samples=samples, k=k, seed=seed)
    miss = ~np.isfinite(codes)
    info = {"rows": len(codes), "missing": int(miss.sum()),
            "per_column": {d["name"]: int(miss[:, j].sum())
                           for j, d in enumerate(params["columns"])},
            "warnings": warnings}
    return table, filled, info


def write_filled(run: Run, table: TextTable, filled: list[np.ndarray], path: str | Path
                 ) -> Path:
    """The input file with its missing feature cells filled, in the input's dialect; with
    several imputations one long table whose first column ``imputation`` counts 1..M."""
    from vaelab.data.columns import Column, format_cell
    from vaelab.tabular.synthesize import write_csv

    params = table_params(run)
    cols = [(table.names.index(d["name"]), Column.from_dict(d)) for d in params["columns"]]
    dec = table.dialect.decimal
    rows: list[list[str]] = []
    multi = len(filled) > 1
    for m, codes in enumerate(filled):
        for i, cells in enumerate(table.body):
            new = list(cells)
            for c, (j, col) in enumerate(cols):
                from vaelab.data.dialect import is_missing

                if is_missing(cells[j]):
                    new[j] = format_cell(col, codes[i, c], dec)
            rows.append(([str(m + 1)] if multi else []) + new)
    header = (["imputation"] if multi else []) + table.names
    return write_csv(path, header if table.has_header else None, rows, table.dialect)
