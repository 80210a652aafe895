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


NEWTON_MAX_PARAMS = 1500
"""Probes with at most this many parameters ((dims + 1) x classes) are fitted by Newton's
method (a dense Hessian of at most 18 MB); larger ones by L-BFGS."""


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                 c: float = 1.0, max_iter: int = 100) -> np.ndarray:
    """Multinomial logistic regression on standardised codes, predicted test labels.

    The objective is scikit-learn's LogisticRegression default: C times the summed
    cross-entropy plus half the squared weights (the intercepts are not penalised), minimised
    in float64 by Newton's method with a backtracking line search (the problem is convex and
    small: 20-D codes and 10 classes converge in about ten steps, in numpy, without torch's
    optimiser machinery) or, for many dimensions x classes, by L-BFGS.
    """
    mean, std = z_train.mean(0), z_train.std(0)
    std = np.where(std > 0, std, 1.0)
    x = (np.asarray(z_train, np.float64) - mean) / std
    y = np.asarray(y_train, dtype=np.int64)
    classes = int(y.max()) + 1
    if (x.shape[1] + 1) * classes <= NEWTON_MAX_PARAMS:
        w, b = _probe_newton(x, y, classes, c, max_iter)
    else:
        w, b = _probe_lbfgs(x, y, classes, c, max_iter)
    xt = (np.asarray(z_test, np.float64) - mean) / std
    return (xt @ w + b).argmax(1)


def _probe_newton(x: np.ndarray, y: np.ndarray, classes: int, c: float,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    n, d = x.shape
    xa = np.hstack([x, np.ones((n, 1))])  # the last row of theta holds the intercepts
    dd = d + 1
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), y] = 1.0
    penalty = np.ones((dd, 1))
    penalty[-1] = 0.0
    theta = np.zeros((dd, classes))

    def objective(th: np.ndarray) -> tuple[float, np.ndarray]:
        logits = xa @ th
        top = logits.max(1, keepdims=True)
        e = np.exp(logits - top)
        total = e.sum(1, keepdims=True)
        lse = np.log(total) + top
        value = c * float((lse[:, 0] - logits[np.arange(n), y]).sum())
        return value + 0.5 * float((penalty * th**2).sum()), e / total

    f, p = objective(theta)
    for _ in range(max_iter):
        grad = c * (xa.T @ (p - onehot)) + penalty * theta  # (dd, classes)
        if np.abs(grad).max() < 1e-8 * max(1.0, c * n):
            break
        # Hessian in class-major order (class a, feature j) -> a * dd + j
        m = (p[:, :, None] * xa[:, None, :]).reshape(n, classes * dd)
        hess = -(m.T @ m)
        for a in range(classes):
            block = slice(a * dd, (a + 1) * dd)
            hess[block, block] += xa.T @ (p[:, a : a + 1] * xa)
        hess *= c
        # the penalty, plus a tiny ridge: shifting every intercept alike changes nothing
        hess[np.diag_indices_from(hess)] += np.tile(penalty[:, 0], classes) + 1e-10 * c * n
        step = np.linalg.solve(hess, grad.T.reshape(-1)).reshape(classes, dd).T
        slope = float((grad * step).sum())
        t = 1.0
        for _ in range(40):
            f_new, p_new = objective(theta - t * step)
            if f_new <= f - 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no decrease along the Newton direction: at the optimum to rounding
        theta = theta - t * step
        done = f - f_new <= 1e-12 * max(1.0, abs(f))
        f, p = f_new, p_new
        if done:
            break
    return theta[:-1], theta[-1]


def _probe_lbfgs(x: np.ndarray, y: np.ndarray, classes: int, c: float,
                 max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.long)
    w = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-6,
                            tolerance_change=1e-9, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        ce = torch.nn.functional.cross_entropy(xt @ w + b, yt, reduction="sum")
        loss = c * ce + 0.5 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


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
