"""How long finishing a run takes: test metrics (with the IWAE estimate), figures and report.

Trains each case ``--repeats`` times as fresh ``vaelab train`` processes and reads the seconds
that run.json records for each step after training (evaluate, figures, report, their sum
"finish"). Cases: the Digits demo (what ``vaelab demo`` trains: 2-D VAE, 256-128, 40 epochs)
and the 784-400-20 VAE on Fashion-MNIST for one epoch. The first run of a data set also trains
the cached Fréchet-distance feature extractor; it is reported apart ("first_finish_s"). The last
line printed is one JSON object.

    python benchmarks/finish.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "digits-demo": ["--dataset", "digits", "--model", "vae", "--latent-dim", "2", "--hidden",
                    "256,128", "--epochs", "40", "--batch-size", "64", "--lr", "2e-3"],
    "fashion-mnist": ["--dataset", "fashion-mnist", "--hidden", "400", "--latent-dim", "20",
                      "--epochs", "1"],
}
TARGETS = {"digits-demo": 1.5, "fashion-mnist": 5.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    result: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VAELAB_CACHE": str(Path(tmp) / "cache")}  # cold at the start
        for case in args.cases.split(","):
            parts = []
            for i in range(args.repeats + 1):  # run 0 fills the feature-extractor cache
                out = Path(tmp) / case
                subprocess.run([sys.executable, "-m", "vaelab", "train", *CASES[case], "--out",
                                str(out), "--force", "--quiet"], check=True, env=env)
                sec = json.loads((out / "run.json").read_text())["seconds"]
                print(f"{case} run {i}: " + ", ".join(f"{k} {v:.2f} s" for k, v in sec.items()),
                      flush=True)
                parts.append(sec)
            warm = parts[1:]
            result[case] = {
                "finish_s": round(statistics.median(p["finish"] for p in warm), 3),
                **{f"{k}_s": round(statistics.median(p[k] for p in warm), 3)
                   for k in ("evaluate", "figures", "report")},
                "first_finish_s": round(parts[0]["finish"], 3),
                "target_s": TARGETS[case],
            }
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
