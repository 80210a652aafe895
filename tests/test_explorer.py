"""The latent explorer: API validation, a load test, and the real page in headless Chromium."""

import contextlib
import math
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

import vaelab
from browser_kit import launch_chromium
from vaelab.explorer import create_app


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return vaelab.train(dataset="digits", latent_dim=3, epochs=3, hidden=[32], progress=False,
                        log=None, eval_k=5, report=False,
                        out=str(tmp_path_factory.mktemp("e") / "digits"))


@pytest.fixture(scope="module")
def client(digits_run):
    return TestClient(create_app(digits_run.path))


def test_info_and_points(client):
    info = client.get("/api/info").json()
    assert info["latent_dim"] == 3 and info["projection"] == "pca"
    assert "PCA projection" in info["projection_note"] and info["kind"] == "image"
    pts = client.get("/api/points").json()
    assert len(pts["x"]) == len(pts["y"]) == len(pts["labels"]) == info["n_points"]
    assert "/api/decode" in client.get("/openapi.json").json()["paths"]


def test_decode_encode_interpolate_sample(client):
    r = client.post("/api/decode", json={"z": [0.1, -0.2, 0.3]}).json()
    assert r["output"]["shape"] == [1, 8, 8] and len(r["output"]["data"]) == 64
    assert all(0 <= v <= 1 for v in r["output"]["data"])
    p = client.post("/api/decode", json={"position": [0.5, -0.5]}).json()
    assert len(p["z"]) == 3 and p["position"] == pytest.approx([0.5, -0.5], abs=1e-4)
    e = client.post("/api/encode", json={"indices": [0, 5]}).json()
    assert len(e["z"]) == 2 and len(e["inputs"]) == 2
    i = client.post("/api/interpolate", json={"a": 0, "b": 5, "steps": 6,
                                              "method": "slerp"}).json()
    assert len(i["outputs"]) == 6
    s = client.post("/api/sample", json={"n": 4, "seed": 1}).json()
    assert len(s["outputs"]) == 4 and len(s["z"][0]) == 3


BAD = [
    ("/api/decode", {"z": [0.0, 1.0]}, 422, "latent has 3 dimensions"),
    ("/api/decode", {"z": [0.0, "NaN", 1.0]}, 422, "finite"),
    ("/api/decode", {"z": [0.0, 1e400, 1.0]}, 422, None),
    ("/api/decode", {}, 422, "exactly one of z"),
    ("/api/decode", {"z": [0, 0, 0], "position": [0, 0]}, 422, "exactly one of z"),
    ("/api/decode", {"z": [0, 0, 1e6]}, 422, "within"),
    ("/api/decode", {"z": "abc"}, 422, None),
    ("/api/decode", {"z": [0, 0, 0], "extra": 1}, 422, None),
    ("/api/encode", {"indices": [10**6]}, 422, "outside"),
    ("/api/encode", {"indices": list(range(300))}, 422, None),
    ("/api/encode", {"indices": [-1]}, 422, None),
    ("/api/interpolate", {"a": 0, "b": 1, "steps": 1000}, 422, None),
    ("/api/interpolate", {"a": 0, "b": 1, "method": "cubic"}, 422, None),
    ("/api/sample", {"n": 100000}, 422, None),
    ("/api/sample", {"n": 0}, 422, None),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD)
def test_bad_inputs_are_refused(client, path, body, status, message):
    import json

    raw = json.dumps(body, allow_nan=True)
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    if message:
        assert message in r.text


def test_oversized_body_is_refused(client):
    big = {"z": [0.0] * 3, "pad": "x" * 100_000}
    r = client.post("/api/decode", json=big)
    assert r.status_code == 413


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(run_path):
    """The explorer of ``run_path`` on a free local port, in a thread: yields its URL."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(run_path), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(digits_run):
    yield from _serve(digits_run.path)


def test_concurrent_decode_load(server):
    import httpx

    def one(i: int) -> float:
        t0 = time.perf_counter()
        r = httpx.post(f"{server}/api/decode", json={"z": [math.sin(i), 0.1, -0.3]},
                       timeout=10)
        assert r.status_code == 200
        return time.perf_counter() - t0

    with ThreadPoolExecutor(8) as pool:
        lat = list(pool.map(one, range(200)))
    assert len(lat) == 200
    p95 = statistics.quantiles(lat, n=20)[-1]
    assert p95 < 2.0, p95  # bounded: no request hangs behind the model lock



@pytest.mark.browser
def test_page_click_and_slider_change_the_decoded_image(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        hosts = set()
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        pixels = "() => Array.from(document.getElementById('decoded').getContext('2d')" \
                 ".getImageData(0, 0, 196, 196).data.filter((v, i) => i % 4 === 0))" \
                 ".join(',')"
        before = page.evaluate(pixels)
        box = page.locator("#scatter").bounding_box()
        page.mouse.click(box["x"] + 40, box["y"] + 40)
        page.wait_for_function(f"({pixels})() !== {before!r}", timeout=10000)
        after_click = page.evaluate(pixels)
        assert after_click != before
        slider = page.locator("#slider-0")
        slider.fill("3.5")
        page.wait_for_function(f"({pixels})() !== {after_click!r}", timeout=10000)
        page.locator("#resample").click()
        assert page.locator("#samples canvas").count() == 12
        browser.close()
    assert hosts == {server.split("/")[2]}


@pytest.fixture(scope="module")
def wide_server(tmp_path_factory):
    """The explorer of a run on 12 x 20 colour images (wider than tall)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / "photos" / cls).mkdir(parents=True)
        for i in range(30):
            Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(
                root / "photos" / cls / f"{i}.png")
    run = vaelab.train(data=str(root / "photos"), latent_dim=2, epochs=1, hidden=[16],
                       progress=False, log=None, eval_k=2, report=False, out=str(root / "run"))
    yield from _serve(run.path)


@contextlib.contextmanager
def _clicked_page(url: str, until: str, height: int = 1000):
    """A headless Chromium page of the explorer at ``url`` after a click on the scatter has
    decoded a position (``until``: a JavaScript condition that holds once it has)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": height})
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=20000)
        box = page.locator("#scatter").bounding_box()
        page.mouse.click(box["x"] + 60, box["y"] + 60)
        page.wait_for_function(until, timeout=10000)
        yield page
        browser.close()


@pytest.mark.browser
def test_images_keep_their_shape_in_the_explorer(wide_server):
    """A 12 x 20 image is drawn 20:12 wide in the decoded and hovered panels and in the sample
    strip (they were squares, stretching every non-square image)."""
    with _clicked_page(wide_server, "document.getElementById('decoded').height !== 196") as page:
        size = page.evaluate("() => ['decoded'].map(id => [document.getElementById(id).width,"
                             " document.getElementById(id).height])")
        assert size == [[196, round(196 * 12 / 20)]]
        shown = [page.locator("#samples canvas").nth(i).bounding_box() for i in range(3)]
        for b in shown:
            assert b["width"] / b["height"] == pytest.approx(20 / 12, rel=0.06)


@pytest.fixture(scope="module")
def wide_table_server(tmp_path_factory):
    """The explorer of a run on a 150-column table with a text column."""
    root = tmp_path_factory.mktemp("widetable")
    rng = np.random.default_rng(0)
    names = [f"gene_{i:03d}" for i in range(150)]
    lines = [",".join([*names, "tissue"])]
    for _ in range(120):
        lines.append(",".join([*(f"{v:.3f}" for v in rng.normal(size=150)),
                               str(rng.choice(["liver", "brain"]))]))
    (root / "t.csv").write_text("\n".join(lines) + "\n")
    run = vaelab.train(data=str(root / "t.csv"), latent_dim=2, epochs=1, hidden=[16],
                       progress=False, log=None, eval_k=2, report=False, out=str(root / "run"))
    yield from _serve(run.path)


@pytest.mark.browser
def test_a_wide_table_scrolls_inside_its_panels_not_the_page(wide_table_server):
    """150 columns: the decoded and hovered rows scroll inside boxes of bounded height, the
    right-hand column stays beside the scatter and the page never scrolls sideways (it did:
    a row's table widened the page and pushed the panels under the scatter)."""
    with _clicked_page(wide_table_server, "document.getElementById('decoded').height > 1000",
                       height=900) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 1300
        left, right = (page.locator(s).bounding_box() for s in ("#left", "#right"))
        assert right["x"] >= left["x"] + left["width"] and abs(right["y"] - left["y"]) < 2
        view = page.locator("#decoded").locator("xpath=..").bounding_box()
        assert view["height"] <= 425
        page.locator("#resample").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1300
