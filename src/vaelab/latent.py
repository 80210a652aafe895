"""Operations in the latent space: grids, interpolation, traversals, attribute vectors."""

from __future__ import annotations

import numpy as np


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
    if method != "slerp":
        raise ValueError(f"method must be linear or slerp, not {method!r}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.clip(a @ b / max(na * nb, 1e-12), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-6:
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
