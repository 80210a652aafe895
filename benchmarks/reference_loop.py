"""The loop people copy: pytorch/examples' vae/main.py on Fashion-MNIST, as one process.

784-400-20 VAE, sigmoid output, BCE(sum) + KL, Adam 1e-3, batch 128, a DataLoader over a
TensorDataset with shuffling and a ``loss.item()`` every step, then the test negative ELBO, as
the example does. The data are read from the Debian package's IDX files with numpy (where the
example uses torchvision, which does the same), scaled to [0, 1]. Run by whole_run.py and
budget.py as the reference process:

    python benchmarks/reference_loop.py --epochs 5
    python benchmarks/reference_loop.py --time-budget 300 --iwae-k 1000
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FOLDER = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{stem}(.gz) is not in {folder}")


class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


@torch.no_grad()
def iwae_nll(model: VAE, x: torch.Tensor, k: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of -log p(x) estimated with k importance samples (nats)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(x), 100):
        xb = x[i : i + 100]
        mu, logvar = model.encode(xb)
        std = torch.exp(0.5 * logvar)
        lw = []
        for j in range(0, k, 100):
            kk = min(100, k - j)
            eps = torch.randn((kk, *mu.shape), generator=gen)
            z = mu + std * eps
            logits = model.fc4(F.relu(model.fc3(z)))
            log_px = -F.binary_cross_entropy_with_logits(
                logits, xb.expand(kk, *xb.shape), reduction="none").sum(-1)
            log_pz = -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)
            log_q = -0.5 * (eps.square() + math.log(2 * math.pi)).sum(-1) - torch.log(std).sum(-1)
            lw.append(log_px + log_pz - log_q)
        lw = torch.cat(lw).double()
        out.append(-(torch.logsumexp(lw, 0) - math.log(k)))
    v = torch.cat(out)
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds: train whole epochs while they fit (then --epochs is ignored)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iwae-k", type=int, default=0, help="also the test IWAE NLL with K samples")
    ap.add_argument("--iwae-rows", type=int, default=10000, help="the first N test images")
    ap.add_argument("--data-dir", type=Path, default=FOLDER)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    xtr = read_idx(find(args.data_dir, "train-images-idx3-ubyte"))
    xte = read_idx(find(args.data_dir, "t10k-images-idx3-ubyte"))
    # one float32 copy each, scaled in place (what torchvision's ToTensor gives per image)
    train = torch.from_numpy(xtr.reshape(len(xtr), 784)).float().div_(255)
    test = torch.from_numpy(xte.reshape(len(xte), 784)).float().div_(255)
    del xtr, xte
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train),
                                         batch_size=args.batch_size, shuffle=True)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started, epochs, walls = time.perf_counter(), 0, []
    while True:
        if args.time_budget is None and epochs >= args.epochs:
            break
        if args.time_budget is not None and walls and \
                time.perf_counter() - started + np.mean(walls[-3:]) > args.time_budget:
            break
        t0 = time.perf_counter()
        model.train()
        train_loss = 0.0
        for (data,) in loader:
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        epochs += 1
        walls.append(time.perf_counter() - t0)
    train_s = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        total = 0.0
        for i in range(0, len(test), 1000):
            recon, mu, logvar = model(test[i : i + 1000])
            total += float(loss_function(recon, test[i : i + 1000], mu, logvar))
    result = {"epochs": epochs, "train_s": round(train_s, 3),
              "test_neg_elbo": round(total / len(test), 3)}
    if args.iwae_k:
        result["iwae_nll"], result["iwae_nll_se"] = iwae_nll(model, test[: args.iwae_rows],
                                                             args.iwae_k, args.seed)
        result["iwae_k"] = args.iwae_k
    print(json.dumps(result))


if __name__ == "__main__":
    main()
