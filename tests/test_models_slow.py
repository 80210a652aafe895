"""What each family is for, measured on Digits, and one end-to-end run per family (slow)."""

import json

import numpy as np
import pytest
import torch

import vaelab
from vaelab.data import DataConfig, load_data
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer

pytestmark = pytest.mark.slow

FAMILIES = ["ae", "dae", "vae", "iwae", "cvae", "guided-vae"]


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(dataset="digits"), seed=0)


def fit(name, digits, epochs, labels=True, y=None, **kw):
    torch.manual_seed(0)
    kw.setdefault("hidden", [128, 64])
    kw.setdefault("latent_dim", 2)
    model = build_model(ModelConfig(model=name, **kw),
                        ModelSpec(digits.example_shape, "bernoulli", digits.num_classes))
    Trainer(model, TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, progress=False),
            torch.device("cpu")).fit(digits.train.x,
                                     (digits.train.y if y is None else y) if labels else None)
    return model.eval()


def test_dae_denoises_better_than_ae(digits):
    models = {n: fit(n, digits, 15, labels=False, latent_dim=16, hidden=[128], noise_factor=0.5)
              for n in ("ae", "dae")}
    clean = torch.as_tensor(digits.test.x)
    noisy = models["dae"].corrupt(clean, generator=torch.Generator().manual_seed(3))
    err = {n: float((m.reconstruct(noisy) - clean).square().mean()) for n, m in models.items()}
    clean_err = {n: float((m.reconstruct(clean) - clean).square().mean())
                 for n, m in models.items()}
    assert err["dae"] < 0.9 * err["ae"], err
    assert err["dae"] < float((noisy - clean).square().mean())  # it really removes noise
    assert clean_err["ae"] < err["ae"]  # the noise does hurt the plain AE


def test_guided_vae_separates_labels_better_than_vae(digits):
    from sklearn.neighbors import KNeighborsClassifier

    acc = {}
    for name in ("vae", "guided-vae"):
        m = fit(name, digits, 15)
        with torch.no_grad():  # encode without labels, as evaluation code does for latents
            ztr = m.encode(torch.as_tensor(digits.train.x))[0].numpy()
            zte = m.encode(torch.as_tensor(digits.test.x))[0].numpy()
        knn = KNeighborsClassifier(5).fit(ztr, digits.train.y)
        acc[name] = knn.score(zte, digits.test.y)
    assert acc["guided-vae"] > acc["vae"] + 0.1, acc


def test_guided_vae_learns_from_partial_labels(digits):
    from sklearn.neighbors import KNeighborsClassifier

    y = digits.train.y.copy()
    y[np.random.default_rng(0).random(len(y)) < 0.8] = -1  # 80 % unlabelled
    m = fit("guided-vae", digits, 15, y=y)
    with torch.no_grad():
        ztr = m.encode(torch.as_tensor(digits.train.x))[0].numpy()
        zte = m.encode(torch.as_tensor(digits.test.x))[0].numpy()
    knn = KNeighborsClassifier(5).fit(ztr, digits.train.y)
    assert knn.score(zte, digits.test.y) > 0.6


def test_cvae_generates_the_class_asked_for(digits):
    from sklearn.linear_model import LogisticRegression

    m = fit("cvae", digits, 20)
    clf = LogisticRegression(max_iter=2000).fit(digits.train.x.reshape(len(digits.train), -1),
                                                digits.train.y)
    y = torch.arange(10).repeat_interleave(30)
    samples = m.sample(len(y), y, generator=torch.Generator().manual_seed(0))
    hit = float(np.mean(clf.predict(samples.numpy().reshape(len(y), -1)) == y.numpy()))
    assert hit > 0.6, hit  # chance is 0.1


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("name", FAMILIES)
def test_end_to_end_run(name, arch, tmp_path):
    run = vaelab.train(model=name, arch=arch, dataset="digits", subset=400, epochs=2,
                       hidden=[32], conv_channels=[4, 8], latent_dim=2, batch_size=64, eval_k=5,
                       progress=False, log=None, out=str(tmp_path / "run"))
    test = json.loads((run.path / "metrics.json").read_text())["test"]
    history = run.history
    assert len(history) == 2 and np.isfinite(history[-1]["val_loss"])
    if run.model.variational:
        assert np.isfinite(test["neg_elbo"]) and test["kl"] >= 0
    else:
        assert np.isfinite(test["recon_nll"]) and "kl" not in test
    figures = json.loads((run.path / "figures" / "index.json").read_text())
    assert {"samples.png", "reconstructions.png", "latent_scatter.png"} <= set(figures)
    assert ("denoising.png" in figures) == (name == "dae")
    assert (run.path / "report.html").stat().st_size > 10_000
    again = vaelab.Run.load(run.path)
    assert again.sample(3, seed=1).shape == (3, 1, 8, 8)
