"""Capacity-annealed beta-VAE (an option of vae): the KL target C rises linearly with the
training rows seen over capacity_epochs, the objective is recon + beta |KL - C|, evaluation
uses the final C, and the ramp lives in a buffer (saved, resumed)."""

import pytest
import torch

from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train import fused


def _model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(model="vae", hidden=[8], latent_dim=2, **kw)
    return build_model(cfg, ModelSpec((6,), "bernoulli"))


def test_the_kl_target_rises_linearly_then_stays():
    model = _model(capacity_max=10.0, capacity_epochs=2.0, beta=100.0)
    model.train_rows = 100  # the trainer sets it
    model.train()
    x = (torch.rand(50, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    seen = []
    for _ in range(6):
        parts = model.loss(x)
        seen.append(float(parts.extras["capacity"]))
        # the objective is recon + beta * |KL - C| (the reported KL is the true KL)
        torch.testing.assert_close(parts.total, parts.recon + 100.0 * (parts.kl - seen[-1]).abs())
    assert seen == pytest.approx([2.5, 5.0, 7.5, 10.0, 10.0, 10.0])
    assert int(model.capacity_rows) == 300
    model.eval()  # validation and test use the final target, and count nothing
    assert float(model.loss(x).extras["capacity"]) == 10.0
    assert int(model.capacity_rows) == 300


def test_the_ramp_is_saved_and_the_fused_step_stays_off(tmp_path):
    plain, capped = _model(), _model(capacity_max=5.0)
    assert "capacity_rows" not in plain.state_dict()  # plain VAEs keep their files
    assert fused.supports(plain) and not fused.supports(capped)
    capped.capacity_rows.fill_(1234)
    save_model(capped, tmp_path)
    assert int(load_model(tmp_path).capacity_rows) == 1234
