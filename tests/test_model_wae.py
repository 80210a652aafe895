"""WAE-MMD: the unbiased MMD estimator, the inverse-multiquadratic kernel, and training that
pulls the codes towards N(0, I)."""

import statistics

import pytest
import torch

from vaelab.data import DataConfig, load_data
from vaelab.errors import ConfigError
from vaelab.modelio import load_model, save_model
from vaelab.models import MODELS, ModelConfig, ModelSpec, build_model
from vaelab.models.wae import imq_kernel, mmd_unbiased
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

SCALES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


def make(arch="mlp", **kw):
    torch.manual_seed(0)
    kw.setdefault("hidden", [32])
    kw.setdefault("latent_dim", 3)
    cfg = ModelConfig(model="wae", arch=arch, conv_channels=[4, 8], **kw)
    return build_model(cfg, ModelSpec((1, 8, 8), "bernoulli"))


def test_kernel_matches_a_hand_computation():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 1.0]])
    k = imq_kernel(a, b, [1.0, 2.0])
    # d = 2: C = 2 * 2 * s = 4 and 8; |a0 - b|^2 = 2, |a1 - b|^2 = 1
    assert k[0, 0].item() == pytest.approx(4 / 6 + 8 / 10)
    assert k[1, 0].item() == pytest.approx(4 / 5 + 8 / 9)
    assert torch.allclose(imq_kernel(a, a, [1.0]).diagonal(), torch.ones(2))


def test_mmd_is_the_u_statistic_written_out():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g), torch.randn(4, 3, generator=g)

    def k(u, v):
        return sum(2 * 3 * s / (2 * 3 * s + float((u - v).square().sum())) for s in SCALES)

    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / (4 * 3)
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / (5 * 4)
    assert mmd_unbiased(x, y, SCALES).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-5)


def test_mmd_is_zero_in_expectation_for_one_distribution_and_positive_for_two():
    same = []
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        same.append(float(mmd_unbiased(torch.randn(400, 4, generator=g),
                                       torch.randn(400, 4, generator=g), SCALES)))
    # measured: mean 0.0012, std 0.0057 over these 20 pairs (unbiased: some are negative)
    assert abs(statistics.mean(same)) < 0.005 and max(abs(v) for v in same) < 0.03
    assert min(same) < 0 < max(same)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 4, generator=g)
    shifted = float(mmd_unbiased(x, torch.randn(400, 4, generator=g) + 0.5, SCALES))
    wider = float(mmd_unbiased(x, 1.5 * torch.randn(400, 4, generator=g), SCALES))
    assert shifted > 0.1 and wider > 0.1  # measured 0.19 and 0.15


def test_registered_deterministic_and_round_trips(tmp_path):
    assert "wae" in MODELS and not MODELS["wae"].variational
    for arch in ("mlp", "conv"):
        model = make(arch, mmd_weight=3.0, mmd_scales=[0.5, 1.0])
        x = torch.rand(6, 1, 8, 8)
        z, logvar = model.encode(x)
        assert z.shape == (6, 3) and logvar is None
        parts = model.loss(x)
        assert set(parts.extras) == {"mmd"} and float(parts.kl) == 0.0
        assert parts.per_example.shape == (6,)
        parts.total.backward()
        assert all(p.grad is not None for p in model.parameters())
        save_model(model, tmp_path / arch)
        back = load_model(tmp_path / arch)
        assert back.config.mmd_weight == 3.0 and back.config.mmd_scales == [0.5, 1.0]
        assert torch.equal(back.encode(x)[0], model.encode(x)[0])


def test_total_is_reconstruction_plus_weighted_mmd():
    model = make(mmd_weight=7.0)
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    parts = model.loss(x)
    expected = parts.recon.item() + 7.0 * parts.extras["mmd"].item()
    assert parts.total.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kw, word", [({"mmd_weight": -1.0}, "mmd_weight"),
                                      ({"mmd_scales": []}, "mmd_scales"),
                                      ({"mmd_scales": [1.0, 0.0]}, "mmd_scales")])
def test_bad_options_name_themselves(kw, word):
    with pytest.raises(ConfigError, match=word):
        make(**kw)


def test_training_lowers_the_loss_and_the_codes_mmd_to_the_prior():
    torch.manual_seed(0)
    data = load_data(DataConfig(dataset="digits"), seed=0)
    model = make(latent_dim=4, hidden=[64], mmd_weight=100.0)
    x = torch.as_tensor(data.test.x[:500])

    def code_mmd() -> float:
        with torch.no_grad():
            z = model.eval().encode(x)[0]
            g = torch.Generator().manual_seed(0)
            return float(mmd_unbiased(z, torch.randn(z.shape, generator=g), SCALES))

    before = code_mmd()
    trainer = Trainer(model, TrainConfig(epochs=15, batch_size=64, seed=0),
                      torch.device("cpu"))
    state = trainer.fit(data.train.x, None, data.val.x, None)
    losses = [row["train_loss"] for row in state.history]
    after = code_mmd()
    assert losses[-1] < 0.8 * losses[0]
    assert after < 0.25 * before, (before, after)
