"""vaelab: train, evaluate and explore autoencoders and variational autoencoders.

The public names are imported on first use, so ``import vaelab`` and ``vaelab --help`` stay
quick: ``vaelab.train(...)`` loads torch when it is called.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from vaelab.errors import VaelabError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pathlib import Path

    from vaelab.config import Config
    from vaelab.run import Run

_LAZY = {
    "Config": "vaelab.config",
    "Run": "vaelab.run",
    "export_onnx": "vaelab.export",  # onnx itself is imported only when exporting
    "run_recipe": "vaelab.recipes",
}


def train(config: Any = None, **kwargs: Any) -> Run:
    """Train a model and return the finished :class:`Run`; every argument (``config``,
    ``force``, ``resume``, ``log``, ``report``, ``callbacks``, flat option overrides such as
    ``latent_dim=2``) is described at :func:`vaelab.pipeline.train`."""
    from vaelab.pipeline import train as run

    return run(config, **kwargs)


def sweep(config: Any, grid: Any, **kwargs: Any) -> Path:
    """Train every combination of ``grid``; see :func:`vaelab.sweep.sweep`."""
    run = importlib.import_module("vaelab.sweep").sweep
    return run(config, grid, **kwargs)


def tune(config: Any = None, search: Any = (), **kwargs: Any) -> Any:
    """Tune options with Optuna; see :func:`vaelab.tune.tune`."""
    run = importlib.import_module("vaelab.tune").tune
    return run(config, search, **kwargs)


_FUNCTIONS = {"train": train, "sweep": sweep, "tune": tune}


class _Package(types.ModuleType):
    """Keeps ``vaelab.train`` / ``sweep`` / ``tune`` the functions above: importing the
    subpackage vaelab/train/ or the modules vaelab/sweep.py, vaelab/tune.py would otherwise
    rebind those names to the modules (reach them with ``from vaelab.sweep import ...``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["Config", "Run", "VaelabError", "__version__", "export_onnx", "run_recipe", "sweep",
           "train", "tune"]
