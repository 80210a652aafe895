"""Data-parallel training with torch.distributed (``torchrun --nproc-per-node N -m vaelab ...``).

Each process holds the whole model and a shard of the training rows; gradients are averaged
across processes before every optimiser step (one coalesced all-reduce), per-epoch metrics are
averaged, and only rank 0 writes the run directory. Backend: NCCL on CUDA, gloo on CPU. The
environment variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
are all it needs, so the same command runs across nodes (see docs/distributed.md).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def info() -> DistInfo:
    """The current process's place in the job (rank 0 of 1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_from_env(device_name: str) -> DistInfo:
    """Join the process group torchrun describes; a no-op in a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistInfo()
    if not dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info()


def device_for_rank(device: torch.device) -> torch.device:
    """Each process uses its own GPU (LOCAL_RANK) when training on CUDA."""
    if device.type == "cuda" and info().active:
        return torch.device("cuda", info().local_rank)
    return device


def shard_rows(n: int, seed: int) -> np.ndarray:
    """This rank's rows of a seeded permutation, all shards of equal length."""
    d = info()
    perm = np.random.default_rng(seed).permutation(n)
    per = n // d.world_size
    return np.sort(perm[d.rank * per : (d.rank + 1) * per])


def install_grad_allreduce(optimizer: torch.optim.Optimizer) -> None:
    """Average gradients over all ranks right before every optimiser step."""
    world = info().world_size

    def hook(opt: torch.optim.Optimizer, args, kwargs) -> None:
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    optimizer.register_step_pre_hook(hook)


def mean_across_ranks(t: Tensor) -> Tensor:
    """Average a tensor over ranks (returns it unchanged in a single process)."""
    if not info().active:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / info().world_size


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights."""
    if info().active:
        for t in model.state_dict().values():
            dist.broadcast(t, src=0)


def parameters_identical(model: torch.nn.Module) -> bool:
    """True when every rank holds bit-identical parameters (checksums compared)."""
    if not info().active:
        return True
    h = 0
    for k, v in sorted(model.state_dict().items()):
        h = zlib.crc32(v.detach().cpu().contiguous().numpy().tobytes(), zlib.crc32(k.encode(), h))
    dev = next(model.parameters()).device
    mine = torch.tensor([h], dtype=torch.int64, device=dev)
    gathered = [torch.zeros_like(mine) for _ in range(info().world_size)]
    dist.all_gather(gathered, mine)
    return all(int(g) == h for g in gathered)


def barrier() -> None:
    if info().active:
        dist.barrier()
