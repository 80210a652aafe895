"""ONNX export: every family's encoder and decoder match PyTorch in onnxruntime at any batch size,
and export.json alone (numpy + onnxruntime) reproduces a run's reconstructions in raw units."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vaelab
from vaelab.cli.main import main
from vaelab.config import Config
from vaelab.data.preprocessing import KINDS, Preprocessor
from vaelab.errors import RunDirError, VaelabError
from vaelab.export import PREPROCESSING, export_onnx
from vaelab.modelio import save_model
from vaelab.models import MODELS, ModelConfig, ModelSpec, build_model
from vaelab.run import Run

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned")
BATCHES = (1, 4, 17)  # the export traces at 3 and checks at 5
TOL = 1e-4
DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"


def make_run(path: Path, family: str, arch: str, likelihood: str, input_shape: tuple[int, ...],
             pre: Preprocessor | None = None, num_classes: int = 3) -> Path:
    """A run directory (model files + config.json) without training: enough for Run.load."""
    torch.manual_seed(0)
    mcfg = ModelConfig(model=family, arch=arch, hidden=[12], latent_dim=3, conv_channels=[4, 6],
                       likelihood=likelihood)
    model = build_model(mcfg, ModelSpec(input_shape, likelihood, num_classes))
    save_model(model, path)
    pre = pre or Preprocessor("minmax", {"min": 0.0, "max": 1.0})
    payload = Config(model=mcfg).to_dict()
    payload.update(preprocessing=pre.to_dict(), label_names=[f"c{i}" for i in range(num_classes)])
    (path / "config.json").write_text(json.dumps(payload))
    return path


def session(folder: Path, name: str):
    return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])


def run_onnx(sess, **feeds: np.ndarray) -> dict[str, np.ndarray]:
    wanted = {i.name for i in sess.get_inputs()}
    outs = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
    return {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}


CASES = [(family, arch, LIKELIHOODS[i % 3]) for i, family in enumerate(sorted(MODELS))
         for arch in ("mlp", "conv")]


@pytest.mark.parametrize(("family", "arch", "likelihood"), CASES)
def test_onnx_matches_pytorch_at_other_batch_sizes(tmp_path, family, arch, likelihood):
    shape = (2, 7, 6) if arch == "conv" else (1, 5, 4)
    run_dir = make_run(tmp_path / "run", family, arch, likelihood, shape)
    folder = export_onnx(run_dir)
    assert folder == run_dir / "export"
    meta = json.loads((folder / "export.json").read_text())
    model = Run.load(run_dir).model.eval()
    enc, dec = session(folder, "encoder.onnx"), session(folder, "decoder.onnx")
    for part, sess in (("encoder", enc), ("decoder", dec)):  # export.json describes the graphs
        assert [i["name"] for i in meta[part]["inputs"]] == [i.name for i in sess.get_inputs()]
        assert [o["name"] for o in meta[part]["outputs"]] == [o.name for o in sess.get_outputs()]
    # the traced graph reads y exactly where the model says its decoder reads the label
    assert meta["labels"]["decoder_takes_y"] == model.label_conditioned
    if family == "cvae":
        assert meta["labels"]["encoder_takes_y"] and meta["labels"]["decoder_takes_y"]
    if family == "guided-vae":  # labels steer training only
        assert not meta["labels"]["encoder_takes_y"] and not meta["labels"]["decoder_takes_y"]
    rng = np.random.default_rng(0)
    for n in BATCHES:
        x = rng.random((n, *shape), dtype=np.float32)
        z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
        y = (np.arange(n) % 4 - 1).astype(np.int64)  # -1 (unknown), 0, 1, 2
        yt = torch.from_numpy(y) if model.uses_labels else None
        with torch.no_grad():
            mu, logvar = model.encode(torch.from_numpy(x), yt)
            params = model.decode(torch.from_numpy(z), yt)
        got = run_onnx(enc, x=x, y=y)
        code = got["mu"] if "mu" in got else got["z"]
        np.testing.assert_allclose(code, mu.numpy(), atol=TOL, rtol=0)
        if logvar is not None:
            np.testing.assert_allclose(got["logvar"], logvar.numpy(), atol=TOL, rtol=0)
        got = run_onnx(dec, z=z, y=y)
        np.testing.assert_allclose(got["x_mean"], model.likelihood.mean(params).numpy(),
                                   atol=TOL, rtol=0)
        assert got["x_mean"].shape == (n, *shape)
        if likelihood == "gaussian-learned":
            want = model.likelihood._split(params)[1].numpy()
            np.testing.assert_allclose(got["x_logvar"], want, atol=TOL, rtol=0)
    checks = meta["check"]["max_abs_diff"]
    assert max(max(v.values()) for v in checks.values()) < TOL


# -- export.json alone reproduces raw reconstructions ------------------------------------------
def forward(x: np.ndarray, pre: dict) -> np.ndarray:
    """export.json's 'forward' formula in numpy (what a user writes)."""
    p = pre["params"]
    if pre["kind"] in ("minmax", "binarize", "binarize-dynamic"):
        x = np.clip((x - p["min"]) / max(p["max"] - p["min"], 1e-12), 0, 1)
        return (x > p["threshold"]).astype(np.float32) if pre["kind"] == "binarize" else x
    if pre["kind"] == "standardize":
        flat = (x.reshape(len(x), -1) - np.asarray(p["mean"])) / np.asarray(p["std"])
        return flat.reshape(x.shape)
    return x


def inverse(x: np.ndarray, pre: dict) -> np.ndarray:
    """export.json's 'inverse' formula in numpy."""
    p = pre["params"]
    if pre["kind"] in ("minmax", "binarize", "binarize-dynamic"):
        return x * (p["max"] - p["min"]) + p["min"]
    if pre["kind"] == "standardize":
        flat = x.reshape(len(x), -1) * np.asarray(p["std"]) + np.asarray(p["mean"])
        return flat.reshape(x.shape)
    return x


def onnx_reconstruct(folder: Path, raw: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Raw examples -> forward -> encoder mean -> decoder mean -> inverse, from export.json."""
    meta = json.loads((folder / "export.json").read_text())
    pre = meta["preprocessing"]
    x = forward(raw, pre).astype(np.float32)
    got = run_onnx(session(folder, "encoder.onnx"), x=x, y=y)
    code = got["mu"] if "mu" in got else got["z"]
    mean = run_onnx(session(folder, "decoder.onnx"), z=code, y=y)["x_mean"]
    return inverse(mean, pre)


def vaelab_reconstruct(run: Run, raw: np.ndarray, y: np.ndarray) -> np.ndarray:
    pre = run.preprocessor
    return pre.inverse(run.reconstruct(pre.transform(raw), y))


def test_trained_cvae_round_trip_in_raw_units(tmp_path):
    run = vaelab.train(dataset="digits", subset=200, epochs=1, model="cvae", arch="conv",
                       conv_channels=[4, 8], hidden=[16], progress=False, log=None,
                       report=False, out=str(tmp_path / "run"))
    folder = export_onnx(run.path, tmp_path / "exported")
    test = run.data.test
    raw = run.preprocessor.inverse(test.x[:37])  # digits' raw 0..16 intensities
    y = test.y[:37].astype(np.int64)
    got, want = onnx_reconstruct(folder, raw, y), vaelab_reconstruct(run, raw, y)
    assert got.shape == want.shape == (37, 1, 8, 8)
    assert np.abs(got - want).max() < TOL * 16
    meta = json.loads((folder / "export.json").read_text())
    assert meta["labels"]["names"] == [str(i) for i in range(10)]
    assert meta["latent_dim"] == 2 and meta["input_shape"] == [1, 8, 8]
    assert meta["preprocessing"]["forward"] == "x' = clip((x - min) / (max - min), 0, 1)"


@pytest.mark.parametrize("kind", ["none", "standardize", "binarize", "binarize-dynamic"])
def test_every_preprocessing_round_trips_from_the_json(tmp_path, kind):
    rng = np.random.default_rng(1)
    raw = (rng.standard_normal((40, 7)) * 3 + 5).astype(np.float32)
    if kind == "none":
        raw = rng.random((40, 7), dtype=np.float32)
    pre = Preprocessor(kind).fit(raw[:30], threshold=0.4)
    family = "ae" if kind == "binarize" else "vae"
    lik = "gaussian-learned" if kind == "standardize" else "bernoulli"
    run_dir = make_run(tmp_path / "run", family, "mlp", lik, (7,), pre)
    folder = export_onnx(run_dir)
    run = Run.load(run_dir)
    y = np.zeros(40, dtype=np.int64)
    got, want = onnx_reconstruct(folder, raw, y), vaelab_reconstruct(run, raw, y)
    assert np.abs(got - want).max() < TOL * max(1.0, float(np.abs(want).max()))


def test_every_preprocessing_kind_has_formulas():
    assert set(PREPROCESSING) == set(KINDS)


# -- errors and the CLI --------------------------------------------------------------------------
def test_missing_onnx_packages_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript -> ImportError
    with pytest.raises(VaelabError, match=r"needs onnxscript.*pip install vaelab\[onnx\]") as exc:
        export_onnx(tmp_path)
    assert str(exc.value).count(". ") == 0 and "\n" not in str(exc.value)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        export_onnx(tmp_path / "nope")
    with pytest.raises(RunDirError, match=r"lacks config\.json"):
        export_onnx(tmp_path)


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


def test_cli_export_and_wrong_format(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", "vae", "mlp", "bernoulli", (6,))
    assert cli("export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "o")) == 0
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"encoder.onnx", "decoder.onnx",
                                                            "export.json"}
    assert "wrote" in capsys.readouterr().out
    assert cli("export", str(run_dir), "--format", "tflite") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--format got 'tflite'; only onnx" in err[0]


def test_vaelab_import_does_not_import_onnx():
    code = "import sys, vaelab; print(any(m in sys.modules for m in ('onnx', 'onnxruntime', " \
           "'onnxscript')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


# -- the docs' snippets run without torch or vaelab ---------------------------------------------
BLOCKER = '''import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "vaelab"):
            raise ImportError(f"{name} is blocked: this snippet must not need it")
sys.meta_path.insert(0, _Block())
'''


def doc_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_docs_snippets_run_without_torch_or_vaelab(tmp_path):
    run_dir = make_run(tmp_path / "run", "cvae", "conv", "bernoulli", (1, 8, 8),
                       Preprocessor("minmax", {"min": 0.0, "max": 16.0}))
    folder = export_onnx(run_dir)
    decode, encode = doc_snippets()
    raw = np.random.default_rng(0).random((6, 1, 8, 8)).astype(np.float32) * 16
    np.save(tmp_path / "raw.npy", raw)
    for name, code in (("decode", decode), ("encode", encode)):
        script = tmp_path / f"{name}.py"
        script.write_text(BLOCKER + code)
        res = subprocess.run([sys.executable, "-I", str(script), str(folder),
                              str(tmp_path / "raw.npy")], capture_output=True, text=True,
                             cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    assert (tmp_path / "samples.png").stat().st_size > 0
    recon = np.load(tmp_path / "reconstructions.npy")
    assert recon.shape == raw.shape and np.isfinite(recon).all()
    probe = tmp_path / "probe.py"  # the blocker really blocks
    probe.write_text(BLOCKER + "import torch\n")
    res = subprocess.run([sys.executable, "-I", str(probe)], capture_output=True, text=True)
    assert res.returncode != 0 and "torch is blocked" in res.stderr
