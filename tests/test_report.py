"""The report: self-contained, every figure embedded with its note, loads in Chromium offline."""

import base64
import html
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import vaelab
from browser_kit import launch_chromium
from vaelab.cli.main import cli, main
from vaelab.errors import RunDirError
from vaelab.report import render_report
from vaelab.report.compare import labels, write_compare

VOID = {"meta", "img", "br", "hr", "input", "link"}


class Page(HTMLParser):
    """Collects URLs and images and checks that every opened tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.imgs: list[str] = []
        self.ids: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href") if k in a]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaelab.train(dataset="digits", latent_dim=2, epochs=2, hidden=[32], progress=False,
                        log=None, eval_k=0, sample_every_epoch=True,
                        out=str(tmp_path_factory.mktemp("a") / "run"))


def test_report_embeds_every_figure_with_its_note(run):
    text = (run.path / "report.html").read_text()
    page = parse(text)
    figures = run.path / "figures"
    pngs = sorted(figures.glob("*.png")) + sorted((figures / "epochs").glob("*.png"))
    assert len(pngs) >= 10
    assert len(page.imgs) == len(pngs)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in page.imgs}
    assert embedded == {p.read_bytes() for p in pngs}
    index = json.loads((figures / "index.json").read_text())
    assert set(index) == {p.name for p in figures.glob("*.png")}
    for meta in index.values():
        assert html.escape(meta["how_to_read"]) in text
        assert f"<b>{html.escape(meta['title'])}.</b>" in text
    assert all(u.startswith("data:") or u.startswith("#") for u in page.urls)
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "@import" not in text


def test_report_sections_metrics_history_and_config(run):
    text = (run.path / "report.html").read_text()
    page = parse(text)
    assert {"summary", "metrics", "training", "figures", "config"} <= set(page.ids)
    test = json.loads((run.path / "metrics.json").read_text())["test"]
    for key in ("neg_elbo", "kl", "active_units", "knn_accuracy"):
        assert f"test.{key}</td>" in text
    assert f"{test['neg_elbo']:.4g}" in text
    assert "History: 2 epoch(s)" in text and "Samples after every epoch" in text
    assert re.search(r"<tr class=diff><td>hidden</td><td>32 <span class=note>\(default 256, "
                     r"128\)", text)
    assert "<tr><td>latent_dim</td><td>2</td></tr>" in text  # a default is not marked
    assert f"{sum(p.numel() for p in run.model.parameters()):,}" in text
    assert "<dt>status</dt><dd>finished</dd>" in text  # written after the run is complete
    assert "likelihood, 2 epochs, seed" in text


def test_report_header_says_how_many_epochs_ran_and_why():
    """The header names the epochs trained, not only the configured count: a time budget buys
    its own number, early stopping ends before it."""
    from vaelab.report.html import _epochs_text

    cfg = {"train": {"epochs": 50}}
    assert _epochs_text(cfg, {}) == "50 epochs"  # no metrics yet
    assert _epochs_text(cfg, {"training": {"epochs_run": 50}}) == "50 epochs"
    assert _epochs_text(cfg, {"training": {"epochs_run": 48, "time_budget_s": 20.0}}) == \
        "48 epochs (time budget 20s)"
    assert _epochs_text(cfg, {"training": {"epochs_run": 12, "stopped_early": True}}) == \
        "12 of 50 epochs (stopped early)"


def test_report_of_an_unfinished_run_still_renders(run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(run.path, bare)
    for name in ("metrics.json", "history.csv", "run.json"):
        (bare / name).unlink(missing_ok=True)
    shutil.rmtree(bare / "figures")
    text = render_report(bare)
    parse(text)
    assert "Configuration" in text and "Test metrics" not in text


def test_compare_marks_differences_and_the_best_run(run, tmp_path):
    other = tmp_path / "b" / "run"
    shutil.copytree(run.path, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["beta"] = 2.0
    (other / "config.json").write_text(json.dumps(cfg))
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["test"]["neg_elbo"] -= 1.0
    (other / "metrics.json").write_text(json.dumps(metrics))
    out = write_compare([run.path, other], tmp_path / "c.html")
    text = out.read_text()
    page = parse(text)
    names = labels([run.path, other])
    assert names[0] != names[1] and names[1] == "b/run"
    n_figs = len(list((run.path / "figures").glob("*.png")))
    assert len(page.imgs) == 2 * n_figs + 1  # every figure of both runs + the curves
    assert "<tr class=diff><td>beta</td><td>1</td><td>2</td></tr>" in text
    best = f"<td class='num best'>{metrics['test']['neg_elbo']:.4g}</td>"
    assert best in text
    assert all(u.startswith("data:") or u.startswith("#") for u in page.urls)
    with pytest.raises(RunDirError, match=r"no config.json"):
        write_compare([run.path, tmp_path], tmp_path / "x.html")


def test_report_and_compare_commands(run, tmp_path, capsys):
    (run.path / "report.html").unlink()
    try:
        main(["report", str(run.path)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert (run.path / "report.html").exists()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path)])
    assert exc.value.code == 2
    assert "not a finished vaelab run" in capsys.readouterr().err
    res = CliRunner().invoke(cli, ["compare", str(run.path), str(run.path),
                                                   "--out", str(tmp_path / "c.html")])
    assert res.exit_code == 0 and (tmp_path / "c.html").exists()


@pytest.mark.browser
def test_report_and_compare_render_in_chromium_offline(run, tmp_path):
    from playwright.sync_api import sync_playwright

    pages = [run.path / "report.html", write_compare([run.path, run.path], tmp_path / "c.html")]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for path in pages:
                page = browser.new_page()
                requests: list[str] = []
                page.on("request", lambda r, seen=requests: seen.append(r.url))
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
                heading = page.inner_text("h1")
                page.close()
                assert [u for u in requests if not u.startswith("data:")] == [path.as_uri()]
                assert widths and all(w > 100 for w in widths), path
                assert heading.startswith("vaelab")
        finally:
            browser.close()
