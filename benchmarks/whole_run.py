"""The whole command against the loop people copy: wall time and peak memory of each process.

Runs, alternately and ``--repeats`` times, (a) ``benchmarks/reference_loop.py`` (the PyTorch
example's 784-400-20 VAE on Fashion-MNIST, ``--epochs`` epochs, then its test negative ELBO) and
(b) ``vaelab train`` of the same model, batch, learning rate and epochs on all 60,000 training
images (``--val-fraction 0``), with everything it does after training: the test metrics with an
IWAE estimate and its standard error, every figure, the report. Each is a fresh process timed
from start to exit. Memory is the peak resident set of the process (``ru_maxrss``) and, with
psutil, the peak of the summed resident sets of the process and its children (vaelab's worker
process included), sampled every 20 ms.

A shared machine's second core comes and goes (on the 2-core AMD EPYC the GEMMs' two-thread
speed-up over one thread moved between 0.67x and 1.99x within minutes), and vaelab's training,
almost all matrix products, slows more than the reference's when it does (epochs of 1.7 s and
of 3.4 s in one set). Before each process and after the last, a 0.5-s probe times the model's
step GEMMs on one and on two threads: ``two_core_scaling`` lists them, so a set can be read
against the machine's state (a probe is a moment, not the 20 s of a run: it cannot sort runs).
The last line printed is one JSON object of medians.

    python benchmarks/whole_run.py --epochs 5 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds, the process's peak RSS and the tree's peak summed RSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    tree_peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        try:
            import psutil
        except ImportError:
            return
        try:
            p = psutil.Process(proc.pid)
            while not done.is_set():
                total = 0
                for q in [p, *p.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += q.memory_info().rss
                tree_peak[0] = max(tree_peak[0], total / 2**20)
                time.sleep(0.02)
        except psutil.Error:
            return

    threading.Thread(target=sample, daemon=True).start()
    out = proc.stdout.read().decode(errors="replace")  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-2000:]}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": tree_peak[0],
            "output": out}


def two_core_scaling() -> float:
    """One-thread over two-thread time of the 784-400-20 step's GEMMs, measured now."""
    import torch

    if str(HERE) not in sys.path:  # once: the probe runs before every process
        sys.path.insert(0, str(HERE))
    from gemm_bound import training_step_bound

    layers = [(784, 400), (400, 40), (20, 400), (400, 784)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = training_step_bound(layers, 128, repeats=20).seconds_per_step
        torch.set_num_threads(2)
        two = training_step_bound(layers, 128, repeats=20).seconds_per_step
    finally:
        torch.set_num_threads(before)
    return one / two


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads in both processes")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    ref_cmd = [sys.executable, str(HERE / "reference_loop.py"), "--epochs", str(args.epochs)]
    rows: dict[str, list[dict[str, float]]] = {"reference": [], "vaelab": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        vae_cmd = [sys.executable, "-m", "vaelab", "train", "--dataset", "fashion-mnist",
                   "--hidden", "400", "--latent-dim", "20", "--epochs", str(args.epochs),
                   "--batch-size", "128", "--lr", "1e-3", "--val-fraction", "0", "--seed", "1",
                   "--out", str(out), "--force", "--quiet"]
        probes: list[float] = []
        for i in range(args.repeats):
            for name, cmd in (("reference", ref_cmd), ("vaelab", vae_cmd)):
                probes.append(two_core_scaling())
                r = run_measured(cmd, env)
                r["scaling_before"] = probes[-1]
                if name == "vaelab":
                    r["seconds"] = json.loads((out / "run.json").read_text())["seconds"]
                    test = json.loads((out / "metrics.json").read_text())["test"]
                    r["neg_elbo"], r["iwae_nll"] = test["neg_elbo"], test["iwae_nll"]
                    r["iwae_k"], r["iwae_n"] = test["iwae_k"], test["iwae_n"]
                else:
                    r["neg_elbo"] = json.loads(r["output"].strip().splitlines()[-1])[
                        "test_neg_elbo"]
                r.pop("output")
                rows[name].append(r)
                extra = ""
                if "seconds" in r:
                    sec = r["seconds"]
                    extra = (f", train {sec['train']:.2f} s, finish {sec['finish']:.2f} s, pair "
                             f"ratio {r['wall_s'] / rows['reference'][-1]['wall_s']:.3f}")
                print(f"{name:9s} run {i + 1}: {r['wall_s']:.2f} s wall, peak RSS "
                      f"{r['rss_mb']:.0f} MB (with children {r['tree_rss_mb']:.0f} MB), test "
                      f"neg ELBO {r['neg_elbo']:.2f}{extra}; two-core scaling before "
                      f"{probes[-1]:.2f}", flush=True)
        probes.append(two_core_scaling())
        print(f"two-core scaling after the last run {probes[-1]:.2f}", flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[name])

    result = {
        "epochs": args.epochs, "repeats": args.repeats,
        "reference_wall_s": round(med("reference", "wall_s"), 2),
        "vaelab_wall_s": round(med("vaelab", "wall_s"), 2),
        "wall_ratio": round(med("vaelab", "wall_s") / med("reference", "wall_s"), 3),
        "wall_ratio_of_pairs": round(statistics.median(
            v["wall_s"] / r["wall_s"] for r, v in zip(rows["reference"], rows["vaelab"],
                                                     strict=True)), 3),
        "two_core_scaling": [round(v, 2) for v in probes],
        "reference_rss_mb": round(med("reference", "rss_mb")),
        "vaelab_rss_mb": round(med("vaelab", "rss_mb")),
        "rss_ratio": round(med("vaelab", "rss_mb") / med("reference", "rss_mb"), 3),
        "reference_tree_rss_mb": round(med("reference", "tree_rss_mb")),
        "vaelab_tree_rss_mb": round(med("vaelab", "tree_rss_mb")),
        "vaelab_finish_s": round(statistics.median(r["seconds"]["finish"]
                                                  for r in rows["vaelab"]), 3),
        "vaelab_train_s": round(statistics.median(r["seconds"]["train"]
                                                 for r in rows["vaelab"]), 3),
        "reference_neg_elbo": round(med("reference", "neg_elbo"), 3),
        "vaelab_neg_elbo": round(med("vaelab", "neg_elbo"), 3),
        "vaelab_iwae_nll": round(med("vaelab", "iwae_nll"), 3),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
