"""The CPU speed paths give the same numbers as PyTorch's own ops: the Bernoulli terms without
the slow path, the direct fused-Adam call, and flushing denormals on every intra-op thread."""

from __future__ import annotations

import copy
import sys

import pytest
import torch
import torch.nn.functional as F

from vaelab.likelihoods import bernoulli_nll, softplus
from vaelab.train import perf
from vaelab.train.fused import DirectAdam
from vaelab.train.lean_adam import LeanAdam


@pytest.mark.parametrize("scale", [1.0, 30.0, 200.0])
def test_bernoulli_terms_match_pytorch(scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(64, 50, generator=g) * scale).double().float()
    x = (torch.rand(64, 50, generator=g) > 0.5).float() * torch.rand(64, 50, generator=g)
    ref = F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="none")
    l1 = logits.clone().requires_grad_()
    ours = bernoulli_nll(l1, x)
    ours.sum().backward()
    torch32 = F.binary_cross_entropy_with_logits(logits, x, reduction="none").double()
    # as close to the exact value as PyTorch's own float32 op (plus float32's spacing near 1)
    assert (ours.double() - ref).abs().max() <= 2 * (torch32 - ref).abs().max() + 2e-6
    assert torch.allclose(l1.grad.double(), torch.sigmoid(logits.double()) - x.double(),
                          atol=1e-7)
    l2 = logits.clone().requires_grad_()
    sp = softplus(l2)
    sp.sum().backward()
    exact = F.softplus(logits.double())
    assert (sp.double() - exact).abs().max() <= \
        2 * (F.softplus(logits).double() - exact).abs().max() + 2e-6
    assert torch.allclose(l2.grad.double(), torch.sigmoid(logits.double()), atol=1e-7)


def test_direct_adam_matches_optimizer_step() -> None:
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a = torch.optim.Adam(a, lr=1e-2, fused=True, weight_decay=1e-3)
    opt_b = LeanAdam(b, lr=1e-2, fused=True, weight_decay=1e-3)
    direct = DirectAdam(opt_b)  # creates the fresh state itself, as Adam's first step does
    for step in range(6):
        grads = [torch.randn_like(p) for p in a]
        for p, q, gr in zip(a, b, grads, strict=True):
            p.grad = gr.clone()
            if q.grad is None:
                q.grad = gr.clone()
            else:
                q.grad.copy_(gr)
        if step == 3:  # a schedule's change of the learning rate is followed
            for o in (opt_a, opt_b):
                o.param_groups[0]["lr"] = 3e-3
        opt_a.step()
        direct.step()
    assert direct._lists is not None  # the direct path ran
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
    assert float(opt_b.state[b[0]]["step"]) == 6
    saved_a, saved_b = opt_a.state_dict(), opt_b.state_dict()
    assert saved_a["param_groups"] == saved_b["param_groups"]
    assert all(torch.equal(saved_a["state"][i][k], saved_b["state"][i][k])
               for i in saved_a["state"] for k in saved_a["state"][i])
    # a loaded state replaces the tensors: the next step goes through optimizer.step again
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert not direct._current()


LEAN_SCRIPT = """
import sys, warnings
import torch
from vaelab.train.fused import DirectAdam
from vaelab.train.lean_adam import LeanAdam
warnings.simplefilter("error")
p = torch.nn.Parameter(torch.randn(4, 3))
opt = LeanAdam([p], lr=1e-2, fused=True)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e)
direct = DirectAdam(opt)
for _ in range(3):
    opt.zero_grad(set_to_none=False)
    p.grad = torch.randn_like(p)
    direct.step()
    sched.step()
opt.load_state_dict(opt.state_dict())
print(int(opt.state[p]["step"]), opt.param_groups[0]["lr"], "torch._dynamo" in sys.modules)
"""


def test_lean_adam_trains_without_importing_the_compiler() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-c", LEAN_SCRIPT], capture_output=True, text=True,
                         check=True).stdout.split()
    # three direct steps, the schedule followed without a warning, torch._dynamo never loaded
    assert out == ["3", str(1e-2 * 0.5 ** 3), "False"]


def test_flush_denormals_on_every_thread() -> None:
    tiny = torch.full((100_000,), 1e-39)  # denormal in float32
    assert float(tiny[0]) != 0.0
    if not perf.flush_denormals(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert perf.flushing_denormals()
        # every element, whichever thread computes it, is flushed
        assert float((tiny * 1.0).abs().max()) == 0.0
    finally:
        perf.flush_denormals(False)
    assert not perf.flushing_denormals()
    assert float((tiny * 1.0).min()) > 0.0


def test_after_training_buffers_of_megabytes_still_come_from_the_heap():
    """restore_cpu_allocator keeps 3 MB buffers (the IWAE estimate's) in glibc's heap, not in
    fresh mmap pages: the explicit 128 KiB defaults switched off glibc's adaptive threshold
    and made every such buffer page-fault. Read through mallinfo2 (glibc >= 2.33)."""
    import ctypes

    from vaelab.train import perf

    libc = perf._libc()
    if not sys.platform.startswith("linux") or not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc's mallinfo2 is not available here")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    perf.tune_cpu_allocator()
    assert perf.restore_cpu_allocator()
    before = libc.mallinfo2().hblkhd
    buf = torch.empty(3 << 18)  # 3 MB
    buf.fill_(1.0)
    mapped = libc.mallinfo2().hblkhd - before
    del buf
    assert mapped < 1 << 20, mapped  # not an mmap of its own


def test_the_settings_guess_of_the_fused_step_covers_every_model_it_takes() -> None:
    """``may_apply`` (read before the data loads, to skip the compiler preload) is True for
    every registered family whose model the fused step takes, and False for the others."""
    from vaelab.models import MODELS, ModelSpec, build_model
    from vaelab.pipeline import resolve_config
    from vaelab.train import fused

    spec = ModelSpec(input_shape=(1, 6, 6), likelihood="bernoulli", num_classes=3)
    taken = []
    for name in MODELS:
        cfg = resolve_config(None, model=name, hidden=[8], latent_dim=2, device="cpu")
        model = build_model(cfg.model, spec)
        if fused.supports(model):
            taken.append(name)
        assert fused.may_apply(cfg) == fused.supports(model), name
    assert {"vae", "vamp", "iwae", "vamp-iwae"} <= set(taken)
    off = resolve_config(None, model="vae", hidden=[8], latent_dim=2, device="cpu",
                         fused_step=False)
    assert not fused.may_apply(off)
