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
step time over it.

On a CPU the three are interleaved epoch by epoch: after each vaelab epoch the floor is measured
again and the reference trains one epoch, so every vaelab epoch has a floor and a reference
epoch measured within seconds of it. A shared 2-core machine's second core comes and goes
(the float32 GEMMs' two-thread speed-up over one thread moved between 1.05x and 1.87x within 40
s on the 2-core AMD EPYC), which a whole phase of one against a later phase of the other turns
into noise; ``speedup_paired`` and ``step_bound_ratio_paired`` are the medians of the per-epoch
ratios (each epoch's numbers are in ``epochs_detail``). The last line printed is one JSON
object.

    python benchmarks/throughput.py --epochs 3 --threads 2
    python benchmarks/throughput.py --device cuda --epochs 5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gemm_bound import adam_update_seconds, gather_seconds, step_flops, training_step_bound
from reference_loop import VAE as ReferenceVAE  # the PyTorch example's model, one copy
from reference_loop import loss_function as reference_loss

from vaelab.data import DataConfig, load_data
from vaelab.evaluate import elbo_metrics
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]


class Reference:
    """The example's loop, one epoch at a time (so its epochs can sit between vaelab's)."""

    def __init__(self, x_train: np.ndarray, batch: int, device: torch.device, seed: int) -> None:
        from torch.utils.data import DataLoader, TensorDataset

        self.device, self.seed = device, seed
        torch.manual_seed(seed)
        self.model = ReferenceVAE().to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        xt = torch.from_numpy(x_train.reshape(len(x_train), 784))
        self.loader = DataLoader(TensorDataset(xt, torch.zeros(len(xt))), batch_size=batch,
                                 shuffle=True)
        self.rng = torch.get_rng_state()  # its own random stream, apart from vaelab's

    def epoch(self) -> float:
        """Train one epoch as the example does; return its seconds."""
        outer = torch.get_rng_state()
        torch.set_rng_state(self.rng)
        model, opt = self.model, self.opt
        model.train()
        train_loss = 0.0
        t0 = time.perf_counter()
        for data, _ in self.loader:
            data = data.to(self.device)
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = reference_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        seconds = time.perf_counter() - t0
        self.rng = torch.get_rng_state()
        torch.set_rng_state(outer)
        return seconds

    def test_neg_elbo(self, x_test: np.ndarray) -> float:
        self.model.eval()
        total = 0.0
        with torch.no_grad():
            torch.manual_seed(self.seed)
            xs = torch.from_numpy(x_test.reshape(len(x_test), 784)).to(self.device)
            for i in range(0, len(xs), 1000):
                d = xs[i : i + 1000]
                recon, mu, logvar = self.model(d)
                total += float(reference_loss(recon, d, mu, logvar))
        return total / len(x_test)


def step_floor(batch: int, rows: int, device: str) -> tuple[float, float, float]:
    """The floor's three parts now (seconds per step): GEMMs, Adam alone, batch gather."""
    return (training_step_bound(LAYERS, batch, device=device).seconds_per_step,
            adam_update_seconds(LAYERS, device=device), gather_seconds(rows, 784, batch,
                                                                      device=device))


def run_vaelab(data, epochs, batch, device, seed, between=None, **train_kw
               ) -> tuple[list[float], float]:
    """Train vaelab's trainer; ``between(epoch)`` runs after each epoch (outside its time).
    Return each epoch's seconds and the test negative ELBO."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(model="vae", hidden=[400], latent_dim=20),
                        ModelSpec(data.example_shape, "bernoulli"))
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, seed=seed, progress=False,
                      device=str(device), **train_kw)
    callbacks = [] if between is None else [lambda trainer, epoch, row: between(epoch)]
    trainer = Trainer(model, cfg, torch.device(device), callbacks=callbacks)
    state = trainer.fit(data.train.x, None, None, None)
    neg_elbo = elbo_metrics(model, data.test.x, seed=seed)["neg_elbo"]
    return [r["time_s"] for r in state.history], neg_elbo


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

    steps = math.ceil(n / args.batch)
    floors = [step_floor(args.batch, n, args.device)]  # one before training, then per epoch
    reference = None if args.skip_reference else Reference(
        np.asarray(data.train.x), args.batch, dev, args.seed)
    ref_epochs: list[float] = []
    # on a GPU the phases stay apart (the floor's CPU timing loop would cool the device down
    # between epochs); on a CPU each vaelab epoch is followed by its floor and a reference epoch
    interleave = dev.type == "cpu"

    def between(epoch: int) -> None:
        floors.append(step_floor(args.batch, n, args.device))
        if reference is not None:
            ref_epochs.append(reference.epoch())

    v_epochs, v_elbo = run_vaelab(data, args.epochs, args.batch, dev, args.seed,
                                  between=between if interleave else None,
                                  compile=args.compile, precision=args.precision,
                                  cuda_graphs=not args.no_cuda_graphs,
                                  fused_step=not args.no_fused_step)
    if reference is not None:
        while len(ref_epochs) < args.epochs:
            ref_epochs.append(reference.epoch())
    v_sec = sum(v_epochs)
    gemm_s, adam_s, gather_s = (statistics.median(f[i] for f in floors) for i in range(3))
    step_bound_s = gemm_s + adam_s + gather_s
    flops = step_flops(LAYERS, args.batch)
    bound_epoch = gemm_s * steps
    print(f"GEMM rate at the model's shapes: {flops / gemm_s / 1e9:.1f} GFLOP/s; "
          f"{flops * steps / 1e9:.1f} GFLOP per epoch -> bound {bound_epoch:.3f} s/epoch "
          f"(median of {len(floors)} measurements)", flush=True)
    print(f"one step's floor: GEMMs {gemm_s * 1e3:.3f} ms + Adam update alone "
          f"{adam_s * 1e3:.3f} ms + batch gather {gather_s * 1e3:.3f} ms = "
          f"{step_bound_s * 1e3:.3f} ms", flush=True)
    v_rate = n * args.epochs / v_sec
    print(f"vaelab:    {v_sec / args.epochs:.3f} s/epoch, {v_rate:,.0f} samples/s, "
          f"test neg ELBO {v_elbo:.2f}", flush=True)
    if reference is None:
        r_sec, r_elbo, r_rate = float("nan"), float("nan"), float("nan")
    else:
        r_sec, r_elbo = sum(ref_epochs), reference.test_neg_elbo(np.asarray(data.test.x))
        r_rate = n * args.epochs / r_sec
        print(f"reference: {r_sec / args.epochs:.3f} s/epoch, {r_rate:,.0f} samples/s, "
              f"test neg ELBO {r_elbo:.2f}", flush=True)
    detail = []
    for i, v in enumerate(v_epochs):  # each epoch against the floor measured right after it
        f = floors[i + 1] if interleave else floors[0]
        row = {"vaelab_s": round(v, 4), "floor_step_s": round(sum(f), 6),
               "step_bound_ratio": round(v / steps / sum(f), 3)}
        if reference is not None:
            row["reference_s"] = round(ref_epochs[i], 4)
            row["speedup"] = round(ref_epochs[i] / v, 3)
        detail.append(row)
        print(f"epoch {i + 1}: vaelab {v:.3f} s, floor {sum(f) * 1e3:.3f} ms/step (ratio "
              f"{row['step_bound_ratio']:.3f})" + (f", reference {ref_epochs[i]:.3f} s "
                                                   f"(speedup {row['speedup']:.3f})"
                                                   if reference is not None else ""),
              flush=True)
    result = {
        "vaelab_samples_per_s": round(v_rate, 1),
        "reference_samples_per_s": round(r_rate, 1),
        "speedup": round(v_rate / r_rate, 3),
        "speedup_paired": round(statistics.median(d["speedup"] for d in detail), 3)
        if reference is not None else float("nan"),
        "bound_ratio": round((v_sec / args.epochs) / bound_epoch, 3),
        "step_bound_s": round(step_bound_s, 6),
        "vaelab_step_s": round(v_sec / args.epochs / steps, 6),
        "step_bound_ratio": round(v_sec / args.epochs / steps / step_bound_s, 3),
        "step_bound_ratio_paired": round(statistics.median(d["step_bound_ratio"]
                                                           for d in detail), 3),
        "gemm_step_s": round(gemm_s, 6),
        "adam_step_s": round(adam_s, 6),
        "gather_step_s": round(gather_s, 6),
        "vaelab_epoch_s": round(v_sec / args.epochs, 4),
        "reference_epoch_s": round(r_sec / args.epochs, 4),
        "bound_epoch_s": round(bound_epoch, 4),
        "gemm_gflops": round(flops / gemm_s / 1e9, 1),
        "interleaved": interleave,
        "epochs_detail": detail,
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
