"""Export a run's encoder and decoder to ONNX, with an ``export.json`` that lets people use them
without vaelab or torch (numpy + onnxruntime).

Built on the ``BaseModel`` surface only: the encoder graph is ``encode(x, y)`` (outputs ``mu``
and ``logvar``, or ``z`` for a deterministic code), the decoder graph is the likelihood's mean of
``decode(z, y)`` (``x_mean``: Bernoulli probabilities or the Gaussian mean) plus ``x_logvar`` for a
likelihood with a learned variance. A label input ``y`` is kept only where the traced graph reads
it (a cvae's encoder and decoder; a guided-vae uses labels in training only). The batch size is
dynamic. After export both graphs are run with onnxruntime on a batch of another size and
compared with PyTorch; the largest difference is recorded in export.json.

onnx, onnxscript and onnxruntime are imported here only (``pip install vaelab[onnx]``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vaelab.errors import VaelabError
from vaelab.likelihoods import Likelihood
from vaelab.models import BaseModel

FORMATS = ("onnx",)
"""Export formats ``vaelab export --format`` accepts."""

EXAMPLE_BATCH = 3
"""Batch size of the example inputs the graphs are traced with (any size works afterwards)."""
CHECK_BATCH = 5
"""Batch size of the onnxruntime-vs-PyTorch check run after export (differs from the above)."""
CHECK_TOLERANCE = 1e-3
"""Largest difference (relative to the outputs' scale) the post-export check accepts."""
PRIOR_DRAWS = 4096
"""Draws of the model's prior behind export.json's prior mean and standard deviation (a
standard error of about 0.016 standard deviations; a PixelCNN code prior draws them
autoregressively, so more would slow every export)."""

PREPROCESSING: dict[str, dict[str, str]] = {
    "none": {"forward": "x' = x", "inverse": "x = x'", "inverse_logvar": "logvar_raw = x_logvar"},
    "minmax": {
        "forward": "x' = clip((x - min) / (max - min), 0, 1)",
        "inverse": "x = x' * (max - min) + min",
        "inverse_logvar": "logvar_raw = x_logvar + 2 * log(max - min)",
    },
    "binarize-dynamic": {
        "forward": "x' = clip((x - min) / (max - min), 0, 1)  (pixels were resampled as binary "
                   "only while training)",
        "inverse": "x = x' * (max - min) + min",
        "inverse_logvar": "logvar_raw = x_logvar + 2 * log(max - min)",
    },
    "binarize": {
        "forward": "x' = 1 if clip((x - min) / (max - min), 0, 1) > threshold else 0",
        "inverse": "x = x' * (max - min) + min  (x' is the probability of a 1)",
        "inverse_logvar": "logvar_raw = x_logvar + 2 * log(max - min)",
    },
    "columns": {
        "forward": "a table by column types, one row of params.columns at a time: numeric "
                   "x'[slot] = (value - mean) / std; binary x'[slot] = 0 or 1 (its two "
                   "categories in order); categorical x'[slot + slots[k]] = 1 for category k "
                   "(a category not listed goes to the last, 'unknown', slot), other slots 0; "
                   "then x'[mask_slot] = 1 where the cell holds a value and 0 (with its own "
                   "slots 0) where it is missing",
        "inverse": "numeric value = x_mean[slot] * std + mean (round when integer); binary: "
                   "x_mean[slot] is the probability of the second category; categorical: "
                   "x_mean[slot : slot + width] are the probabilities of labels, in order",
        "inverse_logvar": "numeric: logvar_raw = x_logvar[slot] + 2 * log(std)",
    },
    "standardize": {
        "forward": "x' = (x - mean) / std, per feature of the example flattened in C order",
        "inverse": "x = x' * std + mean, per feature of the example flattened in C order",
        "inverse_logvar": "logvar_raw = x_logvar + 2 * log(std)",
    },
}
"""Each preprocessing kind (``vaelab.data.preprocessing.KINDS``) as formulas a user can apply."""


def export_onnx(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``export.json`` for a run; returns the folder
    (default ``RUN/export``)."""
    require_onnx()
    from vaelab.modelio import atomic_write_bytes, atomic_write_text
    from vaelab.run import Run, check_run_dir

    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    run = Run.load(run_dir)
    model = run.model.eval()
    if model.config.pixel_context:
        raise VaelabError(
            f"{run_dir} decodes pixel by pixel (pixel_context {model.config.pixel_context}), "
            "which one ONNX decoder graph cannot express; export a run trained with "
            "--pixel-context 0.")
    folder = Path(out) if out is not None else run_dir / "export"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"{folder} cannot be created ({exc.strerror}); pass a writable "
                          "folder as --out.") from None

    spec = build_specs(model)
    started = time.perf_counter()
    blobs: dict[str, bytes] = {}
    for part in spec.values():
        blobs[part["file"]], part["inputs"] = _export_graph(model, part)
    seconds = time.perf_counter() - started
    check = {name: _check_graph(model, part, blobs[part["file"]]) for name, part in spec.items()}

    cfg = run.saved_json("config.json")
    meta = {
        "format": "onnx",
        "vaelab_version": _version(),
        "torch_version": torch.__version__,
        "run": str(run_dir.resolve()),
        "model": model.config.model,
        "arch": model.config.arch,
        "variational": bool(model.variational),
        "input_shape": list(model.input_shape),
        "latent_dim": int(model.latent_dim),
        "labels": _labels(model, cfg, spec),
        "likelihood": _likelihood(model.likelihood),
        "prior": _prior(model),
        "preprocessing": describe_preprocessing(run.preprocessor.to_dict()),
        **{name: _public(part) for name, part in spec.items()},
        "check": {"batch_size": CHECK_BATCH, "max_abs_diff": check},
        "export_seconds": round(seconds, 3),
    }
    for file, blob in blobs.items():
        atomic_write_bytes(folder / file, blob)
    atomic_write_text(folder / "export.json", json.dumps(meta, indent=2))
    return folder


def require_onnx() -> None:
    """Raise one clear error when the ONNX packages are missing."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise VaelabError(f"ONNX export needs {' and '.join(missing)}, which {verb} not "
                          "installed; install the extra with `pip install vaelab[onnx]`.")


# -- the graphs --------------------------------------------------------------------------------
class _Encoder(nn.Module):
    """``encode(x, y)`` with its outputs as a flat tuple (no None)."""

    def __init__(self, model: BaseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, ...]:
        mu, logvar = self.model.encode(x, y)
        return (mu,) if logvar is None else (mu, logvar)


class _Decoder(nn.Module):
    """The likelihood's mean of ``decode(z, y)``, plus the log-variance where it is learned."""

    def __init__(self, model: BaseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor, y: Tensor | None = None) -> tuple[Tensor, ...]:
        params = self.model.decode(z, y)
        return decoder_outputs(self.model.likelihood, params)


def decoder_outputs(lik: Likelihood, params: Tensor) -> tuple[Tensor, ...]:
    """(mean,) or, for a likelihood with two parameters per feature, (mean, log-variance)."""
    mean = lik.mean(params)
    if lik.params_per_feature == 2 and hasattr(lik, "_split"):
        return mean, lik._split(params)[1]  # the clamped log-variance the log-density uses
    return (mean,)


def build_specs(model: BaseModel) -> dict[str, dict[str, Any]]:
    """Inputs, outputs and example tensors of both graphs, found by calling the model once."""
    gen = torch.Generator().manual_seed(0)
    n = EXAMPLE_BATCH
    x = torch.rand(n, *model.input_shape, generator=gen)
    z = torch.randn(n, model.latent_dim, generator=gen)
    k = model.spec.num_classes
    y = torch.arange(n) % k if (model.uses_labels and k) else None
    with torch.no_grad():
        enc_out = _Encoder(model)(x, y)
        dec_out = _Decoder(model)(z, y)
    enc_names = ["mu", "logvar"] if len(enc_out) == 2 else ["z"]
    dec_names = ["x_mean", "x_logvar"][: len(dec_out)]
    return {
        "encoder": {"file": "encoder.onnx", "module": _Encoder(model), "x": x, "y": y,
                    "outputs": _io(enc_names, enc_out)},
        "decoder": {"file": "decoder.onnx", "module": _Decoder(model), "x": z, "y": y,
                    "outputs": _io(dec_names, dec_out)},
    }


MEANINGS = {
    "x": "an example after the 'forward' preprocessing",
    "z": "a code (from the encoder, or drawn from the prior)",
    "y": "class index 0..num_classes-1, or -1 for the unknown class",
    "mu": "mean of the code's posterior q(z | x) (the code to use for an example)",
    "logvar": "log-variance of the code's posterior q(z | x)",
    "x_mean": "the likelihood's mean E[x | z] in preprocessed units (Bernoulli: probability of "
              "a 1); apply the 'inverse' preprocessing for raw units",
    "x_logvar": "the likelihood's per-feature log-variance, in preprocessed units",
}
"""What each input and output name means, written beside it in export.json."""


def _io(names: list[str], tensors: tuple[Tensor, ...] | list[Tensor]) -> list[dict[str, Any]]:
    return [{"name": name, "shape": ["batch", *t.shape[1:]], "dtype": _dtype(t),
             "meaning": MEANINGS[name]} for name, t in zip(names, tensors, strict=True)]


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress lines, warnings and log messages."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export",
                                               "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_graph(model: BaseModel, part: dict[str, Any]) -> tuple[bytes, list[dict[str, Any]]]:
    """Serialized ONNX of one graph and its input list (``y`` dropped where the graph ignores
    it)."""
    first = "x" if part["file"] == "encoder.onnx" else "z"
    x, y = part["x"], part["y"]
    args = (x,) if y is None else (x, y)
    names = [first] if y is None else [first, "y"]
    module = part["module"].eval()
    try:
        with _quiet():
            program = torch.onnx.export(
                module, args, input_names=names,
                output_names=[o["name"] for o in part["outputs"]],
                dynamic_shapes=tuple({0: "batch"} for _ in args), dynamo=True, verbose=False)
    except Exception as exc:  # the exporter raises many types; one sentence for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VaelabError(
            f"the {model.config.model} model's {part['file'][:-5]} cannot be exported to ONNX "
            f"({reason[:300]}); export another run or report this family as not exportable."
        ) from exc
    proto = program.model_proto
    graph = proto.graph
    if y is not None and not any("y" in node.input for node in graph.node):
        keep = [i for i in graph.input if i.name != "y"]
        del graph.input[:]
        graph.input.extend(keep)
        part["y"] = None
    inputs = _io([first], [x])
    if part["y"] is not None:
        inputs += _io(["y"], [part["y"]])
    return proto.SerializeToString(), inputs


def _check_graph(model: BaseModel, part: dict[str, Any], blob: bytes) -> dict[str, float]:
    """Run the graph with onnxruntime at another batch size: max |ONNX - PyTorch| per output."""
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(1)
    n = CHECK_BATCH
    shape = part["x"].shape[1:]
    x = torch.rand(n, *shape, generator=gen) if part["file"] == "encoder.onnx" else torch.randn(
        n, *shape, generator=gen)
    y = None
    if part["y"] is not None:
        y = torch.arange(n) % int(model.spec.num_classes or 1)
    feeds = {part["inputs"][0]["name"]: x.numpy()}
    if y is not None:
        feeds["y"] = y.numpy()
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)
    with torch.no_grad():
        want = part["module"].eval()(x, y)
    diffs: dict[str, float] = {}
    for spec, g, w in zip(part["outputs"], got, want, strict=True):
        w = w.numpy()
        diff = float(np.max(np.abs(g - w))) if g.shape == w.shape else float("inf")
        if not diff <= CHECK_TOLERANCE * (1.0 + float(np.max(np.abs(w)))):
            raise VaelabError(
                f"the exported {part['file']} output '{spec['name']}' differs from PyTorch by "
                f"{diff:.3g}; the ONNX export of the {model.config.model} model is not faithful, "
                "so it was not written."
            )
        diffs[spec["name"]] = diff
    return diffs


def _public(part: dict[str, Any]) -> dict[str, Any]:
    return {"file": part["file"], "inputs": part["inputs"], "outputs": part["outputs"]}


# -- export.json -------------------------------------------------------------------------------
def describe_preprocessing(pre: dict[str, Any]) -> dict[str, Any]:
    """The fitted preprocessing with the formulas that apply it (before the encoder) and undo
    it (after the decoder)."""
    kind = pre["kind"]
    if kind not in PREPROCESSING:
        raise VaelabError(f"the run's preprocessing {kind!r} has no export formula in "
                          "vaelab/export.py; add it to PREPROCESSING there.")
    return {
        "kind": kind,
        "params": pre.get("params", {}),
        **PREPROCESSING[kind],
        "note": "apply 'forward' to raw examples before the encoder and 'inverse' to the "
                "decoder's x_mean; (max - min) is taken as at least 1e-12 in 'forward'.",
    }


def _labels(model: BaseModel, cfg: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    k = model.spec.num_classes
    if not k:
        return None
    return {
        "num_classes": int(k),
        "names": cfg.get("label_names"),
        "encoder_takes_y": spec["encoder"]["y"] is not None,
        "decoder_takes_y": spec["decoder"]["y"] is not None,
        "y": "int64 class index 0..num_classes-1 (the position in 'names'); -1 = unknown class",
    }


def _likelihood(lik: Likelihood) -> dict[str, Any]:
    out: dict[str, Any] = {"name": lik.name, "description": lik.describe()}
    if hasattr(lik, "sigma"):
        out["sigma"] = float(lik.sigma)
    return out


@torch.no_grad()
def _prior(model: BaseModel) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    z = model.prior_sample(PRIOR_DRAWS, generator=gen).double()
    return {
        "mean": [round(float(v), 4) for v in z.mean(0)],
        "std": [round(float(v), 4) for v in z.std(0)],
        "note": f"per-dimension mean and standard deviation of {PRIOR_DRAWS} draws from the "
                "model's prior (N(0, I) for a VAE; the Gaussian fitted to the training codes "
                "for an AE); decode z = mean + std * N(0, 1) to sample.",
    }


def _version() -> str:
    import vaelab

    return vaelab.__version__


__all__ = ["FORMATS", "PREPROCESSING", "describe_preprocessing", "export_onnx", "require_onnx"]
