"""Tables: vaelab beside PyOD (anomaly detection) and SDV's TVAE (synthetic rows), same splits.

Anomaly detection (ROC-AUC / average precision on held-out rows, mean +- std over seeds):

- breast-cancer: scikit-learn's 569 tumours; a random 60 % of the benign ones train, the other
  benign ones and all malignant ones (the anomalies) are scored;
- digits (one-class): for each digit d, 60 % of its images train, its other images and all
  other digits (the anomalies) are scored; ROC-AUC averaged over the ten digits.

Detectors on the same rows: vaelab's VAE (IWAE NLL, K=100) and AE (reconstruction NLL) trained
on the table written as CSV; PyOD's VAE as configured (``capacity=0``: its KL term is clamped to
[0, capacity], so by default the KL is off) and with the KL on (``capacity=inf``), PyOD's
AutoEncoder and IsolationForest with their defaults.

Synthetic rows (the class is one more categorical column; 70 % train / 30 % test): vaelab's
VAE (codes from the GMM sampler) and SDV's TVAE generate as many rows as the training split.
Columns: mean Kolmogorov-Smirnov distance over numeric columns and total variation over
categorical ones (lower is better, against the training rows), mean absolute difference of the
Pearson correlation matrices, and "train on synthetic, test on real": a random forest trained on
the generated rows predicting the class of the real test rows (beside the same forest trained
on the real training rows).

    pip install "vaelab[tabular-bench]"          # pyod, sdv
    python benchmarks/tabular.py --seeds 3 --out benchmarks/results/tabular.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import vaelab

VAE_OPTIONS = {"lr_schedule": "constant", "model": "vae", "latent_dim": 8, "hidden": [64, 32],
               "epochs": 200, "batch_size": 32, "lr": 1e-3, "patience": 30, "eval_k": 0,
               "progress": False, "val_fraction": 0.15, "test_fraction": 0.05}
SYNTH_OPTIONS = {"lr_schedule": "constant", "model": "vae", "latent_dim": 8,
                 "hidden": [128, 128], "epochs": 300, "batch_size": 32, "lr": 1e-3,
                 "patience": 50, "eval_k": 0, "progress": False, "val_fraction": 0.1,
                 "test_fraction": 0.05}


def _write_csv(path: Path, x: np.ndarray, names: list[str], extra: dict | None = None) -> None:
    cols = [names[j] for j in range(x.shape[1])] + list(extra or {})
    lines = [",".join(cols)]
    for i, row in enumerate(x):
        cells = [repr(float(v)) for v in row] + [str(v[i]) for v in (extra or {}).values()]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def _train(csv: Path, out: Path, seed: int, options: dict, **extra) -> vaelab.Run:
    import vaelab.figures

    # The comparison times training and scoring, not the run's figures (drawn by `vaelab plot`)
    vaelab.figures.render_figures = lambda run, names=None: []
    return vaelab.train(None, log=None, report=False, data=str(csv), out=str(out), seed=seed,
                        threads=1, **{**options, **extra})


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


# -- anomaly detection ------------------------------------------------------------------------
def _pyod(name: str, seed: int):
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.iforest import IForest
    from pyod.models.vae import VAE

    if name == "pyod-vae (capacity 0)":
        return VAE(random_state=seed, verbose=0)
    if name == "pyod-vae (KL on)":
        return VAE(random_state=seed, verbose=0, capacity=math.inf)
    if name == "pyod-autoencoder":
        return AutoEncoder(random_state=seed, verbose=0)
    return IForest(random_state=seed)


PYOD = ["pyod-vae (capacity 0)", "pyod-vae (KL on)", "pyod-autoencoder", "pyod-iforest"]


def detect(x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, names: list[str],
           seed: int, work: Path) -> dict[str, dict[str, float]]:
    """ROC-AUC and AP of every detector on one split."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from vaelab.tabular.score import row_scores

    out: dict[str, dict[str, float]] = {}
    train_csv, test_csv = work / "train.csv", work / "test.csv"
    _write_csv(train_csv, x_train, names)
    _write_csv(test_csv, x_test, names)
    numeric = list(names)  # pixel columns stay numbers even where a class shows only 0 / 1
    for model in ("vae", "ae"):
        t0 = time.perf_counter()
        run = _train(train_csv, work / f"run-{model}", seed, VAE_OPTIONS, model=model,
                     numeric=numeric)
        from vaelab.tabular.rows import read_rows

        _, _, x, _, _ = read_rows(run, test_csv)
        s = row_scores(run, x, k=100, seed=seed)
        out[f"vaelab-{model}"] = {"roc_auc": roc_auc_score(y_test, s),
                                  "ap": average_precision_score(y_test, s),
                                  "seconds": time.perf_counter() - t0}
    for name in PYOD:
        t0 = time.perf_counter()
        det = _pyod(name, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            det.fit(x_train)
            s = det.decision_function(x_test)
        out[name] = {"roc_auc": roc_auc_score(y_test, s),
                     "ap": average_precision_score(y_test, s),
                     "seconds": time.perf_counter() - t0}
    return out


def breast_cancer_splits(seed: int):
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    x, y = d.data.astype(np.float64), d.target  # target 1 = benign
    rng = np.random.default_rng(seed)
    benign = rng.permutation(np.flatnonzero(y == 1))
    n_train = int(0.6 * len(benign))
    train = benign[:n_train]
    test = np.concatenate([benign[n_train:], np.flatnonzero(y == 0)])
    names = [n.replace(" ", "_") for n in d.feature_names]
    return x[train], x[test], (y[test] == 0).astype(int), names


def digits_splits(seed: int, digit: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data.astype(np.float64), d.target
    rng = np.random.default_rng(seed * 10 + digit)
    own = rng.permutation(np.flatnonzero(y == digit))
    n_train = int(0.6 * len(own))
    test = np.concatenate([own[n_train:], np.flatnonzero(y != digit)])
    return x[own[:n_train]], x[test], (y[test] != digit).astype(int), \
        [f"px{i}" for i in range(64)]


def anomaly_benchmark(seeds: int, work: Path, digits: list[int]) -> dict:
    results: dict[str, dict[str, list[float]]] = {}

    def add(dataset: str, res: dict[str, dict[str, float]]) -> None:
        for det, m in res.items():
            for k, v in m.items():
                results.setdefault(dataset, {}).setdefault(f"{det}|{k}", []).append(v)

    for seed in range(seeds):
        w = work / f"bc-{seed}"
        w.mkdir(parents=True, exist_ok=True)
        add("breast-cancer", detect(*breast_cancer_splits(seed), seed, w))
        print(f"  breast-cancer seed {seed} done", file=sys.stderr)
        per_digit: dict[str, dict[str, list[float]]] = {}
        for digit in digits:
            w = work / f"dg-{seed}-{digit}"
            w.mkdir(parents=True, exist_ok=True)
            for det, m in detect(*digits_splits(seed, digit), seed, w).items():
                for k, v in m.items():
                    per_digit.setdefault(det, {}).setdefault(k, []).append(v)
        add("digits (one-class)", {det: {k: float(np.mean(v)) for k, v in m.items()}
                                   for det, m in per_digit.items()})
        print(f"  digits seed {seed} done", file=sys.stderr)
    return results


# -- synthetic rows ---------------------------------------------------------------------------
def _table(name: str):
    import pandas as pd
    from sklearn import datasets

    d = {"iris": datasets.load_iris, "wine": datasets.load_wine,
         "breast-cancer": datasets.load_breast_cancer}[name]()
    df = pd.DataFrame(d.data, columns=[c.replace(" ", "_") for c in d.feature_names])
    df["class"] = np.asarray(d.target_names)[d.target]
    return df


def synth_metrics(real_train, real_test, synth) -> dict[str, float]:
    from scipy.stats import ks_2samp
    from sklearn.ensemble import RandomForestClassifier

    num = [c for c in real_train.columns if c != "class"]
    ks = float(np.mean([ks_2samp(real_train[c], synth[c]).statistic for c in num]))
    fr = real_train["class"].value_counts(normalize=True)
    fs = synth["class"].value_counts(normalize=True)
    tv = 0.5 * float(sum(abs(fr.get(k, 0) - fs.get(k, 0)) for k in set(fr.index) | set(fs.index)))
    cr = real_train[num].corr().to_numpy()
    cs = synth[num].astype(float).corr().to_numpy()
    corr = float(np.nanmean(np.abs(cr - cs)[np.triu_indices(len(num), 1)]))
    clf = RandomForestClassifier(n_estimators=200, random_state=0)
    acc = float("nan")
    if synth["class"].nunique() > 1:
        clf.fit(synth[num].astype(float), synth["class"])
        acc = float((clf.predict(real_test[num]) == real_test["class"]).mean())
    return {"ks_numeric": ks, "tv_categorical": tv, "corr_diff": corr, "tstr_accuracy": acc}


def synth_benchmark(seeds: int, work: Path, tables: list[str], tvae_epochs: int) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    results: dict[str, dict[str, list[float]]] = {}
    for name in tables:
        df = _table(name)
        num = [c for c in df.columns if c != "class"]
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            idx = rng.permutation(len(df))
            n_train = int(0.7 * len(df))
            train, test = df.iloc[idx[:n_train]], df.iloc[idx[n_train:]]
            res = results.setdefault(name, {})
            clf = RandomForestClassifier(n_estimators=200, random_state=0)
            clf.fit(train[num], train["class"])
            res.setdefault("real|tstr_accuracy", []).append(
                float((clf.predict(test[num]) == test["class"]).mean()))
            w = work / f"syn-{name}-{seed}"
            w.mkdir(parents=True, exist_ok=True)
            train.to_csv(w / "train.csv", index=False)
            t0 = time.perf_counter()
            run = _train(w / "train.csv", w / "run", seed, SYNTH_OPTIONS)
            from vaelab.tabular.synthesize import synthesize, write_synthetic

            codes, labels = synthesize(run, len(train), seed=seed, sampler="gmm")
            write_synthetic(run, codes, labels, w / "vaelab.csv")
            import pandas as pd

            synth = pd.read_csv(w / "vaelab.csv")
            for k, v in {**synth_metrics(train, test, synth),
                         "seconds": time.perf_counter() - t0}.items():
                res.setdefault(f"vaelab-vae|{k}", []).append(v)
            t0 = time.perf_counter()
            synth = _tvae(train, seed, tvae_epochs)
            for k, v in {**synth_metrics(train, test, synth),
                         "seconds": time.perf_counter() - t0}.items():
                res.setdefault(f"sdv-tvae|{k}", []).append(v)
            print(f"  synthetic {name} seed {seed} done", file=sys.stderr)
    return results


def _tvae(train, seed: int, epochs: int):
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import TVAESynthesizer

    torch.manual_seed(seed)
    np.random.seed(seed)
    meta = Metadata.detect_from_dataframes({"table": train})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TVAESynthesizer(meta, epochs=epochs)
        model.fit({"table": train})
        out = model.sample(len(train))
    return out["table"] if isinstance(out, dict) else out


# -- output -----------------------------------------------------------------------------------
def table(results: dict, metrics: list[str], lower_better: set[str]) -> str:
    lines = []
    for dataset, values in results.items():
        dets = sorted({k.split("|")[0] for k in values}, key=lambda d: (not d.startswith(
            "vaelab"), d))
        lines.append(f"\n{dataset}\n| method | " + " | ".join(metrics) + " |")
        lines.append("| --- " * (len(metrics) + 1) + "|")
        for det in dets:
            cells = []
            for m in metrics:
                v = values.get(f"{det}|{m}")
                if not v:
                    cells.append("")
                    continue
                mean, std = _mean_std(v)
                cells.append(f"{mean:.3f} ± {std:.3f}" if len(v) > 1 else f"{mean:.3f}")
            lines.append(f"| {det} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n(lower is better: {', '.join(sorted(lower_better))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--tables", default="iris,wine,breast-cancer")
    ap.add_argument("--tvae-epochs", type=int, default=300)
    ap.add_argument("--skip", default="", help="anomaly and/or synthetic")
    ap.add_argument("--out", default="benchmarks/results/tabular.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # tiny models: one thread each is fastest (and fair to PyOD)
    t0 = time.perf_counter()
    report: dict = {"seeds": args.seeds, "machine": "2-core x86-64 CPU, 1 torch thread"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "anomaly" not in args.skip:
            report["anomaly"] = anomaly_benchmark(args.seeds, work,
                                                  [int(d) for d in args.digits.split(",")])
            print(table(report["anomaly"], ["roc_auc", "ap", "seconds"], {"seconds"}))
        if "synthetic" not in args.skip:
            report["synthetic"] = synth_benchmark(args.seeds, work, args.tables.split(","),
                                                  args.tvae_epochs)
            print(table(report["synthetic"], ["ks_numeric", "tv_categorical", "corr_diff",
                                              "tstr_accuracy", "seconds"],
                        {"ks_numeric", "tv_categorical", "corr_diff", "seconds"}))
    report["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
