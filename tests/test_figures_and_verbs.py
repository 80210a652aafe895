"""Figures, latent-space operations and the CLI verbs over a run directory (issue 8)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import vaelab
from vaelab.cli.main import main
from vaelab.latent import (
    apply_attribute,
    attribute_vector,
    decode,
    grid_codes,
    interpolate,
    traverse,
)
from vaelab.models import ModelConfig, ModelSpec, build_model


def test_latent_operations():
    z, values = grid_codes(4, 3.0)
    assert z.shape == (16, 2) and values[0] == -3 and tuple(z[0]) == (-3.0, 3.0)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    lin = interpolate(a, b, 5, "linear")
    sph = interpolate(a, b, 5, "slerp")
    assert np.allclose(lin[0], a) and np.allclose(lin[-1], b)
    assert np.allclose(np.linalg.norm(sph, axis=1), 1.0, atol=1e-6)  # stays on the circle
    t = traverse(np.zeros(3), 1, np.array([-1.0, 2.0]))
    assert t.tolist() == [[0, -1, 0], [0, 2, 0]]
    mu = np.array([[0.0, 0], [2, 0], [0, 4], [0, 6]])
    assert attribute_vector(mu, np.array([0, 0, 1, 1]), 0, 1).tolist() == [-1, 5]

    base, moved = apply_attribute(mu, np.array([0, 0, 1, 2]), 0, 1, 2, n=4, scale=2.0)
    assert base.tolist() == [[0, 6]] and moved.tolist() == [[-2, 14]]
    with pytest.raises(ValueError, match="label 5 has no examples"):
        apply_attribute(mu, np.array([0, 0, 1, 1]), 0, 1, 5)


def test_decode_in_batches_equals_one_pass_and_checks_the_code_length():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=[8], latent_dim=3), ModelSpec((1, 4, 4), "bernoulli"))
    z = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    with torch.no_grad():
        whole = model.eval().decode_mean(torch.from_numpy(z)).numpy()
    assert np.allclose(decode(model, z, batch_size=3), whole, atol=1e-6)
    assert decode(model, z[:0]).shape == (0, 1, 4, 4)
    with pytest.raises(ValueError, match="codes have 2 dimensions, the model's latent has 3"):
        decode(model, z[:, :2])


@pytest.fixture(scope="module")
def run8(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae8"
    return vaelab.train(dataset="digits", model="dae", latent_dim=4, epochs=3, hidden=[32],
                        progress=False, log=None, out=str(out))


def test_metrics_json_holds_every_metric(run8):
    m = json.loads((run8.path / "metrics.json").read_text())
    t = m["test"]
    for key in ("recon_nll", "recon_mse", "binary_accuracy", "active_units", "knn_accuracy",
                "linear_probe_accuracy", "silhouette", "pca2_variance_share",
                "frechet_distance"):
        assert key in t, key
    assert "neg_elbo" not in t  # a DAE has no ELBO
    assert isinstance(m["diagnostics"], list)


def test_every_figure_renders(run8):
    names = {p.stem for p in (run8.path / "figures").glob("*.png")}
    assert {"training_curves", "reconstructions", "samples", "latent_scatter", "latent_tsne",
            "latent_traversals", "latent_histograms", "interpolation", "attribute_vectors",
            "denoising"} <= names
    index = json.loads((run8.path / "figures" / "index.json").read_text())
    assert all(len(v["how_to_read"]) > 40 for v in index.values())


def test_traversals_sweep_each_dimension_over_the_spread_of_its_codes(run8, monkeypatch):
    """Each row moves one dimension from its codes' mean - 3 sd to + 3 sd (the range the data
    use, whatever the prior's scale), the others held at the mean code; the x axis says so."""
    from vaelab import figures

    decode, seen = figures._decode_raw, []
    monkeypatch.setattr(figures, "_decode_raw", lambda run, z: seen.append(z) or decode(run, z))
    drawing = figures._traversals(run8)
    mu = run8.latents()["mu"]
    center, sd = mu.mean(0), mu.std(0)
    dims, values = drawing.args[1], drawing.args[2]
    z = seen[0].reshape(len(dims), len(values), -1)
    assert sorted(dims) == [0, 1, 2, 3]
    for row, d in zip(z, dims, strict=True):
        np.testing.assert_allclose(row[:, d], center[d] + values * sd[d], rtol=1e-4, atol=1e-5)
        others = np.delete(row, d, axis=1)
        np.testing.assert_allclose(others, np.delete(center, d)[None].repeat(len(values), 0))
    assert "standard deviations" in drawing.figure().axes[0].get_xlabel()


VERBS = [["evaluate", "--iwae-k", "20"], ["sample", "-n", "8"], ["reconstruct"],
         ["interpolate", "--steps", "4"], ["traverse", "--dim", "1"], ["encode"],
         ["plot", "--only", "samples"]]


@pytest.mark.parametrize("verb", VERBS, ids=[v[0] for v in VERBS])
def test_cli_verbs_write_files(run8, verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb[0], str(run8.path), *verb[1:]])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    written = [w for line in out.splitlines() if line.startswith("wrote ")
               for w in line[6:].split(" and ")]
    assert written
    for w in written:
        assert (run8.path / w.split(" (")[0]).exists() or \
            Path(w.split(" (")[0]).exists(), w


def test_decode_verb_round_trip(run8, tmp_path, capsys):
    codes = tmp_path / "codes.csv"
    with pytest.raises(SystemExit):
        main(["encode", str(run8.path), "--out", str(codes)])
    with pytest.raises(SystemExit) as exc:
        main(["decode", str(run8.path), str(codes)])
    assert exc.value.code == 0
    assert np.load(run8.path / "outputs" / "decoded_codes.npy").shape[0] == len(run8.data.test)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(SystemExit) as exc:
        main(["decode", str(run8.path), str(bad)])
    assert exc.value.code == 2
    assert "codes of length 3 but the model's latent has 4" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [v[0] for v in VERBS])
def test_cli_verbs_fail_clearly_on_a_wrong_run_dir(tmp_path, verb, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    for target in (tmp_path / "missing", tmp_path / "half"):
        with pytest.raises(SystemExit) as exc:
            main([verb, str(target)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(target) in err[0]


def test_figure_functions_render_on_tiny_arrays():
    from vaelab.plots import analysis as pa
    from vaelab.plots import image_grid, latent_scatter, reconstructions, samples

    imgs = np.random.default_rng(0).random((9, 1, 5, 5))
    figs = [pa.manifold_grid(imgs, np.linspace(-3, 3, 3), (0, 1)),
            pa.traversals(imgs[:6], [0, 1], np.linspace(-1, 1, 3), (0, 1), np.ones(2)),
            pa.latent_histograms(np.random.default_rng(0).normal(size=(50, 3))),
            pa.interpolation(imgs[:4], imgs[4:8], (0, 1)),
            pa.attribute_vectors(imgs[:3], imgs[3:6], "t", (0, 1)),
            pa.denoising_triplets(imgs[:3], imgs[3:6], imgs[6:9], (0, 1)),
            image_grid(imgs), reconstructions(imgs[:3], imgs[3:6]),
            reconstructions(np.ones((3, 4)), np.zeros((3, 4)), feature_names=list("abcd")),
            samples(np.ones((5, 4))),
            latent_scatter(np.random.default_rng(0).normal(size=(30, 3)),
                           np.arange(30) % 3)]
    for f in figs:
        assert f.axes and all(math.isfinite(v) for v in f.get_size_inches())


def test_canvases_show_as_the_grey_colour_map_did():
    """show_image hands matplotlib float32 RGBA (resampled without float64 planes): the
    rendered pixels are those of the grey colour map on the [0, 1] canvas, colour too."""
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    from vaelab.plots.common import show_image, to_rgba

    rng = np.random.default_rng(0)
    grey = rng.random((12, 20))
    grey[0, 0] = np.nan  # shows white, as a masked pixel did

    def render(draw) -> np.ndarray:
        fig = Figure(figsize=(2, 1.2), dpi=50)
        draw(fig.add_axes((0, 0, 1, 1)))
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return np.asarray(Image.open(buf).convert("RGB")).astype(int)

    old = render(lambda ax: ax.imshow(grey, cmap="gray", vmin=0, vmax=1,
                                      interpolation="nearest"))
    new = render(lambda ax: show_image(ax, grey))
    assert old.shape == new.shape
    same = np.abs(old - new).max(-1) <= 1  # a few cell edges resample a level or more apart
    assert same.mean() >= 0.99, same.mean()
    assert (new[1:4, 1:4] == 255).all() and (old[1:4, 1:4] == 255).all()  # the NaN cell
    rgb = to_rgba(rng.random((4, 5, 3)))
    assert rgb.dtype == np.float32 and rgb.shape == (4, 5, 4) and (rgb[..., 3] == 1).all()
    assert to_rgba(np.array([[2.0, -1.0]]))[0, :, 0].tolist() == [1.0, 0.0]  # clipped


def test_latent_histogram_of_means_all_off_the_plot_is_empty_not_nan():
    """Under a VampPrior a dimension's means can all lie outside [-4, 4]: that panel must be
    empty with its share off the plot stated, not NaN heights (numpy's density=True divides by
    the in-range count); in-range panels keep the density of all values."""
    import warnings

    import matplotlib.pyplot as plt

    from vaelab.plots import analysis as pa

    mu = np.random.default_rng(0).normal(size=(400, 3))
    mu[:, 1] += 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = pa.latent_histograms(mu)
    axes = [ax for ax in fig.axes if ax.axison]
    heights = [ax.patches[0].get_data()[0] for ax in axes]
    assert all(np.isfinite(h).all() for h in heights)
    assert heights[1].sum() == 0 and "100% off plot" in axes[1].texts[0].get_text()
    width = 8.0 / 40
    assert heights[0].sum() * width == pytest.approx(np.mean(np.abs(mu[:, 0]) <= 4), abs=1e-9)
    plt.close(fig)


def test_latent_histograms_compare_with_the_models_own_prior():
    """A VampPrior's means are drawn against the VampPrior, not N(0, 1): the builder samples
    the model's prior, the red curve is that sample's density and the title names it; the
    plain VAE keeps the analytic N(0, 1) curve and draws nothing."""
    from types import SimpleNamespace

    from vaelab import figures
    from vaelab.plots import analysis as pa

    spec = ModelSpec((1, 4, 4), "bernoulli")

    def fake_run(model, mu):
        return SimpleNamespace(model=model, device=torch.device("cpu"), metrics={},
                               config=SimpleNamespace(train=SimpleNamespace(seed=0)),
                               latents=lambda: {"mu": mu})

    torch.manual_seed(0)
    vamp = build_model(ModelConfig(model="vamp", hidden=[8], latent_dim=3, pseudo_inputs=4),
                       spec)
    with torch.no_grad():  # pseudo-input posteriors far from N(0, 1): the curve must follow
        vamp.encoder.head.bias.add_(2.5)
    mu = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    drawing = figures._histograms(fake_run(vamp, mu))
    prior = drawing.kwargs["prior"]
    assert prior.shape == (vamp.prior_draws, 3) == (20_000, 3)
    assert drawing.kwargs["prior_name"] == "VampPrior"
    assert abs(float(np.median(prior)) - 0.0) > 0.5  # not standard normal draws
    fig = drawing.figure()
    title = fig._suptitle.get_text()
    assert "VampPrior" in title and "20,000 codes" in title
    ax = fig.axes[0]
    curve, edges, _ = ax.patches[1].get_data()  # patches: the histogram, the prior's curve
    expect, _ = np.histogram(prior[:, 0], bins=edges)
    assert np.allclose(curve, expect / (len(prior) * (edges[1] - edges[0])))

    vae = build_model(ModelConfig(hidden=[8], latent_dim=3), spec)
    plain = figures._histograms(fake_run(vae, mu))
    assert plain.kwargs["prior"] is None and plain.kwargs["prior_name"] == "N(0, 1)"
    fig = pa.latent_histograms(mu, **plain.kwargs)
    assert len(fig.axes[0].patches) == 1 and fig.axes[0].lines  # analytic curve, a Line2D
    assert "N(0, 1)" in fig._suptitle.get_text()
    vq = build_model(ModelConfig(model="vq-vae", hidden=[8], latent_dim=3), spec)
    assert figures._histograms(fake_run(vq, mu)).kwargs["prior"] is None  # PixelCNN: not drawn


def test_saved_figure_is_the_tight_savefig_cropped_from_one_draw(tmp_path):
    """save_figure renders once and crops to the tight box: the same picture as matplotlib's
    savefig(bbox_inches="tight"), within a pixel of its size; content wider than the figure
    (an overlong note) still goes through savefig, so nothing is cut off."""
    from PIL import Image

    from vaelab.plots.common import PAD_INCHES, add_note, new_figure, save_figure

    def curves(note: str):
        fig = new_figure(6, 2.5)
        for i, ax in enumerate(fig.subplots(1, 2)):
            ax.plot(np.sin(np.linspace(0, 6, 50) + i), label="train")
            ax.set(title=f"panel {i}", xlabel="epoch")
            ax.legend()
        fig.suptitle("two panels")
        return add_note(fig, note)

    for note, wide in (("a short note", False), ("an overlong note " * 12, True)):
        curves(note).savefig(tmp_path / "ref.png", dpi=110, bbox_inches="tight",
                             pad_inches=PAD_INCHES)
        save_figure(curves(note), tmp_path / "ours.png")
        ref = np.asarray(Image.open(tmp_path / "ref.png").convert("L")).astype(int)
        ours = np.asarray(Image.open(tmp_path / "ours.png").convert("L")).astype(int)
        assert abs(ref.shape[0] - ours.shape[0]) <= 1 and abs(ref.shape[1] - ours.shape[1]) <= 1
        if wide:
            assert ours.shape[1] > 6 * 110  # wider than the figure: the note is all there
            continue
        h, w = (min(ref.shape[0], ours.shape[0]) - 1) // 6 * 6, \
            (min(ref.shape[1], ours.shape[1]) - 1) // 6 * 6

        def blocks(a: np.ndarray) -> np.ndarray:  # 6 x 6 pixel means: text and lines as blobs
            return a.reshape(a.shape[0] // 6, 6, a.shape[1] // 6, 6).mean((1, 3))

        diff = min(np.abs(blocks(ref[:h, :w]) - blocks(ours[dy:dy + h, dx:dx + w])).max()
                   for dy in (0, 1) for dx in (0, 1))
        # antialiasing at a sub-pixel offset moves a block by up to ~40 grey levels; another
        # title or a shifted panel moves some block by 140 or more
        assert diff < 60, diff
        assert (ours[:3] == 255).all() and (ours[:, :3] == 255).all()  # the white margin


def test_training_curves_tick_whole_epochs():
    from vaelab.plots.training import training_curves

    one = training_curves([{"epoch": 1, "train_loss": 3, "train_recon": 2, "train_kl": 1}])
    assert [float(t) for t in one.axes[0].get_xticks()] == [1.0]
    many = training_curves([{"epoch": i, "train_loss": 3 / i, "train_recon": 2 / i,
                             "train_kl": 1 / i} for i in range(1, 48)])
    assert all(float(t).is_integer() for t in many.axes[0].get_xticks())


def test_latent_histograms_label_each_columns_last_panel_and_fit_the_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vaelab.plots import analysis as pa

    rng = np.random.default_rng(0)
    fig = pa.latent_histograms(rng.normal(size=(300, 12)), prior=rng.normal(size=(300, 12)),
                               prior_name="VampPrior (100 pseudo-inputs)")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    axes = fig.axes
    shown = [any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()) for ax in axes]
    assert shown[7:12] == [True] * 5 and not any(shown[:7])  # z8-z12 end their columns
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["prior"]
    renderer = canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in axes[:12]]
    for i, a in enumerate(boxes):  # no panel's title or labels run into another panel
        for b in boxes[i + 1:]:
            assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0
    w, h = fig.bbox.width, fig.bbox.height
    assert all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= w and b.y1 <= h for b in boxes)


def _longest_white_band(path: Path) -> int:
    """The longest run of all-white pixel rows or columns inside a saved figure."""
    from PIL import Image

    px = np.asarray(Image.open(path).convert("L"))
    best = 0
    for axis in (1, 0):  # white rows, then white columns
        run = 0
        for is_white in (px >= 250).all(axis=axis):
            run = run + 1 if is_white else 0
            best = max(best, run)
    return best


def _image_drawings(h: int, w: int) -> dict[str, tuple]:
    """Each image-strip plotting function with (N, 3, h, w) images of no white pixel."""
    rng = np.random.default_rng(0)

    def imgs(n: int) -> np.ndarray:
        return rng.uniform(0.2, 0.8, (n, 3, h, w)).astype(np.float32)

    _, grid = grid_codes(30, 3.0)
    values = np.linspace(-3, 3, 11)
    a = "vaelab.plots.analysis:"
    return {
        "manifold": (a + "manifold_grid", (imgs(900), grid, (0.0, 1.0))),
        "samples": ("vaelab.plots.images:samples", (imgs(40), 10, (0.0, 1.0))),
        "reconstructions": ("vaelab.plots.images:reconstructions",
                            (imgs(10), imgs(10), (0.0, 1.0))),
        "interpolation": (a + "interpolation", (imgs(10), imgs(10), (0.0, 1.0),
                                                (imgs(1)[0], imgs(1)[0]))),
        "traversals": (a + "traversals", (imgs(5 * 11), [0, 1, 2, 3, 4], values, (0.0, 1.0))),
        "attributes": (a + "attribute_vectors", (imgs(8), imgs(8), "smile", (0.0, 1.0))),
        "denoising": (a + "denoising_triplets", (imgs(10), imgs(10), imgs(10), (0.0, 1.0))),
    }


@pytest.mark.parametrize("shape", [(8, 8), (33, 41), (41, 33)])
def test_image_figures_have_no_blank_band_for_any_image_shape(tmp_path, shape):
    """Every figure made of image strips fills its height for wide, square and tall images:
    no run of white pixel rows or columns between the images, their labels and the note (a
    square-tile layout left 100-px bands under 33x41 photos in the latent grid, 44 px under
    the samples)."""
    from vaelab.figures import Drawing
    from vaelab.plots.common import save_figure

    for name, (function, args) in _image_drawings(*shape).items():
        fig = Drawing(function, args, note="a note under the figure").figure()
        save_figure(fig, tmp_path / f"{name}.png")
        assert _longest_white_band(tmp_path / f"{name}.png") < 30, (name, shape)
