"""FactorVAE: the discriminator's density-ratio estimate of the total correlation, the
shuffled codes, the companion optimiser the trainer steps, save / load and resume."""

import math

import pytest
import torch

from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.factorvae import (
    Discriminator,
    FactorVAE,
    density_ratio_tc,
    discriminator_loss,
    permute_dims,
)
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer


@pytest.fixture
def one_thread():
    """Tiny networks train faster on one thread (and do not fight other tests for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def _trained_tc(rho: float, steps: int = 200) -> float:
    """TC of a 2-D Gaussian with correlation rho, as a trained discriminator estimates it."""
    torch.manual_seed(0)
    disc = Discriminator(2, [64, 64])
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    chol = torch.tensor([[1.0, 0.0], [rho, math.sqrt(1 - rho**2)]])
    for _ in range(steps):
        z = torch.randn(256, 2) @ chol.T
        opt.zero_grad()
        discriminator_loss(disc, z, permute_dims(z)).backward()
        opt.step()
    with torch.no_grad():
        return float(density_ratio_tc(disc(torch.randn(10000, 2) @ chol.T)))


def test_the_density_ratio_trick_estimates_the_total_correlation(one_thread):
    # TC of a bivariate Gaussian = -log(1 - rho^2) / 2: 0.83 nats at rho 0.9, 0 at rho 0
    assert _trained_tc(0.9) == pytest.approx(-0.5 * math.log(1 - 0.81), abs=0.2)
    assert abs(_trained_tc(0.0)) < 0.1


def test_shuffled_codes_keep_each_marginal_and_lose_the_dependence():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 1, generator=g)
    z = torch.cat([a, a + 0.1 * torch.randn(4000, 1, generator=g)], 1)
    p = permute_dims(z, generator=g)
    for j in range(2):
        torch.testing.assert_close(p[:, j].sort().values, z[:, j].sort().values)
    assert torch.corrcoef(z.T)[0, 1] > 0.99 and abs(float(torch.corrcoef(p.T)[0, 1])) < 0.05


def _model(**kw) -> FactorVAE:
    torch.manual_seed(0)
    cfg = ModelConfig(model="factor-vae", hidden=[16], latent_dim=3, **kw)
    model = build_model(cfg, ModelSpec((8,), "bernoulli"))
    assert isinstance(model, FactorVAE)
    return model


def test_the_discriminator_is_a_companion_with_its_own_optimiser():
    model = _model(discriminator_hidden=[12, 12], factor_gamma=10.0)
    (phase,) = model.phases()
    disc = {id(p) for p in model.discriminator.parameters()}
    assert disc and not disc & {id(p) for p in phase.parameters}
    (companion,) = phase.companions
    assert {id(p) for p in companion.parameters} == disc
    assert companion.betas == (0.5, 0.9) and companion.lr == 1e-4
    # one trainer step moves both networks, each by its own objective
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=16, progress=False),
                      torch.device("cpu"))
    opt_params = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not opt_params & disc
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = (torch.rand(16, 8) > 0.5).float()
    trainer._discover_extras(x, None)
    model.train()
    trainer._train_on(x, None)
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("discriminator.") for k in moved)
    assert any(k.startswith("encoder.") for k in moved)
    assert set(trainer.extra_names) == {"tc", "disc_acc"}


def test_the_default_discriminator_follows_the_latent_size():
    assert [m.out_features for m in _model().discriminator.net if hasattr(m, "out_features")
            ] == [300] * 6 + [2]
    torch.manual_seed(0)
    big = build_model(ModelConfig(model="factor-vae", hidden=[8], latent_dim=10),
                      ModelSpec((4,), "bernoulli"))
    assert big.discriminator.net[0].out_features == 1000  # the paper's 6 x 1000 at 10-D


def test_gamma_weighs_the_discriminator_tc(tmp_path):
    x = (torch.rand(32, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    a, b = _model(factor_gamma=0.0), _model(factor_gamma=35.0)
    torch.manual_seed(3)
    pa = a.loss(x)
    torch.manual_seed(3)
    pb = b.loss(x)
    torch.testing.assert_close(pb.total - pa.total, 35 * pb.extras["tc"])
    save_model(b, tmp_path)
    back = load_model(tmp_path)
    torch.testing.assert_close(back.discriminator.net[0].weight, b.discriminator.net[0].weight)


def _fit(tmp, epochs: int, resume=None):
    torch.manual_seed(0)
    model = _model(discriminator_hidden=[16, 16])
    cfg = TrainConfig(epochs=epochs, batch_size=25, progress=False, seed=0)
    trainer = Trainer(model, cfg, torch.device("cpu"), checkpoint_dir=tmp)
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(100, 8, generator=g) > 0.5).float().numpy()
    state = trainer.fit(x, None, x[:30], None, resume_from=resume)
    return model, [{k: v for k, v in r.items() if k != "time_s"} for r in state.history]


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    from vaelab.train.checkpoint import latest_checkpoint

    ref_model, ref = _fit(tmp_path / "ref", 3)
    _fit(tmp_path / "part", 2)
    ckpt = latest_checkpoint(tmp_path / "part")
    meta = (ckpt / "state.json").read_text()
    assert '"discriminator"' in meta  # the companion's optimiser state is checkpointed
    model, rows = _fit(tmp_path / "part", 3, resume=ckpt)
    assert len(ref) == 3 and rows == ref
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
