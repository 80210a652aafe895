"""The model family: shared surface, objectives, and the behaviours each family promises."""

import math

import numpy as np
import pytest
import torch

from vaelab.data import DataConfig, load_data
from vaelab.modelio import load_model, save_model
from vaelab.models import MODELS, ModelConfig, ModelSpec, build_model
from vaelab.models.iwae import log_weights
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

FAMILIES = ["ae", "dae", "vae", "iwae", "cvae", "guided-vae"]


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"), seed=0)


def make(name, arch="mlp", shape=(1, 8, 8), **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(model=name, latent_dim=3, hidden=[32], arch=arch, **kw)
    return build_model(cfg, ModelSpec(shape, "bernoulli", num_classes=10))


def test_every_family_is_registered():
    assert set(FAMILIES) <= set(MODELS)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("name", FAMILIES)
def test_shapes_gradients_and_round_trip(name, arch, tmp_path):
    model = make(name, arch)
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, -1, 5])
    code, logvar = model.encode(x, y)
    assert code.shape == (6, 3)
    assert (logvar is None) == (not model.variational)
    assert model.decode(code, y).shape == (6, 1, 8, 8)
    assert model.sample(4, y[:4]).shape == (4, 1, 8, 8)
    parts = model.loss(x, y)
    assert parts.per_example.shape == (6,)
    parts.total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    assert again.config == model.config and type(again) is type(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_falls_on_digits(name, digits):
    model = build_model(ModelConfig(model=name, latent_dim=2, hidden=[64]),
                        ModelSpec(digits.example_shape, "bernoulli", digits.num_classes))
    torch.manual_seed(0)
    state = Trainer(model, TrainConfig(epochs=4, batch_size=64, lr=3e-3, progress=False),
                    torch.device("cpu")).fit(digits.train.x, digits.train.y)
    assert state.history[-1]["train_loss"] < 0.9 * state.history[0]["train_loss"]


def test_iwae_bound_is_above_elbo_and_rises_with_k(digits):
    torch.manual_seed(0)
    model = make("vae", shape=digits.example_shape).eval()
    x = torch.as_tensor(digits.test.x[:64])
    torch.manual_seed(1)
    bounds = {}
    with torch.no_grad():
        for k in (1, 5, 50):
            vals = [torch.logsumexp(log_weights(model, x, k)[0], 0) - math.log(k)
                    for _ in range(20)]
            bounds[k] = float(torch.stack(vals).mean())
        elbo = -float(model.loss(x).per_example.mean())
    assert abs(bounds[1] - elbo) < 0.5  # K=1 is the ELBO (up to sampling noise)
    assert bounds[1] < bounds[5] < bounds[50]


def test_free_bits_change_only_the_objective():
    model = make("vae", free_bits=2.0)
    model.train()
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(0)
    parts = model.loss(x)
    # with tiny KL per dimension the clamp lifts the objective above recon + KL
    assert float(parts.total.detach()) > float((parts.recon + parts.kl).detach()) + 1.0
    assert torch.allclose(parts.per_example.mean(), parts.recon + parts.kl, atol=1e-4)


def _fit(name, digits, epochs, **kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, latent_dim=2, hidden=[128, 64], **kw),
                        ModelSpec(digits.example_shape, "bernoulli", digits.num_classes))
    Trainer(model, TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, progress=False),
            torch.device("cpu")).fit(digits.train.x, digits.train.y)
    return model.eval()


@pytest.mark.slow
def test_dae_denoises_better_than_ae(digits):
    models = {}
    for name in ("ae", "dae"):
        torch.manual_seed(0)
        m = build_model(ModelConfig(model=name, latent_dim=16, hidden=[128], noise_factor=0.5),
                        ModelSpec(digits.example_shape, "bernoulli"))
        Trainer(m, TrainConfig(epochs=40, batch_size=64, lr=2e-3, progress=False),
                torch.device("cpu")).fit(digits.train.x, None)
        models[name] = m.eval()
    clean = torch.as_tensor(digits.test.x)
    gen = torch.Generator().manual_seed(3)
    noisy = models["dae"].corrupt(clean, generator=gen)
    err = {n: float((m.reconstruct(noisy) - clean).square().mean()) for n, m in models.items()}
    assert err["dae"] < err["ae"]


@pytest.mark.slow
def test_guided_vae_separates_labels_better_than_vae(digits):
    from sklearn.neighbors import KNeighborsClassifier

    acc = {}
    for name in ("vae", "guided-vae"):
        m = _fit(name, digits, 30)
        with torch.no_grad():
            ztr = m.encode(torch.as_tensor(digits.train.x))[0].numpy()
            zte = m.encode(torch.as_tensor(digits.test.x))[0].numpy()
        knn = KNeighborsClassifier(5).fit(ztr, digits.train.y)
        acc[name] = knn.score(zte, digits.test.y)
    assert acc["guided-vae"] > acc["vae"] + 0.05, acc


@pytest.mark.slow
def test_cvae_generates_the_class_asked_for(digits):
    from sklearn.linear_model import LogisticRegression

    m = _fit("cvae", digits, 40)
    clf = LogisticRegression(max_iter=2000).fit(digits.train.x.reshape(len(digits.train), -1),
                                                digits.train.y)
    y = torch.arange(10).repeat_interleave(30)
    torch.manual_seed(0)
    samples = m.sample(len(y), y).numpy().reshape(len(y), -1)
    hit = float(np.mean(clf.predict(samples) == y.numpy()))
    assert hit > 0.6, hit  # chance is 0.1
