"""The per-column likelihood and the table tasks: known answers, masked cells, score, impute,
synthetic rows, per-column metrics, files that round-trip."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vaelab
from vaelab.data import encoding
from vaelab.data.columns import Column
from vaelab.tabular.likelihood import MixedLikelihood

COLUMNS = [Column("h", "numeric"), Column("smoker", "binary", categories=["no", "yes"]),
           Column("colour", "categorical", categories=["red", "green", "blue"])]
RAW = np.array([[1.0, 0, 0], [3.0, 1, 2], [np.nan, 1, 1], [2.0, np.nan, np.nan]],
               dtype=np.float32)
FAST = {"progress": False, "threads": 1, "eval_k": 10, "lr_schedule": "constant",
        "batch_size": 16, "hidden": [32]}


def test_mixed_log_likelihood_equals_the_hand_computation():
    params = encoding.fit(RAW, COLUMNS)
    x = torch.as_tensor(encoding.transform(RAW, params))
    lik = MixedLikelihood(params["columns"])
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(len(x), 2 * lik.width, generator=gen)
    got = lik.per_column(x, p)
    loc, lv = p[:, : lik.width], p[:, lik.width :]
    # numeric: Gaussian in standardised units with the decoder's log-variance
    z = (RAW[:, 0] - params["columns"][0]["mean"]) / params["columns"][0]["std"]
    for i in (0, 1, 3):
        mu, v = float(loc[i, 0]), float(lv[i, 0])
        want = -0.5 * ((z[i] - mu) ** 2 / math.exp(v) + v + math.log(2 * math.pi))
        assert float(got[i, 0]) == pytest.approx(want, rel=1e-5)
    # binary: Bernoulli on the logit
    for i in (0, 1, 2):
        q = 1 / (1 + math.exp(-float(loc[i, 1])))
        want = math.log(q) if RAW[i, 1] else math.log(1 - q)
        assert float(got[i, 1]) == pytest.approx(want, rel=1e-5)
    # categorical: log-softmax over red, green, blue and "unknown" (all seen in training)
    s = params["columns"][2]["slot"]
    for i in (0, 1, 2):
        logp = F.log_softmax(loc[i, s : s + 4], 0)
        assert float(got[i, 2]) == pytest.approx(float(logp[int(RAW[i, 2])]), rel=1e-5)
    # missing cells add nothing, and the row's log p is the sum over its observed cells
    assert float(got[2, 0]) == float(got[3, 1]) == float(got[3, 2]) == 0.0
    torch.testing.assert_close(lik.log_prob(x, p), got.sum(1))


def test_masked_cells_do_not_change_the_loss():
    params = encoding.fit(RAW, COLUMNS)
    x = torch.as_tensor(encoding.transform(RAW, params))
    lik = MixedLikelihood(params["columns"])
    p = torch.randn(len(x), 2 * lik.width, requires_grad=True)
    base = lik.log_prob(x, p)
    other = p.detach().clone()
    other[2, 0] += 5.0  # row 2's numeric cell is missing: its mean and log-variance
    other[2, lik.width] -= 3.0
    other[3, 1] += 4.0  # row 3's binary and categorical cells are missing
    other[3, 2:6] = torch.tensor([9.0, -9.0, 3.0, 0.0])
    torch.testing.assert_close(lik.log_prob(x, other), base.detach())
    base.sum().backward()
    assert p.grad[2, 0] == 0 and p.grad[3, 1] == 0 and (p.grad[3, 2:6] == 0).all()


def test_encoding_unknown_category_and_inverse():
    train = RAW[:2]  # 'green' (code 1) never appears in these rows
    params = encoding.fit(train, COLUMNS)
    col = params["columns"][2]
    assert col["labels"] == ["red", "blue", "(unknown)"] and col["width"] == 3
    x = encoding.transform(RAW, params)
    assert x[2, col["slot"] + 2] == 1  # green -> unknown slot
    notes = encoding.unseen_notes(RAW, params, "the test split")
    assert notes == ["warning: column 'colour': value 'green' (1 row of the test split) was not "
                     "seen in training; treated as the 'unknown' category"]
    back = encoding.inverse(x, params)
    np.testing.assert_allclose(back[[0, 1, 3], 0], RAW[[0, 1, 3], 0], rtol=1e-6)
    assert back[1, 2] == 2  # blue


def _mixed_table(path, rng, n=240, missing=0.1):
    """Two clusters of rows: numbers, a yes/no column and a colour tied to the cluster."""
    k = rng.integers(0, 2, n)
    a = np.where(k, 5.0, -5.0) + rng.normal(0, 1, n)
    b = 2 * a + rng.normal(0, 1, n)
    count = np.clip(np.round(3 + k * 4 + rng.normal(0, 1, n)), 0, None).astype(int)
    smoker = np.where(k, "yes", "no")
    colour = np.array(["red", "blue"])[k]
    rows = [[f"{a[i]:.3f}", f"{b[i]:.3f}", str(count[i]), smoker[i], colour[i]]
            for i in range(n)]
    holes = rng.random((n, 5)) < missing
    for i, j in zip(*np.nonzero(holes), strict=True):
        rows[i][j] = ""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["a", "b", "count", "smoker", "colour"])
        w.writerows([[c.replace(".", ",") for c in r] for r in rows])
    return path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tab")
    path = _mixed_table(root / "t.csv", np.random.default_rng(0))
    run = vaelab.train(None, log=None, data=str(path), model="vae", latent_dim=2, epochs=60,
                       out=str(root / "run"), seed=0, **FAST)
    return run, path, root


def test_a_mixed_table_trains_and_reports_per_column_terms(table_run):
    run, _, _ = table_run
    h = run.history
    assert h[-1]["train_loss"] < h[0]["train_loss"] - 0.5
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["resolved"]["likelihood"] == "mixed" and cfg["preprocessing"]["kind"] == "columns"
    sec = run.metrics["columns"]
    names = [c["name"] for c in sec["per_column"]]
    assert names == ["a", "b", "count", "smoker", "colour"]
    # the columns add up to the reconstruction term (16 draws here, one per row in "test")
    assert sec["recon_sum"] == pytest.approx(run.metrics["test"]["recon"], abs=0.3)
    b = sec["per_column"][1]  # b follows the cluster: the code explains it
    assert b["nll_per_cell"] < b["nll_marginal_per_cell"] and b["rmse"] < b["rmse_marginal"]
    colour = sec["per_column"][4]
    assert colour["accuracy"] > colour["accuracy_marginal"] + 0.2
    assert (run.path / "figures" / "column_costs.png").exists()
    html = (run.path / "report.html").read_text()
    assert "<h2>Columns</h2>" in html and ">colour<" in html
    again = vaelab.Run.load(run.path)  # model.json carries the columns: same likelihood
    x = torch.as_tensor(np.asarray(run.data.test.x[:8]))
    with torch.no_grad():
        p = again.model.decode(again.model.encode(x)[0])
        want = run.model.likelihood.log_prob(x, run.model.decode(run.model.encode(x)[0]))
    torch.testing.assert_close(again.model.likelihood.log_prob(x, p), want)


def test_scores_flag_odd_rows_deterministically(table_run, tmp_path):
    from vaelab.tabular.score import score, write_scores

    run, path, _ = table_run
    lines = path.read_text().splitlines()
    odd = ["9,0;-20,0;3;yes;blue", "-5,0;-10,0;30;no;red", "6,0;-12,0;7;yes;blue",
           "5,0;10,0;7;yes;green"]
    new = tmp_path / "new.csv"
    new.write_text("\n".join([lines[0] + ";flag"] + [ln + ";0" for ln in lines[1:41]]
                             + [ln + ";1" for ln in odd[:3]] + [odd[3] + ";0"]) + "\n")
    res = score(run, new, k=20, seed=3, label_column="flag")
    assert res.metrics["roc_auc"] > 0.9 and res.metrics["anomalies"] == 3
    # colour holds two values in training (a binary column): a new one is a missing cell
    assert any("column 'colour': value 'green'" in w and "missing" in w for w in res.warnings)
    assert np.argmax(res.columns[-3]) == 2  # the count of 30 is what is odd in that row
    again = score(run, new, k=20, seed=3, label_column="flag")
    np.testing.assert_array_equal(res.score, again.score)
    out = write_scores(res, tmp_path / "scores.csv")
    head = out.read_text().splitlines()[0].split(",")
    assert head == ["row", "score", "percentile", "anomaly", "nll_a", "nll_b", "nll_count",
                    "nll_smoker", "nll_colour"]


def test_synthetic_rows_keep_names_categories_integers_and_ranges(table_run, tmp_path):
    from vaelab.cli.main import main

    run, _, _ = table_run
    out = tmp_path / "syn.csv"
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(run.path), "-n", "300", "--out", str(out), "--sampler", "gmm"])
    assert exc.value.code == 0
    rows = list(csv.reader(out.read_text().splitlines(), delimiter=";"))
    assert rows[0] == ["a", "b", "count", "smoker", "colour"] and len(rows) == 301
    body = rows[1:]
    assert {r[3] for r in body} <= {"no", "yes"} and {r[4] for r in body} == {"red", "blue"}
    counts = [r[2] for r in body]
    assert all(c.isdigit() for c in counts)  # integers stay integers
    a = np.array([float(r[0].replace(",", ".")) for r in body])
    cols = run.preprocessor.params["columns"]
    assert cols[0]["min"] - 1e-3 <= a.min() and a.max() <= cols[0]["max"] + 1e-3
    # the clusters survive: colour follows the sign of a in the generated rows
    blue = np.array([r[4] == "blue" for r in body])
    assert np.mean(blue == (a > 0)) > 0.8


def test_imputation_beats_mean_and_mode_on_iris(tmp_path, monkeypatch):
    """Iris with the species as a categorical column, 20% of cells removed at random."""
    from sklearn.datasets import load_iris

    import vaelab.figures
    from vaelab.tabular.impute import impute, write_filled

    monkeypatch.setattr(vaelab.figures, "render_figures", lambda run, names=None: [])
    d = load_iris()
    rng = np.random.default_rng(1)
    holes = rng.random((150, 5)) < 0.2
    species = np.asarray(d.target_names)[d.target]
    lines = ["sl,sw,pl,pw,species"]
    for i in range(150):
        cells = [f"{v:.1f}" for v in d.data[i]] + [species[i]]
        lines.append(",".join("" if holes[i, j] else c for j, c in enumerate(cells)))
    path = tmp_path / "iris_holes.csv"
    path.write_text("\n".join(lines) + "\n")
    run = vaelab.train(None, log=None, report=False, data=str(path), model="vae",
                       latent_dim=2, epochs=120, out=str(tmp_path / "run"), seed=0,
                       test_fraction=0.1, **FAST)
    table, filled, info = impute(run, path, k=50)
    assert info["missing"] == int(holes.sum())
    codes = filled[0]
    num = holes[:, :4]
    err_model = (codes[:, :4] - d.data)[num]
    means = np.nanmean(np.where(holes[:, :4], np.nan, d.data), 0)
    err_mean = (np.broadcast_to(means, d.data.shape) - d.data)[num]
    assert np.sqrt(np.mean(err_model**2)) < 0.7 * np.sqrt(np.mean(err_mean**2))
    cats = run.preprocessor.params["columns"][4]["categories"]
    truth = np.array([cats.index(s) for s in species])
    miss = holes[:, 4]
    observed = truth[~miss]
    mode = np.bincount(observed).argmax()
    acc_model = np.mean(codes[miss, 4] == truth[miss])
    assert acc_model > np.mean(truth[miss] == mode) + 0.2
    out = write_filled(run, table, filled, tmp_path / "filled.csv")
    text = out.read_text().splitlines()
    assert text[0] == lines[0] and all("" not in ln.split(",") for ln in text[1:])
    for i in np.flatnonzero(~holes.any(1))[:5]:  # complete rows are copied as they are
        assert text[i + 1] == lines[i + 1]
    _, multi, _ = impute(run, path, samples=3, k=20)
    assert len(multi) == 3 and not np.array_equal(multi[0], multi[1])


def test_column_fit_figure_of_a_wide_table_shows_the_least_explained_columns():
    """300 columns: the figure shows the 40 with the smallest gain over their marginal, least
    explained first, and says how many it left out (it was 10,666 px tall)."""
    from vaelab.plots.tabular import MAX_COST_ROWS, column_costs

    rng = np.random.default_rng(0)
    gains = rng.permutation(300) / 10.0
    cols = [{"name": f"gene_{i:03d}", "kind": "numeric", "nll_per_cell": 2.0 - g,
             "nll_marginal_per_cell": 2.0} for i, g in enumerate(gains)]
    fig = column_costs(cols)
    ax = fig.axes[0]
    shown = [t.get_text().split(" (")[0] for t in ax.get_yticklabels()]
    want = [f"gene_{i:03d}" for i in np.argsort(gains)[:MAX_COST_ROWS]]
    assert shown == want
    assert f"the {MAX_COST_ROWS} of 300 columns" in ax.get_title()
    assert fig.get_size_inches()[1] < 0.8 + 0.32 * MAX_COST_ROWS + 0.5
    few = column_costs(cols[:5])  # a narrow table keeps its own column order
    assert [t.get_text().split(" (")[0] for t in few.axes[0].get_yticklabels()] == \
        [f"gene_{i:03d}" for i in range(5)]


def test_long_column_names_keep_their_ends_in_figure_titles():
    from vaelab.plots.tabular import _short

    a, b = (f"categorical_column_with_long_name_{i}" for i in (3, 4))
    assert _short(a, 20) != _short(b, 20) and len(_short(a, 20)) == 20
    assert _short(a, 20).startswith("categorica") and _short(a, 20).endswith("name_3")
    assert _short("age", 20) == "age"


def test_table_panel_grids_keep_every_label_inside_the_figure():
    """Category names of 12 characters left of the first column of panels and long titles over
    the last fit inside the fixed grid (the first letters were cut off at the left edge)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vaelab.plots.tabular import distributions, reconstructions

    cats = ["gamma_value_x", "alpha_long_category", "beta", "epsilon_x", "zeta"]
    cols = [{"name": f"categorical_column_with_long_name_{i}", "kind": "categorical",
             "categories": cats} for i in range(6)] + [{"name": "income", "kind": "numeric"}]
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 5, (6, 7)).astype(float)
    codes[:, 6] = rng.normal(size=6)
    probs = [rng.dirichlet(np.ones(5), 6) for _ in range(6)] + [None]
    figs = [reconstructions(cols, codes, codes, probs, np.ones((6, 7))),
            distributions(cols, codes, codes, "generated against real")]
    for fig in figs:
        box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer())
        w, h = fig.get_size_inches()
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= w and box.y1 <= h, (box, w, h)
