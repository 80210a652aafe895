"""Rows of an array read on demand: larger-than-memory data is never loaded whole.

A :class:`LazyRows` is a view of a row source (a .npy file read with ``pread``, or any array
such as a ``np.memmap``) through an optional sorted row index and an optional per-chunk
transform (the preprocessing). Slicing reads only the rows asked for; ``take`` and integer-array
indexing give another lazy view; ``chunks`` walks the rows a block at a time. The trainer
streams it chunk by chunk (``vaelab.train.streaming``).

The .npy source reads with ``os.pread`` instead of memory-mapping the whole file, so a file
bigger than the address-space limit (``ulimit -v``) still works.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]
DEFAULT_CHUNK_BYTES = 64 << 20


class RowSource(Protocol):
    """Anything that can hand out contiguous row ranges."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def read(self, start: int, stop: int) -> np.ndarray: ...


@dataclass
class NpyFileSource:
    """Rows of a C-ordered .npy file, read with ``os.pread`` (no whole-file mapping)."""

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def read(self, start: int, stop: int) -> np.ndarray:
        count = max(stop - start, 0)
        out = np.empty((count, *self.shape[1:]), dtype=self.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        pos = self.offset + start * self.row_bytes
        done = 0
        fd = os.open(self.path, os.O_RDONLY)
        try:
            while done < len(buf):
                got = os.preadv(fd, [buf[done:]], pos + done)
                if got <= 0:
                    from vaelab.errors import DataError

                    raise DataError(f"{self.path} ended early while reading rows {start}-{stop}; "
                                    "the file was truncated or changed, write it again.")
                done += got
        finally:
            os.close(fd)
        return out


@dataclass
class ArraySource:
    """Rows of an array-like (for example a ``np.memmap``), sliced on demand."""

    array: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.array[start:stop])


class LazyRows:
    """A float32 view of a row source through an optional sorted index and transform."""

    streamed = True
    """Marks arrays the trainer must stream rather than copy to the device."""

    def __init__(self, source: RowSource, index: np.ndarray | None = None,
                 transform: Transform | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES
                 ) -> None:
        self.source = source
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.transform = transform
        self.chunk_bytes = int(chunk_bytes)

    # -- array-like surface ----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.source.shape[0]) if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.source.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.source.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * 4

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk (about ``chunk_bytes`` of float32), at least 1."""
        row = max(int(np.prod(self.shape[1:], dtype=np.int64)) * 4, 1)
        return max(self.chunk_bytes // row, 1)

    def __repr__(self) -> str:
        return f"LazyRows(shape={self.shape}, source={type(self.source).__name__})"

    def __getitem__(self, key: Any) -> Any:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            out = self.read(i, i + 1)[0]
        elif isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                out = self.read(start, max(start, stop))
            else:
                out = self.take(np.arange(start, stop, step)).read(0, None)
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            view = self.take(idx)
            return view if not rest else np.asarray(view)[(slice(None), *rest)]
        return out[rest] if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read(0, None)
        return out if dtype is None else out.astype(dtype)

    # -- views -----------------------------------------------------------------------------------
    def take(self, index: np.ndarray) -> LazyRows:
        """Rows ``index`` of this view, still lazy (any order; repeated rows allowed)."""
        index = np.asarray(index, dtype=np.int64)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        index = np.where(index < 0, index + len(self), index)
        base = index if self.index is None else self.index[index]
        return LazyRows(self.source, base, self.transform, self.chunk_bytes)

    def map(self, fn: Transform) -> LazyRows:
        """The same rows with ``fn`` applied to each chunk after the current transform."""
        inner = self.transform
        composed = fn if inner is None else (lambda a: fn(inner(a)))
        return LazyRows(self.source, self.index, composed, self.chunk_bytes)

    # -- reading ---------------------------------------------------------------------------------
    def read(self, start: int, stop: int | None) -> np.ndarray:
        """Rows ``start:stop`` of this view as a float32 array, transformed."""
        stop = len(self) if stop is None else min(stop, len(self))
        if self.index is None:
            raw = self.source.read(start, stop)
        else:
            raw = self._gather(self.index[start:stop])
        out = np.asarray(raw, dtype=np.float32)
        if self.transform is not None:
            out = np.asarray(self.transform(out), dtype=np.float32)
        return out

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        """Source rows ``rows`` (any order): contiguous runs are read with one call each."""
        if hasattr(self.source, "read_rows"):  # a generator: rows cost the same in any order
            return self.source.read_rows(rows)
        out = np.empty((len(rows), *self.source.shape[1:]), dtype=self.source.dtype)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        # split where the gap is large, so a sparse index does not read the whole span
        gap = max(self.chunk_rows // 8, 16)
        cuts = np.flatnonzero(np.diff(srt) > gap) + 1
        for part in np.split(np.arange(len(srt)), cuts):
            lo, hi = int(srt[part[0]]), int(srt[part[-1]]) + 1
            block = self.source.read(lo, hi)
            out[order[part]] = block[srt[part] - lo]
        return out

    def chunks(self, rows: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, rows[start:stop])`` blocks covering the view in order."""
        step = rows or self.chunk_rows
        for start in range(0, len(self), step):
            stop = min(start + step, len(self))
            yield start, stop, self.read(start, stop)


def is_lazy(x: Any) -> bool:
    """True for arrays that are read on demand (LazyRows)."""
    return isinstance(x, LazyRows)


def iter_chunks(x: Any, rows: int | None = None,
                dtype: Any = np.float32) -> Iterator[np.ndarray]:
    """Row blocks of an in-memory array, memmap or LazyRows (about 64 MB of float32 each), as
    ``dtype`` (None: as stored, e.g. uint8 pixels for a min / max without a float copy); a
    LazyRows always yields its float32 rows."""
    if isinstance(x, LazyRows):
        for _, _, block in x.chunks(rows):
            yield block
        return
    n = len(x)
    row_bytes = max(int(np.prod(np.shape(x)[1:], dtype=np.int64)) * 4, 1)
    step = rows or max(DEFAULT_CHUNK_BYTES // row_bytes, 1)
    for start in range(0, n, step):
        yield np.asarray(x[start : start + step], dtype=dtype)


# -- .npy files too large for memory ---------------------------------------------------------------
def memory_budget() -> int:
    """Bytes this process may still use: available RAM, capped by an address-space limit."""
    avail = 8 << 30
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
            avail = min(avail, max(soft - used, 0))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return int(avail)


def should_stream(nbytes_f32: int, stream: str) -> bool:
    """Stream when asked (on), never (off), or (auto) above a quarter of the memory budget."""
    if stream in ("on", "off"):
        return stream == "on"
    return nbytes_f32 > memory_budget() // 4


def open_npy_lazy(path: str | os.PathLike, stream: str = "auto", chunk_mb: float = 64.0
                  ) -> LazyRows | None:
    """A LazyRows over a .npy read with pread, or None when it should simply be loaded.

    Only the header is read here; nothing is mapped, so files bigger than an address-space
    limit work. (N,) becomes (N, 1) and (N, H, W) becomes (N, 1, H, W).
    """
    from vaelab.errors import DataError

    fmt = np.lib.format
    with open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        offset = fh.tell()
    if dtype.hasobject or dtype.kind not in "biuf":
        return None  # the loader refuses it with its own message
    if len(shape) not in (1, 2, 3, 4) or shape[0] == 0:
        return None
    nbytes_f32 = int(np.prod(shape, dtype=np.int64)) * 4
    if not should_stream(nbytes_f32, stream):
        return None
    if fortran:
        raise DataError(f"{path} is stored in Fortran order, which cannot be read row by row; "
                        "save it with numpy.save(path, numpy.ascontiguousarray(x)).")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if os.path.getsize(path) - offset < need:
        raise DataError(f"{path}: its header announces shape {tuple(shape)} ({need} bytes) but "
                        "the file is shorter; it is truncated, save it again.")
    rows = {1: (1,), 2: tuple(shape[1:]), 3: (1, *shape[1:]), 4: tuple(shape[1:])}[len(shape)]
    src = NpyFileSource(str(path), offset, (int(shape[0]), *map(int, rows)), dtype)
    return LazyRows(src, chunk_bytes=max(int(chunk_mb * (1 << 20)), 1))
