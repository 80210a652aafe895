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


LABEL_TRAIN_ROWS = 5000
"""Training codes the kNN classifier and the linear probe are fitted on at most."""
LABEL_TEST_ROWS = 5000
"""Test codes they are scored on at most."""
SILHOUETTE_ROWS = 2000
"""Test codes the silhouette is computed on at most (it needs all their pairwise distances)."""


def subset_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Every row index, or a seeded sorted subset of ``limit`` of them (the bounded subsets of
    the label metrics, the t-SNE map and ``metrics.encode_subset``)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def knn_predict(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, k: int = 5,
                chunk: int = 512) -> np.ndarray:
    """Majority label of the k nearest training codes (Euclidean); ties go to the smaller
    label, as in scikit-learn's KNeighborsClassifier."""
    import torch

    ztr = torch.as_tensor(z_train, dtype=torch.float32)
    ytr = torch.as_tensor(y_train, dtype=torch.long)
    classes = int(ytr.max()) + 1
    k = min(k, len(ztr))
    sq = ztr.square().sum(1)
    out = []
    for i in range(0, len(z_test), chunk):
        zq = torch.as_tensor(z_test[i : i + chunk], dtype=torch.float32)
        d = sq - 2 * zq @ ztr.T  # |q|^2 is the same along a row: it never changes the order
        idx = d.topk(k, dim=1, largest=False).indices
        votes = torch.zeros(len(idx), classes, dtype=torch.long).scatter_add_(
            1, ytr[idx], torch.ones_like(idx))
        out.append(votes.argmax(1))  # the first maximum: the smaller label
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                 c: float = 1.0, max_iter: int = 100) -> np.ndarray:
    """Multinomial logistic regression on standardised codes, predicted test labels.

    The objective is scikit-learn's LogisticRegression default: C times the summed
    cross-entropy plus half the squared weights (the intercepts are not penalised), here
    minimised by L-BFGS in float64.
    """
    import torch

    mean, std = z_train.mean(0), z_train.std(0)
    std = np.where(std > 0, std, 1.0)
    x = torch.as_tensor((z_train - mean) / std, dtype=torch.float64)
    y = torch.as_tensor(y_train, dtype=torch.long)
    classes = int(y.max()) + 1
    w = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6,
                            tolerance_change=1e-9, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        ce = torch.nn.functional.cross_entropy(x @ w + b, y, reduction="sum")
        loss = c * ce + 0.5 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    xt = torch.as_tensor((z_test - mean) / std, dtype=torch.float64)
    with torch.no_grad():
        return (xt @ w + b).argmax(1).numpy()


def silhouette(z: np.ndarray, y: np.ndarray) -> float:
    """Mean silhouette (b - a) / max(a, b) over points, Euclidean distances; a point alone in
    its class scores 0 (scikit-learn's convention)."""
    import torch

    zt = torch.as_tensor(z, dtype=torch.float64)
    d = torch.cdist(zt, zt)
    labels, yt = np.unique(y, return_inverse=True)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(yt), len(labels)).double()
    sums = d @ onehot  # (n, classes): summed distance to each class
    counts = onehot.sum(0)
    own = torch.as_tensor(yt)
    n_own = counts[own]
    a = sums.gather(1, own[:, None])[:, 0] / (n_own - 1).clamp(min=1)
    mean_other = sums / counts
    mean_other.scatter_(1, own[:, None], float("inf"))
    b = mean_other.min(1).values
    s = (b - a) / torch.maximum(a, b).clamp(min=1e-300)
    s = torch.where(n_own > 1, s, torch.zeros_like(s))
    return float(s.mean())


def label_structure(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                    y_test: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """kNN (k=5) and linear-probe accuracy (fit on training codes, scored on test codes) and the
    silhouette of the test codes by label, each on a bounded seeded subset whose size is
    recorded (``label_n_train``, ``label_n_test``, ``silhouette_n``)."""
    tr = np.flatnonzero(y_train >= 0)
    te = np.flatnonzero(y_test >= 0)
    out: dict[str, Any] = {}
    if len(tr) < 5 or len(te) < 2 or len(np.unique(y_train[tr])) < 2:
        return out
    tr = tr[subset_rows(len(tr), LABEL_TRAIN_ROWS, seed)]
    te = te[subset_rows(len(te), LABEL_TEST_ROWS, seed)]
    ztr, ytr = np.asarray(z_train[tr], np.float64), np.asarray(y_train[tr])
    zte, yte = np.asarray(z_test[te], np.float64), np.asarray(y_test[te])
    out["knn_accuracy"] = float(np.mean(knn_predict(ztr, ytr, zte) == yte))
    out["linear_probe_accuracy"] = float(np.mean(linear_probe(ztr, ytr, zte) == yte))
    if len(np.unique(yte)) >= 2 and len(zte) > len(np.unique(yte)):
        pick = subset_rows(len(zte), SILHOUETTE_ROWS, seed)
        out["silhouette"] = silhouette(zte[pick], yte[pick])
        out["silhouette_n"] = len(pick)
    out["chance_accuracy"] = float(np.max(np.bincount(yte)) / len(yte))
    out["label_n_train"] = len(tr)
    out["label_n_test"] = len(te)
    return out
