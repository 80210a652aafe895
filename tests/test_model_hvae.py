"""Two-layer ladder VAE: per-layer KL extras sum to the KL, the precision-weighted posterior, the
log-weights of both layers, IWAE >= the K-sample ELBO and tightening with K, training, prior
samples, save / load and arch conv."""

import numpy as np
import pytest
import torch

import vaelab
from vaelab.evaluate.iwae import importance_bounds
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.models.hvae import HierarchicalVAE, precision_merge


def tiny_hvae(d: int = 6, latent: int = 3, top: int = 2, seed: int = 0,
              **kw) -> HierarchicalVAE:
    torch.manual_seed(seed)
    cfg = ModelConfig(model="hvae", hidden=[8], latent_dim=latent, top_latent_dim=top, **kw)
    model = build_model(cfg, ModelSpec((d,), "bernoulli"))
    assert isinstance(model, HierarchicalVAE)
    return model


def test_per_layer_kl_extras_sum_to_the_kl_and_the_loss_is_the_negative_elbo():
    model = tiny_hvae().eval()
    x = (torch.rand(16, 6) > 0.5).float()
    torch.manual_seed(3)
    with torch.no_grad():
        parts = model.loss(x)
    assert set(parts.extras) == {"kl_z1", "kl_z2"}
    torch.testing.assert_close(parts.extras["kl_z1"] + parts.extras["kl_z2"], parts.kl)
    assert float(parts.extras["kl_z1"]) > 0 and float(parts.extras["kl_z2"]) > 0
    torch.testing.assert_close(parts.per_example.mean(), parts.recon + parts.kl)
    torch.testing.assert_close(parts.total, parts.recon + parts.kl)  # beta 1, no warm-up


def test_posterior_of_z1_is_the_precision_weighted_combination():
    mu_a, lv_a = torch.tensor([1.0, -2.0]), torch.tensor([1.0, 4.0]).log()
    mu_b, lv_b = torch.tensor([3.0, 0.0]), torch.tensor([1.0, 4.0 / 3.0]).log()
    mu, lv = precision_merge(mu_a, lv_a, mu_b, lv_b)
    # 1/var = 1/var_a + 1/var_b; mu = var (mu_a/var_a + mu_b/var_b)
    torch.testing.assert_close(lv.exp(), torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(mu, torch.tensor([2.0, -0.5]))


def test_log_weights_by_hand():
    model = tiny_hvae().double().eval()
    x = (torch.rand(5, 6, dtype=torch.float64) > 0.5).double()
    n = torch.distributions.Normal
    with torch.no_grad():
        lw = model.log_weights(x, None, 3, torch.Generator().manual_seed(4))
        g = torch.Generator().manual_seed(4)
        mu1, lv1, mu2, lv2 = model.bottom_up(x)
        eps2 = torch.randn((3, 5, 2), generator=g, dtype=torch.float64)
        z2 = mu2 + torch.exp(0.5 * lv2) * eps2
        mu_p, lv_p = model.prior_z1(z2.reshape(15, 2))
        mu_p, lv_p = mu_p.view(3, 5, 3), lv_p.view(3, 5, 3)
        mu_q, lv_q = precision_merge(mu1, lv1, mu_p, lv_p)
        z1 = mu_q + torch.exp(0.5 * lv_q) * torch.randn((3, 5, 3), generator=g,
                                                        dtype=torch.float64)
        px = torch.stack([model.likelihood.log_prob(x, model.decode(z)) for z in z1])
        want = (px + n(0.0, 1.0).log_prob(z2).sum(-1)
                + n(mu_p, torch.exp(0.5 * lv_p)).log_prob(z1).sum(-1)
                - n(mu2, torch.exp(0.5 * lv2)).log_prob(z2).sum(-1)
                - n(mu_q, torch.exp(0.5 * lv_q)).log_prob(z1).sum(-1))
    torch.testing.assert_close(lw, want)


def test_iwae_is_at_least_the_k_sample_elbo_and_tightens_with_k():
    model = tiny_hvae(seed=1).eval()
    x = (torch.rand(60, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float().numpy()
    b = importance_bounds(model, x, k=50, chunk=11, batch_size=25, seed=0)
    assert np.all(b.iwae >= b.elbo - 1e-9) and b.iwae.mean() > b.elbo.mean()
    est = {k: np.mean([importance_bounds(model, x, k=k, seed=s).iwae.mean() for s in range(3)])
           for k in (1, 10, 200)}
    assert est[1] < est[10] < est[200]
    # the K = 1 bound is the single-sample ELBO of loss(): same expectation
    with torch.no_grad():
        xt = torch.as_tensor(x)
        one = np.mean([-model.loss(xt).per_example.mean().item() for _ in range(200)])
    assert one == pytest.approx(est[1], abs=0.15)


def test_training_lowers_the_loss_and_prior_samples_have_the_decoder_code_size():
    model = tiny_hvae(d=12, latent=2, top=2, seed=1)
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 12, generator=g) > 0.5).float()
    x = protos[torch.randint(3, (256,), generator=g)]
    x = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = model.loss(x).total
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    model.eval()
    z = model.prior_sample(7, generator=torch.Generator().manual_seed(0))
    assert z.shape == (7, 2) and model.sample(7).shape == (7, 12)
    layers = model.layer_posteriors(x[:9])
    assert layers["z1"][0].shape == (9, 2) and layers["z2"][0].shape == (9, 2)
    torch.testing.assert_close(model.encode(x[:9])[0], layers["z1"][0])


def test_default_top_size_save_load_and_conv(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(model="hvae", arch="conv", hidden=[16], conv_channels=[4, 8],
                      latent_dim=6)
    model = build_model(cfg, ModelSpec((1, 8, 8), "bernoulli")).eval()
    assert model.top_dim == 3  # 0 = half of latent_dim
    save_model(model, tmp_path)
    back = load_model(tmp_path).eval()
    assert type(back) is HierarchicalVAE and back.config.top_latent_dim == 0
    x = (torch.rand(4, 1, 8, 8) > 0.5).float()
    torch.testing.assert_close(model.reconstruct(x), back.reconstruct(x))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(model.sample(3, generator=g1), back.sample(3, generator=g2))


@pytest.mark.slow
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    small = dict(dataset="digits", model="hvae", latent_dim=2, hidden=[16], subset=300,
                 eval_k=10, top_latent_dim=2, progress=False, log=None, report=False)
    ref = vaelab.train(**small, epochs=3, out=str(tmp_path / "ref"))
    vaelab.train(**small, epochs=2, out=str(tmp_path / "part"))
    res = vaelab.train(resume=tmp_path / "part", epochs=3, log=None, report=False)

    def rows(run):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in run.history]

    assert len(rows(ref)) == 3 and rows(res) == rows(ref)
    assert res.metrics["test"]["iwae_nll"] == ref.metrics["test"]["iwae_nll"]
    assert res.metrics["test"]["iwae_nll"] <= res.metrics["test"]["neg_elbo_k"]
    assert res.sample(4).shape == (4, 1, 8, 8)


def test_metrics_json_counts_active_units_in_each_layer(tmp_path):
    run = vaelab.train(dataset="digits", model="hvae", latent_dim=4, top_latent_dim=2,
                       hidden=[32], subset=300, epochs=2, eval_k=0, progress=False, log=None,
                       report=False, out=str(tmp_path / "run"))
    t = run.metrics["test"]
    x = torch.as_tensor(run.data.test.x, dtype=torch.float32)
    with torch.no_grad():
        layers = run.model.layer_posteriors(x)
    for name, size in (("z1", 4), ("z2", 2)):
        var = layers[name][0].var(0, unbiased=False).numpy()
        assert t[f"active_units_{name}"] == int((var > 0.01).sum()) <= size
    assert t["active_units"] == t["active_units_z1"]  # the code the decoder reads is z1
