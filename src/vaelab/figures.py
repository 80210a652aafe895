"""Render a run's figures to figures/*.png and describe each in figures/index.json.

Each entry of the index has a title and two lines on how to read the figure; the report shows
them beside the image. Figure builders are registered so later modules can add their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from vaelab.modelio import atomic_write_text
from vaelab.plots.common import add_note, save_figure

if TYPE_CHECKING:
    from vaelab.run import Run


@dataclass
class Drawing:
    """A figure as a call of a plotting function (``vaelab.plots.<module>:<function>``) on
    plain arguments (arrays, numbers, strings) with a note under it: any process can draw it,
    so ``render_figures`` hands some to vaelab's worker while it draws others itself."""

    function: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def figure(self) -> Figure:
        import importlib

        module, _, name = self.function.partition(":")
        fig = getattr(importlib.import_module(module), name)(*self.args, **self.kwargs)
        return add_note(fig, self.note)


Built = Figure | Drawing | None
"""What a figure builder returns: a Figure, a Drawing, or None when it does not apply."""


@dataclass
class FigureSpec:
    name: str
    title: str
    how_to_read: str
    build: Callable[[Run], Built]
    order: int = 100
    late: bool = False
    """Drawn after the others: it waits for work done in vaelab's worker process."""
    cost: float = 1.0
    """Its drawing time relative to a simple figure's (about 0.1 s on 2 cores; measured: the
    training curves 0.5 s, 20 traversal rows 0.7 s, 20 histograms 1-1.7 s): the costliest are
    drawn first, so the two processes drawing from one queue end together."""


FIGURES: list[FigureSpec] = []


def register_figure(name: str, title: str, how_to_read: str, order: int = 100,
                    late: bool = False, cost: float = 1.0):
    """Decorator adding a run-level figure builder (returns None when it does not apply).

    ``order`` places it in the report; ``late`` draws it after the others, for a builder that
    waits on the worker (``vaelab.worker``: the GMM fit, the t-SNE map) so that the other
    figures are drawn meanwhile; ``cost`` is its drawing time relative to a simple figure's."""

    def deco(fn: Callable[[Run], Built]) -> Callable[[Run], Built]:
        FIGURES[:] = [f for f in FIGURES if f.name != name]
        FIGURES.append(FigureSpec(name, title, how_to_read, fn, order, late, cost))
        FIGURES.sort(key=lambda f: f.order)
        return fn

    return deco


def start_background(run: Run) -> None:
    """Start the figures' work that runs in vaelab's worker process (the t-SNE map) now, so it
    overlaps with the metrics and the other figures."""
    codes = _tsne_codes(run)
    if codes is not None:
        from vaelab import worker

        run.__dict__.setdefault("_pending", {})["tsne"] = worker.submit(
            "tsne", codes[0], run.config.train.seed)


def display_range(run: Run) -> tuple[float, float]:
    """Raw-unit range used to show images (so all panels share one grey scale)."""
    pre = run.preprocessor
    if "min" in pre.params:
        return float(pre.params["min"]), float(pre.params["max"])
    x = run.data.test.x
    raw = pre.inverse(np.asarray(x[: min(len(x), 512)]))
    return float(raw.min()), float(raw.max())


def _test(run: Run) -> dict:
    return run.metrics.get("test", {})


def _fmt(t: dict, key: str, label: str, spec: str = ".3f") -> str | None:
    return f"{label} {t[key]:{spec}}" if isinstance(t.get(key), (int, float)) else None


def _join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return ", ".join(kept) if kept else None


def _label_note(run: Run) -> str | None:
    t = _test(run)
    note = _join(_fmt(t, "knn_accuracy", "test kNN accuracy on the latent means"),
                 _fmt(t, "linear_probe_accuracy", "linear probe"),
                 _fmt(t, "silhouette", "silhouette"))
    if note and "chance_accuracy" in t:
        note += f" (chance {t['chance_accuracy']:.3f})"
    return note


@register_figure(
    "training_curves", "Training curves",
    "Objective, reconstruction term and KL per epoch, train (solid) and validation (dashed). "
    "A validation curve that turns up while the training one keeps falling means overfitting; "
    "the dotted line marks the epoch whose weights were kept.",
    order=10, cost=5,
)
def _curves(run: Run) -> Built:
    if not run.history:
        return None
    t = _test(run)
    if "neg_elbo_k" in t and "iwae_nll" in t:  # same K samples per example: IWAE <= ELBO

        def pm(key: str) -> str:
            se = t.get(f"{key}_se")
            return f"{t[key]:.3f}" + (f" ± {se:.3f}" if isinstance(se, (int, float))
                                         and np.isfinite(se) else "")

        note = (f"test, same K={t['iwae_k']} samples per example (± standard error): "
                f"negative ELBO {pm('neg_elbo_k')}, IWAE NLL {pm('iwae_nll')}")
    else:
        iw = f"IWAE NLL {t['iwae_nll']:.3f} (K={t['iwae_k']})" if "iwae_nll" in t else None
        note = _join(_fmt(t, "neg_elbo", "test negative ELBO"), iw,
                     _fmt(t, "recon_nll", "test reconstruction NLL"))
    return Drawing("vaelab.plots.training:training_curves", (list(run.history),),
                   note=note + " nats per example" if note else None)


@register_figure(
    "reconstructions", "Reconstructions",
    "Test inputs (top) and the decoder's mean for their posterior mean code (bottom). "
    "Blurry or generic reconstructions point to a too-strong KL (lower beta) or a too-small "
    "latent.",
    order=20,
)
def _recons(run: Run) -> Built:
    if _table(run):
        return _table_figures().reconstructions(run)
    x = np.asarray(run.data.test.x[:10])
    rec = run.reconstruct(x, run.data.test.y[:10] if run.data.test.y is not None else None)
    pre = run.preprocessor
    t = _test(run)
    mse = _fmt(t, "recon_mse", "test reconstruction MSE", ".4g")
    if mse and not run.preprocessor.bounded_unit:
        mse += " (preprocessed units)"
    note = _join(mse,
                 _fmt(t, "binary_accuracy", "binary accuracy"),
                 f"{t['explained_variance']:.0%} of the variance explained"
                 if "explained_variance" in t else None)
    return Drawing("vaelab.plots.images:reconstructions",
                   (pre.inverse(x), pre.inverse(rec), display_range(run),
                    run.data.test.feature_names), note=note)


@register_figure(
    "samples", "Random samples",
    "Decoder means for codes drawn from the model's prior (the title names it: N(0, I), the "
    "VampPrior, ...). Samples that look like the data show "
    "a latent space without holes; garbage samples with good reconstructions mean the posterior "
    "does not cover the prior.",
    order=30,
)
def _samples(run: Run) -> Built:
    if _table(run):
        return _table_figures().samples(run)
    s = run.sample(40, seed=run.config.train.seed)
    t = _test(run)
    note = None
    if "frechet_distance" in t:
        note = (f"Frechet distance to {t['frechet_n']} test images {t['frechet_distance']:.2f} "
                "(in a small classifier's 64-d features; lower is closer)")
    title = f"random samples, z ~ {run.model.prior_name}"  # the model's own prior
    return Drawing("vaelab.plots.images:samples", (run.preprocessor.inverse(s), 10,
                                                   display_range(run),
                                                   run.data.test.feature_names),
                   {"title": title}, note=note)


@register_figure(
    "samples_gmm", "Random samples from a GMM on the codes",
    "Decoder means for codes drawn from a Gaussian mixture fitted to the training codes "
    "(vaelab.samplers; components chosen on the validation codes). Better than the prior "
    "samples beside them means the codes do not fill the prior: it has holes or wrong shape.",
    order=31, late=True,
)
def _samples_gmm(run: Run) -> Built:
    from vaelab.samplers import load_sampler

    if _table(run):
        return _table_figures().samples(run, "gmm")
    gmm = load_sampler(run, "gmm")
    s = run.sample(40, seed=run.config.train.seed, sampler="gmm")
    t = _test(run)
    note = (f"{gmm.n_components} components ({gmm.info.get('covariance', '?')} covariances), "
            f"validation log-likelihood {gmm.info.get('val_log_likelihood', float('nan')):.2f} "
            "nats per code")
    if "frechet_distance_gmm" in t:
        note += (f"; Frechet distance {t['frechet_distance_gmm']:.2f} (prior samples "
                 f"{t.get('frechet_distance', float('nan')):.2f})")
    title = f"random samples, z ~ GMM on the training codes (K = {gmm.n_components})"
    return Drawing("vaelab.plots.images:samples",
                   (run.preprocessor.inverse(s), 10, display_range(run),
                    run.data.test.feature_names), {"title": title}, note=note)


@register_figure(
    "latent_scatter", "Latent space",
    "Posterior means of the test set coloured by label: the 2-D latent itself, or its PCA "
    "projection when wider (the title says which and how much variance it keeps). "
    "Well-separated colours mean the code carries class information without being told labels.",
    order=40,
)
def _scatter(run: Run) -> Built:
    lat = run.latents()
    return Drawing("vaelab.plots.latent:latent_scatter",
                   (lat["mu"], lat.get("y"), run.data.label_names),
                   {"seed": run.config.train.seed}, note=_label_note(run))


def _table(run: Run) -> bool:
    """A run on a table read by column: its figures show each column in its own units."""
    return run.model.spec.columns is not None


def _table_figures():
    from vaelab.tabular import figures

    return figures


@register_figure(
    "column_costs", "Per-column fit",
    "For a table: each column's negative log-likelihood per observed test cell under the model "
    "(colour: numeric / binary / categorical) beside its training marginal's (grey). A column "
    "whose bar is as long as its grey one is not explained by the code: the model reconstructs "
    "it badly (metrics.json 'columns' has the numbers, RMSE and accuracies).",
    order=21,
)
def _column_costs(run: Run) -> Figure | None:
    return _table_figures().column_costs(run) if _table(run) else None


def render_figures(run: Run, names: list[str] | None = None) -> list[Path]:
    """Render registered figures into run.path/figures, update index.json, return the files.

    The builders run here (they use the model); their figures are then drawn from one queue
    by two consumers, this process and, through a feeding thread, vaelab's worker process,
    each taking the next :class:`Drawing` as soon as it is free (a ``Figure`` object is drawn
    here). The ``late`` builders, which wait on the worker's GMM fit and t-SNE map, come in a
    second round."""
    folder = run.path / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    chosen = [f for f in FIGURES if names is None or f.name in names]
    done: list[tuple[FigureSpec, Path]] = []
    for late in (False, True):
        jobs = []
        for spec in chosen:
            if spec.late != late:
                continue
            built = spec.build(run)
            if built is not None:
                jobs.append((spec, folder / f"{spec.name}.png", built))
        draw_jobs(jobs)
        done.extend((spec, path) for spec, path, _ in jobs)
    for spec, path in sorted(done, key=lambda d: d[0].order):
        index[path.name] = {"title": spec.title, "how_to_read": spec.how_to_read,
                            "order": spec.order}
    atomic_write_text(index_path, json.dumps(index, indent=2))
    return [path for _, path in sorted(done, key=lambda d: d[0].order)]


def draw_jobs(jobs: list[tuple[FigureSpec, Path, Built]]) -> None:
    """Draw ``(spec, path, built)`` jobs here and in vaelab's worker side by side; a drawing
    that failed in the worker raises here, naming its error, once both are done."""
    import threading
    from collections import deque

    from vaelab import worker

    queue = deque(sorted(jobs, key=lambda job: -job[0].cost))  # stable: order among equals
    lock = threading.Lock()
    failures: list[BaseException] = []

    def take(drawings_only: bool) -> tuple[FigureSpec, Path, Built] | None:
        with lock:
            for k, job in enumerate(queue):
                if not drawings_only or isinstance(job[2], Drawing):
                    del queue[k]
                    return job
        return None

    def feed() -> None:  # waits on the worker (the GIL is free meanwhile)
        # a worker that is gone leaves the rest to the caller's thread: matplotlib must not
        # draw in two threads of one process
        while worker.active() and (job := take(drawings_only=True)) is not None:
            d = job[2]
            assert isinstance(d, Drawing)
            try:
                # absolute: the worker keeps the folder it started in when the caller's changes
                worker.submit("draw", d.function, d.args, d.kwargs, d.note,
                              os.path.abspath(job[1])).result()
            except BaseException as exc:  # raised below, in the caller
                failures.append(exc)

    feeder = None
    if worker.active() and any(isinstance(b, Drawing) for _, _, b in jobs):
        feeder = threading.Thread(target=feed, name="vaelab-figures", daemon=True)
        feeder.start()
    try:
        while (job := take(drawings_only=False)) is not None:
            built = job[2]
            save_figure(built.figure() if isinstance(built, Drawing) else built, job[1])
    finally:
        if feeder is not None:
            feeder.join()
    if failures:
        raise failures[0]


# -- geometry of the latent space (vaelab.plots.analysis) -------------------------------------
def _is_image(run: Run) -> bool:
    return len(run.model.input_shape) == 3


def _decode_raw(run: Run, z: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Decoder means of codes z in raw units (label-conditioned models: "unknown" label)."""
    return run.preprocessor.inverse(run.decode(z, y))


def _active_note(run: Run) -> str | None:
    t = _test(run)
    if "active_units" not in t:
        return None
    return (f"active units {t['active_units']} of {t['latent_dim']} (variance over the test set "
            "of a dimension's posterior mean > 0.01)")


TSNE_POINTS = 800
"""Test codes a t-SNE map shows at most (a seeded subset; the figure's title says how many):
scikit-learn's Barnes-Hut t-SNE took 1.1-1.2 s of one core on 600-800 20-D codes (its 500
iterations' fixed cost), 1.7 s on 1,000 and 3.3 s on 1,500; run beside the evaluation, it has
to be done when the figures start."""


def _tsne_codes(run: Run) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The codes (and labels) the t-SNE map is made of, or None for latents of 2-D or less."""
    from vaelab.evaluate.latent_metrics import subset_rows
    from vaelab.projection import MIN_TSNE_POINTS

    lat = run.latents()
    mu = lat["mu"]
    if mu.shape[1] <= 2 or len(mu) < MIN_TSNE_POINTS:
        return None
    pick = subset_rows(len(mu), TSNE_POINTS, run.config.train.seed)
    y = lat.get("y")
    return mu[pick], None if y is None else y[pick]


@register_figure(
    "latent_tsne", "Latent space (t-SNE)",
    "A t-SNE map of the latent means, shown when the latent is wider than 2-D (at most 1,500 "
    "test points, a seeded subset). t-SNE keeps neighbourhoods, not distances: judge which "
    "labels mix, not how far apart clusters are.",
    order=41, late=True,
)
def _tsne(run: Run) -> Built:
    from vaelab import worker
    from vaelab.plots.latent import tsne_title

    codes = _tsne_codes(run)
    if codes is None:
        return None
    mu, y = codes
    pending = run.__dict__.get("_pending", {}).pop("tsne", None)
    points = (pending or worker.submit("tsne", mu, run.config.train.seed)).result()
    return Drawing("vaelab.plots.latent:latent_scatter", (mu, y, run.data.label_names),
                   {"coords": (points, tsne_title(mu))}, note=_label_note(run))


@register_figure(
    "latent_manifold", "Decoded latent grid",
    "What the decoder makes of each point of a 30 x 30 grid over [-3, 3]^2 (2-D latents). "
    "Smooth changes between neighbours mean a continuous latent space; blank or garbled regions "
    "are holes the posterior never visits.",
    order=50,
)
def _manifold(run: Run) -> Built:
    from vaelab.latent import grid_codes

    if run.model.latent_dim != 2 or not _is_image(run):
        return None
    z, values = grid_codes(30, 3.0)
    return Drawing(f"{ANALYSIS}:manifold_grid", (_decode_raw(run, z), values, display_range(run)),
                   note=_active_note(run))


MAX_TRAVERSAL_ROWS = 25
ANALYSIS = "vaelab.plots.analysis"


@register_figure(
    "latent_traversals", "Latent traversals",
    "For latents wider than 2-D: each row sweeps one dimension from 3 standard deviations of "
    "its posterior means below their mean to 3 above, the others at the mean code, most used "
    "dimensions first (up to 25): the range the data use, whatever the prior's scale. Rows "
    "that do not change belong to inactive dimensions.",
    order=51, cost=7,
)
def _traversals(run: Run) -> Built:
    from vaelab.latent import traverse

    if not _is_image(run) or run.model.latent_dim <= 2:
        return None
    mu = run.latents()["mu"]
    var = mu.var(0)
    dims = [int(d) for d in np.argsort(-var, kind="stable")[:MAX_TRAVERSAL_ROWS]]
    values = np.linspace(-3, 3, 11, dtype=np.float32)
    center, std = mu.mean(0), np.sqrt(var)
    z = np.concatenate([traverse(center, d, center[d] + values * std[d]) for d in dims])
    return Drawing(f"{ANALYSIS}:traversals",
                   (_decode_raw(run, z), dims, values, display_range(run), var),
                   {"xlabel": "offset from the mean code, in standard deviations of the "
                              "dimension's posterior means (others at the mean code)"},
                   note=_active_note(run))


@register_figure(
    "latent_histograms", "Latent statistics",
    "Histograms of the posterior means per dimension (up to 25) against the prior's density "
    "(N(0, 1), or the model's own prior drawn by sampling: a VampPrior, a fitted code "
    "Gaussian), with mean / std / min / max. A VAE's means should roughly fill the prior; a "
    "spike at 0 is an unused dimension.",
    order=52, cost=12,
)
def _histograms(run: Run) -> Built:
    import torch

    from vaelab.models.base import BaseModel

    model, prior, name = run.model, None, "N(0, 1)"
    if type(model).prior_sample is not BaseModel.prior_sample and model.prior_draws > 0:
        model.eval()  # not N(0, I): the curve is the density of the model's own prior draws
        gen = torch.Generator(device=run.device).manual_seed(run.config.train.seed)
        with torch.no_grad():
            prior = model.prior_sample(model.prior_draws, gen)[:, :25].float().cpu().numpy()
        name = model.prior_name
    return Drawing(f"{ANALYSIS}:latent_histograms", (run.latents()["mu"],),
                   {"prior": prior, "prior_name": name}, note=_active_note(run))


def _two_inputs(y: np.ndarray | None, n: int) -> tuple[int, int]:
    """Test rows 0 and the first row with another label (rows 0 and 1 without labels)."""
    if y is None:
        return 0, min(1, n - 1)
    other = np.flatnonzero(y != y[0])
    return 0, int(other[0]) if len(other) else min(1, n - 1)


@register_figure(
    "interpolation", "Interpolation",
    "The decoder along the line (top) and the great circle (bottom) between the codes of two "
    "test inputs of different labels (framed). Plausible images all the way mean no holes "
    "between them.",
    order=60,
)
def _interpolation(run: Run) -> Built:
    from vaelab.latent import interpolate

    lat = run.latents()
    mu, y = lat["mu"], lat.get("y")
    if not _is_image(run) or len(mu) < 2:
        return None
    i, j = _two_inputs(y, len(mu))
    lin = interpolate(mu[i], mu[j], 10, "linear")
    sph = interpolate(mu[i], mu[j], 10, "slerp")
    yy = None if y is None else np.where(np.arange(10) < 5, y[i], y[j])
    ends = run.preprocessor.inverse(np.asarray(run.data.test.x[[i, j]]))
    dist = float(np.linalg.norm(mu[i] - mu[j]))
    return Drawing(f"{ANALYSIS}:interpolation",
                   (_decode_raw(run, lin, yy), _decode_raw(run, sph, yy), display_range(run)),
                   {"ends": (ends[0], ends[1])},
                   note=f"test rows {i} and {j}; distance between their codes {dist:.2f}")


@register_figure(
    "attribute_vectors", "Attribute vectors",
    "The difference between the mean codes of two labels, added to codes of a third label "
    "(top: decoded codes, bottom: codes + vector). If the bottom row moves towards the target "
    "label, directions in the latent space carry meaning.",
    order=61,
)
def _attributes(run: Run) -> Built:
    from vaelab.evaluate.latent_metrics import knn_predict
    from vaelab.latent import apply_attribute

    lat = run.latents()
    y = lat.get("y")
    if not _is_image(run) or y is None or len(np.unique(y[y >= 0])) < 3:
        return None
    a, b, c = (int(v) for v in np.unique(y[y >= 0])[:3])
    mu = lat["mu"]
    base, moved = apply_attribute(mu, y, a, b, c, n=8)
    names = run.data.label_names or [str(k) for k in range(int(y.max()) + 1)]
    title = f"codes of '{names[c]}' plus (mean code of '{names[b]}' - mean code of '{names[a]}')"
    known = y >= 0
    pred = knn_predict(mu[known], y[known], moved, k=5)
    note = (f"5-NN on the test codes: {int((pred == b).sum())} of {len(moved)} moved codes "
            f"read as '{names[b]}', {int((pred == c).sum())} still as '{names[c]}'")
    yy = np.full(len(base), c, dtype=np.int64)
    return Drawing(f"{ANALYSIS}:attribute_vectors",
                   (_decode_raw(run, base, yy), _decode_raw(run, moved, yy), title,
                    display_range(run)), note=note)


@register_figure(
    "denoising", "Denoising",
    "Noisy test inputs (the corruption used in training), the denoising autoencoder's output, "
    "and the clean originals. The middle row should look like the bottom one.",
    order=62,
)
def _denoising(run: Run) -> Built:
    import torch

    model = run.model
    if not hasattr(model, "corrupt") or not _is_image(run):
        return None
    clean = np.asarray(run.data.test.x[:10])
    gen = torch.Generator().manual_seed(run.config.train.seed)
    noisy = model.corrupt(torch.as_tensor(clean), generator=gen).numpy()
    out = run.reconstruct(noisy)
    note = (f"MSE to the clean inputs: noisy {np.mean((noisy - clean) ** 2):.4g}, denoised "
            f"{np.mean((out - clean) ** 2):.4g} (model space, these 10 examples)")
    pre = run.preprocessor
    return Drawing(f"{ANALYSIS}:denoising_triplets",
                   (pre.inverse(noisy), pre.inverse(out), pre.inverse(clean), display_range(run)),
                   note=note)


from vaelab import factor_figures  # noqa: E402, F401  (registers the figures of known factors)
