"""What the explorer serves: a loaded run, its test latents, a 2-D projection, decoding."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.figures import display_range
from vaelab.latent import interpolate
from vaelab.run import Run, check_run_dir

MAX_POINTS = 5000


class ExplorerState:
    """Everything the API needs, computed once; decoding is serialised by a lock."""

    def __init__(self, run_dir: str | Path) -> None:
        check_run_dir(Path(run_dir))
        self.run = Run.load(run_dir)
        self.model = self.run.model.eval()
        lat = self.run.latents()
        self.mu = lat["mu"][:MAX_POINTS].astype(np.float32)
        y = lat.get("y")
        self.y = None if y is None else y[:MAX_POINTS].astype(np.int64)
        self.latent_dim = int(self.mu.shape[1])
        self.test_x = np.asarray(self.run.data.test.x[: len(self.mu)], dtype=np.float32)
        self.lo, self.hi = display_range(self.run)
        self.lock = threading.Lock()
        if self.latent_dim == 2:
            self.projection = "none"
            self.mean = np.zeros(2, np.float32)
            self.components = np.eye(2, dtype=np.float32)
            self.share = 1.0
        else:
            from sklearn.decomposition import PCA

            pca = PCA(n_components=min(2, self.latent_dim)).fit(self.mu)
            self.projection = "pca"
            self.mean = pca.mean_.astype(np.float32)
            comps = pca.components_.astype(np.float32)
            if comps.shape[0] == 1:
                comps = np.vstack([comps, np.zeros_like(comps)])
            self.components = comps
            self.share = float(pca.explained_variance_ratio_.sum())
        self.points = (self.mu - self.mean) @ self.components.T

    # -- descriptions -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        shape = list(self.model.input_shape)
        names = self.run.data.label_names
        return {
            "run": str(self.run.path),
            "model": self.run.config.model.model,
            "latent_dim": self.latent_dim,
            "projection": self.projection,
            "projection_note": (
                "points are the 2-D latent means" if self.projection == "none" else
                f"points are a PCA projection of the {self.latent_dim}-D latent means "
                f"({self.share:.0%} of their variance); a click decodes the mean code plus "
                "the position along the two components"),
            "kind": "image" if len(shape) == 3 else "tabular",
            "shape": shape,
            "feature_names": self.run.data.test.feature_names,
            "label_names": names,
            "needs_label": bool(self.model.label_conditioned),
            "samplers": ["prior", "gmm"],
            "n_points": len(self.mu),
            "mean_code": self.mu.mean(0).tolist(),
            "code_std": self.mu.std(0).tolist(),
            "dim_labels": self.dim_labels(),
        }

    def dim_labels(self) -> list[str] | None:
        """Per dimension, the known factor it is most informative about (data with factors),
        as the factor traversals label their rows; None otherwise."""
        section = self.run.metrics.get("disentanglement")
        if not section:
            return None
        from vaelab.evaluate.disentangle import dimension_labels

        return dimension_labels(section)

    def points_payload(self) -> dict[str, Any]:
        return {"x": self.points[:, 0].round(4).tolist(), "y": self.points[:, 1].round(4).tolist(),
                "labels": None if self.y is None else self.y.tolist()}

    # -- conversions ------------------------------------------------------------------------
    def position_to_code(self, pos: list[float]) -> np.ndarray:
        return (self.mean + np.asarray(pos, np.float32) @ self.components).astype(np.float32)

    def code_to_position(self, z: np.ndarray) -> list[float]:
        return ((np.asarray(z, np.float32) - self.mean) @ self.components.T).tolist()

    def display(self, arrays: np.ndarray) -> list[dict[str, Any]]:
        """Model-space outputs -> raw units -> [0, 1] for display (images) or raw (tables);
        a table by column gives each column in its units with its category names."""
        if self.model.spec.columns is not None:
            from vaelab.tabular.display import table_display

            return table_display(arrays, self.run.preprocessor.params)
        raw = self.run.preprocessor.inverse(arrays)
        out = []
        for a in raw:
            if a.ndim == 3:
                scaled = np.clip((a - self.lo) / max(self.hi - self.lo, 1e-12), 0, 1)
                out.append({"shape": list(a.shape), "data": scaled.round(4).ravel().tolist()})
            else:
                out.append({"values": a.round(5).tolist()})
        return out

    def decode(self, codes: np.ndarray, label: int | None = None) -> list[dict[str, Any]]:
        y = None
        if self.model.uses_labels:
            y = torch.full((len(codes),), -1 if label is None else label, dtype=torch.long)
        with self.lock, torch.inference_mode():
            out = self.model.decode_mean(torch.as_tensor(codes, dtype=torch.float32), y)
        return self.display(out.float().numpy())

    def inputs(self, indices: list[int]) -> list[dict[str, Any]]:
        return self.display(self.test_x[indices])

    def interpolate(self, a: int, b: int, steps: int, method: str, label: int | None
                    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        codes = interpolate(self.mu[a], self.mu[b], steps, method)
        return codes, self.decode(codes, label)

    def sample(self, n: int, seed: int, label: int | None, sampler: str = "prior"
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Decode n codes from ``sampler`` (vaelab.samplers: the model's prior, or the GMM on
        the training codes, fitted and saved in the run on first use)."""
        from vaelab.samplers import load_sampler

        with self.lock, torch.inference_mode():
            codes = load_sampler(self.run, sampler).codes(n, seed=seed, device="cpu")
        codes = codes.float().numpy()
        return codes, self.decode(codes, label)
