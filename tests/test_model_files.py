"""Model files are safetensors + JSON only; anything else fails with one clear error."""

import json
import pickle
import struct

import pytest
import torch

from vaelab.errors import ModelFileError
from vaelab.modelio import load_model, save_model
from vaelab.models import ModelConfig, ModelSpec, build_model


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=[8], latent_dim=2), ModelSpec((5,), "gaussian"))
    save_model(model, tmp_path)
    return tmp_path


def test_a_pickle_renamed_to_safetensors_is_refused_and_never_unpickled(saved, monkeypatch):
    (saved / "model.safetensors").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(saved)


@pytest.mark.parametrize("mangle", [
    lambda b: b[: len(b) // 2],                     # truncated
    lambda b: b"\x00" * 7,                          # shorter than a header length
    lambda b: struct.pack("<Q", 2**60) + b[8:],     # absurd header length
    lambda b: struct.pack("<Q", 10) + b"{not json}" + b[18:],
])
def test_damaged_files(saved, mangle):
    p = saved / "model.safetensors"
    p.write_bytes(mangle(p.read_bytes()))
    with pytest.raises(ModelFileError):
        load_model(saved)


def test_tensor_names_and_shapes_must_match_model_json(saved):
    meta = json.loads((saved / "model.json").read_text())
    meta["config"]["hidden"] = [9]
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"has shape .* but model.json implies"):
        load_model(saved)
    meta["config"]["hidden"] = [8, 8]
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="missing tensors"):
        load_model(saved)


def test_bad_model_json(saved):
    (saved / "model.json").write_text("{")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(saved)
    (saved / "model.json").write_text(json.dumps({"config": {"model": "nope"}, "spec": {}}))
    with pytest.raises(ModelFileError, match="does not describe a valid model"):
        load_model(saved)
    (saved / "model.json").unlink()
    with pytest.raises(ModelFileError, match="is missing"):
        load_model(saved)
