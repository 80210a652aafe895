"""An image folder converted once into a uint8 .npy in vaelab's cache, then read from there.

The cache lives in ``cache_dir() / "images"`` (``$VAELAB_CACHE/images``, by default
``~/.cache/vaelab/images``): ``<folder>-<key>.npy`` holds the images as (N, C, H, W) uint8 and
``<folder>-<key>.json`` beside it the labels, class names, file-list hash, size and colour mode.
The key is a SHA-256 of the folder's sorted relative file list with each file's size and
modification time, the image size and the colour mode: adding, removing, replacing or touching a
file gives a new key and a new conversion. ``--color auto``'s choice for a file list is kept in
``<folder>-<digest>.color.json`` after its first successful conversion, so a cache hit decodes
no image at all. Both files are written under temporary names and
renamed when complete (the .npy first, the .json last), and a cache is trusted only when its
.json names the same key and the .npy has the announced shape, so an interrupted conversion is
never used. Deleting the folder is always safe.

Decoding runs in worker processes (forked, up to 8), a chunk of images each; every worker writes
its rows straight into the .npy with ``os.pwrite``, so neither the folder nor the output file is
ever held or mapped whole (a folder larger than an address-space limit converts too).

Rows are stored in a fixed shuffled order (seeded by the file-list hash), not class folder by
class folder: the streaming trainer shuffles rows within chunks of consecutive rows, and
consecutive rows of a sorted folder would all be one class. The .json's ``files`` lists each
row's file (relative to the folder), so a code or a score can be traced to its image.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data import images
from vaelab.data.download import cache_dir
from vaelab.data.lazy import LazyRows, NpyFileSource, should_stream
from vaelab.errors import DataError

FORMAT = 2
"""Bumped when the conversion changes, so older caches are not reused (2: rows shuffled)."""
IN_PROCESS_BELOW = 256
"""Folders with fewer images are decoded in this process."""
PROGRESS_FROM = 2000
"""Fewer images convert without a progress bar."""


def image_cache_dir() -> Path:
    """Where converted image folders are kept: ``cache_dir() / "images"``."""
    return cache_dir() / "images"


def files_digest(items: list[tuple[Path, int]]) -> str:
    """SHA-256 of the folder's file list: each file's path relative to the folder (class
    folder and name), its size and its modification time in nanoseconds, in ``items``' order
    (sorted: class folders, then file names)."""
    h = hashlib.sha256()
    for f, label in items:
        rel = f"{f.parent.name}/{f.name}" if label >= 0 else f.name
        try:
            st = os.stat(f)
        except OSError as exc:
            raise DataError(f"{f} cannot be read ({exc.strerror or exc}); check the folder.") \
                from None
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def folder_key(files: str, size: tuple[int, int] | None, color: str) -> str:
    """The cache key of one conversion: the file-list digest, the image size and colour mode."""
    spec = json.dumps({"format": FORMAT, "files": files, "size": size, "color": color})
    return hashlib.sha256(spec.encode()).hexdigest()


def _color_memo(root: Path, files: str) -> Path:
    return image_cache_dir() / f"{_stem(root, files)}.color.json"


def resolve_color(root: Path, items: list[tuple[Path, int]], files: str, color: str
                  ) -> tuple[str, bool]:
    """``(mode, fresh)``: ``color`` itself, or for ``auto`` the mode chosen for this file list.

    ``auto``'s choice (:func:`vaelab.data.images.detect_color`, which decodes up to 32 images)
    is remembered beside the cache in ``<folder>-<digest>.color.json`` once a conversion has
    succeeded, so a cache hit opens no image; ``fresh`` says the choice was made now.
    """
    if color != "auto":
        return color, False
    try:
        memo = json.loads(_color_memo(root, files).read_text())
        if memo.get("files_sha256") == files and memo.get("color") in ("rgb", "grayscale"):
            return str(memo["color"]), False
    except (OSError, ValueError, AttributeError):
        pass
    return images.detect_color(items), True


def _remember_color(root: Path, files: str, color: str) -> None:
    """Write the ``auto`` choice for this file list (atomically; a failure only costs time)."""
    memo = _color_memo(root, files)
    tmp = memo.parent / f".{memo.name}.part-{_part_tag()}"
    try:
        tmp.write_text(json.dumps({"files_sha256": files, "color": color}))
        os.replace(tmp, memo)
    except OSError:
        tmp.unlink(missing_ok=True)


def _stem(root: Path, key: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name).strip("._")[:40] or "images"
    return f"{name}-{key[:24]}"


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    fmt = np.lib.format
    with open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        return tuple(shape), dtype, fortran, fh.tell()


def _trusted(npy: Path, meta_path: Path, key: str) -> dict[str, Any] | None:
    """The cache's metadata when both files are complete and match ``key``, else None."""
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        shape, dtype, fortran, offset = _npy_header(npy)
        want = (int(meta["count"]), *map(int, meta["shape"]))
        need = offset + int(np.prod(want, dtype=np.int64))
        if shape != want or dtype != np.uint8 or fortran or npy.stat().st_size < need:
            return None
        meta["offset"] = offset
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class _Chunk:
    """Images ``start:start+len(paths)`` of the folder, to decode into ``out`` at ``offset``."""

    paths: list[Path]
    start: int
    shape: tuple[int, int, int]
    size: tuple[int, int] | None
    color: str
    out: str
    offset: int


def _pwrite(path: str, pos: int, data: np.ndarray) -> None:
    buf = memoryview(np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(buf):
            done += os.pwrite(fd, buf[done:], pos + done)
    finally:
        os.close(fd)


def _convert_chunk(chunk: _Chunk) -> tuple[int, list[tuple[int, int]], str | None]:
    """Decode one chunk and write it in place: ``(count, other sizes seen, error or None)``."""
    rows = np.empty((len(chunk.paths), *chunk.shape), dtype=np.uint8)
    other: list[tuple[int, int]] = []
    expect = chunk.shape[1:]
    try:
        for i, path in enumerate(chunk.paths):
            try:
                rows[i] = images.decode_image(path, chunk.size, chunk.color, expect)
            except images.OtherSize as odd:
                other.append(odd.hw)
        if not other:
            _pwrite(chunk.out, chunk.offset + chunk.start * rows[0].nbytes, rows)
    except DataError as exc:
        return len(chunk.paths), other, str(exc)
    except OSError as exc:  # the cache file: disk full, removed, ...
        return len(chunk.paths), other, (
            f"writing the image cache {chunk.out} failed ({exc.strerror or exc}); free space "
            "there or set $VAELAB_CACHE to another folder.")
    return len(chunk.paths), other, None


def _workers(n_images: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 1 if n_images < IN_PROCESS_BELOW else max(min(cpus, os.cpu_count() or 1, 8), 1)


def _executor(workers: int) -> cf.Executor:
    """Forked worker processes where possible; threads elsewhere (Pillow decodes without the
    GIL), and in daemon processes, which may not have children."""
    if "fork" in multiprocessing.get_all_start_methods() and sys.platform.startswith("linux") \
            and not multiprocessing.current_process().daemon:
        return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    return cf.ThreadPoolExecutor(workers)


def _run_chunks(chunks: list[_Chunk], workers: int, bar: Any) -> set[tuple[int, int]]:
    """Convert every chunk (in worker processes when ``workers > 1``); the other sizes seen."""
    other: set[tuple[int, int]] = set()

    def done(result: tuple[int, list[tuple[int, int]], str | None]) -> None:
        count, sizes, error = result
        if error is not None:
            raise DataError(error)
        other.update(sizes)
        bar.update(count)

    if workers <= 1:
        for chunk in chunks:
            done(_convert_chunk(chunk))
        return other
    pool = _executor(workers)
    try:
        futures = [pool.submit(_convert_chunk, c) for c in chunks]
        for fut in cf.as_completed(futures):
            done(fut.result())
    except cf.process.BrokenProcessPool as exc:
        raise DataError(f"converting the images into {chunks[0].out} stopped: a worker process "
                        f"died ({exc}); free memory and try again.") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return other


def _part_tag() -> str:
    """``<host>-<pid>``: temporary files name their writer (the cache may be shared)."""
    host = re.sub(r"[^A-Za-z0-9_.]+", "_", socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}"


def _remove_stale(folder: Path) -> None:
    """Delete temporary files left by killed conversions of this host (their process is gone)."""
    host = _part_tag().rsplit("-", 1)[0]
    for part in folder.glob(f".*.part-{host}-*"):
        try:
            os.kill(int(part.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            part.unlink(missing_ok=True)
        except (ValueError, OSError):
            continue


def _convert(root: Path, items: list[tuple[Path, int]], classes: list[str],
             size: tuple[int, int] | None, color: str, key: str, files: str, npy: Path,
             meta_path: Path, progress: bool | None) -> dict[str, Any]:
    """Decode every image into ``npy`` (atomically) and write its metadata; the metadata."""
    from tqdm import tqdm

    n = len(items)
    hw = size or images.image_hw(items[0][0])
    shape = (3 if color == "rgb" else 1, *hw)
    folder = npy.parent
    tmp = folder / f".{npy.name}.part-{_part_tag()}"
    tmp_meta = folder / f".{meta_path.name}.part-{_part_tag()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)})
            offset = fh.tell()
            fh.truncate(offset + n * int(np.prod(shape)))
    except OSError as exc:
        raise DataError(f"cannot write the image cache in {folder} ({exc.strerror or exc}); "
                        "set $VAELAB_CACHE to a writable folder.") from None
    try:
        workers = _workers(n)
        step = max(16, min(256, -(-n // (workers * 4))))
        chunks = [_Chunk([f for f, _ in items[s : s + step]], s, shape, size, color, str(tmp),
                         offset) for s in range(0, n, step)]
        show = (sys.stderr.isatty() and n >= PROGRESS_FROM) if progress is None else progress
        with tqdm(total=n, desc=f"caching {root.name}", unit="img", file=sys.stderr,
                  disable=not show, leave=False) as bar:
            other = _run_chunks(chunks, workers, bar)
        if other:
            sizes = sorted(other | {hw})
            raise DataError(f"{root} holds images of {len(sizes)} different sizes (e.g. "
                            f"{', '.join(f'{h}x{w}' for h, w in sizes[:3])}); pass "
                            "--image-size H,W to resize them.")
        meta = {"format": FORMAT, "key": key, "files_sha256": files, "root": str(root.resolve()),
                "count": n, "shape": list(shape), "image_size": list(size) if size else None,
                "color": color, "classes": classes or None,
                "labels": [k for _, k in items] if classes else None,
                "files": [f.relative_to(root).as_posix() for f, _ in items]}
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp, npy)
        os.replace(tmp_meta, meta_path)  # last: its presence marks a complete cache
    except OSError as exc:
        raise DataError(f"cannot write the image cache in {folder} ({exc.strerror or exc}); "
                        "free space there or set $VAELAB_CACHE to another folder.") from None
    finally:
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    meta["offset"] = offset
    return meta


def cached_folder(root: Path, items: list[tuple[Path, int]], classes: list[str],
                  size: tuple[int, int] | None, color: str, progress: bool | None = None
                  ) -> tuple[Path, dict[str, Any]]:
    """The cache .npy of this folder and its metadata, converting the folder if needed;
    ``color`` may be ``auto`` (:func:`resolve_color`)."""
    files = files_digest(items)
    color, fresh = resolve_color(root, items, files, color)
    key = folder_key(files, size, color)
    stem = _stem(root, key)
    npy = image_cache_dir() / f"{stem}.npy"
    meta_path = npy.with_suffix(".json")
    meta = _trusted(npy, meta_path, key)
    if meta is None:
        order = np.random.default_rng(int(files[:16], 16)).permutation(len(items))
        meta = _convert(root, [items[i] for i in order], classes, size, color, key, files, npy,
                        meta_path, progress)
    if fresh:
        _remember_color(root, files, color)
    return npy, meta


def open_cached(npy: Path, meta: dict[str, Any], stream: str = "auto", chunk_mb: float = 64.0
                ) -> np.ndarray | LazyRows:
    """The cached images as float32 0..255: in memory, or a LazyRows when they should stream."""
    shape = (int(meta["count"]), *map(int, meta["shape"]))
    src = NpyFileSource(str(npy), int(meta["offset"]), shape, np.dtype(np.uint8))
    nbytes = int(np.prod(shape, dtype=np.int64)) * 4
    chunk_bytes = max(int(chunk_mb * (1 << 20)), 1)
    if should_stream(nbytes, stream):
        return LazyRows(src, chunk_bytes=chunk_bytes)
    try:
        x = np.empty(shape, dtype=np.float32)
    except MemoryError:
        raise DataError(f"{meta.get('root', npy)}: its {shape[0]} images take "
                        f"{nbytes / 1e9:.1f} GB as float32, more than this process can allocate; "
                        "use --stream on (or auto) to read them chunk by chunk.") from None
    step = max(chunk_bytes // max(nbytes // max(shape[0], 1), 1), 1)
    for start in range(0, shape[0], step):
        x[start : start + step] = src.read(start, min(start + step, shape[0]))
    return x
