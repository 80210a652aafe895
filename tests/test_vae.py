import math

import numpy as np
import torch

from vaelab.likelihoods import Bernoulli, Gaussian
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.base import gaussian_kl


def test_kl_matches_closed_form():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [math.log(0.25), 0.0]])
    got = gaussian_kl(mu, logvar).sum(1)
    # KL(N(m, s^2) || N(0, 1)) = 0.5 (m^2 + s^2 - 1 - log s^2), per dimension
    expect = []
    for m_row, lv_row in zip(mu.tolist(), logvar.tolist(), strict=True):
        expect.append(sum(0.5 * (m**2 + math.exp(lv) - 1 - lv)
                          for m, lv in zip(m_row, lv_row, strict=True)))
    assert torch.allclose(got, torch.tensor(expect), atol=1e-6)
    assert float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3)).sum()) == 0.0


def test_bernoulli_on_logits_is_stable_and_exact():
    x = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[40.0, -40.0]])
    assert float(Bernoulli().log_prob(x, logits)) > -1e-6
    p = torch.tensor([[0.7, 0.2]])
    lp = Bernoulli().log_prob(torch.tensor([[1.0, 0.0]]), torch.logit(p))
    assert abs(float(lp) - math.log(0.7 * 0.8)) < 1e-6


def test_gaussian_includes_normaliser():
    lp = Gaussian(sigma=2.0).log_prob(torch.zeros(1, 3), torch.zeros(1, 3))
    assert abs(float(lp) - 3 * (-0.5 * math.log(2 * math.pi) - math.log(2.0))) < 1e-6


def test_vae_shapes_and_gradients():
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=3, hidden=[16]),
                        ModelSpec((1, 8, 8), "bernoulli"))
    x = torch.rand(5, 1, 8, 8)
    mu, lv = model.encode(x)
    assert mu.shape == (5, 3) and lv.shape == (5, 3)
    assert model.decode(mu).shape == (5, 1, 8, 8)
    parts = model.loss(x)
    parts.total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.parameters())
    assert np.isclose(float(parts.per_example.detach().mean()),
                      float((parts.recon + parts.kl).detach()), atol=1e-4)
