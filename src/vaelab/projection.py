"""2-D maps of latent codes for plotting: PCA (numpy) and t-SNE (scikit-learn).

Torch- and matplotlib-free, so the t-SNE can run in vaelab's worker process
(``vaelab.worker``) beside the main process's figures.
"""

from __future__ import annotations

import numpy as np

MIN_TSNE_POINTS = 4
TSNE_ITERATIONS = 500
"""250 early-exaggeration steps, then 250 plain ones (scikit-learn's minimum)."""


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, float]:
    """The first two principal components of ``z`` and the share of variance they keep."""
    z = np.asarray(z, dtype=np.float64)
    zc = z - z.mean(0)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    total = float((s**2).sum())
    share = float((s[:2] ** 2).sum() / total) if total > 0 else 1.0
    # a fixed sign per component (largest loading positive) so the map never flips
    signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())
    signs[signs == 0] = 1
    return zc @ (vt[:2].T * signs), share


def tsne_2d(z: np.ndarray, seed: int = 0) -> np.ndarray:
    """A t-SNE map of ``z`` (perplexity 30, or less for few points; PCA start)."""
    from sklearn.manifold import TSNE

    z = np.asarray(z, dtype=np.float32)
    if len(z) < MIN_TSNE_POINTS:
        raise ValueError(f"a t-SNE map needs at least {MIN_TSNE_POINTS} points, got {len(z)}")
    perp = float(min(30.0, max(2.0, (len(z) - 1) / 3)))  # below the point count, as it must
    return TSNE(n_components=2, random_state=seed, perplexity=perp, init="pca",
                max_iter=TSNE_ITERATIONS).fit_transform(z)
