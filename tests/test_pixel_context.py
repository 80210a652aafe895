"""The local autoregressive pixel context (``pixel_context``): each pixel reads only earlier
pixels in its window, the likelihood stays normalised, K samples share one context, the
displayed mean is the chain's mean, and on images with local structure it buys nats."""

import itertools
import math

import numpy as np
import pytest
import torch

import vaelab
from vaelab.errors import ConfigError
from vaelab.likelihoods import Bernoulli, Gaussian
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.base import log_px_k
from vaelab.nets.pixel_context import PixelContextLikelihood, with_pixel_context


def random_context(base, shape, radius, seed=0) -> PixelContextLikelihood:
    lik = with_pixel_context(base, shape, radius)
    assert isinstance(lik, PixelContextLikelihood)
    with torch.no_grad():
        lik.weight.normal_(generator=torch.Generator().manual_seed(seed))
    return lik


def earlier(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Is (channel, row, col) b before a in raster order, channels in order within a pixel?"""
    (ca, ia, ja), (cb, ib, jb) = a, b
    return (ib, jb, cb) < (ia, ja, ca)


@pytest.mark.parametrize("shape,radius", [((1, 5, 6), 2), ((3, 4, 5), 1)])
def test_each_pixel_reads_exactly_the_earlier_pixels_of_its_window(shape, radius):
    lik = random_context(Bernoulli(), shape, radius)
    x = torch.rand(1, *shape, dtype=torch.float64)
    lik = lik.double()
    jac = torch.autograd.functional.jacobian(lambda v: lik.context(v)[0], x)[:, :, :, 0]
    c, h, w = shape
    for a in itertools.product(range(c), range(h), range(w)):
        for b in itertools.product(range(c), range(h), range(w)):
            in_window = a[1] - radius <= b[1] <= a[1] and abs(a[2] - b[2]) <= radius
            reads = bool(jac[a][b] != 0)
            assert reads == (in_window and earlier(a, b)), (a, b)


@pytest.mark.parametrize("shape,radius", [((1, 2, 2), 1), ((3, 1, 2), 1), ((1, 3, 2), 2)])
def test_bernoulli_with_context_sums_to_one_over_all_binary_images(shape, radius):
    """Each factor is a normalised Bernoulli given the earlier pixels, so p(x | params) over all
    2^D binary images adds up to 1 (a factor reading later pixels would break this)."""
    lik = random_context(Bernoulli(), shape, radius, seed=1)
    d = math.prod(shape)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d))).reshape(-1, *shape)
    params = torch.randn(1, *shape).expand(len(images), *shape)
    with torch.no_grad():
        total = lik.log_prob(images, params).double().exp().sum()
    assert abs(float(total) - 1.0) < 1e-5
    # the context changes the distribution: not the factorised one
    with torch.no_grad():
        plain = Bernoulli().log_prob(images, params)
        assert not torch.allclose(plain, lik.log_prob(images, params), atol=1e-3)


@pytest.mark.parametrize(("shape", "radius"), [((2, 4, 3), 1), ((3, 5, 7), 2), ((1, 6, 4), 3)])
def test_gaussian_fill_is_the_exact_mean_of_the_linear_chain(shape, radius):
    """For a Gaussian the chain x = mu + A x + noise (A strictly lower triangular in raster
    order) has mean (I - A)^-1 mu; the fill, which takes a wavefront of pixels at a time, must
    give it (a pixel filled before one it reads would not)."""
    lik = random_context(Gaussian(0.5), shape, radius, seed=2).double()
    with torch.no_grad():
        lik.weight.mul_(0.3)
    d = math.prod(shape)
    # A from the (linear) context's Jacobian, in the C-order flattening of (C, H, W)
    a = torch.autograd.functional.jacobian(lambda v: lik.context(v).reshape(-1),
                                           torch.zeros(1, *shape, dtype=torch.float64))
    a = a.reshape(d, d)
    mu = torch.randn(3, *shape, dtype=torch.float64)
    want = torch.linalg.solve(torch.eye(d, dtype=torch.float64) - a, mu.reshape(3, d).T).T
    got = lik.mean(mu).reshape(3, d)
    torch.testing.assert_close(got, want)
    # and samples of the chain scatter around it: x = (I - A)^-1 (mu + sigma eps) has
    # covariance sigma^2 (I - A)^-1 (I - A)^-T; every pixel's mean of 4000 draws within 5
    # standard errors
    draws = lik.sample(mu[:1].expand(4000, *shape), torch.Generator().manual_seed(0))
    inv = torch.linalg.inv(torch.eye(d, dtype=torch.float64) - a)
    se = (0.5**2 * (inv @ inv.T).diagonal() / 4000).sqrt()
    assert ((draws.mean(0).reshape(d) - want[0]).abs() < 5 * se).all()


def test_k_samples_share_one_context_in_the_importance_weights():
    shape = (1, 4, 4)
    lik = random_context(Bernoulli(), shape, 2, seed=3)
    x = (torch.rand(5, *shape) > 0.5).float()
    params = torch.randn(3, 5, *shape)
    with torch.no_grad():
        got = log_px_k(lik, x, params)
        want = torch.stack([lik.log_prob(x, p) for p in params])
    torch.testing.assert_close(got, want)


def test_model_weights_include_the_context_and_round_trip(tmp_path):
    from vaelab.modelio import load_model, save_model

    torch.manual_seed(0)
    cfg = ModelConfig(model="vamp-iwae", hidden=[16], latent_dim=2, pseudo_inputs=4,
                      pixel_context=1, iwae_k=2)
    model = build_model(cfg, ModelSpec((1, 6, 5), "bernoulli")).eval()
    assert any(n == "likelihood.weight" for n, _ in model.named_parameters())
    assert float(model.pseudo.detach().mean()) == pytest.approx(0.05, abs=0.01)  # Bernoulli's start
    with torch.no_grad():
        model.likelihood.weight.normal_()
    save_model(model, tmp_path)
    back = load_model(tmp_path).eval()
    torch.testing.assert_close(back.likelihood.weight, model.likelihood.weight)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    torch.testing.assert_close(model.sample(3, generator=g1), back.sample(3, generator=g2))


def test_errors_name_the_option_and_what_to_do():
    with pytest.raises(ConfigError, match=r"pixel_context.*vectors of shape \(12,\)"):
        build_model(ModelConfig(pixel_context=1), ModelSpec((12,), "bernoulli"))
    with pytest.raises(ConfigError, match=r"pixel_context.*at least 1"):
        build_model(ModelConfig(pixel_context=-1), ModelSpec((1, 8, 8), "bernoulli"))
    with pytest.raises(ConfigError, match=r"pixel_context.*wider than the 8x8"):
        build_model(ModelConfig(pixel_context=8), ModelSpec((1, 8, 8), "bernoulli"))


def test_a_table_run_and_an_onnx_export_say_why_they_cannot(tmp_path, quick):
    from vaelab.errors import VaelabError
    from vaelab.export import export_onnx

    with pytest.raises(ConfigError, match=r"pixel_context.*not \(channels, height, width\)"):
        vaelab.train(**{**quick, "dataset": "iris", "pixel_context": 1}, log=None)
    assert not (tmp_path / "run" / "model.safetensors").exists()
    run = vaelab.train(**{**quick, "epochs": 1, "subset": 200, "pixel_context": 1},
                       report=False, log=None)
    assert run.model.likelihood.radius == 1
    with pytest.raises(VaelabError, match=r"run.*pixel by pixel.*--pixel-context 0"):
        export_onnx(tmp_path / "run")


def textured_images(n: int, seed: int) -> np.ndarray:
    """8x8 grey images of horizontal runs: each row starts at random and repeats its left
    neighbour 90% of the time, so a pixel is well predicted by the one before it but hardly by
    any global code."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 1, 8, 8), np.float32)
    img[..., 0] = rng.random((n, 1, 8)) < 0.5
    for j in range(1, 8):
        keep = rng.random((n, 1, 8)) < 0.9
        img[..., j] = np.where(keep, img[..., j - 1], 1 - img[..., j - 1])
    return img


@pytest.mark.slow
def test_a_run_with_context_beats_the_factorised_decoder_and_finishes(tmp_path):
    """Through the whole pipe (training, IWAE evaluation, figures drawn by filling pixels,
    report): on images whose pixels follow their left neighbour the context wins many nats."""
    np.save(tmp_path / "runs.npy", textured_images(1200, 0))
    common = dict(data=str(tmp_path / "runs.npy"), model="vamp", pseudo_inputs=10,
                  latent_dim=4, hidden=[32],
                  epochs=10, batch_size=32, lr=1e-2, seed=0, progress=False, eval_k=20)
    plain = vaelab.train(**common, out=str(tmp_path / "plain"))
    ctx = vaelab.train(**common, pixel_context=1, out=str(tmp_path / "ctx"))
    a, b = plain.metrics["test"]["iwae_nll"], ctx.metrics["test"]["iwae_nll"]
    assert b < a - 8, (a, b)
    assert "pixel context, radius 1" in ctx.metrics["test"]["likelihood"]
    assert ctx.history[-1]["train_loss"] < ctx.history[0]["train_loss"]
    figures = {p.name for p in (tmp_path / "ctx" / "figures").glob("*.png")}
    assert {"reconstructions.png", "samples.png"} <= figures
    assert (tmp_path / "ctx" / "report.html").exists()
    from vaelab import figures

    assert figures._samples(ctx).kwargs["title"] == "random samples, z ~ VampPrior"
    samples = ctx.sample(16)
    assert samples.shape == (16, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
