"""The scenario matrix's shared parts (issue 12): the kinds of data a user brings, made here,
and one scenario's checks. tests/test_scenarios.py runs the image kinds, test_scenarios_tables.py
the table kinds: two files, so that the matrix runs on two test processes (``--dist loadfile``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vaelab
from browser_kit import launch_chromium
from vaelab.errors import VaelabError
from vaelab.models import MODELS

FASHION = Path("/usr/share/datasets/fashion-mnist")
FAMILIES = sorted(MODELS)
NEEDS_LABELS = {"cvae", "guided-vae"}


@dataclass
class Kind:
    """One kind of user data: the options that load it and what it is."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    image: bool = False
    labels: bool = True
    channels: int = 1


def _blobs(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs at one of three positions: (n, size, size) in [0, 1] and the position."""
    yy, xx = np.mgrid[0:size, 0:size]
    y = rng.integers(0, 3, n)
    cx = np.array([size * 0.25, size * 0.5, size * 0.75])[y] + rng.normal(0, 0.5, n)
    cy = rng.uniform(size * 0.3, size * 0.7, n)
    img = np.exp(-((xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2)
                 / (2 * (size / 6) ** 2))
    return img.astype(np.float32), y


def _table(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 3, (3, d))
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def _write_folder(root: Path, rng: np.random.Generator, color: bool) -> None:
    """Two classes of blob images in mixed sizes and formats."""
    from PIL import Image

    for k, cls in enumerate(["left", "right"]):
        (root / cls).mkdir(parents=True)
        for i in range(24):
            size = int(rng.integers(12, 20))
            img, _ = _blobs(rng, 1, size)
            a = img[0]
            if k:
                a = a[:, ::-1]
            u8 = (a * 255).astype(np.uint8)
            fmt = i % 4
            if color:
                rgb = np.stack([u8, u8[::-1], 255 - u8], -1).astype(np.uint8)
                im = Image.fromarray(rgb, "RGB")
                if fmt == 0:
                    im.save(root / cls / f"{i}.jpg", quality=90)
                elif fmt == 1:  # palette with a transparent entry
                    p = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
                    p.info["transparency"] = 0
                    p.save(root / cls / f"{i}.png", transparency=0)
                elif fmt == 2:  # RGBA
                    rgba = np.concatenate([rgb, np.full((*u8.shape, 1), 200, np.uint8)], -1)
                    Image.fromarray(rgba, "RGBA").save(root / cls / f"{i}.png")
                else:
                    im.save(root / cls / f"{i}.png")
            else:
                if fmt == 0:
                    Image.fromarray(u8, "L").save(root / cls / f"{i}.jpg", quality=90)
                elif fmt == 1:  # 16-bit greyscale PNG
                    Image.fromarray((a * 65535).astype(np.uint16)).save(root / cls / f"{i}.png")
                elif fmt == 2:  # palette PNG
                    Image.fromarray(u8, "L").convert("P").save(root / cls / f"{i}.png")
                else:
                    Image.fromarray(u8, "L").save(root / cls / f"{i}.png")


def make_kinds(tmp_path_factory) -> dict[str, Kind]:
    """Every kind of user data, made once in a temporary folder."""
    root = tmp_path_factory.mktemp("userdata")
    rng = np.random.default_rng(0)
    out: dict[str, Kind] = {}
    out["digits"] = Kind("digits", {"dataset": "digits", "subset": 300}, image=True)
    out["iris"] = Kind("iris", {"dataset": "iris"})
    if FASHION.exists():
        out["fashion-mnist"] = Kind("fashion-mnist", {"dataset": "fashion-mnist",
                                                      "subset": 300}, image=True)
    x, y = _table(rng, 150, 5)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lines = ["a,b,c,d,e,species"] + [",".join([*(f"{v:.4f}" for v in row), s])
                                     for row, s in zip(x, names, strict=True)]
    (root / "labelled.csv").write_text("\n".join(lines) + "\n")
    out["csv-text-labels"] = Kind("csv-text-labels", {"data": str(root / "labelled.csv"),
                                                      "label_column": "species"})
    x, _ = _table(rng, 150, 7)
    np.savetxt(root / "plain.csv", x, delimiter=",", header="p,q,r,s,t,u,v", comments="")
    out["csv-no-labels"] = Kind("csv-no-labels", {"data": str(root / "plain.csv")}, labels=False)
    img, _ = _blobs(rng, 200, 11)  # an odd size
    np.save(root / "images.npy", img)
    out["npy-images"] = Kind("npy-images", {"data": str(root / "images.npy")}, image=True,
                             labels=False)
    x, y = _table(rng, 150, 6)
    np.savez(root / "table.npz", x=x, y=y)
    out["npz-table"] = Kind("npz-table", {"data": str(root / "table.npz")})
    _write_folder(root / "grey", rng, color=False)
    out["grey-folder"] = Kind("grey-folder", {"data": str(root / "grey"), "image_size": [12]},
                              image=True)
    _write_folder(root / "colour", rng, color=True)
    out["rgb-folder"] = Kind("rgb-folder", {"data": str(root / "colour"), "image_size": [12, 14]},
                             image=True, channels=3)  # colour kept by --color auto
    return out


KIND_NAMES = ["digits", "iris", "fashion-mnist", "csv-text-labels", "csv-no-labels",
              "npy-images", "npz-table", "grey-folder", "rgb-folder"]
IMAGE_KINDS = {"digits", "fashion-mnist", "npy-images", "grey-folder", "rgb-folder"}


def cases(kind_names: list[str]) -> list[tuple[str, str, str]]:
    """(kind, family, arch) for every family; image kinds with both nets."""
    return [(k, f, a) for k in kind_names for f in FAMILIES
            for a in (("mlp", "conv") if k in IMAGE_KINDS else ("mlp",))]


FINISHED: dict[str, Path] = {}
"""Report of every scenario finished in this test process, by ``kind-family-arch``."""


def expected_figures(kind: Kind, family: str, latent: int, labels: int) -> set[str]:
    """The figures that apply to a run of this kind (figures.py decides the same way)."""
    names = {"training_curves", "reconstructions", "samples", "samples_gmm", "latent_scatter",
             "latent_histograms"}
    if latent > 2:
        names.add("latent_tsne")
    if kind.name.startswith("csv"):  # a table read by column: its per-column fit
        names.add("column_costs")
    if kind.image:
        names |= {"interpolation", "latent_manifold" if latent == 2 else "latent_traversals"}
        if labels >= 3:
            names.add("attribute_vectors")
        if family == "dae":
            names.add("denoising")
    return names


def _not_blank(png: Path) -> bool:
    import matplotlib.image as mpimg

    a = mpimg.imread(png)[..., :3]
    return a.std() > 0.02 and a.shape[0] > 50 and a.shape[1] > 50


def run_scenario(kinds: dict[str, Kind], kind_name: str, family: str, arch: str,
                 tmp_path_factory) -> None:
    """Train one scenario for two epochs and check its run, figures, report and explorer."""
    if kind_name not in kinds:
        pytest.skip(f"{FASHION} is missing (Debian package dataset-fashion-mnist)")
    kind = kinds[kind_name]
    out = tmp_path_factory.mktemp("runs") / f"{kind_name}-{family}-{arch}"
    latent = 2 if arch == "mlp" else 3
    opts = {**kind.options, "model": family, "arch": arch, "latent_dim": latent,
            "hidden": [32], "epochs": 2, "batch_size": 32, "progress": False,
            "eval_k": 5, "out": str(out), "threads": 1, "prior_epochs": 1}
    if family in NEEDS_LABELS and not kind.labels:
        with pytest.raises(VaelabError, match=f"model '{family}' needs labels") as err:
            vaelab.train(None, log=None, **opts)
        assert "\n" not in str(err.value)
        assert not (out / "run.json").exists() or \
            json.loads((out / "run.json").read_text())["status"] != "running"
        return
    run = vaelab.train(None, log=None, **opts)
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "finished", status
    shape = run.model.input_shape
    if kind.image and arch == "conv":
        assert len(shape) == 3 and shape[0] == kind.channels
    # every training phase ran its epochs: 2 (the run's), or its own count (a code prior's 1)
    assert len(run.history) == sum(p.epochs or 2 for p in run.model.phases())
    assert np.isfinite(run.history[-1]["train_loss"])
    index = json.loads((out / "figures" / "index.json").read_text())
    labels = run.data.num_classes or 0
    want = expected_figures(kind, family, run.model.latent_dim, labels)
    assert set(Path(n).stem for n in index) == want
    for name in index:
        assert _not_blank(out / "figures" / name), name
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= len(index)
    _check_explorer(run, kind)
    FINISHED[f"{kind_name}-{family}-{arch}"] = out / "report.html"


def _check_explorer(run, kind: Kind) -> None:
    from fastapi.testclient import TestClient

    from vaelab.explorer import create_app

    client = TestClient(create_app(run.path))
    info = client.get("/api/info").json()
    assert info["latent_dim"] == run.model.latent_dim
    assert info["kind"] == ("image" if len(run.model.input_shape) == 3 else "tabular")
    body: dict[str, Any] = {"z": [0.0] * run.model.latent_dim}
    if info["needs_label"]:
        body["label"] = 1
    r = client.post("/api/decode", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    if info["kind"] == "image":
        c, h, w = out["shape"]
        assert c == kind.channels and len(out["data"]) == c * h * w
        assert all(0 <= v <= 1 for v in out["data"])
    elif run.model.spec.columns is not None:  # a table by column: one entry per column
        assert [c["name"] for c in out["columns"]] == run.data.test.feature_names
    else:
        assert len(out["values"]) == run.model.input_shape[0]


def open_reports(kind_names: list[str]) -> None:
    """Open every finished scenario report of these kinds in headless Chromium; fail on
    a console error or an image that did not load."""
    from playwright.sync_api import sync_playwright

    reports = {n: p for n, p in FINISHED.items() if any(n.startswith(f"{k}-") for k in kind_names)}
    if not reports:
        pytest.skip("run together with the scenario matrix (no finished scenario in this run)")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for name, path in reports.items():
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
                assert widths and min(widths) > 50, name
                assert not errors, (name, errors)
        finally:
            browser.close()
