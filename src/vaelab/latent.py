"""Operations in the latent space: decode codes, grids, interpolation (linear and spherical),
traversals, attribute vectors.

The array helpers (``grid_codes``, ``interpolate``, ``traverse``, ``attribute_vector``,
``apply_attribute``) work on numpy codes; ``decode`` runs a model (any
:class:`~vaelab.models.BaseModel`; label-conditioned models take ``y``) in batches and returns
numpy arrays in the model's (preprocessed) space. Encoding is ``vaelab.evaluate.encode_dataset``;
sampling is ``Run.sample`` (the model's own prior).
"""

from __future__ import annotations

import numpy as np
import torch

from vaelab.models import BaseModel


def _labels(model: BaseModel, y: np.ndarray | None, n: int) -> np.ndarray | None:
    if y is None or not model.uses_labels:
        return None
    y = np.asarray(y, dtype=np.int64)
    return np.full(n, int(y), dtype=np.int64) if y.ndim == 0 else y


@torch.no_grad()
def decode(model: BaseModel, z: np.ndarray, y: np.ndarray | int | None = None,
           batch_size: int = 1024) -> np.ndarray:
    """Decoder means of codes z (N, latent_dim); ``y`` is one label or one per code (cvae)."""
    model.eval()
    dev = next(model.parameters()).device
    z = np.asarray(z, dtype=np.float32)
    z = z.reshape(len(z), -1) if z.size else z.reshape(0, model.latent_dim)
    if z.shape[1] != model.latent_dim:
        raise ValueError(f"codes have {z.shape[1]} dimensions, the model's latent has "
                         f"{model.latent_dim}")
    labels = _labels(model, None if y is None else np.asarray(y), len(z))
    out = []
    for i in range(0, len(z), batch_size):
        zb = torch.as_tensor(z[i : i + batch_size], device=dev)
        yb = None if labels is None else torch.as_tensor(labels[i : i + batch_size], device=dev)
        out.append(model.decode_mean(zb, yb).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *model.input_shape), np.float32)


def grid_codes(n: int = 30, span: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Codes of an n x n grid over [-span, span]^2 (row-major, z2 decreasing down the rows)."""
    values = np.linspace(-span, span, n, dtype=np.float32)
    z1, z2 = np.meshgrid(values, values[::-1])
    return np.stack([z1.ravel(), z2.ravel()], axis=1), values


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int = 10,
                method: str = "linear") -> np.ndarray:
    """``steps`` codes from z0 to z1, on the straight line or the great circle (slerp)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    if method == "linear":
        return ((1 - t) * a + t * b).astype(np.float32)
    if method not in ("slerp", "spherical"):
        raise ValueError(f"method must be linear or slerp, not {method!r}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.clip(a @ b / max(na * nb, 1e-12), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-6 or np.pi - omega < 1e-6:  # (anti)parallel: the great circle is undefined
        return ((1 - t) * a + t * b).astype(np.float32)
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def traverse(z: np.ndarray, dim: int, values: np.ndarray) -> np.ndarray:
    """Copies of code ``z`` with dimension ``dim`` set to each of ``values``."""
    out = np.repeat(np.asarray(z, np.float32)[None], len(values), axis=0)
    out[:, dim] = values
    return out


def attribute_vector(mu: np.ndarray, y: np.ndarray, source: int, target: int) -> np.ndarray:
    """Mean code of label ``target`` minus mean code of label ``source``."""
    if not (y == source).any() or not (y == target).any():
        raise ValueError(f"labels {source} and {target} both need examples")
    return (mu[y == target].mean(0) - mu[y == source].mean(0)).astype(np.float32)


def apply_attribute(mu: np.ndarray, y: np.ndarray, source: int, target: int, base: int,
                    n: int = 8, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the first ``n`` examples of label ``base`` and the same codes plus
    ``scale`` x (mean code of ``target`` - mean code of ``source``)."""
    vec = attribute_vector(mu, y, source, target)
    codes = mu[y == base][:n]
    if not len(codes):
        raise ValueError(f"label {base} has no examples")
    return codes.astype(np.float32), (codes + scale * vec).astype(np.float32)
