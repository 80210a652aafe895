"""Reversible preprocessing, fitted on the training split only and recorded in config.json.

Fitting walks the rows in chunks (no float64 copy of the data; works on memory-mapped and
lazily read arrays), and transforming a lazy array stays lazy: the transform runs per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vaelab.data.lazy import LazyRows, iter_chunks

KINDS = ("none", "minmax", "standardize", "binarize", "binarize-dynamic", "columns")
UNIT_KINDS = ("minmax", "binarize", "binarize-dynamic")


@dataclass
class Preprocessor:
    """Maps raw values to model space (``transform``) and back for display (``inverse``).

    Every kind records the training split's raw ``min`` and ``max`` (the display range).
    binarize thresholds the min-max scaled values once; binarize-dynamic keeps [0, 1]
    intensities and the trainer resamples binary pixels every batch (its transform is min-max).
    """

    kind: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def fit(self, x: Any, threshold: float = 0.5) -> Preprocessor:
        """Statistics of ``x`` (array, memmap or LazyRows), computed chunk by chunk."""
        if self.kind == "columns":  # a table by column: params["columns"] holds the schema
            from vaelab.data import encoding
            from vaelab.data.columns import Schema

            self.params = encoding.fit(x, Schema.from_list(self.params["columns"]).columns)
            return self
        n_total = 0
        lo, hi = np.inf, -np.inf
        mean = m2 = None
        # min / max read the stored values (uint8 pixels stay uint8); standardize needs floats
        for block in iter_chunks(x, dtype=np.float32 if self.kind == "standardize" else None):
            if not len(block):
                continue
            flat = block.reshape(len(block), -1)
            # float32 rounding of the extremes, as if each block had been cast (it is monotonic)
            lo = min(lo, float(np.float32(flat.min())))
            hi = max(hi, float(np.float32(flat.max())))
            if self.kind == "standardize":  # Chan et al.'s pairwise mean / M2 update
                b = flat.astype(np.float64)
                nb = len(b)
                mb = b.mean(axis=0)
                m2b = ((b - mb) ** 2).sum(axis=0)
                if mean is None:
                    mean, m2 = mb, m2b
                else:
                    delta = mb - mean
                    tot = n_total + nb
                    mean = mean + delta * nb / tot
                    m2 = m2 + m2b + delta**2 * n_total * nb / tot
            n_total += len(block)
        if n_total == 0:
            lo = hi = 0.0
        self.params = {"min": float(lo), "max": float(hi)}
        if self.kind == "binarize":
            self.params["threshold"] = float(threshold)
        elif self.kind == "standardize":
            d = int(np.prod(np.shape(x)[1:], dtype=np.int64))
            mean = np.zeros(d) if mean is None else mean
            std = np.sqrt((m2 if m2 is not None else np.zeros(d)) / max(n_total, 1))
            std[std < 1e-8] = 1.0  # constant features stay constant
            self.params.update({"mean": mean.tolist(), "std": std.tolist()})
        return self

    def transform(self, x: Any, keep_pixels: bool = False) -> Any:
        """Raw values to model space; a LazyRows stays lazy (transformed per chunk).

        ``keep_pixels``: in-memory integer pixels scaled to [0, 1] stay integers, read as
        float32 rows (``vaelab.data.pixels.PixelRows``: a quarter of the memory)."""
        if isinstance(x, LazyRows):
            return x.map(self._transform) if self.kind != "none" else x
        if keep_pixels:
            from vaelab.data.pixels import PixelRows, keeps_pixels

            if keeps_pixels(x, self.kind):
                return PixelRows(x, *self.unit_affine(), transform=self._transform)
        return self._transform(x)

    def unit_affine(self) -> tuple[np.float32, np.float32]:
        """``(lo, scale)`` of the [0, 1] kinds: model value = clip((raw - lo) * scale, 0, 1),
        in float32."""
        lo, hi = self.params["min"], self.params["max"]
        return np.float32(lo), np.float32(1.0 / max(hi - lo, 1e-12))

    def _transform(self, x: np.ndarray) -> np.ndarray:
        raw = x
        x = np.asarray(x, dtype=np.float32)
        # a fresh float32 copy (of uint8 pixels, say) is transformed in place: no second array
        own = not (isinstance(raw, np.ndarray) and np.shares_memory(x, raw))
        if self.kind == "columns":
            from vaelab.data import encoding

            return encoding.transform(x, self.params)
        if self.kind in UNIT_KINDS:
            lo, scale = self.unit_affine()
            out = x if own else np.empty_like(x)
            np.subtract(x, lo, out=out)
            np.multiply(out, scale, out=out)
            np.clip(out, 0.0, 1.0, out=out)
            if self.kind == "binarize":
                np.greater(out, self.params["threshold"], out=out, casting="unsafe")
            return out
        if self.kind == "standardize":
            shape = x.shape
            mean = np.asarray(self.params["mean"], dtype=np.float32)
            std = np.asarray(self.params["std"], dtype=np.float32)
            flat = x.reshape(len(x), -1)
            out = flat if own else np.empty_like(flat)
            np.subtract(flat, mean, out=out)
            np.divide(out, std, out=out)
            return out.reshape(shape)
        return x

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Model space back to the raw units (for plots and exported arrays); a table by
        column gives (N, columns) raw codes (see ``vaelab.data.encoding.inverse``)."""
        x = np.asarray(x, dtype=np.float32)
        if self.kind == "columns":
            from vaelab.data import encoding

            return encoding.inverse(x, self.params)
        if self.kind in UNIT_KINDS:
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
        if self.kind in UNIT_KINDS:
            return True
        if self.kind == "none" and "min" in self.params:
            return self.params["min"] >= 0.0 and self.params["max"] <= 1.0
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        return cls(kind=d["kind"], params=dict(d.get("params", {})))
