"""Ctrl-C during training: the first SIGINT asks the loop to stop at the next step (the last
complete epoch's checkpoint is already on disk); a second one interrupts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopFlag:
    """Set by the first SIGINT; the training loop checks it after every step."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def graceful_sigint(log=print) -> Iterator[StopFlag]:
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals can only be handled in the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame) -> None:
        if flag.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        flag.requested = True
        log("interrupt: stopping after this step and saving a checkpoint to resume from "
            "(press Ctrl-C again to stop at once)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while a few small files that make a run folder valid are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
