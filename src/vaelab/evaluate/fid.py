"""A Fréchet distance between generated samples and test images (FID's idea, own features).

Inception weights cannot be downloaded here, so the features come from a small classifier that
vaelab trains on the run's training split: flatten -> 256 -> 64 -> classes, ReLU, Adam 1e-3,
batch 128, 5 epochs, seed 0, float32. The distance is computed in its 64-d penultimate layer.
Numbers are comparable between runs on the same dataset and preprocessing (the extractor is
deterministic given those), not with published FIDs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

FEATURES = 64
EPOCHS = 5


class FeatureNet(nn.Module):
    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 256), nn.ReLU(),
                                  nn.Linear(256, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_feature_net(x: np.ndarray, y: np.ndarray, classes: int) -> FeatureNet:
    """The fixed recipe above, on labelled rows of the training split."""
    keep = y >= 0
    xt = torch.as_tensor(np.asarray(x)[keep], dtype=torch.float32)
    yt = torch.as_tensor(y[keep], dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = FeatureNet(int(np.prod(xt.shape[1:])), classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        for _ in range(EPOCHS):
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), 128):
                idx = perm[i : i + 128]
                loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


@torch.no_grad()
def features(net: FeatureNet, x: np.ndarray) -> np.ndarray:
    out = [net.body(torch.as_tensor(np.asarray(x[i : i + 2048]), dtype=torch.float32)).numpy()
           for i in range(0, len(x), 2048)]
    return np.concatenate(out).astype(np.float64)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) of two feature sets.

    Tr (S_a S_b)^1/2 = Tr (S_a^1/2 S_b S_a^1/2)^1/2, computed with symmetric eigendecompositions.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ra = _sqrt_psd(sa)
    w = np.linalg.eigvalsh(ra @ sb @ ra)
    tr_covmean = float(np.sqrt(np.clip(w, 0, None)).sum())
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb) - 2 * tr_covmean)
    return max(d, 0.0) if math.isfinite(d) else float("nan")
