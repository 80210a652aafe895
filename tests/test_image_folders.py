"""Image folders: sizes, formats and colour modes, the uint8 cache, streaming, an address cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaelab
from vaelab.data import DataConfig, image_cache, images, load_data, load_raw
from vaelab.data.lazy import LazyRows
from vaelab.errors import ConfigError, DataError, VaelabError

H, W = 10, 12  # the test images' height and width


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh VAELAB_CACHE per test; the image caches land in its images/ folder."""
    monkeypatch.setenv("VAELAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def _folder(root: Path, per_class: int = 4, classes=("cats", "dogs"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                root / cls / f"{i:03d}.png")
    return root


def _old_decode(files: list[Path], mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """What the loader computed before the cache: PIL convert, bilinear resize, float32."""
    out = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert(mode)
            if size:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            out.append(np.asarray(im, dtype=np.float32))
    x = np.stack(out)
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)


def _sorted_rows(root: Path, ds) -> np.ndarray:
    """Rows of a cached folder's Dataset in sorted file order (the cache stores them shuffled,
    and its .json lists each row's file)."""
    from vaelab.data.image_cache import image_cache_dir

    for meta_path in image_cache_dir().glob("*.json"):
        meta = json.loads(meta_path.read_text())
        if meta["root"] == str(root.resolve()) and meta["shape"] == list(ds.x.shape[1:]):
            return np.argsort(meta["files"], kind="stable")
    raise AssertionError(f"no cache of {root}")


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# -- sizes and options -----------------------------------------------------------------------------
def test_one_number_image_size_is_a_square(tmp_path):
    root = _folder(tmp_path / "imgs")
    raw = load_raw(DataConfig(data=str(root), image_size=[8], color="grayscale"))
    assert raw.train.x.shape == (8, 1, 8, 8)
    files = sorted(root.glob("*/*.png"))
    rows = _sorted_rows(root, raw.train)
    np.testing.assert_array_equal(raw.train.x[rows], _old_decode(files, "L", (8, 8)))
    rect = load_raw(DataConfig(data=str(root), image_size=[6, 9], color="rgb"))
    assert rect.train.x.shape == (8, 3, 6, 9)


@pytest.mark.parametrize("size", [[0], [-4], [32, 32, 3], [], [0, 8], [2.5]])
def test_bad_image_sizes_are_one_sentence(tmp_path, size):
    root = _folder(tmp_path / "imgs", per_class=1)
    with pytest.raises(ConfigError) as err:
        load_raw(DataConfig(data=str(root), image_size=size))
    msg = str(err.value)
    assert msg.startswith("--image-size got ") and "H,W" in msg and "\n" not in msg


def test_bad_color_is_one_sentence(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=1)
    with pytest.raises(ConfigError, match=r"^--color got 'cmyk'; choose auto, grayscale or rgb\.$"):
        load_raw(DataConfig(data=str(root), color="cmyk"))


def test_cli_options_coerce_one_number_and_refuse_bad_color():
    from vaelab.config import Config, validate

    cfg = Config()
    cfg.data.color = "sepia"
    with pytest.raises(VaelabError, match="color"):
        validate(cfg)
    from vaelab.data.config import image_size_hw

    assert image_size_hw(["32"]) == (32, 32) and image_size_hw(32) == (32, 32)
    assert image_size_hw("64, 48") == (64, 48)
    assert image_size_hw([64, 48]) == (64, 48) and image_size_hw(None) is None


def test_cli_one_number_size_trains_and_a_bad_size_is_one_line(tmp_path, capsys):
    from vaelab.cli.main import main

    root = _folder(tmp_path / "imgs", per_class=8)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(root), "--image-size", "0", "--out", str(out), "-q"])
    assert exc.value.code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image-size got 0; give one positive number" in err[0]
    with pytest.raises(SystemExit) as ok:
        main(["train", "--data", str(root), "--image-size", "6", "--color", "rgb", "--epochs",
              "1", "--hidden", "8", "--latent-dim", "2", "--eval-k", "0", "--out", str(out), "-q"])
    assert ok.value.code in (0, None)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data_info"]["example_shape"] == [3, 6, 6]


def test_mixed_sizes_are_refused_and_leave_no_cache(tmp_path, cache):
    root = _folder(tmp_path / "imgs", per_class=2)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "dogs" / "big.png")
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(root / "cats" / "small.png")
    with pytest.raises(DataError, match=r"holds images of 3 different sizes \(e\.g\. 5x7, 8x8, "
                                        r"10x12\); pass --image-size H,W to resize them\.$"):
        load_raw(DataConfig(data=str(root)))
    assert _cache_files(cache) == []
    assert load_raw(DataConfig(data=str(root), image_size=[4],
                               color="grayscale")).train.x.shape == (6, 1, 4, 4)


# -- formats and colour ----------------------------------------------------------------------------
def _formats(root: Path) -> dict[str, Path]:
    """One image per kind, all H x W, in an unlabelled folder; their paths by kind."""
    root.mkdir(parents=True)
    p: dict[str, Path] = {}
    # palette with alpha: index 0 opaque red, 1 fully transparent green, 2 half-transparent blue
    pal = Image.new("P", (W, H))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.putdata([0] * (W * H // 2) + [1] * (W * H // 4) + [2] * (W * H // 4))
    p["palette"] = root / "a_palette.png"
    pal.save(p["palette"], transparency=bytes([255, 0, 128]))
    g16 = np.zeros((H, W), np.uint16)
    g16[0, 0], g16[0, 1], g16[0, 2] = 65535, 1000, 32768
    p["gray16"] = root / "b_gray16.png"
    Image.fromarray(g16).save(p["gray16"])
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 2] = 50
    p["jpeg"] = root / "c_photo.jpg"
    Image.fromarray(rgb).save(p["jpeg"], quality=95)
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 1] = 255  # green, alpha 0 on the left half, 255 on the right
    rgba[:, W // 2 :, 3] = 255
    p["rgba"] = root / "d_rgba.png"
    Image.fromarray(rgba, "RGBA").save(p["rgba"])
    p["gray"] = root / "e_gray.png"
    Image.fromarray(np.full((H, W), 77, np.uint8)).save(p["gray"])
    p["la"] = root / "f_la.png"
    Image.fromarray(np.stack([np.full((H, W), 10, np.uint8), np.zeros((H, W), np.uint8)], -1),
                    "LA").save(p["la"])
    p["bmp"] = root / "g_red.bmp"
    Image.fromarray(np.tile(np.uint8([255, 0, 0]), (H, W, 1))).save(p["bmp"])
    p["gif"] = root / "h_anim.gif"
    Image.fromarray(np.full((H, W), 30, np.uint8)).save(p["gif"])
    return p


def test_mixed_formats_load_in_both_colour_modes(tmp_path):
    p = _formats(tmp_path / "mixed")
    order = sorted(p, key=lambda k: p[k].name)
    rgb = load_raw(DataConfig(data=str(tmp_path / "mixed"), color="rgb")).train
    assert rgb.x.shape == (len(p), 3, H, W) and rgb.y is None
    rows = _sorted_rows(tmp_path / "mixed", rgb)
    x = {k: rgb.x[rows[i]] for i, k in enumerate(order)}
    # palette + alpha: opaque red stays, transparent pixels become white, half blue mixes
    np.testing.assert_array_equal(x["palette"][:, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(x["palette"][:, -1, -1], [127, 127, 255])
    assert (x["palette"][:, H // 2, W // 2 - 1] == 255).all()  # a transparent green pixel
    # 16-bit greyscale is scaled, not clipped: 65535 -> 255, 1000 -> 4, 32768 -> 128
    np.testing.assert_array_equal(x["gray16"][:, 0, :3], [[255, 4, 128]] * 3)
    assert x["gray16"][:, 1:].max() == 0
    assert np.abs(x["jpeg"].mean(axis=(1, 2)) - [200, 0, 50]).max() < 4
    assert (x["rgba"][:, :, : W // 2] == 255).all()  # transparent: white
    np.testing.assert_array_equal(x["rgba"][:, 0, -1], [0, 255, 0])
    assert (x["gray"] == 77).all()  # grey repeated in the three channels
    assert (x["la"] == 255).all()  # fully transparent grey: white
    np.testing.assert_array_equal(x["bmp"][:, 0, 0], [255, 0, 0])
    assert (x["gif"] == 30).all()
    gray = load_raw(DataConfig(data=str(tmp_path / "mixed"), color="grayscale")).train
    assert gray.x.shape == (len(p), 1, H, W)
    rows = _sorted_rows(tmp_path / "mixed", gray)
    g = {k: gray.x[rows[i], 0] for i, k in enumerate(order)}
    assert g["bmp"][0, 0] == 76  # PIL's luma of pure red
    np.testing.assert_array_equal(g["gray16"][0, :3], [255, 4, 128])
    assert g["rgba"][0, 0] == 255 and g["rgba"][0, -1] == 150  # white, luma of green
    assert g["gray"].min() == g["gray"].max() == 77


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_unreadable_file_is_one_sentence_naming_it(tmp_path, content, cache):
    root = _folder(tmp_path / "imgs", per_class=2)
    bad = root / "dogs" / "broken.png"
    if content == "truncated":
        good = (root / "dogs" / "000.png").read_bytes()
        bad.write_bytes(good[: len(good) // 2])
    else:
        bad.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_raw(DataConfig(data=str(root)))
    msg = str(err.value)
    assert msg.startswith(f"{bad} is not a readable image (") and "\n" not in msg
    assert msg.endswith("; remove or replace it.")
    assert _cache_files(cache) == []


def test_hidden_files_and_folders_are_skipped(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=2)
    (root / "dogs" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / ".ipynb_checkpoints").mkdir()
    raw = load_raw(DataConfig(data=str(root)))
    assert raw.train.label_names == ["cats", "dogs"] and len(raw.train) == 4


# -- the cache -------------------------------------------------------------------------------------
def test_cached_values_equal_the_direct_decode_with_labels(tmp_path, cache):
    root = _folder(tmp_path / "imgs", per_class=5, classes=("b_dogs", "a_cats", "c_owls"))
    raw = load_raw(DataConfig(data=str(root), color="rgb", image_size=[7, 5]))
    ds = raw.train
    files = sorted(root.glob("*/*.png"))
    assert ds.x.dtype == np.float32 and not isinstance(ds.x, LazyRows)
    rows = _sorted_rows(root, ds)
    np.testing.assert_array_equal(ds.x[rows], _old_decode(files, "RGB", (7, 5)))
    assert ds.label_names == ["a_cats", "b_dogs", "c_owls"]
    assert ds.y[rows].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert ds.y.tolist() != sorted(ds.y.tolist())  # stored shuffled, not class after class
    assert raw.default_preprocess == "minmax"
    names = _cache_files(cache)
    assert len(names) == 2 and names[0].startswith("imgs-") and names[0].endswith(".json")
    meta = json.loads((cache / names[0]).read_text())
    assert meta["count"] == 15 and meta["shape"] == [3, 7, 5] and meta["color"] == "rgb"
    assert meta["classes"] == ["a_cats", "b_dogs", "c_owls"] and meta["labels"] == ds.y.tolist()
    arr = np.load(cache / names[1])
    assert arr.dtype == np.uint8 and arr.shape == (15, 3, 7, 5)
    np.testing.assert_array_equal(arr, ds.x)
    # unlabelled: images directly in the folder
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in files[:3]:
        (flat / f.name.replace(".png", f"_{f.parent.name}.png")).write_bytes(f.read_bytes())
    un = load_raw(DataConfig(data=str(flat), color="grayscale")).train
    assert un.y is None and un.label_names is None and un.x.shape == (3, 1, H, W)


def test_second_load_is_a_cache_hit(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")
    first = load_raw(DataConfig(data=str(root))).train.x
    npy = next(cache.glob("*.npy"))
    before = (npy.stat().st_ino, npy.stat().st_mtime_ns)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "decode_image", no_decoding)
    again = load_raw(DataConfig(data=str(root))).train.x
    np.testing.assert_array_equal(again, first)
    assert (npy.stat().st_ino, npy.stat().st_mtime_ns) == before
    # --color auto chose rgb for these colour images: the same cache as asking for rgb
    np.testing.assert_array_equal(load_raw(DataConfig(data=str(root), color="rgb")).train.x,
                                  first)
    # another size or colour mode is another cache, which needs decoding
    with pytest.raises(AssertionError, match="decoded again"):
        load_raw(DataConfig(data=str(root), color="grayscale"))


def test_cache_key_follows_the_files(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")
    calls = []
    real = images.decode_image

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(images, "decode_image", counting)
    load_raw(DataConfig(data=str(root)))
    assert len(calls) == 8 and len(list(cache.glob("*.npy"))) == 1
    load_raw(DataConfig(data=str(root)))
    assert len(calls) == 8  # hit
    f = root / "cats" / "001.png"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched
    load_raw(DataConfig(data=str(root)))
    assert len(calls) == 16 and len(list(cache.glob("*.npy"))) == 2
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "dogs" / "new.png")  # added
    x = load_raw(DataConfig(data=str(root))).train.x
    assert len(calls) == 25 and len(x) == 9 and len(list(cache.glob("*.npy"))) == 3
    (root / "dogs" / "new.png").unlink()  # back to the touched listing: that cache again
    load_raw(DataConfig(data=str(root)))
    assert len(calls) == 25


def test_interrupted_conversion_leaves_no_trusted_cache(tmp_path, cache, monkeypatch):
    root = _folder(tmp_path / "imgs")
    real = images.decode_image
    calls = []

    def dies_at_the_fifth(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(images, "decode_image", dies_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        load_raw(DataConfig(data=str(root)))
    assert _cache_files(cache) == []  # the temporary files are removed
    monkeypatch.setattr(images, "decode_image", real)
    good = load_raw(DataConfig(data=str(root))).train.x
    npy = next(cache.glob("*.npy"))
    meta = npy.with_suffix(".json")

    def redecoded() -> bool:
        calls.clear()

        def counting(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(images, "decode_image", counting)
        x = load_raw(DataConfig(data=str(root))).train.x
        monkeypatch.setattr(images, "decode_image", real)
        np.testing.assert_array_equal(x, good)
        return bool(calls)

    # killed between the two renames: a .npy without its .json is not trusted
    meta.unlink()
    assert redecoded() and meta.exists()
    # a .npy cut short (disk full, copied partially) is not trusted either
    with open(npy, "r+b") as fh:
        fh.truncate(npy.stat().st_size - 10)
    assert redecoded()
    # a .json of another conversion format is not trusted
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps(dict(m, format=0)))
    assert redecoded()
    assert not redecoded()  # and now it is a hit again
    # a killed conversion's temporary file (its process is gone) is cleaned up by the next one
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = image_cache._part_tag().rsplit("-", 1)[0]
    stale = cache / f".{npy.name}.part-{host}-{dead}"
    stale.write_bytes(b"half")
    alive = cache / f".other.npy.part-{host}-{os.getpid()}"  # a conversion still running
    alive.write_bytes(b"busy")
    meta.unlink()
    assert redecoded() and not stale.exists() and alive.exists()
    alive.unlink()
    assert [n for n in _cache_files(cache) if ".part-" in n] == []


def test_worker_processes_give_the_same_cache(tmp_path, cache, monkeypatch):
    root = tmp_path / "many"
    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(150):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(
                root / cls / f"{i:03d}.png")
    assert image_cache._workers(300) > 1 or os.cpu_count() == 1
    pooled = load_raw(DataConfig(data=str(root), color="rgb")).train
    files = sorted(root.glob("*/*.png"))
    rows = _sorted_rows(root, pooled)
    np.testing.assert_array_equal(pooled.x[rows], _old_decode(files, "RGB", None))
    assert pooled.y[rows].tolist() == [0] * 150 + [1] * 150
    (root / "b" / "077.png").write_bytes(b"garbage")  # a bad file found by a worker
    with pytest.raises(DataError, match=r"077\.png is not a readable image"):
        load_raw(DataConfig(data=str(root), color="rgb"))
    assert [n for n in _cache_files(cache) if ".part-" in n] == []


# -- streaming and training ------------------------------------------------------------------------
def test_streamed_folder_splits_lazily_with_the_same_values(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=20)
    on = load_data(DataConfig(data=str(root), color="rgb", stream="on", chunk_mb=0.001), seed=3)
    assert on.info["streamed"] and all(isinstance(s.x, LazyRows) for s in (on.train, on.test))
    assert isinstance(load_raw(DataConfig(data=str(root), stream="on")).train.x, LazyRows)
    off = load_data(DataConfig(data=str(root), color="rgb", stream="off"), seed=3)
    assert not off.info["streamed"]
    assert on.preprocessor.params == off.preprocessor.params  # min-max fitted chunk-wise
    for a, b in ((on.train, off.train), (on.val, off.val), (on.test, off.test)):
        np.testing.assert_array_equal(np.asarray(a.x), b.x)
        assert a.y.tolist() == b.y.tolist()
    assert np.asarray(on.train.x).min() >= 0.0 and np.asarray(on.train.x).max() <= 1.0


def test_streamed_folder_trains_one_epoch(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=16)
    out = tmp_path / "run"
    run = vaelab.train(data=str(root), image_size="8", color="rgb", stream="on", epochs=1,
                       batch_size=8, hidden=[16], latent_dim=2, progress=False, report=False,
                       eval_k=0, out=str(out), log=None)
    assert run.data.info["streamed"] and run.data.info["example_shape"] == [3, 8, 8]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert np.isfinite(run.history[-1]["train_loss"])


# -- a folder larger than the address space -------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, resource, sys
    path, cap, out, stream, side = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import vaelab
    from vaelab.errors import VaelabError
    try:
        run = vaelab.train(data=path, color="rgb", image_size=side, stream=stream, chunk_mb=8,
                           epochs=1, batch_size=256, hidden=[8], latent_dim=2, progress=False,
                           report=False, threads=2, eval_k=0, out=out, log=None)
        res = {"ok": True, "loss": [r["train_loss"] for r in run.history],
               "train": run.data.info["sizes"]["train"], "streamed": run.data.info["streamed"],
               "status": json.load(open(out + "/run.json"))["status"]}
    except VaelabError as exc:
        res = {"ok": False, "error": str(exc)}
    peak = [ln for ln in open("/proc/self/status") if ln.startswith("VmPeak")][0].split()[1]
    res["vm_peak"] = int(peak) * 1024
    print(json.dumps(res))
""")


def _child(tmp_path: Path, folder: Path, cap: int, out: str, stream: str, side: int) -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), str(folder), str(cap),
                           str(tmp_path / out), stream, str(side)],
                          capture_output=True, text=True, timeout=600,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                               "MALLOC_ARENA_MAX": "2",
                               "VAELAB_CACHE": os.environ["VAELAB_CACHE"]})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _png_folder(root: Path, count: int, side: int, distinct: int = 16) -> None:
    """``count`` side x side RGB PNGs, unlabelled: a few distinct images, hard-linked (fast)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    blobs = root.parent / f"{root.name}-blobs"
    blobs.mkdir()
    for k in range(distinct):
        img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(img).save(blobs / f"{k}.png", compress_level=1)
    for i in range(count):
        os.link(blobs / f"{i % distinct}.png", root / f"{i:06d}.png")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_folder_twice_the_address_space_cap_trains(tmp_path, cache):
    side = 48
    row_f32 = 3 * side * side * 4
    # 1. what a streamed run on images needs (imports, model, figures, and the evaluation's
    # 5,000-row sample of the test split), measured on a smaller folder
    small = tmp_path / "small"
    _png_folder(small, 25_500, side)
    base = _child(tmp_path, small, 0, "run_small", "on", side)
    assert base["ok"] and base["streamed"], base
    cap = base["vm_peak"] + (300 << 20)
    # 2. a folder whose float32 size is twice that cap: converted and trained under the cap
    big = tmp_path / "big"
    count = 2 * cap // row_f32 + 1
    _png_folder(big, count, side)
    assert count * row_f32 > 2 * cap
    res = _child(tmp_path, big, cap, "run_big", "auto", side)  # auto sees the cap and streams
    assert res["ok"], res
    assert res["streamed"] and res["status"] == "finished" and res["vm_peak"] <= cap
    assert res["train"] == count - round(count * 0.2) - round((count - round(count * 0.2)) * 0.1)
    assert all(np.isfinite(res["loss"]))
    npy = [p for p in cache.glob("big-*.npy")]
    assert len(npy) == 1 and npy[0].stat().st_size >= count * row_f32 // 4
    # 3. control: loading it into memory under the same cap fails cleanly, no run directory
    off = _child(tmp_path, big, cap, "run_off", "off", side)
    assert not off["ok"] and "--stream on" in off["error"], off
    assert not (tmp_path / "run_off").exists()


def test_color_auto_keeps_colour_photos_and_grey_pictures_saved_as_rgb(tmp_path):
    """--color auto (the default): a folder with colour images loads as RGB; grey images
    saved as RGB PNGs and RGB JPEGs, and colour hidden under full transparency, load as
    grayscale; --color grayscale still overrides a colour folder."""
    rng = np.random.default_rng(0)
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(5):
        g = rng.integers(0, 256, (H, W), dtype=np.uint8)
        rgb = np.repeat(g[..., None], 3, -1)
        Image.fromarray(rgb, "RGB").save(grey / f"{i}.png")
        Image.fromarray(rgb, "RGB").save(grey / f"{i}.jpg", quality=85)
        hidden = np.concatenate([rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                                 np.zeros((H, W, 1), np.uint8)], -1)  # colour, alpha 0
        Image.fromarray(hidden, "RGBA").save(grey / f"{i}_clear.png")
    assert images.detect_color(images.list_image_folder(grey)[1]) == "grayscale"
    assert load_raw(DataConfig(data=str(grey))).train.x.shape[1:] == (1, H, W)

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):  # one colour photo among grey ones, where the sample reaches it
        a = np.repeat(rng.integers(0, 256, (H, W, 1), dtype=np.uint8), 3, -1)
        if i == 39:
            a[..., 0] = 255 - a[..., 1]
        Image.fromarray(a, "RGB").save(photos / f"{i:02d}.jpg", quality=90)
    assert images.detect_color(images.list_image_folder(photos)[1]) == "rgb"
    colour = load_raw(DataConfig(data=str(photos))).train
    assert colour.x.shape[1:] == (3, H, W)
    assert np.abs(colour.x[:, 0] - colour.x[:, 1]).max() > 100  # the colour is there
    forced = load_raw(DataConfig(data=str(photos), color="grayscale")).train
    assert forced.x.shape[1:] == (1, H, W)


def test_color_auto_is_decided_once_per_file_list(tmp_path, cache, monkeypatch):
    """--color auto's choice is kept with the cache: a second load opens no image at all, a
    changed file list is decided again, and a refused folder leaves no memo behind."""
    root = _folder(tmp_path / "imgs")
    calls: list[int] = []
    real = images.detect_color

    def counting(items):
        calls.append(len(items))
        return real(items)

    monkeypatch.setattr(images, "detect_color", counting)
    first = load_raw(DataConfig(data=str(root))).train.x
    assert calls == [8] and first.shape[1] == 3
    memo = list(cache.glob("*.color.json"))
    assert len(memo) == 1 and json.loads(memo[0].read_text())["color"] == "rgb"

    def no_decoding(*args, **kwargs):
        raise AssertionError("opened an image")

    with monkeypatch.context() as m:
        m.setattr(images, "decode_image", no_decoding)
        m.setattr(images, "detect_color", no_decoding)
        np.testing.assert_array_equal(load_raw(DataConfig(data=str(root))).train.x, first)

    f = root / "cats" / "001.png"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: a new list
    load_raw(DataConfig(data=str(root)))
    assert calls == [8, 8] and len(list(cache.glob("*.color.json"))) == 2

    bad = _folder(tmp_path / "mixed", per_class=2)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(bad / "dogs" / "big.png")
    before = _cache_files(cache)
    with pytest.raises(DataError, match="different sizes"):
        load_raw(DataConfig(data=str(bad)))
    assert _cache_files(cache) == before
