"""The MLflow pyfunc flavour of a vaelab model: weights from model.safetensors + model.json.

``mlflow.pyfunc.load_model("runs:/<run id>/model")`` returns a model whose ``predict`` encodes
rows (model-space inputs, as :meth:`vaelab.Run.reconstruct` takes them) to latent means;
``params={"method": "decode"}`` decodes codes to decoder means and ``"reconstruct"``
reconstructs; ``params={"label": k}`` gives the class of a conditional model. The loaded object
also exposes ``unwrap_python_model().encode / decode / reconstruct``. The model is logged from
code (:data:`CODE_PATH`, which only names :class:`VaelabPyfunc`), so nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

CODE_PATH = str(Path(__file__).with_name("pyfunc_model.py"))
METHODS = ("encode", "decode", "reconstruct")


def signature() -> Any:
    """Only the predict parameters are declared: encode and decode take differently shaped
    inputs, so the input schema is left open."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ModelSignature(params=ParamSchema([ParamSpec("method", "string", "encode"),
                                              ParamSpec("label", "long", -1)]))


def _array(data: Any) -> np.ndarray:
    if hasattr(data, "to_numpy"):  # a pandas DataFrame or Series
        data = data.to_numpy()
    return np.array(data, dtype=np.float32)  # a writable copy


class VaelabPyfunc(mlflow.pyfunc.PythonModel):
    """A vaelab model behind MLflow's pyfunc ``predict`` (see module docstring)."""

    def load_context(self, context: Any) -> None:
        from vaelab.modelio import load_model

        self.model = load_model(context.artifacts["vaelab_model"])
        self.model.eval()

    def _labels(self, n: int, label: int | None) -> np.ndarray | None:
        if not self.model.uses_labels:
            return None
        return np.full(n, 0 if label is None or label < 0 else int(label), dtype=np.int64)

    def encode(self, x: Any, label: int | None = None) -> np.ndarray:
        """Latent means of model-space rows ``x`` (flat rows are reshaped to the input shape)."""
        from vaelab.evaluate import encode_dataset

        arr = _array(x)
        arr = arr.reshape(len(arr), *self.model.input_shape)
        mu, _ = encode_dataset(self.model, arr, self._labels(len(arr), label))
        return mu

    def decode(self, z: Any, label: int | None = None) -> np.ndarray:
        """Decoder means of codes ``z`` (N x latent_dim), in the model's input shape."""
        from vaelab.latent import decode

        arr = _array(z)
        return decode(self.model, arr, self._labels(len(arr), label))

    def reconstruct(self, x: Any, label: int | None = None) -> np.ndarray:
        """Decoder means of the latent means of ``x``."""
        return self.decode(self.encode(x, label), label)

    def predict(self, context: Any, model_input: np.ndarray,
                params: dict[str, Any] | None = None) -> np.ndarray:
        """``params["method"]``: encode (default), decode or reconstruct; ``model_input`` may
        also be a DataFrame (one flattened example per row). ``np.ndarray`` is the one hint
        MLflow reads as "no input schema", which encode and decode need (different shapes)."""
        params = params or {}
        method = params.get("method") or "encode"
        if method not in METHODS:
            raise ValueError(f"params method={method!r} is not one of {', '.join(METHODS)}")
        label = params.get("label")
        return getattr(self, method)(model_input, None if label is None else int(label))
