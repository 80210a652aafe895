"""Fuzz the readers: whatever the bytes, only the documented error type may escape, and its
message names the file at fault. About 5,000 cases, well under two minutes."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from vaelab.config import Config
from vaelab.data.arrays import load_npy, load_npz
from vaelab.data.idx import read_idx
from vaelab.data.tabular import read_table
from vaelab.errors import ConfigError, DataError, ModelFileError, VaelabError
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model

FUZZ = settings(max_examples=500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
pytestmark = pytest.mark.slow


def _only(error: type[VaelabError], fn, path: Path, *args) -> None:
    """Call ``fn(path)``; it may succeed or raise ``error`` naming the file, nothing else."""
    try:
        fn(path, *args)
    except error as exc:
        msg = str(exc)
        assert path.name in msg, msg
        assert "\n" not in msg.strip(), msg


def _valid_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.arange(4))
    return buf.getvalue()


def _valid_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(24, dtype=np.float32).reshape(4, 2, 3))
    return buf.getvalue()


def _valid_idx() -> bytes:
    return bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (2, 3, 3)) + \
        bytes(range(18))


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, or a valid file with a few bytes overwritten, cut short or appended."""
    def mutate(args):
        edits, cut, extra = args
        b = bytearray(seed)
        for pos, val in edits:
            if b:
                b[pos % len(b)] = val
        return bytes(b[: max(0, len(b) - cut)]) + extra
    edit = st.tuples(st.integers(0, 10**6), st.integers(0, 255))
    return st.one_of(
        st.binary(max_size=400),
        st.tuples(st.lists(edit, max_size=3), st.integers(0, 64),
                  st.binary(max_size=16)).map(mutate),
    )


def _write(tmp_path_factory, name: str, data: bytes) -> Path:
    p = tmp_path_factory.mktemp("fuzz") / name
    p.write_bytes(data)
    return p


@FUZZ
@given(data=mutated(_valid_idx()))
def test_idx_reader(tmp_path_factory, data):
    _only(DataError, read_idx, _write(tmp_path_factory, "f.idx", data))


@FUZZ
@given(data=mutated(_valid_npz()))
def test_npz_reader(tmp_path_factory, data):
    _only(DataError, load_npz, _write(tmp_path_factory, "f.npz", data))


@FUZZ
@given(data=mutated(_valid_npy()))
def test_npy_reader(tmp_path_factory, data):
    _only(DataError, load_npy, _write(tmp_path_factory, "f.npy", data))


_CELLS = st.sampled_from(["1", "-2.5", "1e3", "nan", "inf", "", "x", "\"3\"", "label", "1e999",
                          " 4 ", "0x10", "NA", "1,5", "True"])


@FUZZ
@given(text=st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789.,;\t\n -eEnaif\"x")), max_size=300),
    st.lists(st.lists(_CELLS, min_size=1, max_size=5), min_size=1, max_size=8).map(
        lambda rows: "\n".join(",".join(r) for r in rows)),
))
def test_csv_reader(tmp_path_factory, text):
    _only(DataError, read_table, _write(tmp_path_factory, "f.csv", text.encode()))


_TOML_VALUES = st.one_of(st.integers(-5, 10**4), st.floats(allow_nan=True), st.booleans(),
                         st.text(max_size=12), st.lists(st.integers(-3, 300), max_size=4))
_KEYS = st.sampled_from(["epochs", "latent_dim", "beta", "hidden", "model", "lr", "dataset",
                         "batch_size", "bogus", "preprocess", "patience", "val_fraction",
                         "grad_clip", "likelihood", "seed", "subset", "kl_warmup_epochs"])


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(["data", "model", "train", "out", "x"]),
                           st.one_of(_TOML_VALUES, st.dictionaries(_KEYS, _TOML_VALUES,
                                                                   max_size=4)), max_size=4))
def test_config_from_structured_values(raw):
    with contextlib.suppress(ConfigError):
        Config.from_dict(raw)


def _toml_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_literal(x) for x in v) + "]"
    return str(v)


@FUZZ
@given(doc=st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(["data", "model", "train", "extra"]),
                    st.dictionaries(_KEYS, _TOML_VALUES, max_size=4), max_size=3).map(
        lambda d: "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {_toml_literal(v)}"
                                                  for k, v in kv.items())
                            for s, kv in d.items())),
))
def test_config_toml_file(tmp_path_factory, doc):
    p = _write(tmp_path_factory, "c.toml", doc.encode("utf-8", "surrogatepass"))
    try:
        Config.from_toml(p)
    except ConfigError as exc:
        assert "c.toml" in str(exc) or "option" in str(exc) or "--" in str(exc), str(exc)


def _valid_model_dir(root: Path) -> bytes:
    model = build_model(ModelConfig(hidden=[4], latent_dim=2), ModelSpec((3,), "gaussian"))
    save_model(model, root)
    return (root / "model.safetensors").read_bytes()


_VALID_MODEL = None


def _model_dir(tmp_path_factory) -> tuple[Path, bytes]:
    global _VALID_MODEL
    root = tmp_path_factory.mktemp("model")
    if _VALID_MODEL is None:
        _VALID_MODEL = (_valid_model_dir(root), (root / "model.json").read_text())
    else:
        (root / "model.safetensors").write_bytes(_VALID_MODEL[0])
        (root / "model.json").write_text(_VALID_MODEL[1])
    return root, _VALID_MODEL[0]


@FUZZ
@given(data=st.data())
def test_model_weights_file(tmp_path_factory, data):
    root, valid = _model_dir(tmp_path_factory)
    (root / "model.safetensors").write_bytes(data.draw(mutated(valid)))
    try:
        load_model(root)
    except ModelFileError as exc:
        assert "model." in str(exc)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats()
                     | st.text(max_size=8),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                          max_size=3),
                     max_leaves=8)


@FUZZ
@given(field=st.sampled_from(["config", "spec"]),
       key=st.sampled_from(["model", "hidden", "latent_dim", "input_shape", "likelihood",
                            "num_classes", "activation", "conv_channels", "beta", "zzz"]),
       value=_JSON)
def test_model_json_file(tmp_path_factory, field, key, value):
    root, _ = _model_dir(tmp_path_factory)
    meta = json.loads((root / "model.json").read_text())
    meta[field][key] = value
    (root / "model.json").write_text(json.dumps(meta))
    try:
        load_model(root)
    except ModelFileError as exc:
        assert "model." in str(exc)


def test_fuzz_seed_files_are_valid(tmp_path):
    """The mutation seeds themselves load (so mutations explore near-valid inputs)."""
    (tmp_path / "a.idx").write_bytes(_valid_idx())
    assert read_idx(tmp_path / "a.idx").shape == (2, 3, 3)
    (tmp_path / "a.npz").write_bytes(_valid_npz())
    assert load_npz(tmp_path / "a.npz").x.shape == (4, 3)
    (tmp_path / "a.npy").write_bytes(_valid_npy())
    assert load_npy(tmp_path / "a.npy").x.shape == (4, 1, 2, 3)
    _valid_model_dir(tmp_path)
    assert load_model(tmp_path) is not None
    save_file({"t": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
