"""Inverse autoregressive flow posterior: the flow's log-determinant equals autograd's, each
step's Jacobian is triangular in its order (reversed between steps), the log-weights use the
log-determinant, training lowers the loss, save / load and arch conv."""

import numpy as np
import pytest
import torch

import vaelab
from vaelab.evaluate.iwae import importance_bounds
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.iaf import IAFVAE


def tiny_iaf(steps: int = 2, d: int = 6, latent: int = 4, seed: int = 0, **kw) -> IAFVAE:
    torch.manual_seed(seed)
    cfg = ModelConfig(model="iaf", hidden=[8], latent_dim=latent, flow_steps=steps,
                      flow_hidden=16, **kw)
    model = build_model(cfg, ModelSpec((d,), "bernoulli"))
    assert isinstance(model, IAFVAE)
    return model.double()


def randomise(model: IAFVAE) -> None:
    """Move the flow away from its near-identity start so the test sees real dependencies."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for step in model.steps:
            for p in step.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_log_determinant_equals_autograd():
    model = tiny_iaf(steps=3).eval()
    randomise(model)
    h = torch.randn(1, model.context_dim, dtype=torch.float64)
    for _ in range(3):
        z0 = torch.randn(model.latent_dim, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda z: model.flow(z[None], h)[0][0], z0)
        _, logdet = model.flow(z0[None], h)
        want = torch.linalg.slogdet(jac).logabsdet
        torch.testing.assert_close(logdet[0], want, rtol=1e-9, atol=1e-9)


def test_each_step_is_triangular_in_its_order_and_the_order_reverses():
    model = tiny_iaf(steps=2).eval()
    randomise(model)
    h = torch.randn(1, model.context_dim, dtype=torch.float64)
    z0 = torch.randn(model.latent_dim, dtype=torch.float64)
    j0 = torch.autograd.functional.jacobian(lambda z: model.steps[0](z[None], h)[0][0], z0)
    j1 = torch.autograd.functional.jacobian(lambda z: model.steps[1](z[None], h)[0][0], z0)
    # step 0: z'_i depends on z_1..z_i only (lower triangular), with a non-trivial lower part
    assert torch.equal(torch.triu(j0, 1), torch.zeros_like(j0))
    assert torch.tril(j0, -1).abs().sum() > 0
    # step 1 (reversed order): upper triangular
    assert torch.equal(torch.tril(j1, -1), torch.zeros_like(j1))
    assert torch.triu(j1, 1).abs().sum() > 0
    # the diagonals are the gates sigma = exp(log sigma)
    gate0 = model.steps[0](z0[None], h)[1][0].exp()
    torch.testing.assert_close(torch.diagonal(j0), gate0)
    # after both steps every output depends on every input
    full = torch.autograd.functional.jacobian(lambda z: model.flow(z[None], h)[0][0], z0)
    assert (full.abs() > 0).all()


def test_log_weights_use_the_flow_log_density():
    model = tiny_iaf().eval()
    randomise(model)
    x = (torch.rand(5, 6, dtype=torch.float64) > 0.5).double()
    with torch.no_grad():
        lw = model.log_weights(x, None, 4, torch.Generator().manual_seed(1))
        mu, logvar, h = model.base(x)
        eps = torch.randn((4, 5, 4), generator=torch.Generator().manual_seed(1), dtype=lw.dtype)
        want = []
        for e in eps:
            z0 = mu + torch.exp(0.5 * logvar) * e
            z, logdet = model.flow(z0, h)
            q0 = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z0).sum(-1)
            pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
            px = model.likelihood.log_prob(x, model.decode(z))
            want.append(px + pz - (q0 - logdet))
    torch.testing.assert_close(lw, torch.stack(want))


def test_iwae_bound_and_single_sample_elbo_agree_in_expectation():
    model = tiny_iaf().float().eval()
    x = (torch.rand(40, 6) > 0.5).float()
    b = importance_bounds(model, x.numpy(), k=60, chunk=13, batch_size=16, seed=0)
    assert np.all(b.iwae >= b.elbo - 1e-9) and b.iwae.mean() > b.elbo.mean()
    with torch.no_grad():
        one = np.mean([-model.loss(x).per_example.mean().item() for _ in range(200)])
    assert abs(one - b.elbo.mean()) < 0.2


def test_training_lowers_the_loss():
    model = tiny_iaf(d=12, latent=2, seed=1).float()
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 12, generator=g) > 0.5).float()
    x = protos[torch.randint(3, (256,), generator=g)]
    x = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = model.loss(x).total
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


def test_save_load_round_trip_and_conv(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(model="iaf", arch="conv", hidden=[16], conv_channels=[4, 8], latent_dim=3,
                      flow_steps=3, flow_hidden=8)
    model = build_model(cfg, ModelSpec((1, 8, 8), "bernoulli")).eval()
    assert len(model.steps) == 3
    save_model(model, tmp_path)
    back = load_model(tmp_path).eval()
    assert type(back) is IAFVAE and back.config.flow_steps == 3
    x = (torch.rand(4, 1, 8, 8) > 0.5).float()
    torch.testing.assert_close(model.reconstruct(x), back.reconstruct(x))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(model.log_weights(x, None, 2, g1),
                               back.log_weights(x, None, 2, g2))


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    small = dict(dataset="digits", model="iaf", latent_dim=2, hidden=[16], subset=300,
                 eval_k=10, flow_hidden=8, progress=False, log=None, report=False)
    ref = vaelab.train(**small, epochs=3, out=str(tmp_path / "ref"))
    vaelab.train(**small, epochs=2, out=str(tmp_path / "part"))
    res = vaelab.train(resume=tmp_path / "part", epochs=3, log=None, report=False)

    def rows(run):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in run.history]

    assert len(rows(ref)) == 3 and rows(res) == rows(ref)
    assert res.metrics["test"]["iwae_nll"] == ref.metrics["test"]["iwae_nll"]
    assert res.metrics["test"]["iwae_nll"] <= res.metrics["test"]["neg_elbo_k"]
    assert res.sample(4).shape == (4, 1, 8, 8)
