"""Larger-than-memory arrays: lazy rows, chunked preprocessing, streamed training, a real cap."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import vaelab
from vaelab.data import DataConfig, Preprocessor, load_data
from vaelab.data.checks import data_errors_only
from vaelab.data.lazy import ArraySource, LazyRows, open_npy_lazy
from vaelab.errors import DataError
from vaelab.train.streaming import EpochOrder, StreamedRows


def test_lazy_rows_read_like_the_array(tmp_path, rng):
    a = rng.normal(size=(103, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    lazy = open_npy_lazy(tmp_path / "a.npy", stream="on", chunk_mb=0.0005)
    assert lazy is not None and lazy.shape == (103, 6) and lazy.chunk_rows == 21
    np.testing.assert_array_equal(lazy[5:40], a[5:40])
    np.testing.assert_array_equal(lazy[-1], a[-1])
    idx = np.array([90, 3, 4, 60, 3])
    view = lazy[idx]  # integer arrays give a lazy view, slices read
    assert isinstance(view, LazyRows)
    np.testing.assert_array_equal(np.asarray(view), a[idx])
    np.testing.assert_array_equal(view.take(np.array([1, 0]))[0:2], a[[3, 90]])
    doubled = lazy.map(lambda b: b * 2)
    np.testing.assert_array_equal(np.concatenate([c for *_, c in doubled.chunks()]), a * 2)
    np.save(tmp_path / "img.npy", a.reshape(103, 2, 3))  # (N, H, W) gains a channel
    assert open_npy_lazy(tmp_path / "img.npy", stream="on").shape == (103, 1, 2, 3)


def test_small_npy_loads_and_big_or_forced_one_streams(tmp_path, rng):
    np.save(tmp_path / "a.npy", rng.normal(size=(50, 4)).astype(np.float32))
    assert open_npy_lazy(tmp_path / "a.npy", stream="auto") is None
    assert open_npy_lazy(tmp_path / "a.npy", stream="off") is None
    assert open_npy_lazy(tmp_path / "a.npy", stream="on") is not None
    np.save(tmp_path / "f.npy", np.asfortranarray(rng.normal(size=(50, 4))))
    with pytest.raises(DataError, match="Fortran order"):
        open_npy_lazy(tmp_path / "f.npy", stream="on")


@pytest.mark.parametrize("kind", ["minmax", "standardize", "binarize"])
def test_chunked_fit_and_lazy_transform_match_in_memory(kind, rng):
    a = (rng.normal(size=(1000, 6)) * [1, 2, 3, 4, 5, 6] + 10).astype(np.float32)
    lazy = LazyRows(ArraySource(a), chunk_bytes=6 * 4 * 37)  # 37-row chunks
    eager = Preprocessor(kind).fit(a)
    chunked = Preprocessor(kind).fit(lazy)
    for key, val in eager.params.items():
        np.testing.assert_allclose(chunked.params[key], val, rtol=1e-9)
    if kind == "standardize":
        np.testing.assert_allclose(eager.params["mean"], a.astype(np.float64).mean(0), rtol=1e-9)
        np.testing.assert_allclose(eager.params["std"], a.astype(np.float64).std(0), rtol=1e-9)
    out = chunked.transform(lazy)
    assert isinstance(out, LazyRows)
    np.testing.assert_allclose(np.asarray(out), eager.transform(a), atol=1e-6)


def test_memmap_splits_stay_lazy(tmp_path, rng):
    np.save(tmp_path / "m.npy", rng.normal(size=(400, 5)).astype(np.float32))
    d = load_data(DataConfig(data=str(tmp_path / "m.npy"), stream="on", chunk_mb=0.001), seed=1)
    assert d.info["streamed"] and all(isinstance(s.x, LazyRows) for s in (d.train, d.val, d.test))
    assert len(d.train) + len(d.val) + len(d.test) == 400
    assert abs(float(np.asarray(d.train.x).mean())) < 1e-5  # standardised on train, lazily
    same = load_data(DataConfig(data=str(tmp_path / "m.npy"), stream="off"), seed=1)
    assert not same.info["streamed"]
    np.testing.assert_allclose(np.asarray(d.test.x), same.test.x, atol=1e-6)


def test_epoch_order_visits_every_row_once_chunk_by_chunk():
    gen = torch.Generator().manual_seed(0)
    order = EpochOrder(1000, 64, gen)
    rows = torch.cat([order[i : i + 100] for i in range(0, 1000, 100)]).numpy()
    assert sorted(rows.tolist()) == list(range(1000))
    chunk_ids = rows // 64
    assert (np.diff(chunk_ids) != 0).sum() == 15  # each of the 16 chunks is one contiguous run
    again = EpochOrder(1000, 64, torch.Generator().manual_seed(0))
    assert torch.equal(again[0:1000], order[0:1000])  # seeded


def test_streamed_rows_serve_batches_and_slices(rng):
    a = rng.normal(size=(300, 4)).astype(np.float32)
    s = StreamedRows(LazyRows(ArraySource(a), chunk_bytes=16 * 50), torch.device("cpu"))
    order = s.epoch_order(torch.Generator().manual_seed(3))
    for start in range(0, 300, 32):
        idx = order[start : start + 32]
        np.testing.assert_array_equal(s[idx].numpy(), a[idx.numpy()])
        assert len(s._cache) <= 2  # finished chunks are dropped
    np.testing.assert_array_equal(s[10:20].numpy(), a[10:20])


def test_streamed_training_lowers_the_loss_like_in_memory(tmp_path, rng):
    z = rng.normal(size=(3000, 2))
    x = (z @ rng.normal(size=(2, 12)) + 0.1 * rng.normal(size=(3000, 12))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    common = {"data": str(tmp_path / "x.npy"), "epochs": 4, "batch_size": 64, "hidden": [32],
              "progress": False, "report": False, "log": None}
    streamed = vaelab.train(stream="on", chunk_mb=0.01, out=str(tmp_path / "s"), **common)
    loaded = vaelab.train(stream="off", out=str(tmp_path / "m"), **common)
    assert streamed.data.info["streamed"] and not loaded.data.info["streamed"]
    for run in (streamed, loaded):
        losses = [r["train_loss"] for r in run.history]
        assert losses[-1] < losses[0] - 1
    gap = abs(streamed.metrics["test"]["neg_elbo"] - loaded.metrics["test"]["neg_elbo"])
    assert gap < 0.15 * abs(loaded.metrics["test"]["neg_elbo"])
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["data_info"]["streamed"] and cfg["data"]["stream"] == "on"


def test_reader_boundary_turns_any_failure_into_one_data_error():
    @data_errors_only("a thing")
    def reader(path):
        raise KeyError("weird\nsecond line")

    with pytest.raises(DataError, match=r"^f\.bin cannot be read as a thing \(KeyError: 'weird"):
        reader("f.bin")


CHILD = textwrap.dedent("""
    import json, resource, sys
    path, cap, out, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import vaelab
    from vaelab.errors import VaelabError
    try:
        run = vaelab.train(data=path, stream=stream, chunk_mb=8, preprocess="minmax", epochs=2,
                           batch_size=1024, hidden=[16], latent_dim=2, progress=False,
                           report=False, threads=2, eval_k=0, out=out, log=None)
        res = {"ok": True, "loss": [r["train_loss"] for r in run.history],
               "train": run.data.info["sizes"]["train"], "streamed": run.data.info["streamed"]}
    except VaelabError as exc:
        res = {"ok": False, "error": str(exc)}
    peak = [ln for ln in open("/proc/self/status") if ln.startswith("VmPeak")][0].split()[1]
    res["vm_peak"] = int(peak) * 1024
    print(json.dumps(res))
""")


def _child(tmp_path: Path, npy: Path, cap: int, out: str, stream: str) -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), str(npy), str(cap),
                           str(tmp_path / out), stream],
                          capture_output=True, text=True, timeout=600,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                               "MALLOC_ARENA_MAX": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sparse_npy(path: Path, rows: int) -> None:
    """A (rows, 1, 32, 32) float32 .npy written sparsely: holes are zeros, a few blocks real."""
    row = 32 * 32 * 4
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, 1, 32, 32)})
        off = fh.tell()
        fh.truncate(off + rows * row)
        rng = np.random.default_rng(0)
        for start in range(0, rows, rows // 16):
            fh.seek(off + start * row)
            fh.write(rng.random((min(2048, rows - start), 1, 32, 32), dtype=np.float32).tobytes())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_npy_twice_the_address_space_cap_trains(tmp_path):
    # 1. what a streamed run needs (imports, model, figures), measured on a small file
    small = tmp_path / "small.npy"
    np.save(small, np.random.default_rng(0).random((4000, 1, 32, 32), dtype=np.float32))
    base = _child(tmp_path, small, 0, "small", "on")
    assert base["ok"] and base["streamed"]
    cap = base["vm_peak"] + (300 << 20)
    # 2. a file twice that cap: whole-file mapping is impossible, streaming must cope
    big = tmp_path / "big.npy"
    rows = 2 * cap // (32 * 32 * 4) + 1
    _sparse_npy(big, rows)
    assert big.stat().st_size > 2 * cap
    res = _child(tmp_path, big, cap, "big", "auto")  # auto sees the cap and streams
    assert res["ok"], res
    assert res["streamed"] and res["vm_peak"] <= cap
    assert res["train"] == rows - round(rows * 0.2) - round((rows - round(rows * 0.2)) * 0.1)
    assert all(np.isfinite(res["loss"])) and res["loss"][1] < res["loss"][0]
    # 3. control: forced loading under the same cap fails cleanly, leaving no run directory
    off = _child(tmp_path, big, cap, "off", "off")
    assert not off["ok"] and "Cannot allocate memory" in off["error"]
    assert not (tmp_path / "off").exists()


def test_table_columns_by_index_and_forced_header(tmp_path):
    from vaelab.data.tabular import read_table

    p = tmp_path / "t.csv"
    p.write_text("5.1,3.5,setosa\n4.9,3.0,setosa\n6.3,2.9,virginica\n")
    d = read_table(p, label_column="-1", drop_columns=["0"])
    np.testing.assert_array_equal(d.x, np.float32([[3.5], [3.0], [2.9]]))
    assert d.y.tolist() == [0, 0, 1]
    assert d.label_names == ["setosa", "virginica"]
    q = tmp_path / "num_header.csv"
    q.write_text("1,2\n3,4\n5,6\n")  # numeric names: only --header yes can tell
    assert read_table(q, header="yes").x.tolist() == [[3, 4], [5, 6]]
    assert len(read_table(q).x) == 3
