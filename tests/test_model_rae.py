"""RAE: the code penalty, the decoder's L2 and gradient penalties against their formulas, and a
tiny run whose loss falls."""

import pytest
import torch

from vaelab.data import DataConfig, load_data
from vaelab.errors import ConfigError
from vaelab.modelio import load_model, save_model
from vaelab.models import MODELS, ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer


def make(arch="mlp", **kw):
    torch.manual_seed(0)
    kw.setdefault("hidden", [16])
    kw.setdefault("latent_dim", 3)
    cfg = ModelConfig(model="rae", arch=arch, conv_channels=[4, 8], **kw)
    return build_model(cfg, ModelSpec((1, 8, 8), "bernoulli"))


def test_registered_deterministic_and_round_trips(tmp_path):
    assert "rae" in MODELS and not MODELS["rae"].variational
    for arch in ("mlp", "conv"):
        for reg in ("l2", "gp", "none"):
            model = make(arch, rae_reg=reg, rae_z_weight=0.5, rae_reg_weight=0.01)
            model.train()
            x = torch.rand(6, 1, 8, 8)
            parts = model.loss(x)
            assert set(parts.extras) == {"z_penalty", "decoder_reg"} and float(parts.kl) == 0.0
            parts.total.backward()
            assert all(p.grad is not None for p in model.parameters())
        save_model(model, tmp_path / arch)
        back = load_model(tmp_path / arch)
        assert (back.config.rae_reg, back.config.rae_z_weight) == ("none", 0.5)


def test_penalties_and_total_equal_their_formulas():
    model = make(rae_z_weight=0.3, rae_reg_weight=0.02, rae_reg="l2").eval()
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        parts = model.loss(x)
        z = model.encode(x)[0]
    by_hand_z = sum(0.5 * sum(float(v) ** 2 for v in row) for row in z) / len(z)
    assert parts.extras["z_penalty"].item() == pytest.approx(by_hand_z, rel=1e-5)
    by_hand_l2 = sum(float((p.detach().double() ** 2).sum()) for p in model.decoder.parameters())
    assert parts.extras["decoder_reg"].item() == pytest.approx(by_hand_l2, rel=1e-5)
    assert parts.total.item() == pytest.approx(
        parts.recon.item() + 0.3 * by_hand_z + 0.02 * by_hand_l2, rel=1e-5)
    assert torch.equal(parts.per_example.mean(), parts.recon)  # reported: reconstruction only


def test_gradient_penalty_is_the_squared_gradient_of_the_summed_decoder_output():
    model = make(rae_reg="gp", rae_reg_weight=1.0).eval()
    z = torch.randn(4, 3)
    by_hand = []
    for row in z:  # full Jacobian of the data-space mean, summed over outputs
        jac = torch.autograd.functional.jacobian(
            lambda v: model.decode_mean(v[None]).reshape(-1), row)  # (64, 3)
        by_hand.append(float(jac.sum(0).square().sum()))
    expected = sum(by_hand) / len(by_hand)
    assert model.gradient_penalty(z).item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():  # measured on a copy when gradients are off (validation, metrics)
        assert model.gradient_penalty(z).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_is_optimised_in_training():
    x = torch.rand(8, 1, 8, 8)
    grads = {}
    for w in (0.0, 10.0):
        model = make(rae_reg="gp", rae_reg_weight=w).train()
        model.loss(x).total.backward()
        grads[w] = torch.cat([p.grad.reshape(-1) for p in model.decoder.parameters()])
    assert not torch.allclose(grads[0.0], grads[10.0])  # the penalty reaches the decoder


@pytest.mark.parametrize("kw, word", [({"rae_reg": "l1"}, "rae_reg"),
                                      ({"rae_z_weight": -1.0}, "rae_z_weight"),
                                      ({"rae_reg_weight": -0.1}, "rae_reg_weight")])
def test_bad_options_name_themselves(kw, word):
    with pytest.raises(ConfigError, match=word):
        make(**kw)


@pytest.mark.parametrize("reg", ["l2", "gp"])
def test_tiny_run_loss_falls_and_codes_stay_bounded(reg):
    data = load_data(DataConfig(dataset="digits"), seed=0)
    model = make(latent_dim=4, hidden=[64], rae_reg=reg)
    trainer = Trainer(model, TrainConfig(epochs=8, batch_size=64, seed=0), torch.device("cpu"))
    state = trainer.fit(data.train.x, None, data.val.x, None)
    losses = [row["train_loss"] for row in state.history]
    assert losses[-1] < 0.8 * losses[0]
    assert all(row["train_decoder_reg"] > 0 for row in state.history)
    # the fitted code Gaussian (the AE's prior_sample) follows the codes
    with torch.no_grad():
        z = model.eval().encode(torch.as_tensor(data.train.x))[0]
    assert torch.allclose(model.code_mean, z.mean(0), atol=0.2 * float(z.std(0).max()))
