"""Process-level speed settings for CPU training."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_TUNED = False
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc's mallopt parameters."""
AFTER_TRAINING_MMAP = 4 << 20
AFTER_TRAINING_TRIM = 64 << 20
"""The thresholds after training (see ``restore_cpu_allocator``)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_cpu_allocator() -> bool:
    """Keep freed buffers in glibc's heap instead of returning them to the OS.

    Each training step frees and re-allocates the same megabyte-sized activation and gradient
    buffers; glibc serves those with fresh mmap pages by default, and the page faults cost about a
    quarter of a small model's step. Raising the mmap and trim thresholds (what the
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables do) reuses the heap instead.
    Returns True when the setting was applied (Linux with glibc only).
    """
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = _libc()
        ok = libc.mallopt(M_MMAP_THRESHOLD, 256 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        return False
    _TUNED = bool(ok)
    return _TUNED


def restore_cpu_allocator() -> bool:
    """Relax :func:`tune_cpu_allocator` once training is over: the kept heap goes back to the
    OS (finishing a run does not hold the training loop's freed buffers) and at most
    ``AFTER_TRAINING_TRIM`` of free heap is kept from then on, while buffers up to
    ``AFTER_TRAINING_MMAP`` still come from the heap. glibc's 128 KiB defaults, set
    explicitly, also switch off its adaptive threshold: every buffer of the evaluation after
    training then came from fresh mmap pages, and the IWAE estimate took 2.6 s instead of
    1.4 s. Larger buffers than 4 MB in the heap fragment it (8 MB IWAE chunks grew it by
    270 MB)."""
    global _TUNED
    if not _TUNED:
        return False
    try:
        libc = _libc()
        libc.mallopt(M_MMAP_THRESHOLD, AFTER_TRAINING_MMAP)
        libc.mallopt(M_TRIM_THRESHOLD, AFTER_TRAINING_TRIM)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    _TUNED = False
    return True


_FLUSHING = False
_OMP_LIBS = ("libgomp", "libiomp5", "libomp")
"""OpenMP runtimes that export GOMP_parallel (libiomp5 and LLVM's libomp as GNU compatibility)."""


def _openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP runtime torch has loaded into this process (Linux), or None."""
    import os

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if any(n in line for n in _OMP_LIBS)}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)
            lib.GOMP_parallel  # noqa: B018 - raises AttributeError when not exported
        except (OSError, AttributeError):
            continue
        return lib
    return None


def _on_every_intraop_thread(fn) -> bool:  # type: ignore[no-untyped-def]
    """Run ``fn()`` once on each thread of torch's OpenMP pool (the caller's included), as an
    OpenMP parallel region of ``torch.get_num_threads()`` threads. False without OpenMP."""
    import torch

    lib = _openmp_runtime()
    if lib is None:
        return False
    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    callback = callback_type(lambda _data: fn())
    lib.GOMP_parallel.argtypes = [callback_type, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    lib.GOMP_parallel.restype = None
    lib.GOMP_parallel(callback, None, max(torch.get_num_threads(), 1), 0)
    return True


def flush_denormals(enabled: bool = True) -> bool:
    """Flush denormal floats to zero (x86 FTZ/DAZ, AArch64 FZ) in torch's CPU kernels, or stop.

    Adam's first moment of a weight whose gradient is zero for a while (a pixel that is zero in
    every image of a batch, a dead unit) decays by beta1 each step into the denormal range, where
    x86 arithmetic is tens of times slower: a tenth of a Fashion-MNIST VAE's Adam state was
    denormal after one epoch and the fused Adam update took 2.5x as long. PyTorch's
    ``torch.set_flush_denormal`` sets the calling thread only, and its OpenMP worker threads
    keep their own setting, so this also runs it on each of them. Values below 1.2e-38 become
    zero. Returns True when the CPU supports it.
    """
    import torch

    global _FLUSHING
    if not torch.set_flush_denormal(enabled):
        return False
    _on_every_intraop_thread(lambda: torch.set_flush_denormal(enabled))
    _FLUSHING = enabled
    return True


def flushing_denormals() -> bool:
    """Whether :func:`flush_denormals` last turned flushing on."""
    return _FLUSHING
