"""The model family: shared surface, objectives, networks, and each family's own promises.

Fast tests only; the behavioural comparisons and end-to-end runs are in test_models_slow.py.
"""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaelab.data import DataConfig, load_data
from vaelab.errors import ConfigError
from vaelab.modelio import load_model, save_model
from vaelab.models import MODELS, ModelConfig, ModelSpec, build_model
from vaelab.models.iwae import log_weights
from vaelab.nets import build_decoder, build_encoder
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

FAMILIES = ["ae", "dae", "vae", "iwae", "cvae", "guided-vae"]
VARIATIONAL = ["vae", "iwae", "cvae", "guided-vae"]


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"), seed=0)


def make(name, arch="mlp", shape=(1, 8, 8), likelihood="bernoulli", **kw):
    torch.manual_seed(0)
    kw.setdefault("hidden", [32])
    kw.setdefault("latent_dim", 3)
    cfg = ModelConfig(model=name, arch=arch, conv_channels=[4, 8], **kw)
    return build_model(cfg, ModelSpec(shape, likelihood, num_classes=10))


def test_every_family_is_registered():
    assert set(FAMILIES) <= set(MODELS)
    assert {n for n in FAMILIES if MODELS[n].uses_labels} == {"cvae", "guided-vae"}
    assert {n for n in FAMILIES if not MODELS[n].variational} == {"ae", "dae"}


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("name", FAMILIES)
def test_shapes_gradients_and_round_trip(name, arch, tmp_path):
    model = make(name, arch, batch_norm=arch == "conv")
    model.train()
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, -1, 5])
    code, logvar = model.encode(x, y)
    assert code.shape == (6, 3)
    assert (logvar is None) == (not model.variational)
    assert model.decode(code, y).shape == (6, 1, 8, 8)
    parts = model.loss(x, y)
    assert parts.per_example.shape == (6,)
    assert parts.total.shape == parts.recon.shape == parts.kl.shape == ()
    parts.total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing
    model.eval()
    assert model.sample(4, y[:4]).shape == (4, 1, 8, 8)
    assert model.reconstruct(x, y).shape == (6, 1, 8, 8)
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    assert again.config == model.config and type(again) is type(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x, y), again.reconstruct(x, y))


def test_tabular_data_and_learned_variance():
    for name in FAMILIES:
        model = make(name, shape=(4,), likelihood="gaussian-learned", latent_dim=2)
        x, y = torch.randn(5, 4), torch.tensor([0, 1, -1, 2, 3])
        assert model.decode(model.encode(x, y)[0], y).shape == (5, 8)  # mean and log-variance
        assert model.reconstruct(x, y).shape == (5, 4)
        assert torch.isfinite(model.loss(x, y).total)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (2, 7, 5), (1, 3, 3),
                                   (3, 1, 9)])
def test_conv_nets_fit_any_image_shape(shape):
    cfg = ModelConfig(arch="conv", conv_channels=[4, 8, 16], hidden=[16], latent_dim=2)
    enc = build_encoder(cfg, shape, 4, cond_dim=3)
    dec = build_decoder(cfg, shape, 2, cond_dim=3)
    x, cond = torch.rand(2, *shape), torch.zeros(2, 3)
    assert enc(x, cond).shape == (2, 4)
    assert dec(torch.zeros(2, 2), cond).shape == (2, 2 * shape[0], *shape[1:])


def test_conv_refuses_tabular_data():
    with pytest.raises(ConfigError, match="arch 'conv' needs image data"):
        make("vae", arch="conv", shape=(4,))


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_falls_on_digits(name, digits):
    model = build_model(ModelConfig(model=name, latent_dim=2, hidden=[64]),
                        ModelSpec(digits.example_shape, "bernoulli", digits.num_classes))
    torch.manual_seed(0)
    state = Trainer(model, TrainConfig(epochs=4, batch_size=64, lr=3e-3, progress=False),
                    torch.device("cpu")).fit(digits.train.x[:600], digits.train.y[:600])
    assert state.history[-1]["train_loss"] < 0.9 * state.history[0]["train_loss"]


@pytest.mark.parametrize("name", VARIATIONAL)
def test_reported_kl_matches_closed_form(name):
    model = make(name).eval()
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 10
    torch.manual_seed(1)
    with torch.no_grad():
        parts = model.loss(x, y)
        mu, logvar = model.encode(x, y)
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expect = kl_divergence(q, p).sum(1)
    closed = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
    assert torch.allclose(expect, closed, atol=1e-5)
    assert abs(float(parts.kl) - float(expect.mean())) < 1e-5
    # per_example = recon + KL for every example (the negative ELBO)
    assert torch.allclose(parts.per_example.mean(), parts.recon + parts.kl, atol=1e-4)


def test_kl_closed_form_agrees_with_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[0.7, -1.2, 0.0]]), torch.tensor([[-1.0, 0.5, 0.0]])
    q = Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    closed = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum()
    assert abs(float(mc) - float(closed)) < 0.02


def test_beta_and_warmup_scale_only_the_objective():
    x = torch.rand(8, 1, 8, 8)
    out = {}
    for beta, scale in [(1.0, 1.0), (4.0, 1.0), (4.0, 0.25)]:
        model = make("vae", beta=beta)
        model.kl_scale = scale
        torch.manual_seed(0)
        out[(beta, scale)] = model.loss(x)
    base = out[(1.0, 1.0)]
    for (beta, scale), parts in out.items():
        assert torch.allclose(parts.kl, base.kl) and torch.allclose(parts.recon, base.recon)
        assert torch.allclose(parts.total, parts.recon + beta * scale * parts.kl, atol=1e-5)


def test_free_bits_change_only_the_objective():
    model = make("vae", free_bits=2.0)
    model.train()
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(0)
    parts = model.loss(x)
    # with tiny KL per dimension the clamp lifts the objective above recon + KL
    assert float(parts.total.detach()) > float((parts.recon + parts.kl).detach()) + 1.0
    assert torch.allclose(parts.per_example.mean(), parts.recon + parts.kl, atol=1e-4)


def test_iwae_bound_is_above_elbo_and_rises_with_k(digits):
    model = make("vae", shape=digits.example_shape).eval()
    x = torch.as_tensor(digits.test.x[:64])
    torch.manual_seed(1)
    bounds = {}
    with torch.no_grad():
        for k in (1, 5, 50):
            vals = [torch.logsumexp(log_weights(model, x, k)[0], 0) - math.log(k)
                    for _ in range(20)]
            bounds[k] = float(torch.stack(vals).mean())
        elbo = -float(torch.stack([model.loss(x).per_example.mean() for _ in range(20)]).mean())
    assert abs(bounds[1] - elbo) < 0.5  # K=1 is the ELBO (up to sampling noise)
    assert elbo < bounds[5] < bounds[50]


def test_iwae_model_logs_its_bound_beside_the_single_sample_elbo():
    model = make("iwae", iwae_k=20).eval()
    x = torch.rand(32, 1, 8, 8)
    torch.manual_seed(0)
    runs = [model.loss(x) for _ in range(10)]
    neg_elbo = torch.stack([p.per_example.mean() for p in runs]).mean()
    iwae_nll = torch.stack([p.extras["iwae_nll"] for p in runs]).mean()
    assert iwae_nll.detach().item() < neg_elbo.detach().item()  # the K-sample bound is tighter
    assert all(torch.equal(p.total, p.extras["iwae_nll"]) for p in runs)  # and is optimised


# -- autoencoders ---------------------------------------------------------------------------
def test_ae_has_no_kl_and_samples_from_its_fitted_code_gaussian():
    model = make("ae", latent_dim=2)
    model.train()
    x = torch.rand(64, 1, 8, 8)
    for _ in range(200):
        parts = model.loss(x)
    assert float(parts.kl) == 0.0 and torch.equal(parts.total, parts.recon)
    z = model.encode(x)[0].detach()
    assert torch.allclose(model.code_mean, z.mean(0), atol=1e-3)
    assert torch.allclose(model.code_var, z.var(0), rtol=1e-2)
    codes = model.eval().prior_sample(20_000, torch.Generator().manual_seed(0))
    assert torch.allclose(codes.mean(0), z.mean(0), atol=0.05 * float(z.std(0).max()) + 1e-3)


def test_dae_gaussian_noise_is_clipped_to_the_training_range():
    model = make("dae", noise_factor=0.8)
    x = 0.2 + 0.6 * torch.rand(256, 1, 8, 8)  # training data in [0.2, 0.8]
    model.train()
    model.loss(x)
    assert float(model.data_lo) == float(x.min()) and float(model.data_hi) == float(x.max())
    noisy = model.corrupt(torch.full((4, 1, 8, 8), 0.5), torch.Generator().manual_seed(0))
    assert float(noisy.min()) == float(x.min()) and float(noisy.max()) == float(x.max())
    gen = [torch.Generator().manual_seed(3) for _ in range(2)]
    assert torch.equal(model.corrupt(x, gen[0]), model.corrupt(x, gen[1]))
    unclipped = make("dae", noise_factor=0.8, noise_clip=False).corrupt(x)
    assert float(unclipped.max()) > 1.0


def test_dae_mask_noise_drops_the_asked_share():
    model = make("dae", noise="mask", noise_factor=0.3)
    x = torch.ones(200, 1, 8, 8)
    dropped = 1 - float(model.corrupt(x, torch.Generator().manual_seed(0)).mean())
    assert abs(dropped - 0.3) < 0.02
    with pytest.raises(ConfigError, match="noise_factor"):
        make("dae", noise="mask", noise_factor=1.0)


def test_dae_corrupts_in_training_only():
    model = make("dae", noise_factor=0.5)
    x = torch.rand(16, 1, 8, 8)
    model.eval()
    clean = model.loss(x).per_example
    assert torch.equal(clean, model.loss(x).per_example)  # no noise: deterministic
    model.train()
    assert not torch.equal(clean, model.loss(x).per_example)
    ae = make("ae")  # same seed, same weights: the clean evaluation loss agrees with the AE's
    ae.load_state_dict({k: v for k, v in model.state_dict().items()
                        if not k.startswith("data_")})
    assert torch.allclose(ae.eval().loss(x).per_example, clean)


# -- label models -----------------------------------------------------------------------------
def test_cvae_conditions_on_one_hot_labels_and_unknown_is_zero():
    model = make("cvae").eval()
    cond = model.condition(torch.tensor([2, -1, 0]))
    assert torch.equal(cond[0], torch.eye(10)[2]) and not cond[1].any()
    assert torch.equal(cond[2], torch.eye(10)[0])
    z = torch.randn(3, 3)
    assert not torch.allclose(model.decode(z, torch.tensor([1, 1, 1])),
                              model.decode(z, torch.tensor([7, 7, 7])))
    assert torch.equal(model.decode(z), model.decode(z, torch.tensor([-1, -1, -1])))
    gen = [torch.Generator().manual_seed(0) for _ in range(2)]
    assert torch.equal(model.sample(3, 4, generator=gen[0]),
                       model.sample(3, torch.tensor([4, 4, 4]), generator=gen[1]))
    with pytest.raises(ValueError, match="label 10"):
        model.encode(torch.rand(2, 1, 8, 8), torch.tensor([0, 10]))


def test_cvae_cond_dropout_trains_the_unknown_condition():
    x, y = torch.rand(400, 1, 8, 8), torch.arange(400) % 10
    model = make("cvae", cond_dropout=0.5).train()
    torch.manual_seed(0)
    model.loss(x, y).total.backward()
    first = model.encoder.body[0].weight.grad[:, -10:]  # the condition's input weights
    assert first.any()
    no_drop = make("cvae", cond_dropout=0.0).eval()
    # evaluation never drops: the per-example bound is that of the given labels
    torch.manual_seed(0)
    a = no_drop.loss(x[:8], y[:8]).per_example
    model.load_state_dict(no_drop.state_dict())
    model.eval()
    torch.manual_seed(0)
    assert torch.equal(a, model.loss(x[:8], y[:8]).per_example)


def test_guided_vae_encodes_without_labels_and_ignores_unlabelled_rows():
    model = make("guided-vae", guide_weight=2.0).eval()
    x = torch.rand(8, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, -1, -1, -1, -1])
    assert torch.equal(model.encode(x)[0], model.encode(x, y)[0])

    def loss(labels):
        torch.manual_seed(0)
        return model.loss(x, labels)

    base = loss(y)
    other = y.clone()
    other[4:] = torch.tensor([5, 6, 7, 8])
    assert torch.equal(loss(torch.cat([y[:4], -torch.ones(4, dtype=torch.long)])).total,
                       base.total)
    assert not torch.equal(loss(other).extras["label_loss"], base.extras["label_loss"])
    none = loss(torch.full((8,), -1))
    assert none.extras["label_loss"].detach().item() == 0.0
    assert torch.allclose(base.total, base.recon + base.kl + 2.0 * base.extras["label_loss"],
                           atol=1e-5)
    assert torch.equal(loss(None).total, none.total)  # no labels at all: the plain ELBO


def test_label_models_need_labelled_data():
    for name in ("cvae", "guided-vae"):
        with pytest.raises(ConfigError, match="needs labels"):
            build_model(ModelConfig(model=name), ModelSpec((4,), "gaussian"))
