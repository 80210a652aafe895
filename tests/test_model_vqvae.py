"""vq-vae: nearest-code quantisation, EMA codebook, dead-code restarts, straight-through
gradients, the PixelCNN code prior and its training phase, resume in that phase, code metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vaelab.data import load_data
from vaelab.data.config import DataConfig
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.vqvae import Codebook, code_statistics
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

CPU = torch.device("cpu")


def tiny_config(**kw) -> ModelConfig:
    base = dict(model="vq-vae", arch="conv", latent_dim=4, conv_channels=[16, 16], hidden=[32],
                codebook_size=16, prior_epochs=2, prior_channels=16, prior_layers=2,
                dead_code_steps=5)
    base.update(kw)
    return ModelConfig(**base)


def conv_model(**kw):
    torch.manual_seed(0)
    return build_model(tiny_config(**kw), ModelSpec((1, 8, 8), "bernoulli"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small convolutions run fastest (and steadiest on a shared machine) on one thread."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"), seed=0, batch_size=64)


def test_the_code_is_the_nearest_codebook_row():
    cb = Codebook(3, 2, decay=0.9, restart_steps=0)
    cb.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    # squared distances by hand: [.17 .37 3.77], [.36 .16 4.36], [1.45 2.25 .65]
    flat = torch.tensor([[0.4, 0.1], [0.6, 0.0], [0.1, 1.2]])
    assert cb.nearest(flat).tolist() == [0, 1, 2]
    # through the model: decode(z) quantises every position to its nearest row
    model = conv_model()
    model.eval()
    z, _ = model.encode(torch.rand(5, 1, 8, 8))
    rows = z.reshape(-1, model.code_dim)
    brute = torch.stack([((r - model.codebook.embed) ** 2).sum(1).argmin() for r in rows])
    idx, zq = model.quantise(model.to_grid(z))
    assert torch.equal(idx.reshape(-1), brute)
    assert torch.equal(model.to_flat(zq).reshape(-1, model.code_dim), model.codebook.embed[brute])
    assert torch.allclose(model.decode(z), model.decode_grid(zq))


def test_ema_update_equals_the_formula_on_a_hand_computed_case():
    cb = Codebook(2, 1, decay=0.5, restart_steps=0, eps=1e-5)
    cb.embed.copy_(torch.tensor([[0.0], [10.0]]))
    cb.ema_sum.copy_(cb.embed)
    flat = torch.tensor([[1.0], [2.0], [9.0]])
    idx = cb.nearest(flat)
    assert idx.tolist() == [0, 0, 1]
    cb.ema_update(flat, idx)
    # N = .5 * [1, 1] + .5 * [2, 1] = [1.5, 1];  m = .5 * [0, 10] + .5 * [3, 9] = [1.5, 9.5]
    n = torch.tensor([1.5, 1.0])
    m = torch.tensor([1.5, 9.5])
    smoothed = (n + 1e-5) / (2.5 + 2e-5) * 2.5
    assert torch.allclose(cb.ema_count, n)
    assert torch.allclose(cb.ema_sum[:, 0], m)
    assert torch.allclose(cb.embed[:, 0], m / smoothed)
    assert abs(float(cb.embed[0, 0]) - 1.0) < 1e-4 and abs(float(cb.embed[1, 0]) - 9.5) < 1e-4
    assert cb.unused.tolist() == [0, 0]


def test_a_dead_code_is_restarted_from_encoder_outputs():
    torch.manual_seed(0)
    cb = Codebook(3, 2, decay=0.9, restart_steps=2)
    first = torch.randn(10, 2)
    cb.restart_dead(first)  # fresh codes start dead: all initialised from encoder outputs
    assert all((first == row).all(1).any() for row in cb.embed)
    cb.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0]]))
    cb.ema_sum.copy_(cb.embed)
    flat = torch.tensor([[0.1, 0.0], [0.9, 0.1], [0.0, 0.2]])  # never near code 2
    for _ in range(2):
        cb.restart_dead(flat)
        cb.ema_update(flat, cb.nearest(flat))
    assert cb.unused.tolist() == [0, 0, 2]
    kept = cb.embed[:2].clone()
    cb.restart_dead(flat)
    assert (flat == cb.embed[2]).all(1).any(), "code 2 jumps to an encoder output"
    assert torch.equal(cb.embed[:2], kept)
    assert cb.unused.tolist() == [0, 0, 0] and float(cb.ema_count[2]) == 1.0


def test_the_straight_through_gradient_reaches_the_encoder():
    model = conv_model(commitment=0.0)  # only the reconstruction term, through z_q
    model.train()
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()
    model.loss(x).total.backward()
    enc = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in enc) and sum(float(g.abs().sum()) for g in enc) > 0
    assert not model.codebook.embed.requires_grad
    assert all(p.grad is None for p in model.prior.parameters())


def test_the_codebook_moves_only_in_training_steps():
    model = conv_model()
    x = torch.rand(6, 1, 8, 8)
    model.eval()
    before = model.codebook.embed.clone()
    model.loss(x)
    model.train()
    with torch.no_grad():
        model.loss(x)
    assert torch.equal(model.codebook.embed, before)
    model.loss(x)
    assert not torch.equal(model.codebook.embed, before)


def test_the_pixelcnn_prior_is_causal_in_raster_order():
    torch.manual_seed(0)
    net = GatedPixelCNN(5, channels=8, layers=3)
    codes = torch.randint(0, 5, (1, 4, 5))
    base = net(codes)
    for p in range(20):
        i, j = divmod(p, 5)
        later = codes.clone()
        later.view(-1)[p:] = (later.view(-1)[p:] + 1) % 5  # change (i, j) and everything after
        assert torch.allclose(net(later)[0, :, i, j], base[0, :, i, j], atol=1e-6), (i, j)
    left, above = codes.clone(), codes.clone()
    left[0, 2, 1] = (left[0, 2, 1] + 1) % 5
    above[0, 1, 4] = (above[0, 1, 4] + 1) % 5  # the row above, further right
    assert not torch.allclose(net(left)[0, :, 2, 2], base[0, :, 2, 2])
    assert not torch.allclose(net(above)[0, :, 2, 2], base[0, :, 2, 2])


def test_code_usage_and_perplexity_on_a_known_assignment():
    s = code_statistics(torch.tensor([[0, 0], [1, 1]]), 4)
    assert s["codebook_usage"] == 0.5 and math.isclose(s["codebook_perplexity"], 2.0)
    s = code_statistics(np.array([0, 0, 0, 1]), 8)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert s["codebook_usage"] == 0.25 and math.isclose(s["codebook_perplexity"], math.exp(h))
    model = conv_model()
    x = torch.rand(7, 1, 8, 8)
    m = model.code_metrics(x.numpy(), batch_size=3)
    ref = code_statistics(model.code_indices(x), model.codebook.size)
    assert m["codebook_usage"] == ref["codebook_usage"]
    assert math.isclose(m["codebook_perplexity"], ref["codebook_perplexity"])
    assert m["code_positions"] == 4  # 8x8 -> 4x4 -> 2x2


@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 7, 5), (1, 3, 3)])
def test_conv_code_grids_round_trip_any_image_size(shape):
    torch.manual_seed(0)
    model = build_model(tiny_config(), ModelSpec(shape, "gaussian"))
    x = torch.randn(3, *shape)
    z, _ = model.encode(x)
    h, w = model.grid
    assert z.shape == (3, h * w * 4) and model.decode(z).shape == (3, *shape)
    assert model.sample(2).shape == (2, *shape)


def test_mlp_arch_uses_a_sequence_of_codes():
    torch.manual_seed(0)
    model = build_model(tiny_config(arch="mlp", code_positions=3), ModelSpec((10,), "gaussian"))
    x = torch.randn(5, 10)
    z, lv = model.encode(x)
    assert lv is None and z.shape == (5, 12) and model.latent_dim == 12
    assert model.decode(z).shape == (5, 10)
    model.train()
    model.loss(x).total.backward()
    assert model.prior_sample(4).shape == (4, 12)
    assert model.sample_codes(4).shape == (4, 1, 3)


def fit(model, data, epochs, **kw):
    # a checkpoint after every epoch: the resume test crashes at a chosen one
    cfg = TrainConfig(epochs=epochs, batch_size=64, progress=False, seed=0, checkpoint_every=0)
    tr = Trainer(model, cfg, CPU, **kw)
    d = data
    return tr, lambda **f: tr.fit(d.train.x, d.train.y, d.val.x, d.val.y, **f)


@pytest.mark.slow
def test_training_reduces_reconstruction_then_the_prior_loss_falls_and_samples_vary(digits):
    torch.manual_seed(0)
    model = build_model(tiny_config(prior_epochs=4), ModelSpec((1, 8, 8), "bernoulli"))
    tr, go = fit(model, digits, 5)
    assert [p.name for p in tr.phases] == ["vq-vae", "prior"]
    state = go()
    h = state.history
    assert [r["phase"] for r in h] == ["vq-vae"] * 5 + ["prior"] * 4
    assert h[4]["val_recon"] < h[0]["val_recon"] - 3
    assert h[-1]["val_loss"] < h[5]["val_loss"]  # the prior's -log p(codes)
    assert h[-1]["train_kl"] == h[-1]["train_loss"]
    # the VQ-VAE is frozen in the prior phase: its reconstruction term does not move
    assert h[5]["val_recon"] == pytest.approx(h[-1]["val_recon"], rel=1e-6)
    assert state.best_epoch > 5  # the best of the last phase
    model.eval()
    gen = torch.Generator().manual_seed(3)
    imgs = model.sample(6, generator=gen)
    codes = model.sample_codes(6, torch.Generator().manual_seed(3))
    assert torch.allclose(imgs, model.decode_mean(model.to_flat(model.embed_codes(codes))))
    assert len({tuple(c.reshape(-1).tolist()) for c in codes}) > 1
    assert (imgs[0] - imgs[1:]).abs().amax() > 0.05
    assert model.code_metrics(digits.test.x)["codebook_usage"] > 0.3


@pytest.mark.slow
def test_resume_in_the_prior_phase_continues_there_exactly(digits, tmp_path):
    def make():
        torch.manual_seed(0)
        return build_model(tiny_config(prior_epochs=2), ModelSpec((1, 8, 8), "bernoulli"))

    def crash(trainer, epoch, row):
        if epoch == 3:  # the second prior epoch: its checkpoint is never written
            raise RuntimeError("crash")

    torch.manual_seed(0)
    _, go = fit(make(), digits, 2, checkpoint_dir=tmp_path / "ck", callbacks=[crash])
    with pytest.raises(RuntimeError):
        go()
    from vaelab.train.checkpoint import checkpoint_phase, latest_checkpoint

    ck = latest_checkpoint(tmp_path / "ck")
    assert checkpoint_phase(ck) == (1, 2) and ck.name == "epoch-0003"
    torch.manual_seed(123)  # the checkpoint restores every RNG
    resumed_model = make()
    tr, go = fit(resumed_model, digits, 2)
    state = go(resume_from=ck)
    assert tr.phase_index == 1 and [r["epoch"] for r in state.history] == [1, 2, 3, 4]
    torch.manual_seed(0)
    ref_model = make()
    _, go_ref = fit(ref_model, digits, 2)
    ref = go_ref()
    assert state.history[-1]["val_loss"] == pytest.approx(ref.history[-1]["val_loss"], rel=1e-6)
    for (k, a), b in zip(resumed_model.state_dict().items(), ref_model.state_dict().values(),
                         strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


@pytest.mark.slow
def test_a_run_round_trips_and_samples(tmp_path):
    import vaelab
    from vaelab.run import Run

    run = vaelab.train(dataset="digits", model="vq-vae", arch="conv", latent_dim=4,
                       codebook_size=16, conv_channels=[16, 16], epochs=2, prior_epochs=1,
                       prior_channels=8, prior_layers=2, batch_size=64, eval_k=0,
                       progress=False, report=False, log=None, out=str(tmp_path / "run"))
    again = Run.load(run.path)
    assert again.config.model.codebook_size == 16 and again.model.codebook.size == 16
    a, b = run.sample(5, seed=1), again.sample(5, seed=1)
    assert a.shape == (5, 1, 8, 8) and np.allclose(a, b, atol=1e-6)
    assert np.abs(a[0] - a[1:]).max() > 0.01
    x = run.data.test.x[:4]
    assert np.allclose(run.reconstruct(x), again.reconstruct(x), atol=1e-6)
    assert [r["phase"] for r in again.history] == ["vq-vae", "vq-vae", "prior"]
    t = json.loads((run.path / "metrics.json").read_text())["test"]  # the family's own numbers
    assert t == again.metrics["test"]
    want = run.model.code_metrics(run.data.test.x)
    assert {k: t[k] for k in want} == pytest.approx(want)
    assert 0 < t["codebook_usage"] <= 1 and 1 <= t["codebook_perplexity"] <= 16
    assert t["code_positions"] == 4 and t["code_bits"] == pytest.approx(4 * 4.0)
