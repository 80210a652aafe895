"""The fast training paths compute exactly what autograd computes."""

import pytest
import torch

from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train import fused
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer, make_adam

CASES = [("vae", "relu", "bernoulli", [32]), ("vae", "leaky_relu", "gaussian", [16, 8]),
         ("vae", "tanh", "bernoulli", [12]), ("vae", "elu", "gaussian", [8, 8]),
         ("vae", "gelu", "bernoulli", [10]), ("vamp", "relu", "bernoulli", [32]),
         ("vamp", "elu", "bernoulli", [16, 8]), ("vamp", "tanh", "gaussian", [12]),
         ("iwae", "relu", "bernoulli", [32]), ("iwae", "elu", "gaussian", [8, 8]),
         ("vamp-iwae", "elu", "bernoulli", [16, 8]), ("vamp-iwae", "relu", "gaussian", [12])]
CASES = [(*case, 0, 1) for case in CASES] + [  # pixel context radius, channels
    ("vae", "relu", "bernoulli", [32], 1, 1), ("vamp", "tanh", "gaussian", [12], 2, 1),
    ("iwae", "elu", "gaussian", [8, 8], 1, 3), ("vamp-iwae", "elu", "bernoulli", [16, 8], 2, 1),
    ("vamp-iwae", "relu", "bernoulli", [12], 1, 3)]


@pytest.mark.parametrize(("family", "act", "lik", "hidden", "context", "channels"), CASES)
def test_fused_step_gradients_equal_autograd(family, act, lik, hidden, context, channels):
    """Every gradient (the VampPrior's pseudo-inputs and a pixel context's weights included)
    and the loss parts match; for the IWAE families, the bound over 4 samples and its
    gradient."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=family, hidden=hidden, latent_dim=3, activation=act,
                                    beta=0.7, pseudo_inputs=5, iwae_k=4, pixel_context=context),
                        ModelSpec((channels, 6, 6), lik))
    if family.startswith("vamp"):  # pseudo-inputs apart: responsibilities not uniform
        with torch.no_grad():
            model.pseudo.copy_(torch.rand_like(model.pseudo))
    if context:  # a context that shifts the outputs
        with torch.no_grad():
            model.likelihood.weight.normal_(0, 0.3)
    model.kl_scale = 0.5
    assert fused.supports(model)
    x = torch.rand(16, channels, 6, 6)
    torch.manual_seed(1)
    ref_parts = model.loss(x)
    model.zero_grad()
    ref_parts.total.backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    step = fused.FusedVAEStep(model, torch.optim.Adam(model.parameters()))
    torch.manual_seed(1)
    parts = step.forward_backward(x)
    assert set(ref) == {n for n, p in model.named_parameters() if p.grad is not None}
    for n, p in model.named_parameters():
        assert ref[n].abs().max() > 0, n  # a gradient that is there to compare
        assert torch.allclose(p.grad, ref[n], atol=1e-6, rtol=1e-5), n
    extras = [ref_parts.extras[n] for n in sorted(ref_parts.extras)]  # as the trainer orders
    expect = torch.stack([ref_parts.total, ref_parts.recon, ref_parts.kl, *extras]).detach()
    others = [i for i in range(len(expect)) if i != 2]
    assert torch.allclose(parts[others], expect[others], rtol=1e-5)
    # a VampPrior's KL is log q - log p at the sample, a small difference of terms of the
    # total's size: float32 rounding of those terms, not of the KL, bounds its absolute error
    assert abs(float(parts[2] - expect[2])) <= 1e-5 * abs(float(expect[2])) \
        + 1e-6 * abs(float(expect[0]))
    assert bool(extras) == ("iwae" in family)  # the bound, logged as iwae_nll


@pytest.mark.parametrize("alpha", [1.0, 0.5, 1.5])
def test_fused_elu_forward_and_backward_equal_torch(alpha):
    """The fused ELU (max form for alpha <= 1, slope from the output) is torch's ELU: values
    to float32 rounding and the gradient to 2.5e-7 of its largest entry (h + alpha and
    alpha * e^a differ by the rounding of e^a - 1 near zero)."""
    torch.manual_seed(0)
    a = torch.cat([torch.randn(4000) * 4, torch.tensor([0.0, -0.0, 1e-8, -1e-8, -30.0, 30.0])])
    a.requires_grad_(True)
    act = torch.nn.ELU(alpha)
    ref = act(a)
    g = torch.randn_like(a)
    ref.backward(g)
    h = fused._act_forward(act, a.detach())
    assert torch.allclose(h, ref.detach(), rtol=2e-7, atol=1e-7)
    dg = fused._act_backward(act, g, a.detach(), h)
    assert (dg - a.grad).abs().max() <= 2.5e-7 * a.grad.abs().max()
    assert torch.equal(dg[a.detach() > 0], g[a.detach() > 0])  # slope 1 above zero, exactly


def test_fused_step_is_not_used_where_it_does_not_apply():
    spec = ModelSpec((1, 6, 6), "bernoulli", num_classes=3)
    for cfg in (ModelConfig(batch_norm=True), ModelConfig(dropout=0.1),
                ModelConfig(free_bits=0.5), ModelConfig(model="cvae"), ModelConfig(model="ae"),
                ModelConfig(arch="conv")):
        assert not fused.supports(build_model(cfg, spec)), cfg


@pytest.mark.parametrize(("family", "context"), [("vae", 0), ("vamp", 0), ("vamp-iwae", 0),
                                                 ("vamp-iwae", 2)])
def test_fused_and_autograd_training_agree(family, context):
    x = torch.rand(256, 1, 6, 6).numpy()
    runs = []
    for use in (True, False):
        torch.manual_seed(0)
        model = build_model(ModelConfig(model=family, hidden=[16], latent_dim=2, pseudo_inputs=4,
                                        pixel_context=context),
                            ModelSpec((1, 6, 6), "bernoulli"))
        tr = Trainer(model, TrainConfig(epochs=3, batch_size=32, progress=False, fused_step=use),
                     torch.device("cpu"))
        assert isinstance(tr._step_fn, fused.FusedVAEStep) == use
        runs.append([r["train_loss"] for r in tr.fit(x, None).history])
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)


def test_cpu_adam_is_fused():
    model = build_model(ModelConfig(hidden=[4]), ModelSpec((3,), "gaussian"))
    opt = make_adam(model, TrainConfig(), torch.device("cpu"))
    assert opt.defaults.get("fused") is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_training_matches_eager():
    x = torch.rand(512, 1, 8, 8).numpy()
    losses = []
    for graphs in (True, False):
        torch.manual_seed(0)
        model = build_model(ModelConfig(hidden=[32], latent_dim=2), ModelSpec((1, 8, 8),
                                                                              "bernoulli"))
        tr = Trainer(model, TrainConfig(epochs=3, batch_size=64, progress=False,
                                        cuda_graphs=graphs, lr_schedule="step",
                                        lr_step_size=1, lr_gamma=0.5),
                     torch.device("cuda"))
        hist = tr.fit(x, None).history
        assert (tr._graphed is not None) == graphs
        losses.append([r["train_loss"] for r in hist])
        assert [r["lr"] for r in hist] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert losses[0][-1] < losses[0][0]
    assert losses[0] == pytest.approx(losses[1], rel=0.05)
