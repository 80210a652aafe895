"""Process-level speed settings for CPU training."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_TUNED = False
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc's mallopt parameters."""
GLIBC_DEFAULT_THRESHOLD = 128 << 10
"""Both thresholds' glibc default (128 KiB)."""


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
    """Undo :func:`tune_cpu_allocator` once training is over: glibc's default thresholds again
    (large buffers come from and go back to mmap) and the kept heap handed back to the OS, so
    finishing a run does not hold the training loop's freed buffers."""
    global _TUNED
    if not _TUNED:
        return False
    try:
        libc = _libc()
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    _TUNED = False
    return True
