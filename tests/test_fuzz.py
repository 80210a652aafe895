"""Fuzz the readers: whatever the bytes, only the documented error type may escape."""

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from vaelab.config import Config
from vaelab.data.arrays import load_npz
from vaelab.data.idx import read_idx
from vaelab.data.tabular import read_table
from vaelab.errors import ConfigError, DataError, ModelFileError
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model

FUZZ = settings(max_examples=600, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
pytestmark = pytest.mark.slow


def _valid_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.arange(4))
    return buf.getvalue()


def _valid_idx() -> bytes:
    return bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (2, 3, 3)) + \
        bytes(range(18))


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, or a valid file with bytes flipped, cut or appended."""
    def mutate(args):
        pos, val, cut, extra = args
        b = bytearray(seed)
        if b:
            b[pos % len(b)] = val
        return bytes(b[: max(0, len(b) - cut)]) + extra
    return st.one_of(st.binary(max_size=400),
                     st.tuples(st.integers(0, 10**6), st.integers(0, 255),
                               st.integers(0, 64), st.binary(max_size=16)).map(mutate))


@pytest.mark.parametrize(("suffix", "seed", "reader"),
                         [(".idx", _valid_idx(), read_idx), (".npz", _valid_npz(), load_npz)])
def test_binary_readers(tmp_path_factory, suffix, seed, reader):
    @FUZZ
    @given(data=mutated(seed))
    def check(data):
        p = tmp_path_factory.mktemp("bin") / f"f{suffix}"
        p.write_bytes(data)
        with contextlib.suppress(DataError):
            reader(p)

    check()


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,;\t\n -eEnaif\"x")),
                    max_size=300))
def test_csv_reader(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("csv") / "f.csv"
    p.write_text(text)
    with contextlib.suppress(DataError):
        read_table(p)


_TOML_VALUES = st.one_of(st.integers(-5, 10**4), st.floats(allow_nan=True), st.booleans(),
                         st.text(max_size=12), st.lists(st.integers(-3, 300), max_size=4))
_KEYS = st.sampled_from(["epochs", "latent_dim", "beta", "hidden", "model", "lr", "dataset",
                         "batch_size", "bogus", "preprocess", "patience", "val_fraction"])


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(["data", "model", "train", "out", "x"]),
                           st.one_of(_TOML_VALUES, st.dictionaries(_KEYS, _TOML_VALUES,
                                                                   max_size=4)), max_size=4))
def test_config_from_structured_values(raw):
    with contextlib.suppress(ConfigError):
        Config.from_dict(raw)


@FUZZ
@given(text=st.text(max_size=200))
def test_config_toml_text(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("toml") / "c.toml"
    p.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        Config.from_toml(p)


def _valid_model_dir(root: Path) -> bytes:
    model = build_model(ModelConfig(hidden=[4], latent_dim=2), ModelSpec((3,), "gaussian"))
    save_model(model, root)
    return (root / "model.safetensors").read_bytes()



@FUZZ
@given(data=st.data())
def test_model_file_reader(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("model")
    valid = _valid_model_dir(root)
    blob = data.draw(mutated(valid))
    (root / "model.safetensors").write_bytes(blob)
    with contextlib.suppress(ModelFileError):
        load_model(root)


def test_fuzz_seed_files_are_valid(tmp_path):
    """The mutation seeds themselves load (so mutations explore near-valid inputs)."""
    (tmp_path / "a.idx").write_bytes(_valid_idx())
    assert read_idx(tmp_path / "a.idx").shape == (2, 3, 3)
    (tmp_path / "a.npz").write_bytes(_valid_npz())
    assert load_npz(tmp_path / "a.npz").x.shape == (4, 3)
    _valid_model_dir(tmp_path)
    assert load_model(tmp_path) is not None
    save_file({"t": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
