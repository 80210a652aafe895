"""Train on arrays larger than memory: rows reach the device one chunk at a time.

The trainer sees a :class:`StreamedRows` instead of a device tensor (``to_device_tensor`` makes
one for a ``LazyRows``). Each epoch visits the chunks in a shuffled order and the rows of each
chunk in a shuffled order (:class:`EpochOrder`), so a batch never needs more than the chunk in
hand and the next; the next chunk is read (and transformed, and pinned on CUDA) in a background
thread while the current one is trained on. Memory in use: about three chunks, whatever the
size of the file.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaelab.data.lazy import LazyRows


class EpochOrder:
    """One epoch's row order: shuffled chunks, rows shuffled within each chunk.

    Sliced like a tensor (``order[a:b]`` -> CPU int64 tensor of row numbers) but never held
    whole: each chunk's permutation is derived from a seed drawn from the trainer's generator.
    """

    def __init__(self, n: int, chunk: int, generator: torch.Generator) -> None:
        self.n, self.chunk = n, chunk
        k = math.ceil(n / chunk)
        dev = generator.device
        self.seq = torch.randperm(k, generator=generator, device=dev).cpu().numpy()
        self.seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=dev).item())
        sizes = np.minimum(chunk, n - self.seq * chunk)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n

    def chunk_rows(self, j: int) -> np.ndarray:
        """Row numbers of the j-th visited chunk, in their shuffled order."""
        if self._cached is not None and self._cached[0] == j:
            return self._cached[1]
        c = int(self.seq[j])
        lo = c * self.chunk
        size = min(self.chunk, self.n - lo)
        rows = lo + np.random.default_rng([self.seed, c]).permutation(size)
        self._cached = (j, rows)
        return rows

    def __getitem__(self, key: slice) -> Tensor:
        start, stop, step = key.indices(self.n)
        if step != 1:
            raise IndexError("an epoch order is sliced with step 1 only")
        if stop <= start:
            return torch.empty(0, dtype=torch.long)
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, stop - 1, side="right")) - 1
        parts = []
        for j in range(first, last + 1):
            rows = self.chunk_rows(j)
            a = max(start - self.starts[j], 0)
            b = min(stop - self.starts[j], len(rows))
            parts.append(rows[a:b])
        return torch.from_numpy(np.concatenate(parts))


class StreamedRows:
    """A LazyRows as the trainer sees it: ``x[idx]`` and ``x[a:b]`` give device tensors.

    Indexing with an epoch's row numbers (from :meth:`epoch_order`) loads their chunk(s) on
    demand and prefetches the next chunk of the epoch; a slice (validation, loss discovery) is
    read directly.
    """

    def __init__(self, rows: LazyRows, device: torch.device) -> None:
        self.rows = rows
        self.device = device
        self.chunk = rows.chunk_rows
        self.pin = device.type == "cuda"
        self._order: EpochOrder | None = None
        self._pos: dict[int, int] = {}
        self._cache: dict[int, Tensor] = {}
        self._pending: dict[int, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaelab-stream")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.rows.shape

    def epoch_order(self, generator: torch.Generator) -> EpochOrder:
        """Start an epoch: draw its order, forget last epoch's chunks, prefetch the first."""
        self._order = EpochOrder(len(self.rows), self.chunk, generator)
        self._pos = {int(c): j for j, c in enumerate(self._order.seq)}
        self._cache.clear()
        self._pending.clear()
        self._prefetch(0)
        return self._order

    # -- reading -----------------------------------------------------------------------------
    def _host_chunk(self, c: int) -> Tensor:
        lo = c * self.chunk
        block = torch.from_numpy(self.rows.read(lo, min(lo + self.chunk, len(self.rows))))
        return block.pin_memory() if self.pin else block

    def _prefetch(self, j: int) -> None:
        order = self._order
        if order is None or j >= len(order.seq):
            return
        c = int(order.seq[j])
        if c not in self._cache and c not in self._pending:
            self._pending[c] = self._pool.submit(self._host_chunk, c)

    def _chunk(self, c: int) -> Tensor:
        if c not in self._cache:
            fut = self._pending.pop(c, None)
            host = fut.result() if fut is not None else self._host_chunk(c)
            self._cache[c] = host.to(self.device, non_blocking=self.pin)
            self._prefetch(self._pos.get(c, -2) + 1)
        return self._cache[c]

    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, slice):
            start, stop, _ = key.indices(len(self.rows))
            block = torch.from_numpy(self.rows.read(start, max(start, stop)))
            return block.to(self.device)
        idx = torch.as_tensor(key, dtype=torch.long).cpu()
        cids = torch.div(idx, self.chunk, rounding_mode="floor")
        needed = [int(c) for c in torch.unique_consecutive(cids)]
        if self._order is not None:
            oldest = min(self._pos.get(c, 0) for c in needed)
            for c in [c for c in self._cache if self._pos.get(c, 0) < oldest]:
                del self._cache[c]  # chunks behind the epoch's position are done with
        if len(needed) == 1:
            c = needed[0]
            local = (idx - c * self.chunk).to(self.device, non_blocking=self.pin)
            return self._chunk(c)[local]
        out = torch.empty((len(idx), *self.rows.shape[1:]), dtype=torch.float32,
                          device=self.device)
        for c in needed:
            mask = cids == c
            local = (idx[mask] - c * self.chunk).to(self.device)
            out[mask.to(self.device)] = self._chunk(c)[local]
        return out

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
