"""Reversible preprocessing, fitted on the training split only and recorded in config.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("none", "minmax", "standardize", "binarize", "binarize-dynamic")


@dataclass
class Preprocessor:
    """Maps raw values to model space (``transform``) and back for display (``inverse``).

    binarize-dynamic keeps [0, 1] intensities and resamples binary pixels every batch in the
    trainer; its transform is the min-max scaling.
    """

    kind: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def fit(self, x: np.ndarray, threshold: float = 0.5) -> Preprocessor:
        x = np.asarray(x, dtype=np.float64)
        axis = 0
        if self.kind in ("minmax", "binarize", "binarize-dynamic"):
            lo, hi = float(np.min(x)), float(np.max(x))
            self.params = {"min": lo, "max": hi}
            if self.kind == "binarize":
                self.params["threshold"] = float(threshold)
        elif self.kind == "standardize":
            mean = x.reshape(len(x), -1).mean(axis=axis)
            std = x.reshape(len(x), -1).std(axis=axis)
            std[std < 1e-8] = 1.0  # constant features stay constant
            self.params = {"mean": mean.tolist(), "std": std.tolist()}
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.kind in ("minmax", "binarize", "binarize-dynamic"):
            lo, hi = self.params["min"], self.params["max"]
            out = (x - lo) / max(hi - lo, 1e-12)
            out = np.clip(out, 0.0, 1.0).astype(np.float32)
            if self.kind == "binarize":
                out = (out > self.params["threshold"]).astype(np.float32)
            return out
        if self.kind == "standardize":
            shape = x.shape
            mean = np.asarray(self.params["mean"], dtype=np.float32)
            std = np.asarray(self.params["std"], dtype=np.float32)
            return ((x.reshape(len(x), -1) - mean) / std).reshape(shape).astype(np.float32)
        return x

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Model space back to the raw units (for plots and exported arrays)."""
        x = np.asarray(x, dtype=np.float32)
        if self.kind in ("minmax", "binarize", "binarize-dynamic"):
            lo, hi = self.params["min"], self.params["max"]
            return (x * (hi - lo) + lo).astype(np.float32)
        if self.kind == "standardize":
            shape = x.shape
            mean = np.asarray(self.params["mean"], dtype=np.float32)
            std = np.asarray(self.params["std"], dtype=np.float32)
            return (x.reshape(len(x), -1) * std + mean).reshape(shape).astype(np.float32)
        return x

    @property
    def bounded_unit(self) -> bool:
        """True when transformed values lie in [0, 1] (a Bernoulli likelihood fits)."""
        return self.kind in ("minmax", "binarize", "binarize-dynamic")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        return cls(kind=d["kind"], params=dict(d.get("params", {})))
