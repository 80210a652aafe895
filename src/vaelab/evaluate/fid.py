"""A Fréchet distance between generated samples and test images (FID's idea, own features).

Inception weights cannot be downloaded here, so the features come from a small classifier that
vaelab trains on (at most 10,000 labelled rows of) the run's training split, always the same way:
flatten -> 256 -> 64 -> classes, ReLU, Adam 1e-3, batch 128, 5 epochs, seed 0, float32, CPU.
The distance is computed in its 64-d penultimate layer. The extractor is cached under
``$VAELAB_CACHE/fid/`` (see ``vaelab.data.download.cache_dir``), keyed by a SHA-256 of the
rows and labels it is trained on and of this recipe, so runs on the same data and
preprocessing share one extractor and their distances are comparable (not with published FIDs).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

FEATURES = 64
HIDDEN = 256
EPOCHS = 5
MAX_ROWS = 10000
RECIPE = f"mlp-{HIDDEN}-{FEATURES}-adam1e-3-b128-e{EPOCHS}-seed0-v1"
DESCRIPTION = (f"{FEATURES}-d penultimate layer of an MLP classifier (flatten-{HIDDEN}-"
               f"{FEATURES}-classes, ReLU, Adam 1e-3, batch 128, {EPOCHS} epochs, seed 0) trained "
               f"on the first {MAX_ROWS} labelled rows of the training split")


class FeatureNet(nn.Module):
    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_features, HIDDEN), nn.ReLU(),
                                  nn.Linear(HIDDEN, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _labelled(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and labels of the first ``MAX_ROWS`` labelled rows."""
    y = np.asarray(y)
    keep = np.flatnonzero(y >= 0)[:MAX_ROWS]
    if not len(keep):
        raise ValueError("the feature extractor needs labelled training rows")
    return keep, y[keep].astype(np.int64)


def _row_blocks(x: np.ndarray, keep: np.ndarray, block: int = 1000):
    """float32 rows ``keep`` of ``x`` a block at a time (slices where they run on)."""
    for i in range(0, len(keep), block):
        part = keep[i : i + block]
        contiguous = part[-1] - part[0] + 1 == len(part)
        rows = x[int(part[0]) : int(part[-1]) + 1] if contiguous else x[part]
        yield np.ascontiguousarray(np.asarray(rows), dtype=np.float32)


def _rows(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows the extractor trains on, one float32 array (read only to train it)."""
    return np.concatenate(list(_row_blocks(x, keep)))


def train_feature_net(xs: np.ndarray, ys: np.ndarray, classes: int) -> FeatureNet:
    """The fixed recipe above, on the rows ``_rows`` selected."""
    xt, yt = torch.from_numpy(xs), torch.from_numpy(ys)
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


def extractor_key(x: np.ndarray, keep: np.ndarray, ys: np.ndarray, classes: int) -> str:
    """SHA-256 of the recipe, the class count and the exact rows / labels trained on (their
    float32 bytes, hashed a block at a time: no copy of the 10,000 rows)."""
    shape = (len(keep), *(int(d) for d in np.shape(x)[1:]))
    h = hashlib.sha256(f"{RECIPE}|{classes}|{shape}".encode())
    for rows in _row_blocks(x, keep):
        h.update(rows.data)
    h.update(np.ascontiguousarray(ys).data)
    return h.hexdigest()[:32]


def feature_net(x: np.ndarray, y: np.ndarray, classes: int,
                cache: Path | None = None) -> FeatureNet:
    """The extractor for these training rows: loaded from ``cache`` or trained and saved there."""
    from safetensors.torch import load_file

    from vaelab.modelio import save_safetensors

    keep, ys = _labelled(y)
    if cache is None:
        return train_feature_net(_rows(x, keep), ys, classes)
    path = Path(cache) / f"{extractor_key(x, keep, ys, classes)}.safetensors"
    net = FeatureNet(int(np.prod(np.shape(x)[1:])), classes)
    if path.exists():
        try:
            net.load_state_dict(load_file(path))
            return net.eval()
        except Exception:  # a damaged cache entry: train again and overwrite it
            pass
    net = train_feature_net(_rows(x, keep), ys, classes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    except OSError:  # a read-only cache only costs the retraining
        pass
    return net


FEATURE_BATCH = 500
"""Images through the feature network at once: its activations for 2,048 28x28 images held
about 60 MB at the peak of finishing a run."""


@torch.no_grad()
def features(net: FeatureNet, x: np.ndarray) -> np.ndarray:
    step = FEATURE_BATCH
    out = [net.body(torch.as_tensor(np.asarray(x[i : i + step]), dtype=torch.float32)).numpy()
           for i in range(0, len(x), step)]
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
