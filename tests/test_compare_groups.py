"""compare.html and the sweep page rank runs only within a group of comparable runs (same data,
likelihood and preprocessing) and never put the curves of different data on one axis."""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import vaelab
from vaelab.report.compare import (
    comparison_group,
    curve_panels,
    labels,
    render_compare,
    write_compare,
)
from vaelab.report.sweep import metric_figure

TINY = {"epochs": 1, "hidden": [16], "eval_k": 10, "progress": False, "log": None,
        "report": False}


class Tables(HTMLParser):
    """Rows of every table as lists of (class, text) cells, and every image's alt text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self.alts: list[str] = []
        self._cell: list[str] | None = None
        self._cls = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._cls = [], a.get("class") or ""
        elif tag == "img":
            self.alts.append(a.get("alt", ""))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cls, "".join(self._cell)))
            self._cell = None


def metric_rows(text: str) -> dict[str, list[tuple[str, str]]]:
    """The compare page's metrics table: metric name -> the runs' (class, text) cells."""
    page = Tables()
    page.feed(text)
    start = next(i for i, r in enumerate(page.rows) if r and r[0][1] == "test metric")
    return {r[0][1]: r[1:] for r in page.rows[start + 1 :] if r}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("groups")
    out = {}
    for name, kw in {"digits_a": {"dataset": "digits", "subset": 300, "beta": 1.0},
                     "digits_b": {"dataset": "digits", "subset": 300, "beta": 0.5},
                     "iris": {"dataset": "iris", "hidden": [8]}}.items():
        out[name] = vaelab.train(model="vae", latent_dim=2, out=str(root / name),
                                 **{**TINY, **kw}).path
    return out


def test_comparison_group_names_data_likelihood_and_preprocessing(runs):
    cfg = json.loads((runs["iris"] / "config.json").read_text())
    assert comparison_group(cfg) == "iris · gaussian likelihood · standardize preprocessing"
    digits = [comparison_group(json.loads((runs[k] / "config.json").read_text()))
              for k in ("digits_a", "digits_b")]
    assert digits[0] == digits[1] and digits[0].startswith("digits · bernoulli likelihood")
    assert comparison_group({"data": {"data": "/x/table.csv", "dataset": None},
                             "resolved": {"likelihood": "gaussian"}}) == \
        "/x/table.csv · gaussian likelihood"
    assert comparison_group({}) == "unknown data · unknown likelihood"


def test_best_is_marked_only_among_runs_on_the_same_data(runs, tmp_path):
    order = [runs["iris"], runs["digits_a"], runs["digits_b"]]
    text = write_compare(order, tmp_path / "c.html").read_text()
    rows = metric_rows(text)
    iris_group = comparison_group(json.loads((runs["iris"] / "config.json").read_text()))
    assert rows["compared within"][0][1] == iris_group
    marked_somewhere = False
    for key, cells in rows.items():
        flags = ["best" in cls for cls, _ in cells]
        assert not flags[0], key  # Iris has no other Iris run to beat
        marked_somewhere |= any(flags)
    # iris's -ELBO is far lower than digits', yet the best -ELBO is a digits run
    iris_elbo, *digits_elbo = (json.loads((r / "metrics.json").read_text())["test"]["neg_elbo"]
                               for r in order)
    assert iris_elbo < min(digits_elbo)
    flags = ["best" in cls for cls, _ in rows["neg_elbo"]]
    assert flags[1:] == [digits_elbo[0] <= digits_elbo[1], digits_elbo[1] <= digits_elbo[0]]
    assert marked_somewhere and "chosen only among runs on the same data" in text
    # one curve plot per group, titled with its data and likelihood
    page = Tables()
    page.feed(text)
    curve_alts = [a for a in page.alts if a.startswith("training curves")]
    assert len(curve_alts) == 2
    assert any("iris · gaussian likelihood" in a for a in curve_alts)
    assert any("digits · bernoulli likelihood" in a for a in curve_alts)


def test_curve_panels_one_figure_per_group(runs):
    from vaelab.plots.common import close

    order = [runs["digits_a"], runs["iris"], runs["digits_b"]]
    groups = [comparison_group(json.loads((r / "config.json").read_text())) for r in order]
    panels = curve_panels(order, labels(order), groups)
    try:
        assert [label for label, _ in panels] == [groups[0], groups[1]]
        for label, fig in panels:
            assert fig._suptitle.get_text() == label
            legend_names = {t.get_text() for t in fig.axes[1].get_legend().get_texts()}
            assert legend_names == ({"digits_a", "digits_b"} if "digits" in label else {"iris"})
    finally:
        for _, fig in panels:
            close(fig)


def test_no_best_when_no_group_has_two_runs(runs, tmp_path):
    text = render_compare([runs["digits_a"], runs["iris"]])
    rows = metric_rows(text)
    assert not any("best" in cls for cells in rows.values() for cls, _ in cells)
    assert "No run is marked best: no two runs share data, likelihood and preprocessing" in text
    # two runs on the same data still get a best mark (and one curve plot)
    copy = tmp_path / "again" / "digits_a"
    shutil.copytree(runs["digits_a"], copy)
    text = render_compare([runs["digits_a"], copy])
    assert "class='num best'" in text and "compared within" not in text
    page = Tables()
    page.feed(text)
    assert len([a for a in page.alts if a.startswith("training curves")]) == 1


def test_sweep_over_datasets_groups_its_panels(tmp_path):
    root = vaelab.sweep(None, {"dataset": ["digits", "iris"], "beta": ["0.5", "1"]},
                        out=tmp_path / "s", log=None, epochs=1, hidden=[8], eval_k=0,
                        subset=300)
    figs = root / "figures"
    assert (figs / "metrics_vs_beta.png").exists()
    assert not (figs / "metrics_vs_dataset.png").exists()  # it only separates the groups
    text = (root / "sweep.html").read_text()
    assert "compared within" in text and "iris · gaussian likelihood" in text
    # the figure builder: one block of panels per group, each titled with its group
    rows = [{"dataset": d, "beta": b, "neg_elbo": v, "run": f"dataset={d}_beta={b}"}
            for d, b, v in [("digits", "0.5", 80.0), ("digits", "1", 85.0),
                            ("iris", "0.5", 5.0), ("iris", "1", 6.0)]]
    groups = ["digits · bernoulli likelihood"] * 2 + ["iris · gaussian likelihood"] * 2
    fig = metric_figure("beta", ["0.5", "1"], {"dataset": ["digits", "iris"],
                                               "beta": ["0.5", "1"]},
                        rows, ["neg_elbo"], groups)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert len(titles) == 2
    assert any(t.replace("\n", " ").endswith(groups[0]) for t in titles)
    assert any(t.replace("\n", " ").endswith(groups[2]) for t in titles)
    lines = {ax.get_title(): [tuple(ln.get_ydata()) for ln in ax.get_lines()] for ax in fig.axes}
    assert all(len(v) == 1 for v in lines.values())  # each panel holds its own data only
