"""The readers' boundary: whatever a damaged file provokes, callers see one DataError."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from vaelab.errors import DataError

F = TypeVar("F", bound=Callable[..., Any])


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (at most 200 characters), for error sentences."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200].rstrip(".")


def data_errors_only(kind: str) -> Callable[[F], F]:
    """Decorate a reader ``fn(path, ...)`` so any non-DataError failure becomes a DataError.

    The explicit checks inside the reader give the precise messages; this catches what they
    did not foresee (zlib.error, struct.error, numpy header quirks, ...) so fuzzing a reader
    can only ever see DataError.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(path, *args, **kwargs)
            except DataError:
                raise
            except MemoryError:
                raise DataError(f"{path} is too large to load as {kind}; use a smaller file or "
                                "a .npy, which is streamed.") from None
            except Exception as exc:
                raise DataError(f"{path} cannot be read as {kind} ({type(exc).__name__}: "
                                f"{one_line(exc)}); check the file.") from None

        return wrapper  # type: ignore[return-value]

    return deco
