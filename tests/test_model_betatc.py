"""beta-TC-VAE: the minibatch-weighted estimates of mutual information, total correlation and
dimension-wise KL; their weights; training with a large beta lowers the total correlation."""

import math

import pytest
import torch

from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.betatc import BetaTCVAE, log_normal, mws_decomposition


@pytest.fixture
def one_thread():
    """Tiny networks train faster on one thread (and do not fight other tests for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def _gaussian_codes(mu: torch.Tensor, std: float, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    logvar = torch.full_like(mu, 2 * math.log(std))
    return mu + std * torch.randn(mu.shape, generator=g), mu, logvar


def test_tc_is_zero_for_independent_dimensions_and_the_gaussian_tc_for_a_copied_one():
    g = torch.Generator().manual_seed(0)
    m = 2000
    # independent: means N(0, 0.8^2) per dimension, posterior std 0.6 -> q(z) = N(0, I)
    z, mu, lv = _gaussian_codes(torch.randn(m, 2, generator=g) * 0.8, 0.6)
    assert abs(float(mws_decomposition(z, mu, lv)["tc"].mean())) < 0.05
    # the second dimension copies the first: q(z) is a correlated Gaussian, rho = 1 / 1.01,
    # whose TC is -log(1 - rho^2) / 2 = 1.96 nats
    base = torch.randn(m, 1, generator=g)
    z, mu, lv = _gaussian_codes(torch.cat([base, base], 1), 0.1)
    rho = 1 / 1.01
    want = -0.5 * math.log(1 - rho**2)
    assert abs(float(mws_decomposition(z, mu, lv)["tc"].mean()) - want) < 0.15


def test_the_three_terms_add_up_to_the_sampled_kl():
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(64, 3, generator=g)
    logvar = torch.randn(64, 3, generator=g) * 0.3 - 1
    z = mu + torch.exp(0.5 * logvar) * torch.randn(64, 3, generator=g)
    t = mws_decomposition(z, mu, logvar)
    sampled_kl = log_normal(z, mu, logvar).sum(1) + 0.5 * (z.square() + math.log(2 * math.pi)
                                                           ).sum(1)
    torch.testing.assert_close(t["mi"] + t["tc"] + t["dim_kl"], sampled_kl)
    # the mutual information of a batch is at most log M, the dimension-wise KL is >= 0 on
    # average for codes this far from N(0, I)
    assert float(t["mi"].mean()) <= math.log(64) + 1e-5


def _model(**kw) -> BetaTCVAE:
    torch.manual_seed(0)
    cfg = ModelConfig(model="beta-tc-vae", hidden=[16], latent_dim=2, **kw)
    model = build_model(cfg, ModelSpec((8,), "bernoulli"))
    assert isinstance(model, BetaTCVAE)
    return model


def test_alpha_beta_gamma_weigh_their_own_terms_and_one_is_the_sampled_elbo():
    x = (torch.rand(40, 8, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    parts = {}
    for name, kw in {"ones": {}, "beta": {"beta": 6.0}, "alpha": {"tc_alpha": 3.0},
                     "gamma": {"tc_gamma": 0.0}}.items():
        model = _model(**kw)
        torch.manual_seed(7)
        parts[name] = model.loss(x)
    one = parts["ones"]
    e = one.extras
    # weights 1: recon + MI + TC + dim-KL = recon + log q(z|x) - log p(z)
    torch.testing.assert_close(one.total, one.recon + e["mi"] + e["tc"] + e["dim_kl"])
    torch.testing.assert_close(parts["beta"].total - one.total, 5 * e["tc"])
    torch.testing.assert_close(parts["alpha"].total - one.total, 2 * e["mi"])
    torch.testing.assert_close(parts["gamma"].total - one.total, -e["dim_kl"])
    # the reported KL and negative ELBO are the true ones whatever the weights
    torch.testing.assert_close(parts["beta"].kl, one.kl)


def test_a_large_beta_trains_a_code_with_less_total_correlation(one_thread):
    g = torch.Generator().manual_seed(0)
    # two independent binary factors, each written into 4 noisy pixels
    f = (torch.rand(512, 2, generator=g) > 0.5).float()
    x = torch.cat([f[:, :1].repeat(1, 4), f[:, 1:].repeat(1, 4)], 1)
    x = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    tc = {}
    for beta in (1.0, 10.0):
        model = _model(beta=beta)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(300):
            opt.zero_grad()
            model.loss(x[(step * 64) % 512:][:64]).total.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            mu, logvar = model.encode(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            tc[beta] = float(mws_decomposition(z, mu, logvar)["tc"].mean())
    assert tc[10.0] < 0.5 * tc[1.0]
