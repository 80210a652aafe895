"""Disentanglement on `shapes`: six models x three seeds, every metric's median and spread.

VAE, beta-VAE (beta 4), beta-TC-VAE (beta 6), FactorVAE (gamma 35), DIP-VAE-I and
capacity-annealed beta-VAE, each trained with three seeds through ``vaelab.train`` and scored
by vaelab's disentanglement metrics (MIG, DCI, SAP, FactorVAE score), plus the test negative
ELBO and the training time. Writes docs/disentanglement.md (the protocol, the table, the
targets met or missed) and a JSON of every run beside it.

The CPU default is sized for two cores (about half an hour): 40,000 images of the grid, three
epochs, a 512-256 MLP, a 6 x 256 discriminator, the reduced metric protocol, one thread.
``--device cuda`` trains the full length instead: every image, 26 epochs (about the 300,000
steps of batch 64 of Locatello et al.), the 1200-1200 MLP at learning rate 1e-4, the paper's
6 x 1000 discriminator and disentanglement_lib's full metric counts.

    python benchmarks/disentangle.py                      # CPU, writes docs/disentanglement.md
    python benchmarks/disentangle.py --device cuda        # the full training length
    python benchmarks/disentangle.py --reuse              # rewrite the doc from finished runs
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import vaelab

ROOT = Path(__file__).resolve().parent.parent
MODELS: dict[str, dict[str, Any]] = {
    "VAE": {"model": "vae"},
    "beta-VAE (beta 4)": {"model": "vae", "beta": 4.0},
    "beta-TC-VAE (beta 6)": {"model": "beta-tc-vae", "beta": 6.0},
    "FactorVAE (gamma 35)": {"model": "factor-vae", "factor_gamma": 35.0},
    "DIP-VAE-I (lambda_od 10)": {"model": "dip-vae", "dip_type": "i", "dip_lambda_od": 10.0},
    "capacity (C 25 nats; gamma 1000)": {"model": "vae", "capacity_max": 25.0, "beta": 1000.0},
}
EXTRA: dict[str, dict[str, Any]] = {
    "FactorVAE (gamma 35; discriminator lr 1e-4)": {"model": "factor-vae", "factor_gamma": 35.0,
                                                    "discriminator_lr": 1e-4},
}
"""Run with --extra: FactorVAE with the paper's discriminator rate beside a VAE rate 10 x the
paper's (the CPU length's), the setting the CPU default moved away from."""
COMMON = {"dataset": "shapes", "latent_dim": 10, "batch_size": 64, "val_fraction": 0.005,
          "test_fraction": 0.005, "eval_k": 0, "progress": False}
LENGTHS = {
    "cpu": {"subset": 40000, "epochs": 3, "hidden": [512, 256], "lr": 1e-3,
            "discriminator_hidden": [256] * 6, "discriminator_lr": 1e-3,
            "factor_metrics": "reduced", "threads": 1},
    "cuda": {"subset": None, "epochs": 26, "hidden": [1200, 1200], "lr": 1e-4,
             "discriminator_hidden": None, "discriminator_lr": 1e-4, "factor_metrics": "full"},
}
METRICS = [("mig", "MIG"), ("dci_disentanglement", "DCI D"), ("dci_completeness", "DCI C"),
           ("dci_informativeness_test", "DCI I"), ("sap", "SAP"),
           ("factorvae_accuracy", "FactorVAE score"), ("neg_elbo", "-ELBO (nats)"),
           ("train_seconds", "training (s)")]
CHALLENGERS = ("beta-TC-VAE (beta 6)", "FactorVAE (gamma 35)")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def train_one(name: str, seed: int, length: dict[str, Any], out: Path, device: str,
              reuse: bool) -> dict[str, Any]:
    """Train (or, with ``reuse``, read) one run; its scores as a flat dict."""
    folder = out / f"{slug(name)}-seed{seed}"
    opts = {**COMMON, **length, **{**MODELS, **EXTRA}[name], "seed": seed, "device": device}
    if name.startswith("capacity"):
        opts["capacity_epochs"] = float(opts["epochs"])  # C reaches its maximum at the end
    if opts.get("discriminator_hidden") is None or opts["model"] != "factor-vae":
        opts.pop("discriminator_hidden", None)
    if opts["model"] != "factor-vae":
        opts.pop("discriminator_lr", None)
    metrics_path = folder / "metrics.json"
    clock = folder / "benchmark_seconds.txt"
    if not (reuse and metrics_path.exists() and clock.exists()):
        t0 = time.perf_counter()
        vaelab.train(None, out=str(folder), force=True, log=None, report=False, **opts)
        clock.write_text(f"{time.perf_counter() - t0:.1f}\n")
        print(f"{name} seed {seed}: {clock.read_text().strip()} s", flush=True)
    m = json.loads(metrics_path.read_text())
    d = m["disentanglement"]
    disc = {}
    if opts["model"] == "factor-vae":  # how well the discriminator did, first and last epoch
        import csv

        with open(folder / "history.csv", newline="") as fh:
            hist = list(csv.DictReader(fh))
        disc = {f"disc_{w}": [float(hist[i]["train_disc_acc"]), float(hist[i]["train_tc"])]
                for w, i in (("first", 0), ("last", -1))}
    row = {k: d[k] for k, _ in METRICS if k in d}
    row.update(neg_elbo=m["test"]["neg_elbo"], train_seconds=m["training"]["train_seconds"],
               kl=m["test"]["kl"], active_units=m["test"]["active_units"],
               mig_per_factor=d["mig_per_factor"], protocol=d["protocol"], sklearn=d["sklearn"],
               metric_seconds=d["seconds"], wall_seconds=float(clock.read_text()), seed=seed,
               model=name, options=opts, **disc)
    return row


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    """``median [min - max]``."""
    v = sorted(values)
    return f"{fmt.format(statistics.median(v))} [{fmt.format(v[0])} - {fmt.format(v[-1])}]"


def verdicts(rows: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """The issue's targets: beat the VAE's MIG in a majority of seeds, median MIG >= 0.1
    (for the two challengers, and for any EXTRA variant that was run)."""
    mig = {(r["model"], r["seed"]): r["mig"] for r in rows}
    out = []
    ran = {r["model"] for r in rows}
    for name in [*CHALLENGERS, *(n for n in EXTRA if n in ran)]:
        wins = sum(mig[(name, s)] > mig[("VAE", s)] for s in seeds)
        med = statistics.median(mig[(name, s)] for s in seeds)
        ok_wins, ok_med = wins > len(seeds) / 2, med >= 0.1
        out.append(
            f"- **{name}**: MIG above the VAE's (same seed) in {wins} of {len(seeds)} seeds "
            f"({'met' if ok_wins else 'missed'}); median MIG {med:.3f} "
            f"({'met' if ok_med else 'missed'}: the target is 0.1). Target "
            f"**{'reached' if ok_wins and ok_med else 'not reached'}**.")
    return out


def write_doc(rows: list[dict[str, Any]], seeds: list[int], device: str, length: dict,
              wall: float, path: Path) -> None:
    by_model = {name: [r for r in rows if r["model"] == name] for name in {**MODELS, **EXTRA}}
    by_model = {name: rs for name, rs in by_model.items() if rs}
    head = "| model | " + " | ".join(label for _, label in METRICS) + " |"
    lines = [head, "|" + " --- |" * (len(METRICS) + 1)]
    for name, rs in by_model.items():
        cells = [spread([r[k] for r in rs], "{:.0f}" if k in ("neg_elbo", "train_seconds")
                        else "{:.3f}") for k, _ in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    per_seed = ["| model | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                "|" + " --- |" * (len(seeds) + 1)]
    for name, rs in by_model.items():
        per_seed.append(f"| {name} | " + " | ".join(
            f"{r['mig']:.3f}" for r in sorted(rs, key=lambda r: r["seed"])) + " |")
    factors = rows[0]["protocol"]
    names = ["shape", "scale", "orientation", "position_x", "position_y"]
    per_factor = ["| model | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    for name, rs in by_model.items():
        per_factor.append(f"| {name} | " + " | ".join(
            f"{statistics.median(r['mig_per_factor'][k] for r in rs):.3f}"
            for k in range(len(names))) + " |")
    length_text = (
        f"{length['subset'] or 737280:,} training images drawn from the grid (seeded by the run's "
        f"seed), {length['epochs']} epochs, batch 64, Adam at {length['lr']:g}, an MLP "
        f"{'-'.join(map(str, length['hidden']))} encoder (the decoder mirrors it), 10 latent "
        "dimensions, Bernoulli likelihood; FactorVAE's discriminator "
        + ("6 x 1000 (the paper's)" if length.get("discriminator_hidden") is None else
           f"{len(length['discriminator_hidden'])} x {length['discriminator_hidden'][0]} (the "
           "paper's 6 x 1000 costs 4 times the VAE's step on a CPU core)")
        + f" with its own Adam at {length['discriminator_lr']:g} (betas 0.5, 0.9"
        + ("; the paper's ratio to the VAE's rate, both 10 x the paper's 1e-4 for this short "
           "length)" if length["discriminator_lr"] != 1e-4 else ", the paper's)"))
    where = ("a 2-core x86-64 CPU shared with other work, one thread per run" if device == "cpu"
             else f"{device} ({platform.machine()})")
    extra = [n for n in EXTRA if n in by_model]
    extra_text = ""
    if extra and CHALLENGERS[1] in by_model:

        def disc(name: str, when: str) -> str:
            rs = by_model[name]
            acc = statistics.median(r[f"disc_{when}"][0] for r in rs)
            tc = statistics.median(r[f"disc_{when}"][1] for r in rs)
            return f"accuracy {acc:.2f}, TC estimate {tc:.2f} nats"

        extra_text = (
            "The last row is the setting this benchmark ran first: FactorVAE with the paper's "
            "discriminator rate (1e-4) beside the CPU length's VAE rate, 10 x the paper's. Its "
            f"discriminator reached {disc(extra[0], 'first')} in the first epoch and "
            f"{disc(extra[0], 'last')} in the last (medians over seeds, history.csv "
            "`train_disc_acc`, `train_tc`): it hardly penalised the total correlation. The "
            "default keeps the paper's ratio of the two rates instead (both 1e-3): "
            f"{disc(CHALLENGERS[1], 'first')} in the first epoch, {disc(CHALLENGERS[1], 'last')} "
            "in the last, as the VAE reduces what the discriminator finds. Both are shown "
            "because the second setting was chosen after seeing the first.")
    cap = next((n for n in by_model if n.startswith("capacity")), None)
    if cap:
        kl = statistics.median(r["kl"] for r in by_model[cap])
        elbo = {n: statistics.median(r["neg_elbo"] for r in rs) for n, rs in by_model.items()}
        rank = "the highest -ELBO" if max(elbo, key=elbo.get) == cap else \
            f"-ELBO {elbo[cap]:.0f}"
        extra_text += (
            f"\n\nCapacity annealing pins the KL to its target C, which rises to 25 nats only at "
            f"the end of the run: at this length most steps see a small C, so its reconstruction "
            f"lags (test KL {kl:.1f} nats, {rank}) and its dimensions have had little "
            "time to take up factors one by one, which is the schedule's point.")
    text = f"""# Disentanglement on `shapes`

Written by `benchmarks/disentangle.py` on {where}: {wall / 60:.0f} minutes for the
{len(rows)} runs, metrics and figures included. Every number is the **median [min - max] over
seeds {', '.join(map(str, seeds))}**: Locatello et al. (2019) showed that the random seed moves
these metrics as much as the choice of model, so one run per model says little.

## Protocol

- Data: `--dataset shapes`, vaelab's own dSprites-like renderer (shape x scale x orientation x
  x-position x y-position = 3 x 6 x 40 x 32 x 32 = 737,280 binary 64 x 64 images); 0.5 % of
  the grid is held out for validation and 0.5 % for the test ELBO.
- Training: {length_text}.
- Models: VAE; beta-VAE with beta 4; beta-TC-VAE with beta 6 (alpha = gamma = 1); FactorVAE
  with gamma 35; DIP-VAE-I with lambda_od 10 and lambda_d 100; capacity-annealed beta-VAE
  with gamma (vaelab's `beta`) 1000 and C rising linearly from 0 to 25 nats over the whole run.
- Metrics on the posterior means, factors drawn uniformly from the full grid and rendered
  (disentanglement_lib's ground-truth protocol): the **{factors['name']}** counts, i.e.
  {factors['num_train']:,} training and {factors['num_test']:,} test points (MIG with 20
  histogram bins, DCI with `{factors['dci_classifier']}`, SAP with
  `{factors['sap_classifier']}`), FactorVAE score with {factors['fv_train']:,} /
  {factors['fv_eval']:,} votes of batch {factors['fv_batch']}; scikit-learn
  {rows[0]['sklearn']}. The full protocol (10,000 / 5,000 points, 10,000 / 5,000 votes,
  100 boosting stages) is what `--device cuda` uses.
- -ELBO is the single-sample test negative ELBO in nats per image; training time is the
  training loop's wall time (evaluation and figures excluded).

{"The CPU length is about 1 % of the papers' 300,000 steps, so these are early-training "
 "numbers: they compare the objectives after the same short budget, not their converged "
 "disentanglement." if device == "cpu" else ""}

## Results

{chr(10).join(lines)}

MIG per seed:

{chr(10).join(per_seed)}

Median MIG per factor (the gap of the two most informative dimensions over the factor's
entropy), where each model's MIG comes from:

{chr(10).join(per_factor)}

{extra_text}

## Targets

Expected from the papers: beta-TC-VAE and FactorVAE above the VAE's MIG in a majority of seeds,
with a median MIG of at least 0.1. Measured here:

{chr(10).join(verdicts(rows, seeds))}

The discrete SAP (one-dimension linear SVMs, the library's dSprites setting) stays low for any
code: it cannot isolate the middle values of an ordinal factor (a code that copies the factors
scores about 0.3 on it, see tests/test_disentangle.py); its continuous R^2 variant is in each
run's metrics.json as `sap_continuous`.

Reproduce: `python benchmarks/disentangle.py` (add `--device cuda` for the full length); the
runs are kept under `--out` and `--reuse` rewrites this page from them.
"""
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu (the short CPU length) or cuda")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated names (of "
                    "MODELS)")
    ap.add_argument("--out", default="/tmp/vaelab-disentangle", help="folder of the runs")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "disentanglement.md"))
    ap.add_argument("--reuse", action="store_true", help="read finished runs instead of "
                    "training them again")
    ap.add_argument("--extra", action="store_true", help="also the variants in EXTRA")
    ap.add_argument("--subset", type=int, help="training images (default: the length's)")
    ap.add_argument("--epochs", type=int, help="epochs (default: the length's)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    length = dict(LENGTHS["cuda" if args.device.startswith("cuda") else "cpu"])
    length.update({k: getattr(args, k) for k in ("subset", "epochs") if getattr(args, k)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.models.split(",") + (list(EXTRA) if args.extra else [])
    rows = [train_one(name, seed, length, out, args.device, args.reuse)
            for name in names for seed in seeds]
    wall = sum(r["wall_seconds"] for r in rows)
    doc = Path(args.doc)
    (doc.with_suffix(".json")).write_text(json.dumps({"device": args.device, "seeds": seeds,
                                                      "wall_seconds": wall, "runs": rows},
                                                     indent=1))
    full = set(MODELS) <= set(names)
    if full:
        write_doc(rows, seeds, args.device, length, wall, doc)
    print(json.dumps({"wall_seconds": wall, "verdicts": verdicts(rows, seeds) if full else None}))


if __name__ == "__main__":
    main()
