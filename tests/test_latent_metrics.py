"""Label-structure metrics (kNN, linear probe, silhouette) against scikit-learn's on the same
codes: vaelab computes them with torch so finishing a run never imports scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaelab.evaluate.latent_metrics import (
    knn_predict,
    label_structure,
    linear_probe,
    silhouette,
)


def _codes(n: int, seed: int, d: int = 6, classes: int = 5):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1.5, (classes, d))
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(0, 1.0, (n, d)), y


def test_knn_matches_scikit_learn():
    ztr, ytr = _codes(800, 0)
    zte, _ = _codes(500, 1)
    ours = knn_predict(ztr, ytr, zte, k=5, chunk=128)  # several chunks
    ref = KNeighborsClassifier(n_neighbors=5).fit(ztr, ytr).predict(zte)
    assert (ours == ref).mean() == 1.0


def test_linear_probe_matches_scikit_learn_logistic_regression():
    ztr, ytr = _codes(1500, 0)
    zte, _ = _codes(800, 1)
    ours = linear_probe(ztr * 3 + 1, ytr, zte * 3 + 1)  # standardises like the pipeline
    ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        ztr * 3 + 1, ytr).predict(zte * 3 + 1)
    assert (ours == ref).mean() >= 0.99


def _probe_objective(x, y, w, b, c=1.0):
    logits = x @ w + b
    top = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    return c * (lse - logits[np.arange(len(y)), y]).sum() + 0.5 * (w**2).sum()


def test_probe_solvers_reach_scikit_learns_optimum():
    """Newton's method (small probes) and L-BFGS (large ones) minimise the same convex
    objective as scikit-learn's LogisticRegression: the same value, to its tolerance."""
    from vaelab.evaluate import latent_metrics as lm

    z, y = _codes(2000, 3, d=8, classes=6)
    x = (z - z.mean(0)) / z.std(0)
    ref = LogisticRegression(max_iter=2000, tol=1e-10).fit(x, y)
    f_ref = _probe_objective(x, y, ref.coef_.T, ref.intercept_)
    w, b = lm._probe_newton(x, y, 6, 1.0, 100)
    assert _probe_objective(x, y, w, b) <= f_ref * (1 + 1e-9)
    w2, b2 = lm._probe_lbfgs(x, y, 6, 1.0, 100)
    assert abs(_probe_objective(x, y, w2, b2) - f_ref) <= 1e-4 * f_ref
    # the two paths give the same probabilities, so the same predictions
    assert ((x @ w + b).argmax(1) == (x @ w2 + b2).argmax(1)).mean() >= 0.999


def test_wide_probes_take_lbfgs(monkeypatch):
    from vaelab.evaluate import latent_metrics as lm

    calls = []
    monkeypatch.setattr(lm, "_probe_lbfgs", lambda *a: calls.append(a) or
                        (np.zeros((a[0].shape[1], a[2])), np.zeros(a[2])))
    z, y = _codes(300, 0, d=6, classes=5)
    lm.linear_probe(z, y, z)
    assert not calls  # (6 + 1) x 5 parameters: Newton
    monkeypatch.setattr(lm, "NEWTON_MAX_PARAMS", 30)
    lm.linear_probe(z, y, z)
    assert len(calls) == 1


def test_silhouette_matches_scikit_learn_including_a_lone_point():
    z, y = _codes(300, 2)
    assert abs(silhouette(z, y) - silhouette_score(z, y)) < 1e-9
    y = y.copy()
    y[0] = 9  # a class of one point scores 0
    assert abs(silhouette(z, y) - silhouette_score(z, y)) < 1e-9


def test_label_structure_states_its_subset_sizes(monkeypatch):
    import vaelab.evaluate.latent_metrics as lm

    monkeypatch.setattr(lm, "LABEL_TRAIN_ROWS", 300)
    monkeypatch.setattr(lm, "SILHOUETTE_ROWS", 100)
    ztr, ytr = _codes(1000, 0)
    zte, yte = _codes(400, 1)
    out = label_structure(ztr, ytr, zte, yte, seed=0)
    assert out["label_n_train"] == 300 and out["label_n_test"] == 400
    assert out["silhouette_n"] == 100
    assert 0.5 < out["knn_accuracy"] <= 1 and 0.5 < out["linear_probe_accuracy"] <= 1
    assert out["chance_accuracy"] < 0.35
