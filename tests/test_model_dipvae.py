"""DIP-VAE: the covariance penalty on a known covariance (types i and ii), the default
weights, a clear error for an unknown type, and training that decorrelates the means."""

import pytest
import torch

from vaelab.errors import ConfigError
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.dipvae import DIPVAE, code_covariance, dip_penalty, resolved_lambdas


def _with_covariance(cov: torch.Tensor, n: int = 500) -> torch.Tensor:
    """n rows whose (1/n) sample covariance is exactly ``cov``."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, cov.shape[0], generator=g, dtype=torch.float64)
    a = a - a.mean(0)
    white = a @ torch.linalg.inv(torch.linalg.cholesky(a.T @ a / n)).T
    return (white @ torch.linalg.cholesky(cov).T + 3.0).float()  # any mean


def test_the_penalty_of_a_known_covariance():
    cov = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 0.5]],
                       dtype=torch.float64)
    mu = _with_covariance(cov)
    got = code_covariance(mu)
    torch.testing.assert_close(got.double(), cov, atol=1e-4, rtol=0)
    # off-diagonal: 2 x (0.5^2 + 0.3^2) = 0.68; diagonal: (2-1)^2 + 0 + (0.5-1)^2 = 1.25
    assert float(dip_penalty(got, 10.0, 100.0)) == pytest.approx(10 * 0.68 + 100 * 1.25,
                                                                  rel=1e-4)
    # type ii adds the mean posterior variance to the diagonal: 0.5 here, so diag 2.5, 1.5, 1
    logvar = torch.log(torch.full_like(mu, 0.5))
    ii = code_covariance(mu, logvar)
    torch.testing.assert_close(torch.diagonal(ii).double(), torch.tensor(
        [2.5, 1.5, 1.0], dtype=torch.float64), atol=1e-4, rtol=0)
    assert float(dip_penalty(ii, 1.0, 1.0)) == pytest.approx(0.68 + 1.5**2 + 0.5**2, rel=1e-4)
    # the identity costs nothing
    assert float(dip_penalty(torch.eye(4), 10.0, 100.0)) == 0.0


def test_default_weights_and_a_clear_error_for_an_unknown_type():
    assert resolved_lambdas(ModelConfig(dip_type="i", dip_lambda_od=5)) == (5, 50)
    assert resolved_lambdas(ModelConfig(dip_type="ii", dip_lambda_od=5)) == (5, 5)
    assert resolved_lambdas(ModelConfig(dip_type="ii", dip_lambda_od=5, dip_lambda_d=2)) == (5, 2)
    with pytest.raises(ConfigError, match="option 'dip_type' got 'iii'; choose i or ii") as err:
        build_model(ModelConfig(model="dip-vae", dip_type="iii"), ModelSpec((4,), "bernoulli"))
    assert "\n" not in str(err.value)


def test_training_pulls_the_covariance_of_the_means_to_the_identity():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        f = torch.rand(512, 1, generator=g)
        x = (f > torch.linspace(0.1, 0.9, 8)).float()  # one factor: codes tend to correlate
        penalty = {}
        for lod in (0.0, 20.0):
            torch.manual_seed(0)
            model = build_model(ModelConfig(model="dip-vae", hidden=[32], latent_dim=2,
                                            dip_lambda_od=lod, dip_lambda_d=lod),
                                ModelSpec((8,), "bernoulli"))
            assert isinstance(model, DIPVAE)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            for step in range(200):
                opt.zero_grad()
                model.loss(x[(step * 64) % 512:][:64]).total.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                penalty[lod] = float(dip_penalty(code_covariance(model.encode(x)[0]), 1, 1))
    finally:
        torch.set_num_threads(n)
    assert penalty[20.0] < 0.5 * penalty[0.0]
