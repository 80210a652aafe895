"""vaelab: train, evaluate and explore autoencoders and variational autoencoders."""

from __future__ import annotations

__version__ = "0.1.0"

from vaelab.config import Config
from vaelab.errors import VaelabError
from vaelab.export import export_onnx  # onnx itself is imported only when exporting
from vaelab.pipeline import train
from vaelab.recipes import run_recipe
from vaelab.run import Run
from vaelab.sweep import sweep  # the function shadows the module name on the package
from vaelab.tune import tune  # optuna is imported only when tuning

__all__ = ["Config", "Run", "VaelabError", "__version__", "export_onnx", "run_recipe", "sweep",
           "train", "tune"]
