"""Generate one command-line flag per config option, so the CLI and TOML files never drift."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from typing import Any

import click

from vaelab.config import CHOICES, option_index

SKIP = {"out"}
ALIASES = {"log_to": ["--log"]}
"""Extra flag spellings (``--log tensorboard`` reads as the option ``log_to``, whose Python
name cannot be ``log``: that keyword is ``vaelab.train``'s message callback)."""


def _doc(section: str | None, name: str) -> str:
    """The attribute docstring of a config field (read from the source), if any."""
    from vaelab.config import SECTIONS, Config

    return _field_docs(SECTIONS.get(section, Config) if section else Config).get(name, "")


@functools.cache
def _field_docs(klass: type) -> dict[str, str]:
    """Every attribute docstring of a dataclass, parsed once per class."""
    import ast
    import inspect

    try:
        tree = ast.parse(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        target = getattr(node, "target", None)
        if (isinstance(target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)):
            docs[target.id] = " ".join(str(nxt.value.value).split())
    return docs


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with ``--<option>`` for every config field (default: unset)."""
    for name, (section, f) in sorted(option_index().items(), reverse=True):
        if name in SKIP:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = _doc(section, name)
        if name in CHOICES:
            help_text = (help_text + " " if help_text else "") + f"[{'|'.join(CHOICES[name])}]"
        is_bool = f.type in ("bool", bool)
        default = f.default if f.default is not dataclasses.MISSING else None
        if default is not None and not isinstance(default, list):
            help_text += f" (default {default})"
        if is_bool:
            opt = click.option(f"{flag}/--no-{name.replace('_', '-')}", name, default=None,
                               help=help_text)
        else:
            opt = click.option(flag, *ALIASES.get(name, []), name, default=None, type=str,
                               help=help_text, metavar=name.upper())
        fn = opt(fn)
    return fn


def collect_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pick the config options the user actually set on the command line."""
    index = option_index()
    return {k: v for k, v in kwargs.items() if k in index and v is not None}
