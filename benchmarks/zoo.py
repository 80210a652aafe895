"""Model zoo: every vaelab family on one dataset, the same nets, epochs and seed, one table.

Each row is trained and evaluated by ``vaelab.train`` (what a user's run does, with
``eval_k`` / ``eval_rows`` set to the table's IWAE protocol), then read from its metrics.json:
test negative ELBO and IWAE NLL (K = 1000 on the first ``--iwae-rows`` test images) with
standard errors, the Fréchet distance of prior and of GMM samples, active units, kNN accuracy,
training time and parameter count. Deterministic families (ae, dae, wae, rae, vq-vae) have no
posterior: their row shows the reconstruction NLL instead (and, for the VQ-VAE, the bound
reconstruction + -log p_prior(codes) under its PixelCNN). The per-image IWAE bounds behind
metrics.json's ``iwae_nll`` are recorded as vaelab computes them, so every family's IWAE NLL
is also given as a paired difference to the VAE's on the same images (same architecture).

Writes the raw results to benchmarks/results/zoo.json (``--dataset mnist``: zoo-mnist.json)
and the generated parts of docs/zoo.md (docs/zoo-mnist.md): the table, the literature's
targets met or missed, and the extra experiments, each between ``<!-- zoo:NAME -->`` markers,
leaving the prose around them as it is.

    python benchmarks/zoo.py                         # Fashion-MNIST, MLP rows + conv rows
    python benchmarks/zoo.py --dataset mnist         # binarised MNIST (downloads it)
    python benchmarks/zoo.py --dataset mnist --preprocess binarize-dynamic
    python benchmarks/zoo.py --experiments           # the shortfall experiments of docs/zoo.md
    python benchmarks/zoo.py --reuse                 # rewrite the doc from finished runs
    python benchmarks/zoo.py --smoke                 # 600 rows, 1 epoch, K = 10: a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vaelab

ROOT = Path(__file__).resolve().parent.parent


# -- what is trained ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One table row: a family, an architecture and the options that differ from the family's
    defaults (empty for most: the table measures what ``--model NAME`` gives)."""

    model: str
    arch: str = "mlp"
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    """Shown in the table; defaults to the family's name."""

    @property
    def name(self) -> str:
        return self.label or self.model

    @property
    def key(self) -> str:
        """Unique id (run folder, JSON key): ``<name>-<arch>``."""
        return slug(f"{self.name}-{self.arch}")


def slug(text: str) -> str:
    return re.sub(r"-+", "-", "".join(c if c.isalnum() else "-" for c in text.lower())).strip("-")


FAMILIES = ["vae", "iwae", "vamp", "vamp-iwae", "iaf", "hvae", "beta-tc-vae", "factor-vae",
            "dip-vae", "cvae", "guided-vae", "ae", "dae", "wae", "rae", "vq-vae"]
"""Every registered family, the table's order (likelihood families first)."""
MLP_ROWS = [Row(m, "mlp", {"discriminator_hidden": [256] * 6} if m == "factor-vae" else {})
            for m in FAMILIES]
"""factor-vae's default discriminator (6 x 1000 at latent 20) costs about 40 VAE steps per
step on a CPU; 6 x 256 is the width benchmarks/disentangle.py uses on a CPU as well."""
CONV_ROWS = [Row(m, "conv") for m in ("vae", "iwae", "vamp", "iaf", "hvae", "ae", "wae", "rae",
                                      "vq-vae")]
"""The conv sweep: the families of the literature's claims and the VQ-VAE's own grid form."""
EXPERIMENTS: list[Row] = [
    Row("hvae", "mlp", {"kl_warmup_epochs": 10}, label="hvae, KL warm-up 10"),
    Row("vae", "mlp", {"kl_warmup_epochs": 10}, label="vae, KL warm-up 10"),
    Row("hvae", "mlp", {"kl_warmup_epochs": 10, "batch_norm": True},
        label="hvae, warm-up 10, batch norm"),
    Row("vae", "mlp", {"kl_warmup_epochs": 10, "batch_norm": True},
        label="vae, warm-up 10, batch norm"),
    Row("hvae", "mlp", {"epochs": 60}, label="hvae, 60 epochs"),
    Row("vae", "mlp", {"epochs": 60}, label="vae, 60 epochs"),
    Row("iaf", "conv", {"epochs": 20}, label="iaf, 20 epochs"),
    Row("vae", "conv", {"epochs": 20}, label="vae, 20 epochs"),
]
"""Rows run with ``--experiments`` (docs/zoo.md says why each one is there): Sønderby et al.
train the ladder VAE with KL warm-up and batch normalisation, and report that without them it
is no better than a VAE; the VAE with the same settings separates their own effect; 60 epochs
ask whether the two-layer model only converges more slowly; the conv IAF and VAE at twice the
conv rows' epochs, whether the flow only needs longer to pay off there."""

VAE_REFERENCE = "vae"
TARGETS_BELOW_VAE = {"vamp": 0.5, "vamp-iwae": 0.5, "iaf": 0.5, "hvae": 0.5,
                     "iwae": 0.0}
"""Family -> nats its IWAE NLL must be below the VAE's (same nets, epochs, seed)."""
TARGETS_GMM = ("ae", "wae", "rae")
"""Families whose GMM samples must have a lower Fréchet distance than their prior samples."""


@dataclass
class Protocol:
    """The settings every row shares."""

    dataset: str = "fashion-mnist"
    preprocess: str = "binarize"
    subset: int | None = None
    epochs: int = 20
    conv_epochs: int = 10
    conv_subset: int | None = None
    """Training rows of the conv rows (default: ``subset``): a CPU length for the conv sweep."""
    conv_iwae_k: int | None = None
    """K of the conv rows' IWAE estimate (default: ``iwae_k``)."""
    conv_iwae_rows: int | None = None
    """Test images of the conv rows' IWAE estimate (default: ``iwae_rows``)."""
    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    batch_size: int = 128
    lr: float = 1e-3
    iwae_k: int = 1000
    iwae_rows: int = 2000
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    data_dir: str | None = None
    """Where MNIST's four IDX files are, when it cannot be downloaded."""

    def for_arch(self, arch: str) -> tuple[int | None, int, int, int]:
        """(training rows, epochs, IWAE K, IWAE rows) of the rows of ``arch``."""
        if arch == "mlp":
            return self.subset, self.epochs, self.iwae_k, self.iwae_rows
        return (self.conv_subset or self.subset, self.conv_epochs,
                self.conv_iwae_k or self.iwae_k, self.conv_iwae_rows or self.iwae_rows)

    def options(self, row: Row) -> dict[str, Any]:
        """The keyword options of ``vaelab.train`` for ``row``."""
        subset, epochs, k, n = self.for_arch(row.arch)
        opts: dict[str, Any] = {
            "dataset": self.dataset, "data_dir": self.data_dir, "preprocess": self.preprocess,
            "subset": subset,
            "model": row.model, "arch": row.arch, "latent_dim": self.latent_dim,
            "hidden": list(self.hidden), "batch_size": self.batch_size, "lr": self.lr,
            "epochs": epochs, "seed": self.seed, "threads": self.threads, "eval_k": k,
            "eval_rows": n, "progress": False, "device": self.device,
        }
        opts.update(row.options)
        return {k: v for k, v in opts.items() if v is not None}


SMOKE = {"subset": 600, "epochs": 1, "conv_epochs": 1, "iwae_k": 10, "iwae_rows": 200}


# -- measuring one row -------------------------------------------------------------------------
@contextlib.contextmanager
def recorded_bounds() -> Iterator[list[Any]]:
    """Collect the per-example ``KSampleBounds`` that vaelab's test evaluation computes (a
    wrapper around ``importance_bounds`` as ``vaelab.evaluate.full`` calls it), so paired
    differences use the very samples behind metrics.json's ``iwae_nll``."""
    from vaelab.evaluate import full

    seen: list[Any] = []
    original = full.importance_bounds

    def recording(*args: Any, **kwargs: Any) -> Any:
        bounds = original(*args, **kwargs)
        seen.append(bounds)
        return bounds

    full.importance_bounds = recording
    try:
        yield seen
    finally:
        full.importance_bounds = original


@torch.no_grad()
def per_example_nll(run: vaelab.Run, x: np.ndarray, y: np.ndarray | None,
                    seed: int) -> np.ndarray:
    """Per-example single-sample negative ELBO (the reconstruction NLL for deterministic
    families) with the seed vaelab's ``elbo_metrics`` uses; plus, for a VQ-VAE, its code
    prior's -log p(codes): a bound on -log p(x) with the one-hot posterior."""
    model = run.model
    model.eval()
    saved, model.kl_scale = model.kl_scale, 1.0
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(x), 1024):
            xb = torch.as_tensor(np.asarray(x[start : start + 1024]), dtype=torch.float32,
                                 device=run.device)
            yb = None if y is None else torch.as_tensor(y[start : start + 1024],
                                                        device=run.device)
            per = model.loss(xb, yb).per_example.double()
            if run.config.model.model == "vq-vae":
                per = per + model.prior.nll(model.code_indices(xb)).double()
            out.append(per.cpu().numpy())
    model.kl_scale = saved
    return np.concatenate(out)


@torch.no_grad()
def binary_test_iwae(run: vaelab.Run, n: int, k: int, seed: int) -> np.ndarray:
    """IWAE bound on a seeded Bernoulli draw of the first ``n`` test images: the published
    protocol for dynamically binarised MNIST (vaelab's metrics use the grey levels there)."""
    from vaelab.evaluate.iwae import importance_bounds

    test = run.data.test
    x = torch.as_tensor(np.asarray(test.x[:n]), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    xb = torch.bernoulli(x, generator=gen).numpy()
    y = None if test.y is None else test.y[:n]
    return importance_bounds(run.model, xb, y, k=k, seed=seed).iwae


def se(values: np.ndarray) -> float:
    from vaelab.evaluate.metrics import standard_error

    return standard_error(values)


def measure(row: Row, protocol: Protocol, folder: Path, reuse: bool) -> dict[str, Any]:
    """Train ``row`` into ``folder`` (or, with ``reuse``, read the finished run there) and
    return its numbers; per-image bounds are kept in ``folder/zoo_bounds.npz``."""
    opts = protocol.options(row)
    bounds_file = folder / "zoo_bounds.npz"
    clock = folder / "zoo_seconds.txt"
    if reuse and bounds_file.exists() and clock.exists():
        run = vaelab.Run.load(folder)
        wall = float(clock.read_text())
    else:
        t0 = time.perf_counter()
        with recorded_bounds() as seen:
            run = vaelab.train(None, out=str(folder), force=True, log=None, report=False,
                               **opts)
        wall = time.perf_counter() - t0
        t = run.metrics["test"]
        arrays: dict[str, np.ndarray] = {}
        if seen:
            arrays["iwae"], arrays["elbo_k"] = -seen[-1].iwae, -seen[-1].elbo
            if not math.isclose(float(arrays["iwae"].mean()), t["iwae_nll"], rel_tol=1e-9):
                raise RuntimeError(f"{row.key}: recorded bounds do not match metrics.json")
        test = run.data.test
        arrays["nll"] = per_example_nll(run, test.x, test.y if run.model.uses_labels else None,
                                        protocol.seed)
        if protocol.preprocess == "binarize-dynamic" and run.model.variational:
            _, _, k, n = protocol.for_arch(row.arch)
            arrays["iwae_binary"] = -binary_test_iwae(run, n, k, protocol.seed)
        np.savez(bounds_file, **arrays)
        clock.write_text(f"{wall:.1f}\n")
    m = run.metrics
    t = m["test"]
    with np.load(bounds_file) as f:
        arrays = {k: f[k] for k in f.files}
    gmm = json.loads((folder / "samplers" / "gmm.json").read_text()) \
        if (folder / "samplers" / "gmm.json").exists() else {}
    out: dict[str, Any] = {
        "key": row.key, "name": row.name, "model": row.model, "arch": row.arch,
        "options": row.options, "variational": bool(run.model.variational),
        "nll": float(arrays["nll"].mean()), "nll_se": se(arrays["nll"]),
        "nll_kind": ("neg_elbo" if run.model.variational else
                     "recon_plus_prior_nll" if row.model == "vq-vae" else "recon_nll"),
        "neg_elbo": t.get("neg_elbo"), "neg_elbo_se": t.get("neg_elbo_se"),
        "recon": t.get("recon", t.get("recon_nll")), "kl": t.get("kl"),
        "recon_nll": t.get("recon_nll"),
        "iwae_nll": t.get("iwae_nll"), "iwae_nll_se": t.get("iwae_nll_se"),
        "iwae_k": t.get("iwae_k"), "iwae_n": t.get("iwae_n"),
        "frechet_prior": t.get("frechet_distance"), "frechet_gmm": t.get("frechet_distance_gmm"),
        "gmm_components": gmm.get("components", gmm.get("k")),
        "active_units": t.get("active_units"), "latent_dim": t.get("latent_dim"),
        "knn_accuracy": t.get("knn_accuracy"), "recon_mse": t.get("recon_mse"),
        "n_test": t.get("n_test"), "train_seconds": m["training"]["train_seconds"],
        "epochs": m["training"]["epochs_run"],
        "best_epoch": m["training"]["best_epoch"], "wall_seconds": wall,
        "parameters": sum(p.numel() for p in run.model.parameters()),
    }
    if row.model == "vq-vae":
        out.update({k: t[k] for k in ("codebook_usage", "codebook_perplexity") if k in t})
        out["test_prior_nll"] = out["nll"] - float(t["recon_nll"])
    if row.model == "hvae":
        out["layer_active_units"] = {k.removeprefix("active_units_"): v for k, v in
                                     run.model.test_metrics(run.data.test.x).items()}
    if "iwae_binary" in arrays:
        out["iwae_binary_nll"] = float(arrays["iwae_binary"].mean())
        out["iwae_binary_nll_se"] = se(arrays["iwae_binary"])
    out["_arrays"] = arrays  # for the paired differences; not written to the JSON
    return out


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-image differences a - b (same images, same order)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(d.mean()), se(d)


def add_paired(rows: list[dict[str, Any]], references: list[dict[str, Any]]) -> None:
    """Each variational row's IWAE NLL minus the reference VAE's of the same architecture,
    per image (``references``: the table's VAE rows)."""
    ref = {r["arch"]: r for r in references if r["key"] == f"{VAE_REFERENCE}-{r['arch']}"}
    for r in rows:
        base = ref.get(r["arch"])
        if base is None or "iwae" not in r["_arrays"] or "iwae" not in base["_arrays"]:
            continue
        r["iwae_minus_vae"], r["iwae_minus_vae_se"] = paired(r["_arrays"]["iwae"],
                                                             base["_arrays"]["iwae"])
        if "iwae_binary" in r["_arrays"]:
            r["iwae_binary_minus_vae"], r["iwae_binary_minus_vae_se"] = paired(
                r["_arrays"]["iwae_binary"], base["_arrays"]["iwae_binary"])


# -- the verdicts and the document -------------------------------------------------------------
def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The literature's claims at equal epochs and nets, met or missed, with the numbers."""
    by_key = {r["key"]: r for r in results}
    lines = []
    for arch in ("mlp", "conv"):
        for fam, margin in TARGETS_BELOW_VAE.items():
            r = by_key.get(f"{fam}-{arch}")
            if r is None or "iwae_minus_vae" not in r:
                continue
            d, s = r["iwae_minus_vae"], r["iwae_minus_vae_se"]
            ok = d <= -margin if margin > 0 else d < 0
            want = f"at least {margin:g} nat below the VAE's" if margin > 0 else "below the VAE's"
            lines.append(f"- **{fam} ({arch})**: IWAE NLL {want}: {d:+.2f} ± {s:.2f} nats "
                         f"(paired) — **{'met' if ok else 'missed'}**.")
        for fam in TARGETS_GMM:
            r = by_key.get(f"{fam}-{arch}")
            if r is None or r["frechet_gmm"] is None:
                continue
            ok = r["frechet_gmm"] < r["frechet_prior"]
            lines.append(f"- **{fam} ({arch})**: GMM samples closer than prior samples: "
                         f"Fréchet distance {r['frechet_gmm']:.1f} (GMM) vs "
                         f"{r['frechet_prior']:.1f} (prior) — **{'met' if ok else 'missed'}**.")
    return lines


def fmt(v: Any, spec: str = ".1f") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else \
        format(v, spec)


def table(results: list[dict[str, Any]], binary: bool = False) -> list[str]:
    """The markdown table of ``results`` (one line per row)."""
    ks = sorted({r["iwae_k"] for r in results if r.get("iwae_k")})
    k_text = " / ".join(map(str, ks)) or "-"
    head = ["family", "net", "test -ELBO ± se", f"IWAE NLL (K={k_text}) ± se",
            "− VAE (paired) ± se"]
    if binary:
        head += ["IWAE NLL, binarised test ± se", "− VAE ± se"]
    head += ["FD prior", "FD GMM (K)", "active units", "kNN acc.", "train s", "params"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    marks = {"recon_nll": " †", "recon_plus_prior_nll": " ‡"}
    for r in results:
        cells = [r["name"], r["arch"], f"{r['nll']:.2f} ± {r['nll_se']:.2f}"
                 + marks.get(r["nll_kind"], "")]
        if r["iwae_nll"] is not None:
            k_mark = f" (K={r['iwae_k']})" if len(ks) > 1 else ""
            cells.append(f"{r['iwae_nll']:.2f} ± {r['iwae_nll_se']:.2f}{k_mark}")
        else:
            cells.append("—")
        reference = r["key"] == f"{VAE_REFERENCE}-{r['arch']}"
        cells.append("reference" if reference else
                     f"{r['iwae_minus_vae']:+.2f} ± {r['iwae_minus_vae_se']:.2f}"
                     if "iwae_minus_vae" in r else "—")
        if binary:
            cells.append(f"{r['iwae_binary_nll']:.2f} ± {r['iwae_binary_nll_se']:.2f}"
                         if "iwae_binary_nll" in r else "—")
            cells.append("reference" if reference and "iwae_binary_nll" in r else
                         f"{r['iwae_binary_minus_vae']:+.2f} ± {r['iwae_binary_minus_vae_se']:.2f}"
                         if "iwae_binary_minus_vae" in r else "—")
        gmm = fmt(r["frechet_gmm"])
        if r.get("gmm_components") is not None and gmm != "—":
            gmm += f" ({r['gmm_components']})"
        au = f"{r['active_units']}/{r['latent_dim']}" if r["active_units"] is not None else "—"
        if "layer_active_units" in r:
            au += " (" + ", ".join(f"{k} {v}" for k, v in r["layer_active_units"].items()) + ")"
        if r["model"] == "vq-vae":
            au = "— (codes)"
        cells += [fmt(r["frechet_prior"]), gmm, au, fmt(r["knn_accuracy"], ".3f"),
                  f"{r['train_seconds']:.0f}", f"{r['parameters']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def protocol_text(protocol: Protocol, meta: dict[str, Any]) -> list[str]:
    p = protocol
    rows = f"{p.subset:,} training rows" if p.subset else "every training row"
    c_subset, _, c_k, c_n = p.for_arch("conv")
    conv = "" if (c_subset, c_k, c_n) == (p.subset, p.iwae_k, p.iwae_rows) else (
        f" Conv rows at a CPU length: {f'{c_subset:,}' if c_subset else 'every'} training rows, "
        f"IWAE NLL with K = {c_k} on the first {c_n:,} test images (their test -ELBO on all).")
    return [
        f"- Data: `{p.dataset}`, {rows} (vaelab's split: 10% of them for validation), "
        f"`--preprocess {p.preprocess}`, Bernoulli likelihood, seed {p.seed}.",
        f"- Nets: MLP {'-'.join(map(str, p.hidden))} (decoder mirrored) or vaelab's conv nets "
        f"(`--arch conv`, channels 32-64), latent {p.latent_dim}, ReLU, batch {p.batch_size}, "
        f"Adam {p.lr:g}, constant rate; best validation epoch kept. MLP rows "
        f"{p.epochs} epochs, conv rows {p.conv_epochs} epochs. Every other option is the "
        "family's default (factor-vae: a 6 x 256 discriminator).",
        f"- Evaluation (`vaelab.train` with `eval_k={p.iwae_k}`, `eval_rows={p.iwae_rows}`): "
        f"-ELBO on all {meta.get('n_test', '?'):,} test images (one posterior sample each); IWAE "
        f"NLL with K = {p.iwae_k} on the first {p.iwae_rows:,} test images, the same images for "
        "every row; Fréchet distances between 2,000 samples and 2,000 test images in vaelab's "
        "own 64-d classifier features (comparable within this table, not with published FIDs); "
        "kNN (k = 5) on posterior means, fitted on 5,000 training codes." + conv,
        f"- Machine: {meta.get('machine', '?')}, torch {meta.get('torch', '?')}, "
        f"{p.threads} torch threads; whole run {meta.get('wall_minutes', 0):.0f} minutes.",
    ]


def replace_block(text: str, name: str, lines: list[str]) -> str:
    """Put ``lines`` between ``<!-- zoo:name -->`` and ``<!-- /zoo:name -->`` (appended when
    the markers are missing)."""
    start, end = f"<!-- zoo:{name} -->", f"<!-- /zoo:{name} -->"
    block = "\n".join([start, *lines, end])
    if start in text and end in text:
        i, j = text.index(start), text.index(end) + len(end)
        return text[:i] + block + text[j:]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_doc(path: Path, protocol: Protocol, results: list[dict[str, Any]],
              experiments: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else \
        f"# Model zoo ({protocol.dataset})\n"
    binary = protocol.preprocess == "binarize-dynamic"
    text = replace_block(text, "protocol", protocol_text(protocol, meta))
    if results:
        text = replace_block(text, "table", table(results, binary))
        text = replace_block(text, "targets", verdicts(results))
    if experiments:
        text = replace_block(text, "experiments", table(experiments, binary))
    path.write_text(text, encoding="utf-8")


# -- main --------------------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{os.cpu_count()}-core CPU ({cpu})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--preprocess", default="binarize",
                    choices=["binarize", "binarize-dynamic"])
    ap.add_argument("--subset", type=int, default=None, help="training rows (default: all)")
    ap.add_argument("--epochs", type=int, default=Protocol.epochs)
    ap.add_argument("--conv-epochs", type=int, default=Protocol.conv_epochs)
    ap.add_argument("--latent-dim", type=int, default=Protocol.latent_dim)
    ap.add_argument("--conv-subset", type=int, default=None,
                    help="training rows of the conv rows (default: --subset)")
    ap.add_argument("--conv-iwae-k", type=int, default=None, help="default: --iwae-k")
    ap.add_argument("--conv-iwae-rows", type=int, default=None, help="default: --iwae-rows")
    ap.add_argument("--iwae-k", type=int, default=Protocol.iwae_k)
    ap.add_argument("--iwae-rows", type=int, default=Protocol.iwae_rows)
    ap.add_argument("--threads", type=int, default=Protocol.threads)
    ap.add_argument("--seed", type=int, default=Protocol.seed)
    ap.add_argument("--device", default=Protocol.device, help="cpu, cuda, mps or auto")
    ap.add_argument("--data-dir", default=None, help="folder of MNIST's IDX files (offline)")
    ap.add_argument("--only", default="", help="comma-separated row keys (vae-mlp,vamp-conv)")
    ap.add_argument("--no-conv", action="store_true", help="MLP rows only")
    ap.add_argument("--experiments", action="store_true", help="run EXPERIMENTS as well")
    ap.add_argument("--reuse", action="store_true", help="read finished runs, train the rest")
    ap.add_argument("--smoke", action="store_true", help="tiny settings (600 rows, 1 epoch)")
    ap.add_argument("--runs", type=Path, default=None, help="run folders (default runs/zoo...)")
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    protocol = Protocol(dataset=args.dataset, preprocess=args.preprocess, subset=args.subset,
                        epochs=args.epochs, conv_epochs=args.conv_epochs,
                        conv_subset=args.conv_subset, conv_iwae_k=args.conv_iwae_k,
                        conv_iwae_rows=args.conv_iwae_rows,
                        latent_dim=args.latent_dim, iwae_k=args.iwae_k,
                        iwae_rows=args.iwae_rows, seed=args.seed, threads=args.threads,
                        device=args.device, data_dir=args.data_dir)
    suffix = "" if args.dataset == "fashion-mnist" else f"-{args.dataset}"
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(protocol, k, v)
        suffix += "-smoke"
    runs = args.runs or ROOT / "runs" / f"zoo{suffix}"
    doc = args.doc or (ROOT / "docs" / f"zoo{suffix}.md" if not args.smoke else
                       runs / "zoo.md")
    out_json = args.json or (ROOT / "benchmarks" / "results" / f"zoo{suffix}.json"
                             if not args.smoke else runs / "zoo.json")
    rows = MLP_ROWS + ([] if args.no_conv else CONV_ROWS)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only:
        rows = [r for r in rows if r.key in only]
    exp_rows = EXPERIMENTS if args.experiments else []

    saved = json.loads(out_json.read_text()) if out_json.exists() else {}
    results: list[dict[str, Any]] = []
    experiments: list[dict[str, Any]] = []
    for group, todo, folder in ((results, rows, runs), (experiments, exp_rows, runs / "exp")):
        for row in todo:
            r = measure(row, protocol, folder / row.key, args.reuse)
            group.append(r)
            print(f"{row.key}: nll {r['nll']:.2f}, iwae {fmt(r['iwae_nll'], '.2f')}, FD "
                  f"{fmt(r['frechet_prior'])} / {fmt(r['frechet_gmm'])}, train "
                  f"{r['train_seconds']:.0f} s, wall {r['wall_seconds']:.0f} s", flush=True)
    # rows not run this time keep their saved results (with their per-image bounds)
    for group, name, folder in ((results, "results", runs),
                                (experiments, "experiments", runs / "exp")):
        have = {r["key"] for r in group}
        for old in saved.get(name, []):
            bounds = folder / old["key"] / "zoo_bounds.npz"
            if old["key"] not in have and bounds.exists():
                with np.load(bounds) as f:
                    old["_arrays"] = {k: f[k] for k in f.files}
                group.append(old)
    order = {r.key: i for i, r in enumerate(MLP_ROWS + CONV_ROWS + EXPERIMENTS)}
    for group in (results, experiments):
        group.sort(key=lambda r: order.get(r["key"], len(order)))
    add_paired(results, results)
    add_paired(experiments, results)
    meta = {"machine": machine(), "torch": torch.__version__, "vaelab": vaelab.__version__,
            "wall_minutes": sum(r["wall_seconds"] for r in results + experiments) / 60,
            "n_test": results[0].get("n_test") if results else None,
            "protocol": asdict(protocol)}
    clean = [[{k: v for k, v in r.items() if k != "_arrays"} for r in g]
             for g in (results, experiments)]
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"meta": meta, "results": clean[0],
                                    "experiments": clean[1]}, indent=1) + "\n")
    write_doc(doc, protocol, results, experiments, meta)
    print("\n".join(table(results, protocol.preprocess == "binarize-dynamic")))
    print("\n".join(verdicts(results)))
    print(f"wrote {out_json} and {doc}")


if __name__ == "__main__":
    try:
        main()
    except vaelab.VaelabError as exc:  # a user's mistake or missing data: one sentence
        raise SystemExit(f"zoo.py: {exc}") from None
