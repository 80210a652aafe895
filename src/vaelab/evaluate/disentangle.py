"""Disentanglement metrics of a run whose data carries factors: MIG, DCI, SAP, FactorVAE score.

Each metric is implemented from its paper and scored on the posterior means, with
google-research/disentanglement_lib's protocol:

- MIG (Chen et al. 2018): each code dimension discretised into 20 equal-width histogram bins;
  I(z_j; v_k) by scikit-learn's ``mutual_info_score``; the mean over factors of the gap
  between the two most informative dimensions, divided by the factor's entropy H(v_k).
- DCI (Eastwood & Williams 2018): one ``GradientBoostingClassifier`` (scikit-learn's defaults)
  per factor on the codes; |feature importances| form the importance matrix R (codes x
  factors). Disentanglement: sum_j rho_j (1 - H_K(R_j.)), rho_j = R_j. / sum R;
  completeness: sum_k rho_k (1 - H_L(R_.k)); informativeness: the classifiers' mean accuracy
  on the training and on the test points.
- SAP (Kumar et al. 2018): for every (dimension, factor) pair the test accuracy of a
  ``LinearSVC(C=0.01, class_weight="balanced")`` on that one dimension (discrete factors, the
  library's dSprites setting); the mean over factors of the gap between the best two
  dimensions. ``sap_continuous`` is the variant for real-valued factors (R^2 of one
  dimension), which the library's own known-answer tests use.
- FactorVAE score (Kim & Mnih 2018): dimensions are scaled by their standard deviation over
  ``fv_variance`` points and those with std below 0.05 pruned; each vote fixes one random
  factor over a batch of 64, the dimension with the least scaled variance votes for it; the
  majority-vote classifier fit on ``fv_train`` votes is scored on ``fv_eval`` others.

Counts: the ``full`` protocol is the library's (10,000 training and 5,000 test points;
10,000 / 5,000 votes; 100 boosting stages); ``reduced`` (the default on a CPU) uses 2,000 /
1,000 points, 500 / 250 votes and 20 stages (a DCI classifier fits one tree per class and
stage: 113 classes on shapes), recorded with the scikit-learn version in the
``disentanglement`` section of metrics.json. MIG, DCI and SAP
share one draw of training points and one of test points.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.evaluate.ground_truth import Encoder, ground_truth, mean_encoder

if TYPE_CHECKING:
    from vaelab.run import Run

BINS = 20
PRUNE_STD = 0.05
MAX_CLASSIFIER_DIMS = 64
"""Wider codes (a VQ-VAE's flattened grid) skip DCI and SAP: one classifier per factor (per
dimension and factor for SAP) on that many features takes far too long."""
CHOICES = ("auto", "full", "reduced", "off")


@dataclass(frozen=True)
class Protocol:
    """Sample counts of one evaluation."""

    name: str
    num_train: int
    num_test: int
    fv_batch: int
    fv_train: int
    fv_eval: int
    fv_variance: int
    dci_trees: int = 100
    """Boosting stages of each DCI classifier (scikit-learn's default 100 in the library)."""
    bins: int = BINS
    prune_std: float = PRUNE_STD


PROTOCOLS = {
    "full": Protocol("full", 10000, 5000, 64, 10000, 5000, 10000),
    "reduced": Protocol("reduced", 2000, 1000, 64, 500, 250, 2000, dci_trees=20),
}


# -- the metrics on arrays ---------------------------------------------------------------------
def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of ``codes`` cut into ``bins`` equal-width histogram bins (0..bins-1)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins)
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(codes, factors) matrix of I(z_j; v_k) in nats, the codes discretised."""
    from sklearn.metrics import mutual_info_score

    d = discretize(codes, bins)
    return np.array([[mutual_info_score(factors[:, k], d[:, j])
                      for k in range(factors.shape[1])] for j in range(d.shape[1])])


def entropies(factors: np.ndarray) -> np.ndarray:
    """H(v_k) in nats of each factor column."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(factors[:, k], factors[:, k])
                     for k in range(factors.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Mutual information gap: ``mig`` and the per-factor gaps, plus the MI matrix."""
    mi = mutual_information(codes, factors, bins)
    h = entropies(factors)
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = np.divide(top[0] - second, h, out=np.zeros_like(h), where=h > 0)
    return {"mig": float(gaps.mean()), "per_factor": gaps, "mi": mi, "entropy": h}


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy in base ``base`` of each row of a non-negative matrix (rows normalised)."""
    p = p + 1e-11
    p = p / p.sum(1, keepdims=True)
    return -(p * np.log(p)).sum(1) / np.log(max(base, 2))


def dci_scores(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix (codes x factors)."""
    r = np.abs(importance)
    weights = r if r.sum() > 0 else np.ones_like(r)
    n_codes, n_factors = r.shape
    per_code = 1.0 - _entropy_rows(r, n_factors)
    per_factor = 1.0 - _entropy_rows(r.T, n_codes)
    dis = float((per_code * weights.sum(1) / weights.sum()).sum())
    com = float((per_factor * weights.sum(0) / weights.sum()).sum())
    return dis, com


def dci(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray, trees: int = 100) -> dict[str, Any]:
    """DCI disentanglement / completeness / informativeness with gradient-boosted trees
    (``trees`` boosting stages per factor)."""
    from sklearn.ensemble import GradientBoostingClassifier

    importance = np.zeros((codes.shape[1], factors.shape[1]))
    acc_train, acc_test = [], []
    for k in range(factors.shape[1]):
        if len(np.unique(factors[:, k])) < 2:  # nothing to predict: no importance
            acc_train.append(1.0)
            acc_test.append(float(np.mean(factors_test[:, k] == factors[0, k])))
            continue
        clf = GradientBoostingClassifier(n_estimators=trees).fit(codes, factors[:, k])
        importance[:, k] = np.abs(clf.feature_importances_)
        acc_train.append(float(np.mean(clf.predict(codes) == factors[:, k])))
        acc_test.append(float(np.mean(clf.predict(codes_test) == factors_test[:, k])))
    dis, com = dci_scores(importance)
    return {"disentanglement": dis, "completeness": com,
            "informativeness_train": float(np.mean(acc_train)),
            "informativeness_test": float(np.mean(acc_test)), "importance": importance}


def sap(codes: np.ndarray, factors: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray) -> dict[str, Any]:
    """SAP score (discrete factors): top-two gap of single-dimension linear SVM accuracies."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    score = np.zeros((codes.shape[1], factors.shape[1]))
    for j in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            if len(np.unique(factors[:, k])) < 2:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf = LinearSVC(C=0.01, class_weight="balanced")
                clf.fit(codes[:, j : j + 1], factors[:, k])
            score[j, k] = np.mean(clf.predict(codes_test[:, j : j + 1]) == factors_test[:, k])
    top = np.sort(score, axis=0)
    second = top[-2] if len(top) > 1 else np.zeros_like(top[-1])
    return {"sap": float(np.mean(top[-1] - second)), "matrix": score}


def sap_continuous(codes: np.ndarray, factors: np.ndarray) -> float:
    """SAP with every factor treated as real-valued: the top-two gap of the squared
    correlation R^2 between one dimension and the factor (the library's known-answer tests
    use this variant; a one-dimensional linear classifier cannot isolate an ordinal factor's
    middle values)."""
    score = np.zeros((codes.shape[1], factors.shape[1]))
    f = factors.astype(np.float64)
    for j in range(codes.shape[1]):
        for k in range(factors.shape[1]):
            c = np.cov(codes[:, j], f[:, k], ddof=1)
            if c[0, 0] > 1e-12 and c[1, 1] > 0:
                score[j, k] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1])
    top = np.sort(score, axis=0)
    second = top[-2] if len(top) > 1 else np.zeros_like(top[-1])
    return float(np.mean(top[-1] - second))


def factorvae_score(truth: Any, encode: Encoder, protocol: Protocol,
                    rng: np.random.Generator) -> dict[str, Any]:
    """Majority-vote accuracy of the FactorVAE metric (train and evaluation votes)."""
    std = np.std(encode(truth.sample_observations(protocol.fv_variance, rng)), axis=0, ddof=1)
    active = np.flatnonzero(std >= protocol.prune_std)
    if not len(active):
        return {"accuracy": 0.0, "train_accuracy": 0.0, "active_dims": 0}

    def votes(n: int) -> np.ndarray:
        table = np.zeros((len(truth.sizes), len(std)), dtype=np.int64)
        for _ in range(n):
            k, xb = truth.sample_fixed(protocol.fv_batch, rng)
            local = np.var(encode(xb), axis=0, ddof=1)[active] / std[active] ** 2
            table[k, active[int(np.argmin(local))]] += 1
        return table

    train, held = votes(protocol.fv_train), votes(protocol.fv_eval)
    classifier = np.argmax(train, axis=0)
    cols = np.arange(train.shape[1])
    return {"accuracy": float(held[classifier, cols].sum() / max(held.sum(), 1)),
            "train_accuracy": float(train[classifier, cols].sum() / max(train.sum(), 1)),
            "active_dims": len(active)}


def score_all(truth: Any, encode: Encoder, protocol: Protocol, seed: int = 0
              ) -> dict[str, Any]:
    """Every metric for one representation (``encode``: model-space inputs -> codes)."""
    rng = np.random.default_rng(seed)
    n_train, n_test = protocol.num_train, protocol.num_test
    if truth.limit is not None:  # a finite pool of rows: 2/3 train, 1/3 test at most
        n_train = min(n_train, truth.limit * 2 // 3)
        n_test = min(n_test, truth.limit - n_train)
    f_train, x_train = truth.sample(n_train, rng)
    f_test, x_test = truth.sample(n_test, rng)
    z_train, z_test = encode(x_train), encode(x_test)
    m = mig(z_train, f_train, protocol.bins)
    wide = z_train.shape[1] > MAX_CLASSIFIER_DIMS
    none = {"disentanglement": None, "completeness": None, "informativeness_test": None,
            "informativeness_train": None}
    d = none if wide else dci(z_train, f_train, z_test, f_test, protocol.dci_trees)
    s = {"sap": None} if wide else sap(z_train, f_train, z_test, f_test)
    fv = factorvae_score(truth, encode, protocol, rng)
    out = {
        "mig": m["mig"],
        "dci_disentanglement": d["disentanglement"],
        "dci_completeness": d["completeness"],
        "dci_informativeness_test": d["informativeness_test"],
        "dci_informativeness_train": d["informativeness_train"],
        "sap": s["sap"],
        "sap_continuous": None if wide else sap_continuous(z_train, f_train),
        "factorvae_accuracy": fv["accuracy"],
        "factorvae_train_accuracy": fv["train_accuracy"],
        "factorvae_active_dims": fv["active_dims"],
        "factors": list(truth.names),
        "factor_sizes": list(truth.sizes),
        "mig_per_factor": [float(v) for v in m["per_factor"]],
        "factor_entropy": [float(v) for v in m["entropy"]],
        "mutual_information": np.round(m["mi"], 6).tolist(),
        "counts": {"train": n_train, "test": n_test},
    }
    if wide:
        out["skipped"] = (f"DCI and SAP: the code has {z_train.shape[1]} dimensions, more than "
                          f"{MAX_CLASSIFIER_DIMS}")
    return out


def resolve_protocol(name: str, device_type: str) -> Protocol | None:
    """The protocol an option value names (auto: full on CUDA, reduced elsewhere)."""
    from vaelab.errors import ConfigError

    if name not in CHOICES:
        raise ConfigError(f"option 'factor_metrics' got {name!r}; choose one of "
                          f"{', '.join(CHOICES)}.")
    if name == "off":
        return None
    if name == "auto":
        name = "full" if device_type == "cuda" else "reduced"
    return PROTOCOLS[name]


def factor_metrics(run: Run) -> dict[str, Any] | None:
    """The ``disentanglement`` section of metrics.json, or None when the data has no factors
    (or ``factor_metrics`` is off)."""
    model = run.model
    device = next(model.parameters()).device
    protocol = resolve_protocol(getattr(run.config.train, "factor_metrics", "auto"),
                                device.type)
    if protocol is None:
        return None
    truth = ground_truth(run.data, run.preprocessor.transform, tuple(model.input_shape))
    if truth is None:
        return None
    import sklearn  # only for data with factors: importing it costs about 1.5 s

    t0 = time.perf_counter()
    out = score_all(truth, mean_encoder(model), protocol, seed=run.config.train.seed)
    out["protocol"] = {**asdict(protocol), "source": truth.kind, "representation":
                       "posterior means", "dci_classifier":
                       f"GradientBoostingClassifier(n_estimators={protocol.dci_trees})",
                       "sap_classifier": "LinearSVC(C=0.01, class_weight='balanced')"}
    out["sklearn"] = sklearn.__version__
    out["seconds"] = time.perf_counter() - t0
    return out


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "-"


def summary_line(section: dict[str, Any]) -> str:
    """One line of the run's summary: every score and the protocol."""
    s = section
    return (f"disentanglement ({s['protocol']['name']} protocol, {s['counts']['train']} "
            f"points): MIG {_num(s['mig'])}, DCI disentanglement "
            f"{_num(s['dci_disentanglement'])} / completeness {_num(s['dci_completeness'])} / "
            f"informativeness {_num(s['dci_informativeness_test'])}, SAP {_num(s['sap'])}, "
            f"FactorVAE score {_num(s['factorvae_accuracy'])}")


def informative_factors(section: dict[str, Any]) -> list[tuple[str, float]]:
    """For each code dimension, the factor it is most informative about and the MI divided by
    that factor's entropy (0..1), from a ``disentanglement`` section."""
    mi = np.asarray(section["mutual_information"], dtype=np.float64)
    h = np.asarray(section["factor_entropy"], dtype=np.float64)
    norm = np.divide(mi, h[None, :], out=np.zeros_like(mi), where=h[None, :] > 0)
    names = section["factors"]
    return [(names[int(np.argmax(row))], float(row.max())) for row in norm]


def dimension_labels(section: dict[str, Any]) -> list[str]:
    """``z<d>: <factor> (<MI share>)`` per code dimension: the traversal rows' and the
    explorer sliders' labels."""
    return [f"z{d + 1}: {name} ({share:.2f})"
            for d, (name, share) in enumerate(informative_factors(section))]
