"""VampPrior: the prior is the mean of the encoder's posteriors at the pseudo-inputs; its KL,
sampling, IWAE bound, training, save / load and arch conv."""

import math

import numpy as np
import pytest
import torch

import vaelab
from vaelab.evaluate.iwae import importance_bounds
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.vamp import VampVAE, mixture_log_density


def tiny_vamp(k: int = 7, d: int = 6, latent: int = 3, seed: int = 0, **kw) -> VampVAE:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"model": "vamp", "hidden": [8], "latent_dim": latent,
                         "pseudo_inputs": k, **kw})
    model = build_model(cfg, ModelSpec((d,), "bernoulli"))
    assert isinstance(model, VampVAE)
    return model


def test_prior_is_the_mean_of_the_posteriors_at_the_pseudo_inputs():
    model = tiny_vamp(k=7).eval()
    with torch.no_grad():
        model.pseudo.normal_()  # spread the components apart
        z = torch.randn(11, 3) * 2
        got = model.log_prior(z)
        # by hand: encode each pseudo-input alone, average the K posterior densities at z
        dens = torch.zeros(11, dtype=torch.float64)
        for u in model.pseudo:
            mu, logvar = model.encode(u[None])
            q = torch.distributions.Normal(mu[0].double(), torch.exp(0.5 * logvar[0]).double())
            dens += q.log_prob(z.double()).sum(-1).exp()
        want = torch.log(dens / 7)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-4)


def test_one_pseudo_input_with_a_standard_normal_posterior_is_the_standard_normal_prior():
    model = tiny_vamp(k=1).eval()
    with torch.no_grad():
        model.encoder.head.weight.zero_()
        model.encoder.head.bias.zero_()  # q(z | u) = N(0, I) for every input
        z = torch.randn(20, 3)
        want = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        torch.testing.assert_close(model.log_prior(z), want, rtol=0, atol=1e-5)
        # and the sampled KL is then log q(z|x) - log N(z; 0, I), centred on the closed form
        x = torch.ones(4, 6)
        assert float(model.loss(x).kl) == pytest.approx(0.0, abs=1e-5)


def test_mixture_density_matches_torch_distributions_for_narrow_components():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(5, 4, generator=g)
    logvar = torch.randn(5, 4, generator=g) * 2 - 6  # variances down to e^-10
    z = mu[2] + torch.exp(0.5 * logvar[2]) * torch.randn(9, 4, generator=g)
    comp = torch.distributions.Normal(mu.double(), torch.exp(0.5 * logvar).double())
    want = torch.logsumexp(comp.log_prob(z.double()[:, None]).sum(-1), 1) - math.log(5)
    torch.testing.assert_close(mixture_log_density(z, mu, logvar).double(), want,
                               rtol=1e-6, atol=1e-4)


def test_prior_samples_come_from_the_components():
    model = tiny_vamp(k=3).eval()
    with torch.no_grad():
        model.pseudo.normal_()
        mu_p, logvar_p = model.prior_components()
        z = model.prior_sample(4000, generator=torch.Generator().manual_seed(0))
        # the sample mean is the mean of the component means; the variance that of the mixture
        mix_mean = mu_p.mean(0)
        mix_var = (logvar_p.exp() + mu_p.square()).mean(0) - mix_mean.square()
    assert z.shape == (4000, 3)
    torch.testing.assert_close(z.mean(0), mix_mean, atol=4 * float(mix_var.max().sqrt()) / 63,
                               rtol=0)
    torch.testing.assert_close(z.var(0), mix_var, rtol=0.15, atol=0)


def test_iwae_is_at_least_the_k_sample_elbo_and_uses_the_mixture_prior():
    model = tiny_vamp(k=5).eval()
    x = (torch.rand(30, 6) > 0.5).float().numpy()
    b = importance_bounds(model, x, k=40, chunk=9, batch_size=12, seed=1)
    assert np.all(b.iwae >= b.elbo - 1e-9)
    assert b.iwae.mean() > b.elbo.mean()
    # the log-weights are log p(x|z) + log p_vamp(z) - log q(z|x): check one by hand
    xt = torch.as_tensor(x[:4])
    with torch.no_grad():
        lw = model.log_weights(xt, None, 3, torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        mu, logvar = model.encode(xt)
        z = mu + torch.exp(0.5 * logvar) * torch.randn((3, 4, 3), generator=g)
        q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
        px = torch.stack([model.likelihood.log_prob(xt, model.decode(zi)) for zi in z])
        want = px + model.log_prior(z) - q
    torch.testing.assert_close(lw, want, rtol=0, atol=1e-4)


def test_training_lowers_the_loss_and_the_pseudo_inputs_learn():
    model = tiny_vamp(k=10, d=12, latent=2, seed=1)
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 12, generator=g) > 0.5).float()
    x = protos[torch.randint(3, (256,), generator=g)]
    x = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.pseudo.detach().clone()
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = model.loss(x).total
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert not torch.equal(before, model.pseudo.detach())


def test_save_load_round_trip_and_conv(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(model="vamp", arch="conv", hidden=[16], conv_channels=[4, 8],
                      latent_dim=2, pseudo_inputs=6)
    model = build_model(cfg, ModelSpec((1, 8, 8), "bernoulli")).eval()
    assert model.pseudo.shape == (6, 1, 8, 8)
    save_model(model, tmp_path)
    back = load_model(tmp_path).eval()
    assert back.config.pseudo_inputs == 6 and type(back) is VampVAE
    torch.testing.assert_close(back.pseudo, model.pseudo)
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    torch.testing.assert_close(model.sample(5, generator=g1), back.sample(5, generator=g2))


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    small = dict(dataset="digits", model="vamp", latent_dim=2, hidden=[16], subset=300,
                 eval_k=10, pseudo_inputs=10, progress=False, log=None, report=False)
    ref = vaelab.train(**small, epochs=3, out=str(tmp_path / "ref"))
    vaelab.train(**small, epochs=2, out=str(tmp_path / "part"))
    res = vaelab.train(resume=tmp_path / "part", epochs=3, log=None, report=False)

    def rows(run):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in run.history]

    assert len(rows(ref)) == 3 and rows(res) == rows(ref)
    assert res.metrics["test"]["iwae_nll"] == ref.metrics["test"]["iwae_nll"]
    assert res.metrics["test"]["iwae_nll"] <= res.metrics["test"]["neg_elbo_k"]
    assert res.sample(4).shape == (4, 1, 8, 8)


def test_vamp_iwae_trains_on_the_importance_weighted_bound():
    """vamp-iwae: with K = 1 its loss is the VampPrior VAE's ELBO on the same draw; with K > 1
    it is log (1/K) sum_k w_k over its K draws, never looser than their mean log w (Jensen),
    logged as iwae_nll, with recon / kl the first draw's ELBO terms."""
    from vaelab.models.vamp import VampIWAE

    x = (torch.rand(32, 6, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    one = tiny_vamp(model="vamp-iwae", iwae_k=1)
    assert isinstance(one, VampIWAE)
    elbo = tiny_vamp()
    torch.manual_seed(5)
    a = one.loss(x)
    torch.manual_seed(5)
    b = elbo.loss(x)
    assert torch.allclose(a.total, b.total) and torch.allclose(a.per_example, b.per_example)

    model = tiny_vamp(model="vamp-iwae", iwae_k=6)
    torch.manual_seed(7)
    parts = model.loss(x)
    torch.manual_seed(7)
    log_px, log_pz, log_q = model.log_weight_terms(x, 6)
    log_w = log_px + log_pz - log_q
    assert torch.allclose(parts.total, -(torch.logsumexp(log_w, 0) - math.log(6)).mean())
    assert parts.total < -log_w.mean() - 1e-3  # strictly tighter: the weights are not equal
    assert torch.allclose(parts.extras["iwae_nll"], parts.total)
    assert torch.allclose(parts.recon, -log_px[0].mean())
    assert torch.allclose(parts.kl, (log_q[0] - log_pz[0]).mean())
