"""IWAE evaluation speed: K importance samples per Fashion-MNIST test image vs its GEMM bound.

Trains the 784-400-20 VAE for one epoch (the numbers measure the estimator, not the model),
then times ``vaelab.evaluate.iwae.iwae_log_likelihood`` with K samples per test image. The
bound is the time of the decoder's matrix products at the same shapes (gemm_bound.py): every
one of the N x K codes needs (20 -> 400) and (400 -> 784); the encoder runs once per image.
The last line printed is one JSON object.

    python benchmarks/iwae.py --k 1000 --n 10000            # the full test set
    python benchmarks/iwae.py --k 1000 --n 1000 --threads 2 # a quicker CPU run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemm_bound import forward_bound

from vaelab.data import DataConfig, load_data
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--n", type=int, default=10000, help="test images")
    ap.add_argument("--batch", type=int, default=50, help="test images per batch")
    ap.add_argument("--chunk", type=int, default=100, help="importance samples per decoder call")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    data = load_data(DataConfig(dataset="fashion-mnist", val_fraction=0.0), seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=[400], latent_dim=20),
                        ModelSpec(data.example_shape, "bernoulli"))
    Trainer(model, TrainConfig(epochs=1, progress=False), dev).fit(data.train.x, None)
    x = torch.as_tensor(data.test.x[: args.n]).to(dev)

    rows = args.batch * args.chunk
    bound = forward_bound([(20, 400), (400, 784)], rows, device=args.device)
    calls = math.ceil(args.n / args.batch) * math.ceil(args.k / args.chunk)
    bound_s = bound.seconds_per_step * calls
    enc = forward_bound([(784, 400), (400, 40)], args.batch, device=args.device)
    bound_s += enc.seconds_per_step * math.ceil(args.n / args.batch)

    iwae_log_likelihood(model, x[: args.batch], k=args.chunk, batch_size=args.batch,
                        chunk=args.chunk)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ll = iwae_log_likelihood(model, x, k=args.k, batch_size=args.batch, chunk=args.chunk)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    print(f"IWAE K={args.k} on {args.n} test images: {seconds:.2f} s, NLL {-ll.mean():.2f} "
          f"nats; GEMM bound {bound_s:.2f} s ({bound.gflops:.0f} GFLOP/s)", flush=True)
    print(json.dumps({
        "iwae_seconds": round(seconds, 3),
        "gemm_bound_seconds": round(bound_s, 3),
        "bound_ratio": round(seconds / bound_s, 3),
        "iwae_nll": round(float(-ll.mean()), 3),
        "k": args.k, "n": args.n, "chunk": args.chunk, "batch": args.batch,
        "threads": torch.get_num_threads(),
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
    }))


if __name__ == "__main__":
    main()
