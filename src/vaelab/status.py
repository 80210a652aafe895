"""run.json: the state of a run directory, and how a step that failed after training is redone.

``status`` is running, finished, interrupted or failed. When training ends but a later step of
finishing the run fails (evaluation, figures, report), the trained model stays, run.json says
``failed`` with the step (``stage``), the error's one-line ``message``, the traceback's file
(``error_log``) and ``redo``: the `vaelab` commands that redo the missing steps, in order. Each
of those commands, on success, takes itself off ``redo`` (:func:`redo_step`); when none is
left the run is ``finished`` again.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FINISH_STEPS = ("evaluate", "plot", "report")
"""The steps after training, in order; each is also a `vaelab` verb that redoes it."""
STEP_WORDS = {"evaluate": "the evaluation", "plot": "drawing the figures",
              "report": "writing the report"}
ERROR_LOG = "error.log"


def read_status(path: Path) -> dict[str, Any]:
    """run.json of ``path`` as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_status(path: Path, status: str, **info: Any) -> None:
    """run.json: running / finished / interrupted / failed, with details (written atomically)."""
    from vaelab.modelio import atomic_write_text

    atomic_write_text(Path(path) / "run.json", json.dumps({"status": status, **info}, indent=2))


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return msg if len(msg) <= 300 else msg[:297] + "..."


def redo_commands(path: Path, step: str) -> list[str]:
    """The `vaelab` commands that redo ``step`` and every finishing step after it."""
    return [f"vaelab {s} {path}" for s in FINISH_STEPS[FINISH_STEPS.index(step):]]


def mark_finish_failed(path: Path, step: str, exc: BaseException, **info: Any) -> str:
    """Record that ``step`` failed after training; return the one-sentence message for users.

    The traceback goes to ``error.log`` in the run directory; the model and every file already
    written stay.
    """
    from vaelab.modelio import atomic_write_text

    path = Path(path)
    atomic_write_text(path / ERROR_LOG, "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)))
    redo = redo_commands(path, step)
    message = one_line(exc)
    write_status(path, "failed", stage=step, message=message, trained=True, redo=redo,
                 error_log=ERROR_LOG, **info)
    return (f"training finished but {STEP_WORDS[step]} failed ({message}); the trained model "
            f"is saved in {path} (traceback in {path / ERROR_LOG}); redo the missing steps "
            f"with `{' && '.join(redo)}`.")


@contextmanager
def redo_step(path: Path, step: str) -> Iterator[None]:
    """Around a `vaelab evaluate / plot / report` of a run whose finishing failed.

    On success the step leaves run.json's ``redo`` list; the run becomes ``finished`` when the
    list is empty (before the report is written, so the report says finished). On failure the
    failed status is kept with the new message. Runs in any other state are left alone.
    """
    path = Path(path)
    before = read_status(path)
    redo = before.get("redo") if before.get("status") == "failed" else None
    if not redo:
        yield
        return
    left = [r for r in redo if not r.startswith(f"vaelab {step} ")]
    keep = {k: before[k] for k in ("epochs", "best_epoch") if k in before}
    if not left:
        write_status(path, "finished", **keep)
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, Exception):
            mark_finish_failed(path, step, exc, **keep)
        else:
            write_status(path, **before)
        raise
    if left:
        info = {k: v for k, v in before.items() if k != "status"}
        write_status(path, "failed", **{**info, "redo": left})
    else:
        (path / ERROR_LOG).unlink(missing_ok=True)
