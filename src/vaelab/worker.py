"""A helper process for the scikit-learn work of finishing a run, beside the main process.

Fitting the GMM sampler and the t-SNE map need scikit-learn (about 1.5 s to import on 2 cores)
and a core for a second or two each, and drawing a figure needs matplotlib, but none needs
torch. ``python -m vaelab.worker`` imports numpy
and scikit-learn once, then answers requests: the client writes pickled ``(task, args)`` to
its stdin and reads pickled results from its stdout, in order. The process never imports
torch or the user's script (unlike a multiprocessing "spawn" child, which re-runs an
unguarded ``__main__``), and runs its numerical libraries on one thread.

``vaelab train`` starts it before it imports torch (``warm``), so the worker's imports run on
the second core while the main process imports torch and loads the data, not while it trains.
It keeps the caller's priority: the caller waits on its results, and a niced worker
starves behind any other busy process (a second test process, a second run). One worker
serves every run of a process (a sweep, a notebook, the test suite) and exits with it.
Whenever the worker cannot be started or dies, ``submit`` runs the task inline instead, so
results never depend on it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, BinaryIO

TASKS: dict[str, str] = {
    "gmm": "vaelab.samplers:fit_gmm_arrays",
    "tsne": "vaelab.projection:tsne_2d",
    "draw": "vaelab.plots.render:draw_to_file",
    "ping": "vaelab.worker:_ping",
}
"""The functions a worker runs, by name: each takes and returns numpy arrays / plain data."""

PRELOAD = ("numpy", "sklearn.mixture", "sklearn.manifold", "vaelab.plots.render")
"""Imported when the worker starts, before the first request."""

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS")}
DISABLE_ENV = "VAELAB_NO_WORKER"
"""Set (to anything but "" or 0) to run every task inline in the calling process."""

_HEADER = struct.Struct("<Q")


def resolve(task: str) -> Callable[..., Any]:
    module, _, name = TASKS[task].partition(":")
    return getattr(importlib.import_module(module), name)


def _ping() -> int:
    return os.getpid()


def _frame(obj: Any) -> bytes:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(blob)) + blob


def _send(stream: BinaryIO, obj: Any) -> None:
    stream.write(_frame(obj))
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("the vaelab worker closed its pipe")
    (n,) = _HEADER.unpack(head)
    blob = stream.read(n)
    if len(blob) < n:
        raise EOFError("the vaelab worker closed its pipe")
    return pickle.loads(blob)  # our own child's answer on a private pipe, never a user file


class Worker:
    """The client side: one child process, requests answered in the order they were sent."""

    def __init__(self) -> None:
        env = {**os.environ, **ONE_THREAD, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "vaelab.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self._lock = threading.Lock()
        self._pending: list[tuple[Future, str, tuple]] = []
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._dead = False
        threading.Thread(target=self._read, name="vaelab-worker-reader", daemon=True).start()
        # requests are written by a thread: a large one fills the pipe while the worker is
        # still importing, and the caller must not wait for that
        threading.Thread(target=self._write, name="vaelab-worker-writer", daemon=True).start()

    @property
    def alive(self) -> bool:
        return not self._dead and self.proc.poll() is None

    def submit(self, task: str, *args: Any) -> Future:
        fut: Future = Future()
        with self._lock:
            if self.alive:
                self._pending.append((fut, task, args))
                self._outbox.put(_frame((task, args)))
                return fut
        _run_inline(fut, task, args)
        return fut

    def _write(self) -> None:
        while True:
            blob = self._outbox.get()
            if blob is None:
                break
            try:
                self.proc.stdin.write(blob)  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
            except (OSError, ValueError):  # the child is gone: the reader runs the rest inline
                break
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # type: ignore[union-attr]

    def _read(self) -> None:
        while True:
            try:
                ok, value = _receive(self.proc.stdout)  # type: ignore[arg-type]
            except Exception:  # the child died or closed: the rest runs inline
                with self._lock:
                    self._dead = True
                    left, self._pending = self._pending, []
                for fut, task, args in left:
                    _run_inline(fut, task, args)
                return
            with self._lock:
                fut, task, args = self._pending.pop(0)
            if ok:
                fut.set_result(value)
            else:  # an error inside the task: raise it where the result is used
                fut.set_exception(RuntimeError(value))

    def close(self) -> None:
        """End the child: it exits when its stdin closes (after the requests already sent)."""
        with self._lock:
            self._dead = True
        self._outbox.put(None)
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


def _run_inline(fut: Future, task: str, args: tuple) -> None:
    try:
        fut.set_result(resolve(task)(*args))
    except BaseException as exc:
        fut.set_exception(exc)


_WORKER: Worker | None = None
_WORKER_LOCK = threading.Lock()
_READY: tuple[Worker, Future] | None = None
"""The started worker and its first ping, answered when the worker's imports are done."""


def _disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def get_worker() -> Worker | None:
    """The process's worker (started on first call), or None where it cannot run."""
    global _WORKER
    if _disabled():
        return None
    with _WORKER_LOCK:
        if _WORKER is None or not _WORKER.alive:
            try:
                _WORKER = Worker()
            except OSError:
                return None
            atexit.register(_WORKER.close)
        return _WORKER


def active() -> bool:
    """Whether this process has a running worker."""
    return _WORKER is not None and _WORKER.alive


def warm() -> None:
    """Start the worker now so its imports overlap with what the caller does next."""
    global _READY
    worker = get_worker()
    if worker is not None and (_READY is None or _READY[0] is not worker):
        _READY = (worker, worker.submit("ping"))  # answered once the imports are done


def wait_ready(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the started worker to finish its imports; True when
    it has (or there is none to wait for)."""
    if _READY is None or not active():
        return True
    try:
        _READY[1].result(timeout=timeout)
    except Exception:  # still importing (or it failed: the tasks run inline then)
        return _READY[1].done()
    return True


def submit(task: str, *args: Any) -> Future:
    """Run ``TASKS[task](*args)`` in the worker (inline when there is none); the result is
    the future's ``result()``."""
    worker = get_worker()
    if worker is None:
        fut: Future = Future()
        _run_inline(fut, task, args)
        return fut
    return worker.submit(task, *args)


def serve() -> None:
    """The child's loop: answer each request on stdout until stdin closes."""
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints never corrupt the pipe
    for name in PRELOAD:
        importlib.import_module(name)
    while True:
        try:
            task, args = _receive(inp)
        except EOFError:  # the client is done: exit without the interpreter's teardown
            out.flush()
            os._exit(0)
        try:
            _send(out, (True, resolve(task)(*args)))
        except Exception as exc:
            _send(out, (False, f"{task} failed in the vaelab worker: "
                               f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    serve()
