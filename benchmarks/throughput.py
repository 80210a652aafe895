"""Training throughput: vaelab's trainer against the loop people copy (the PyTorch VAE example).

Both train the 784-400-20 VAE on full Fashion-MNIST (60,000 training images), batch 128,
Adam 1e-3, the same seed and the same number of epochs, in this one process:

(a) vaelab: ``vaelab.train.loop.Trainer`` (device-resident data, index-slice batches, losses
    accumulated on the device, fused Adam; on a GPU optionally CUDA graphs / bf16 / compile);
(b) reference: a DataLoader over a TensorDataset with shuffle, sigmoid + BCE(sum) + KL, and a
    ``loss.item()`` every step, as in pytorch/examples' vae/main.py.

It also times, in the same run, the float32 GEMMs of one training step at the model's shapes
(see gemm_bound.py), a fused Adam update of its parameters alone and the gather of one shuffled
batch: their sum is the step's floor (``step_bound_s``) and ``step_bound_ratio`` is vaelab's
step time over it. The last line printed is one JSON object.

    python benchmarks/throughput.py --epochs 3 --threads 2
    python benchmarks/throughput.py --device cuda --epochs 5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemm_bound import adam_update_seconds, gather_seconds, training_step_bound
from reference_loop import VAE as ReferenceVAE  # the PyTorch example's model, one copy
from reference_loop import loss_function as reference_loss

from vaelab.data import DataConfig, load_data
from vaelab.evaluate import elbo_metrics
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]


def run_reference(x_train, x_test, epochs, batch, device, seed) -> tuple[float, float]:
    """Train as the example does; return (seconds of training, test negative ELBO)."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    model = ReferenceVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.from_numpy(x_train.reshape(len(x_train), 784))
    loader = DataLoader(TensorDataset(xt, torch.zeros(len(xt))), batch_size=batch, shuffle=True)
    seconds = 0.0
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        t0 = time.perf_counter()
        for data, _ in loader:
            data = data.to(device)
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = reference_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        seconds += time.perf_counter() - t0
    model.eval()
    total = 0.0
    with torch.no_grad():
        torch.manual_seed(seed)
        xs = torch.from_numpy(x_test.reshape(len(x_test), 784)).to(device)
        for i in range(0, len(xs), 1000):
            d = xs[i : i + 1000]
            recon, mu, logvar = model(d)
            total += float(reference_loss(recon, d, mu, logvar))
    return seconds, total / len(x_test)


def run_vaelab(data, epochs, batch, device, seed, **train_kw) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(model="vae", hidden=[400], latent_dim=20),
                        ModelSpec(data.example_shape, "bernoulli"))
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, seed=seed, progress=False,
                      device=str(device), **train_kw)
    trainer = Trainer(model, cfg, torch.device(device))
    state = trainer.fit(data.train.x, None, None, None)
    seconds = sum(r["time_s"] for r in state.history)
    neg_elbo = elbo_metrics(model, data.test.x, seed=seed)["neg_elbo"]
    return seconds, neg_elbo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subset", type=int, default=None, help="train rows (quick smoke runs)")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--no-cuda-graphs", action="store_true", help="eager steps on a GPU")
    ap.add_argument("--no-fused-step", action="store_true", help="autograd step on the CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    data = load_data(DataConfig(dataset="fashion-mnist", val_fraction=0.0, subset=args.subset,
                                preprocess="minmax"), seed=args.seed)
    n = len(data.train)
    print(f"Fashion-MNIST: train {n}, test {len(data.test)}; device {dev}, "
          f"threads {torch.get_num_threads()}", flush=True)

    bound = training_step_bound(LAYERS, args.batch, device=args.device)
    adam_s = adam_update_seconds(LAYERS, device=args.device)
    gather_s = gather_seconds(n, 784, args.batch, device=args.device)
    step_bound_s = bound.seconds_per_step + adam_s + gather_s
    steps = math.ceil(n / args.batch)
    bound_epoch = bound.seconds_per_step * steps
    print(f"GEMM rate at the model's shapes: {bound.gflops:.1f} GFLOP/s; "
          f"{bound.flops_per_step * steps / 1e9:.1f} GFLOP per epoch -> bound "
          f"{bound_epoch:.3f} s/epoch", flush=True)
    print(f"one step's floor: GEMMs {bound.seconds_per_step * 1e3:.3f} ms + Adam update alone "
          f"{adam_s * 1e3:.3f} ms + batch gather {gather_s * 1e3:.3f} ms = "
          f"{step_bound_s * 1e3:.3f} ms", flush=True)

    v_sec, v_elbo = run_vaelab(data, args.epochs, args.batch, dev, args.seed,
                               compile=args.compile, precision=args.precision,
                               cuda_graphs=not args.no_cuda_graphs,
                               fused_step=not args.no_fused_step)
    v_rate = n * args.epochs / v_sec
    print(f"vaelab:    {v_sec / args.epochs:.3f} s/epoch, {v_rate:,.0f} samples/s, "
          f"test neg ELBO {v_elbo:.2f}", flush=True)
    if args.skip_reference:
        r_sec, r_elbo, r_rate = float("nan"), float("nan"), float("nan")
    else:
        r_sec, r_elbo = run_reference(np.asarray(data.train.x), np.asarray(data.test.x),
                                      args.epochs, args.batch, dev, args.seed)
        r_rate = n * args.epochs / r_sec
        print(f"reference: {r_sec / args.epochs:.3f} s/epoch, {r_rate:,.0f} samples/s, "
              f"test neg ELBO {r_elbo:.2f}", flush=True)
    result = {
        "vaelab_samples_per_s": round(v_rate, 1),
        "reference_samples_per_s": round(r_rate, 1),
        "speedup": round(v_rate / r_rate, 3),
        "bound_ratio": round((v_sec / args.epochs) / bound_epoch, 3),
        "step_bound_s": round(step_bound_s, 6),
        "vaelab_step_s": round(v_sec / args.epochs / steps, 6),
        "step_bound_ratio": round(v_sec / args.epochs / steps / step_bound_s, 3),
        "gemm_step_s": round(bound.seconds_per_step, 6),
        "adam_step_s": round(adam_s, 6),
        "gather_step_s": round(gather_s, 6),
        "vaelab_epoch_s": round(v_sec / args.epochs, 4),
        "reference_epoch_s": round(r_sec / args.epochs, 4),
        "bound_epoch_s": round(bound_epoch, 4),
        "gemm_gflops": round(bound.gflops, 1),
        "vaelab_test_neg_elbo": round(v_elbo, 3),
        "reference_test_neg_elbo": round(r_elbo, 3),
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "train_rows": n,
        "precision": args.precision,
        "compile": args.compile,
        "cuda_graphs": dev.type == "cuda" and not args.no_cuda_graphs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
