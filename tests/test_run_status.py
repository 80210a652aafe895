"""run.json after failures past training, redo commands, file modes, colour tiles (issue 12)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab import figures
from vaelab.cli.main import main
from vaelab.errors import RunFailed
from vaelab.plots import image_grid
from vaelab.plots.common import tile


def _status(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.fixture
def broken_figure():
    """A registered figure that fails the way the colour bug did."""

    @figures.register_figure("zz_broken", "Broken", "fails", order=999)
    def _broken(run):
        raise TypeError("Invalid shape (329, 3, 65) for image data")

    yield
    figures.FIGURES[:] = [f for f in figures.FIGURES if f.name != "zz_broken"]


def test_failed_figures_mark_the_run_failed_and_keep_the_model(quick, broken_figure, capsys):
    out = Path(quick["out"])
    with pytest.raises(RunFailed, match="drawing the figures failed") as info:
        vaelab.train(None, log=None, **quick)
    msg = str(info.value)
    assert "\n" not in msg and f"vaelab plot {out}" in msg and "Invalid shape" in msg
    st = _status(out)
    assert st["status"] == "failed" and st["stage"] == "plot" and st["trained"] is True
    assert st["redo"] == [f"vaelab plot {out}", f"vaelab report {out}"]
    assert "TypeError: Invalid shape" in st["message"]
    assert "Traceback" in (out / "error.log").read_text()
    # the trained model, the history and the metrics are kept and usable
    for name in ("model.safetensors", "model.json", "history.csv", "metrics.json"):
        assert (out / name).exists(), name
    run = vaelab.Run.load(out)
    assert run.reconstruct(np.asarray(run.data.test.x[:3])).shape == (3, 1, 8, 8)

    # the redo commands bring it to finished: while the figure still fails the run stays failed
    with pytest.raises(TypeError):
        main(["plot", str(out)])
    assert _status(out)["status"] == "failed"
    figures.FIGURES[:] = [f for f in figures.FIGURES if f.name != "zz_broken"]
    with pytest.raises(SystemExit) as ok:
        main(["plot", str(out)])
    assert ok.value.code == 0
    st = _status(out)
    assert st["status"] == "failed" and st["redo"] == [f"vaelab report {out}"]
    with pytest.raises(SystemExit) as ok:
        main(["report", str(out)])
    assert ok.value.code == 0
    assert _status(out) == {"status": "finished", "epochs": 3, "best_epoch": st["best_epoch"]}
    assert not (out / "error.log").exists()
    assert "finished" in (out / "report.html").read_text()


def test_failed_evaluation_names_every_step_to_redo(quick, monkeypatch):
    import vaelab.pipeline as pipeline

    def boom(*a, **k):
        raise ValueError("evaluation exploded\nsecond line")

    monkeypatch.setattr(pipeline, "evaluate_run", boom)
    out = Path(quick["out"])
    with pytest.raises(RunFailed, match="the evaluation failed"):
        vaelab.train(None, log=None, **quick)
    st = _status(out)
    assert st["stage"] == "evaluate" and st["message"] == "ValueError: evaluation exploded"
    assert [r.split()[1] for r in st["redo"]] == ["evaluate", "plot", "report"]
    assert (out / "model.safetensors").exists()


def test_failed_replacement_leaves_the_previous_run(quick, broken_figure):
    out = Path(quick["out"])
    figures.FIGURES[:] = [f for f in figures.FIGURES if f.name != "zz_broken"]
    vaelab.train(None, log=None, **quick)
    before = (out / "model.safetensors").read_bytes()

    @figures.register_figure("zz_broken", "Broken", "fails", order=999)
    def _broken(run):
        raise TypeError("boom")

    with pytest.raises(RunFailed, match=r"previous run in .* is untouched"):
        vaelab.train(None, log=None, force=True, **{**quick, "epochs": 2})
    assert _status(out)["status"] == "finished"
    assert (out / "model.safetensors").read_bytes() == before


def test_a_failure_while_training_is_recorded(quick, monkeypatch):
    from vaelab.train import loop

    def boom(self, *a, **k):
        raise RuntimeError("out of memory in a strange place")

    monkeypatch.setattr(loop.Trainer, "fit", boom)
    with pytest.raises(RuntimeError):
        vaelab.train(None, log=None, **quick)
    st = _status(Path(quick["out"]))
    assert st["status"] == "failed"
    assert st["message"] == "RuntimeError: out of memory in a strange place"


def test_run_files_follow_the_umask(quick):
    old = os.umask(0o027)
    try:
        run = vaelab.train(None, log=None, **quick)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.path.iterdir() if p.is_file()}
    assert modes["model.safetensors"] == 0o640, modes
    assert set(modes.values()) == {0o640}, modes
    ckpt = next(run.path.glob("checkpoints/*/state.safetensors"))
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o640


def test_colour_tiles_and_grids_keep_their_channels():
    rgb = np.zeros((4, 3, 5, 6), np.float32)
    rgb[:, 0] = 1.0  # pure red
    canvas = tile(rgb, ncols=2)
    assert canvas.shape == (11, 13, 3)
    assert canvas[0, 0].tolist() == [1.0, 0.0, 0.0]
    grey = tile(np.full((2, 1, 5, 6), 0.5, np.float32), ncols=2)
    assert grey.shape == (5, 13) and grey[0, 0] == 0.5
    multi = tile(np.stack([np.zeros((5, 6)), np.ones((5, 6))])[None].astype(np.float32), 1)
    assert multi.shape == (5, 6) and np.allclose(multi, 0.5)  # 2 channels: their grey mean
    fig = image_grid(rgb, ncols=2, value_range=(0, 1))
    shown = fig.axes[0].images[0].get_array()
    # shown as RGBA (opaque), the colour channels unchanged
    assert shown.shape == (11, 13, 4) and shown[0, 0].tolist() == [1.0, 0.0, 0.0, 1.0]
