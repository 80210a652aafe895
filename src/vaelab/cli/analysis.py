"""Verbs over a finished run directory: evaluate, sample, reconstruct, interpolate, traverse,
encode, decode, plot. Each writes files (into RUN/outputs unless --out) and prints where."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vaelab.errors import DataError, VaelabError

if TYPE_CHECKING:
    import numpy as np

RUN = click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))


def _open(run_dir: str):
    from vaelab.run import Run, check_run_dir

    check_run_dir(Path(run_dir))
    return Run.load(run_dir)


def _out(run, out: str | None, name: str) -> Path:
    path = Path(out) if out else run.path / "outputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save_images(run, arrays: np.ndarray, path: Path, title: str, ncols: int = 10) -> None:
    import numpy as np

    from vaelab import plots
    from vaelab.figures import display_range
    from vaelab.plots.common import save_figure

    raw = run.preprocessor.inverse(arrays)
    if raw.ndim == 4:
        fig = plots.image_grid(raw, ncols=min(ncols, len(raw)), title=title,
                               value_range=display_range(run))
    else:
        fig = plots.samples(raw, feature_names=run.data.test.feature_names)
    save_figure(fig, path.with_suffix(".png"))
    np.save(path.with_suffix(".npy"), raw)


def register(group: click.Group) -> None:
    @group.command()
    @RUN
    @click.option("--iwae-k", default=1000, show_default=True, help="Importance samples (K).")
    @click.option("--iwae-rows", default=0, show_default=True,
                  help="Test rows for the IWAE estimate (0 = all; training's default is the "
                       "first 1,000).")
    def evaluate(run_dir: str, iwae_k: int, iwae_rows: int) -> None:
        """Recompute the test metrics (IWAE with K samples) and diagnostics into metrics.json."""
        from vaelab.pipeline import evaluate_run, summary_lines

        if iwae_k < 0:
            raise click.BadParameter("must be 0 or more", param_hint="--iwae-k")
        if iwae_rows < 0:
            raise click.BadParameter("must be 0 or more", param_hint="--iwae-rows")
        from vaelab.status import redo_step

        run = _open(run_dir)
        with redo_step(run.path, "evaluate"):
            metrics = evaluate_run(run, iwae_k=iwae_k, iwae_rows=iwae_rows)
        for line in summary_lines(metrics):
            click.echo(line)
        click.echo(f"wrote {run.path / 'metrics.json'}")

    @group.command()
    @RUN
    @click.option("-n", "count", default=64, show_default=True, help="How many samples.")
    @click.option("--label", default=None, type=int, help="Class to generate (cvae).")
    @click.option("--seed", default=0, show_default=True)
    @click.option("--sampler", type=click.Choice(["prior", "gmm"]), default="prior",
                  show_default=True,
                  help="Where codes come from: the model's prior, or a Gaussian mixture fitted "
                       "to the training codes (fitted on first use, saved in RUN/samplers).")
    @click.option("--out", default=None, help="Output path without suffix (.png and .npy); for a "
                  "run on a table, the CSV of synthetic rows (default RUN/outputs/samples.csv).")
    def sample(run_dir: str, count: int, label: int | None, seed: int, sampler: str,
               out: str | None) -> None:
        """Decode codes drawn from the prior (or, with --sampler gmm, from a GMM on the codes)."""
        import numpy as np

        if not 1 <= count <= 1_000_000:
            raise click.BadParameter("must be between 1 and 1000000", param_hint="-n")
        run = _open(run_dir)
        if run.preprocessor.kind == "columns":  # a table: synthetic rows as a CSV
            from vaelab.tabular.synthesize import sample_to_csv

            click.echo(sample_to_csv(run, count, seed=seed, sampler=sampler, label=label,
                                     out=out))
            return
        if count > 10000:
            raise click.BadParameter("must be between 1 and 10000 for images", param_hint="-n")
        y = None if label is None else np.full(count, label, dtype=np.int64)
        path = _out(run, out, "samples" if sampler == "prior" else f"samples_{sampler}")
        if sampler != "prior" and not (run.path / "samplers" / f"{sampler}.json").exists():
            click.echo(f"fitting the {sampler} sampler on the training codes "
                       f"(saved in {run.path / 'samplers'})")
        arrays = run.sample(count, seed=seed, y=y, sampler=sampler)
        _save_images(run, arrays, path,
                     f"{count} samples" + ("" if sampler == "prior" else f" ({sampler})"))
        click.echo(f"wrote {path.with_suffix('.png')} and {path.with_suffix('.npy')}")

    @group.command()
    @RUN
    @click.option("-n", "count", default=10, show_default=True, help="Test examples.")
    @click.option("--out", default=None)
    def reconstruct(run_dir: str, count: int, out: str | None) -> None:
        """Reconstruct the first N test examples (figure + arrays)."""
        import numpy as np

        from vaelab.plots.common import save_figure

        if not 1 <= count <= 1000:
            raise click.BadParameter("must be between 1 and 1000", param_hint="-n")
        run = _open(run_dir)
        test = run.data.test
        x = np.asarray(test.x[:count])
        rec = run.reconstruct(x, None if test.y is None else test.y[:count])
        path = _out(run, out, "reconstructions")
        from vaelab import plots
        from vaelab.figures import display_range

        pre = run.preprocessor
        fig = plots.reconstructions(pre.inverse(x), pre.inverse(rec), display_range(run),
                                    test.feature_names)
        save_figure(fig, path.with_suffix(".png"))
        np.savez(path.with_suffix(".npz"), original=pre.inverse(x), reconstruction=pre.inverse(rec))
        click.echo(f"wrote {path.with_suffix('.png')} and {path.with_suffix('.npz')}")

    @group.command()
    @RUN
    @click.option("--from", "a", default=0, show_default=True, help="Test index of the start.")
    @click.option("--to", "b", default=1, show_default=True, help="Test index of the end.")
    @click.option("--steps", default=10, show_default=True)
    @click.option("--method", type=click.Choice(["both", "linear", "slerp"]), default="both",
                  show_default=True, help="Straight line, great circle (slerp), or both.")
    @click.option("--out", default=None, help="Output path without suffix (.png and .npz).")
    def interpolate(run_dir: str, a: int, b: int, steps: int, method: str,
                    out: str | None) -> None:
        """Decode the path between the codes of two test examples."""
        import numpy as np

        from vaelab import plots
        from vaelab.figures import display_range
        from vaelab.latent import interpolate as interp
        from vaelab.plots.analysis import interpolation
        from vaelab.plots.common import save_figure

        if not 2 <= steps <= 100:
            raise click.BadParameter("must be between 2 and 100", param_hint="--steps")
        run = _open(run_dir)
        mu = run.latents()["mu"]
        for i in (a, b):
            if not 0 <= i < len(mu):
                raise click.BadParameter(f"test index {i} is outside 0..{len(mu) - 1}")
        pre = run.preprocessor
        paths = {m: pre.inverse(run.decode(interp(mu[a], mu[b], steps, m)))
                 for m in (("linear", "slerp") if method == "both" else (method,))}
        path = _out(run, out, f"interpolation_{a}_{b}_{method}")
        ends = pre.inverse(np.asarray(run.data.test.x[[a, b]]))
        if ends.ndim == 4 and len(paths) == 2:
            fig = interpolation(paths["linear"], paths["slerp"], display_range(run),
                                ends=(ends[0], ends[1]))
        elif ends.ndim == 4:
            strip = np.concatenate([ends[:1], paths[method], ends[1:]])
            fig = plots.image_grid(strip, ncols=len(strip), value_range=display_range(run),
                                   title=f"{method} interpolation, test {a} -> {b} (first and "
                                         "last: the inputs)")
        else:
            fig = plots.samples(np.concatenate(list(paths.values())),
                                feature_names=run.data.test.feature_names)
        save_figure(fig, path.with_suffix(".png"))
        np.savez(path.with_suffix(".npz"), inputs=ends, **paths)
        click.echo(f"wrote {path.with_suffix('.png')} and {path.with_suffix('.npz')}")

    @group.command()
    @RUN
    @click.option("--dim", default=0, show_default=True, help="Latent dimension (0-based).")
    @click.option("--span", default=3.0, show_default=True)
    @click.option("--steps", default=11, show_default=True)
    @click.option("--out", default=None)
    def traverse(run_dir: str, dim: int, span: float, steps: int, out: str | None) -> None:
        """Sweep one latent dimension around the mean code."""
        import numpy as np

        from vaelab.latent import traverse as trav

        run = _open(run_dir)
        mu = run.latents()["mu"]
        if not 0 <= dim < mu.shape[1]:
            raise click.BadParameter(f"dimension {dim} is outside 0..{mu.shape[1] - 1}")
        values = np.linspace(-span, span, steps, dtype=np.float32)
        path = _out(run, out, f"traverse_z{dim}")
        _save_images(run, run.decode(trav(mu.mean(0), dim, values)), path,
                     f"z{dim + 1} from {-span:g} to {span:g}", ncols=steps)
        click.echo(f"wrote {path.with_suffix('.png')} and {path.with_suffix('.npy')}")

    @group.command()
    @RUN
    @click.option("--split", type=click.Choice(["train", "val", "test"]), default="test")
    @click.option("--out", default=None, help="A .npy, .npz or .csv path.")
    def encode(run_dir: str, split: str, out: str | None) -> None:
        """Write the latent means (and log-variances, labels) of a split."""
        import numpy as np

        from vaelab.evaluate import encode_dataset

        run = _open(run_dir)
        ds = getattr(run.data, split)
        mu, lv = encode_dataset(run.model, ds.x, ds.y)
        path = Path(out) if out else run.path / "outputs" / f"latents_{split}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            cols = [f"z{i + 1}" for i in range(mu.shape[1])]
            table = mu
            if ds.y is not None:
                cols.append("label")
                table = np.column_stack([mu, ds.y])
            np.savetxt(path, table, delimiter=",", header=",".join(cols), comments="",
                       fmt="%.6g")
        elif path.suffix == ".npy":
            np.save(path, mu)
        else:
            extra = {} if lv is None else {"logvar": lv}
            if ds.y is not None:
                extra["y"] = ds.y
            np.savez(path, mu=mu, **extra)
        click.echo(f"wrote {path} ({len(mu)} codes of dimension {mu.shape[1]})")

    @group.command()
    @RUN
    @click.argument("codes", type=click.Path(dir_okay=False))
    @click.option("--out", default=None)
    def decode(run_dir: str, codes: str, out: str | None) -> None:
        """Decode latent codes from a CSV (one code per row) or .npy file."""
        import numpy as np

        run = _open(run_dir)
        p = Path(codes)
        try:
            if p.suffix == ".npy":
                z = np.load(p, allow_pickle=False)
            else:
                first = p.read_text(encoding="utf-8").split("\n", 1)[0]
                header = any(c.isalpha() and c not in "eE" for c in first.replace("nan", ""))
                z = np.loadtxt(p, delimiter=",", ndmin=2, dtype=np.float32,
                               skiprows=1 if header else 0)
                if header and first.split(",")[-1].strip() == "label":
                    z = z[:, :-1]  # a file written by `vaelab encode --out x.csv`
        except (OSError, ValueError) as exc:
            raise DataError(f"{p} cannot be read as latent codes ({exc}); give a CSV of numbers, "
                            "one code per row.") from None
        z = np.asarray(z, dtype=np.float32).reshape(len(z), -1)
        if z.shape[1] != run.model.latent_dim:
            raise DataError(f"{p} holds codes of length {z.shape[1]} but the model's latent has "
                            f"{run.model.latent_dim} dimensions.")
        if not np.isfinite(z).all():
            raise DataError(f"{p} holds NaN or infinite codes; give finite numbers.")
        path = _out(run, out, f"decoded_{p.stem}")
        _save_images(run, run.decode(z), path, f"{len(z)} decoded codes")
        click.echo(f"wrote {path.with_suffix('.png')} and {path.with_suffix('.npy')}")

    @group.command()
    @RUN
    @click.option("--only", default=None, help="Comma-separated figure names.")
    def plot(run_dir: str, only: str | None) -> None:
        """Render the run's figures into RUN/figures."""
        from vaelab.figures import FIGURES, render_figures
        from vaelab.status import redo_step

        run = _open(run_dir)
        names = None
        if only:
            names = [n.strip() for n in only.split(",")]
            known = {f.name for f in FIGURES}
            bad = [n for n in names if n not in known]
            if bad:
                raise VaelabError(f"unknown figure(s) {', '.join(bad)}; choose from "
                                  f"{', '.join(sorted(known))}.")
        with redo_step(run.path, "plot") if names is None else nullcontext():
            written = render_figures(run, names)
        for path in written:
            click.echo(f"wrote {path}")
