"""Measure this machine's float32 GEMM rate at a model's exact shapes and derive a time bound.

A dense layer ``in -> out`` at batch ``B`` costs three GEMMs per training step: forward
(B x in)(in x out), the input gradient (B x out)(out x in) (skipped for the first layer, whose
input needs no gradient) and the weight gradient (out x B)(B x in); 2*B*in*out FLOPs each.
Timing exactly those products, in a step's order, gives the machine's rate at these shapes and
a lower bound on the step time that no training loop can beat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass
class GemmBound:
    flops_per_step: float
    seconds_per_step: float

    @property
    def gflops(self) -> float:
        return self.flops_per_step / self.seconds_per_step / 1e9


def _time(fn, repeats: int) -> float:
    fn()
    fn()  # warm-up (allocation, MKL / cuBLAS heuristics)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def training_step_bound(
    layers: list[tuple[int, int]], batch: int, device: str = "cpu", repeats: int = 50,
    dtype: torch.dtype = torch.float32,
) -> GemmBound:
    """GEMM time and FLOPs of one training step of the dense ``layers`` [(in, out), ...].

    The products run in the order a step runs them (forward through every layer, then the
    gradients back), each on its own operands, so the weights and activations share the caches
    as they do in training. The first layer gets no input gradient.
    """
    dev = torch.device(device)
    ops: list = []
    weights = [torch.randn(fout, fin, device=dev, dtype=dtype) for fin, fout in layers]
    acts = [torch.randn(batch, fin, device=dev, dtype=dtype) for fin, _ in layers]
    grads = [torch.randn(batch, fout, device=dev, dtype=dtype) for _, fout in layers]
    for w, a in zip(weights, acts, strict=True):
        ops.append(lambda w=w, a=a: a @ w.t())
    for i in range(len(layers) - 1, -1, -1):
        w, a, g = weights[i], acts[i], grads[i]
        ops.append(lambda g=g, a=a: g.t() @ a)
        if i > 0:
            ops.append(lambda g=g, w=w: g @ w)

    def step() -> None:
        for op in ops:
            op()

    return GemmBound(step_flops(layers, batch), _time(step, repeats))


def step_flops(layers: list[tuple[int, int]], batch: int) -> float:
    """FLOPs of one training step's GEMMs (the first layer has no input gradient)."""
    return sum(2.0 * batch * fin * fout * (2 if i == 0 else 3)
               for i, (fin, fout) in enumerate(layers))


def forward_bound(
    layers: list[tuple[int, int]], batch: int, device: str = "cpu", repeats: int = 20,
    dtype: torch.dtype = torch.float32,
) -> GemmBound:
    """GEMM time and FLOPs of a forward pass only (evaluation)."""
    dev = torch.device(device)
    flops = seconds = 0.0
    for fin, fout in layers:
        x = torch.randn(batch, fin, device=dev, dtype=dtype)
        w = torch.randn(fin, fout, device=dev, dtype=dtype)
        seconds += _time(lambda x=x, w=w: x @ w, repeats)
        flops += 2.0 * batch * fin * fout
    return GemmBound(flops, seconds)


def adam_update_seconds(layers: list[tuple[int, int]], device: str = "cpu", repeats: int = 50,
                        lr: float = 1e-3) -> float:
    """Time of one fused Adam update of dense ``layers``' weights and biases (gradients set),
    alone: the optimiser's share of a step that no loop avoids."""
    dev = torch.device(device)
    params = []
    for fin, fout in layers:
        for shape in ((fout, fin), (fout,)):
            p = torch.nn.Parameter(torch.randn(*shape, device=dev))
            p.grad = torch.randn_like(p)
            params.append(p)
    try:
        opt = torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam(params, lr=lr, foreach=True)
    return _time(opt.step, repeats)


def gather_seconds(rows: int, features: int, batch: int, device: str = "cpu",
                   repeats: int = 50) -> float:
    """Time of reading one shuffled batch of ``batch`` rows out of a (rows, features) array:
    successive slices of a random permutation, as an epoch reads them (the same batch again
    would be served from the cache)."""
    dev = torch.device(device)
    x = torch.rand(rows, features, device=dev)
    perm = torch.randperm(rows, device=dev)
    per_epoch = max(rows // batch, 1)
    count = [0]

    def gather() -> None:
        i = count[0] % per_epoch
        count[0] += 1
        x.index_select(0, perm[i * batch : (i + 1) * batch])

    return _time(gather, repeats)
