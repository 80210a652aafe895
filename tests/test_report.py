"""The report: self-contained, every figure embedded, loads in Chromium with no request out."""

import base64
import re
from html.parser import HTMLParser

import pytest

import vaelab
from vaelab.report.compare import write_compare


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a:
                self.urls.append(a[key])
        if tag == "img":
            self.imgs.append(a.get("src", ""))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return vaelab.train(dataset="digits", latent_dim=3, epochs=2, hidden=[32], progress=False,
                        log=None, eval_k=5, out=str(tmp_path_factory.mktemp("r") / "run"))


def test_report_embeds_every_figure_and_loads_nothing(run):
    text = (run.path / "report.html").read_text()
    parser = Collector()
    parser.feed(text)
    pngs = sorted(p.name for p in (run.path / "figures").glob("*.png"))
    assert len(parser.imgs) == len(pngs) >= 8
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in parser.imgs}
    assert embedded == {(run.path / "figures" / p).read_bytes() for p in pngs}
    assert all(u.startswith("data:") or u.startswith("#") for u in parser.urls)
    assert not re.search(r"https?://", text.replace("http://www.w3.org", ""))


def test_compare_report(run, tmp_path):
    out = write_compare([run.path, run.path], tmp_path / "c.html")
    text = out.read_text()
    assert text.count("data:image/png;base64,") >= 2 * 8 and "neg_elbo" in text


@pytest.mark.browser
def test_report_renders_in_chromium_offline(run):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((run.path / "report.html").as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        browser.close()
    assert requests == [(run.path / "report.html").as_uri()]
    assert widths and all(w > 100 for w in widths)
