"""The same time budget for vaelab's recipe and for the loop people copy: which model is better?

Gives ``--budget`` seconds of training on full Fashion-MNIST to (a) the PyTorch example's loop
(``reference_loop.py --time-budget``: its 784-400-20 VAE, Adam 1e-3, batch 128, whole epochs
while they fit) and (b) ``vaelab train --config RECIPE --time-budget`` (the recipe for small
images shipped in examples/), one after the other in this run, then measures both on the same
test images with the IWAE estimate of the negative log-likelihood (``--iwae-k`` samples, nats,
with its standard error; vaelab's through ``vaelab evaluate``). ``--also-plain`` adds vaelab
training the reference's own model for the same budget, to separate the recipe from the speed.
The last line printed is one JSON object.

    python benchmarks/budget.py --budget 300 --iwae-k 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "examples" / "005_small_images_budget.toml"
PLAIN = ["--hidden", "400", "--latent-dim", "20", "--batch-size", "128", "--lr", "1e-3",
         "--val-fraction", "0", "--seed", "1"]


def vaelab_run(out: Path, budget: float, k: int, rows: int, extra: list[str]) -> dict:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaelab", "train", "--dataset", "fashion-mnist",
                    *extra, "--time-budget", f"{budget:g}s", "--eval-k", "0", "--out", str(out),
                    "--force", "--quiet"], check=True)
    wall = time.perf_counter() - t0
    subprocess.run([sys.executable, "-m", "vaelab", "evaluate", str(out), "--iwae-k", str(k),
                    "--iwae-rows", str(rows)], check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    t, tr = metrics["test"], metrics["training"]
    return {"iwae_nll": t["iwae_nll"], "iwae_nll_se": t["iwae_nll_se"], "iwae_n": t["iwae_n"],
            "neg_elbo": t["neg_elbo"], "epochs": tr["epochs_run"],
            "budget_spent_s": tr["budget_spent_s"], "train_process_s": round(wall, 1),
            # what the code keeps: a richer decoder can leave less to z
            **{k: t[k] for k in ("kl", "active_units", "knn_accuracy", "linear_probe_accuracy")
               if k in t}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training each")
    ap.add_argument("--iwae-k", type=int, default=1000)
    ap.add_argument("--iwae-rows", type=int, default=0, help="test rows (0 = all 10,000)")
    ap.add_argument("--recipe", type=Path, default=RECIPE)
    ap.add_argument("--also-plain", action="store_true")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep vaelab's run directories in this folder (default: deleted)")
    args = ap.parse_args()
    rows = args.iwae_rows or 10000
    ref = subprocess.run([sys.executable, str(HERE / "reference_loop.py"), "--time-budget",
                          str(args.budget), "--iwae-k", str(args.iwae_k), "--iwae-rows",
                          str(rows)], check=True, capture_output=True, text=True)
    reference = json.loads(ref.stdout.strip().splitlines()[-1])
    print(f"reference: {reference['epochs']} epochs, test IWAE NLL {reference['iwae_nll']:.2f} "
          f"+/- {reference['iwae_nll_se']:.2f}", flush=True)
    result: dict = {"budget_s": args.budget, "iwae_k": args.iwae_k, "iwae_rows": rows,
                    "reference": reference, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        recipe = vaelab_run(where / "recipe", args.budget, args.iwae_k, rows,
                            ["--config", str(args.recipe)])
        print(f"vaelab recipe: {recipe['epochs']} epochs, test IWAE NLL "
              f"{recipe['iwae_nll']:.2f} +/- {recipe['iwae_nll_se']:.2f}", flush=True)
        result["vaelab_recipe"] = {"config": str(args.recipe), **recipe}
        if args.also_plain:
            plain = vaelab_run(where / "plain", args.budget, args.iwae_k, rows, PLAIN)
            print(f"vaelab, the reference's model: {plain['epochs']} epochs, test IWAE NLL "
                  f"{plain['iwae_nll']:.2f}", flush=True)
            result["vaelab_reference_model"] = plain
    result["gain_nats"] = round(reference["iwae_nll"] - recipe["iwae_nll"], 3)
    result["target_nats"] = 5.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
