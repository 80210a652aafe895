"""Numbers about the latent space: active units, label structure, PCA share of variance."""

from __future__ import annotations

from typing import Any

import numpy as np


def active_units(mu: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Dimensions whose posterior mean varies over the data: Var_x[E_q(z|x) z_d] > threshold."""
    var = np.var(mu, axis=0)
    return int((var > threshold).sum()), var


def pca_share(z: np.ndarray, n: int = 2) -> float:
    """Share of the latent means' variance captured by the first ``n`` principal components."""
    zc = z - z.mean(0)
    s = np.linalg.svd(zc, compute_uv=False) ** 2
    total = s.sum()
    return float(s[:n].sum() / total) if total > 0 else 1.0


def label_structure(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                    y_test: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """kNN (k=5) and linear-probe accuracy (fit on train latents, scored on test), silhouette."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr = y_train >= 0
    te = y_test >= 0
    out: dict[str, Any] = {}
    if tr.sum() < 5 or te.sum() < 2 or len(np.unique(y_train[tr])) < 2:
        return out
    ztr, ytr = z_train[tr], y_train[tr]
    if len(ztr) > 20000:
        pick = np.random.default_rng(seed).choice(len(ztr), 20000, replace=False)
        ztr, ytr = ztr[pick], ytr[pick]
    knn = KNeighborsClassifier(n_neighbors=min(5, len(ztr))).fit(ztr, ytr)
    out["knn_accuracy"] = float(knn.score(z_test[te], y_test[te]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    probe.fit(ztr, ytr)
    out["linear_probe_accuracy"] = float(probe.score(z_test[te], y_test[te]))
    zt, yt = z_test[te], y_test[te]
    if len(np.unique(yt)) >= 2 and len(zt) > len(np.unique(yt)):
        if len(zt) > 5000:
            pick = np.random.default_rng(seed).choice(len(zt), 5000, replace=False)
            zt, yt = zt[pick], yt[pick]
        out["silhouette"] = float(silhouette_score(zt, yt))
    out["chance_accuracy"] = float(np.max(np.bincount(y_test[te])) / te.sum())
    return out
