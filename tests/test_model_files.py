"""Model files are safetensors + JSON only; anything else fails with one clear error."""

import io
import json
import pickle
import random
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from vaelab.errors import ModelFileError
from vaelab.modelio import load_model, load_tensors, save_model
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
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    with pytest.raises(ModelFileError, match="is a Python pickle, not safetensors; vaelab never "
                                             "unpickles"):
        load_model(saved)


def test_a_torch_save_file_is_refused(saved):
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    (saved / "model.safetensors").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError, match=r"is a zip archive .*torch.save"):
        load_model(saved)


@pytest.mark.parametrize(("name", "mangle", "message"), [
    ("data cut short", lambda b: b[:-10], "not a readable safetensors file"),
    ("cut in the header", lambda b: b[:40], "header length .* does not fit"),
    ("empty", lambda b: b"", "holds only 0 bytes"),
    ("shorter than a header length", lambda b: b"\x00" * 7, "holds only 7 bytes"),
    ("huge header length", lambda b: struct.pack("<Q", 2**60) + b[8:],
     "header length 1152921504606846976 does not fit"),
    ("random bytes", lambda b: random.Random(0).randbytes(4096), "not a safetensors file"),
    ("header not JSON", lambda b: struct.pack("<Q", 10) + b"{not json}" + b[18:],
     "not a readable safetensors file"),
    ("offsets past the end", lambda b: _with_header(b, lambda h: h[next(iter(
        k for k in h if k != "__metadata__"))].update(data_offsets=[0, 10**9])),
     "not a readable safetensors file"),
    ("unknown dtype", lambda b: _with_header(b, lambda h: h[next(iter(
        k for k in h if k != "__metadata__"))].update(dtype="Q99")),
     "not a readable safetensors file"),
])
def test_damaged_files(saved, name, mangle, message):
    p = saved / "model.safetensors"
    p.write_bytes(mangle(p.read_bytes()))
    with pytest.raises(ModelFileError, match=message):
        load_model(saved)


def _with_header(blob: bytes, edit) -> bytes:
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + blob[8 + n :]


def test_a_folder_or_missing_file(saved):
    p = saved / "model.safetensors"
    p.unlink()
    with pytest.raises(ModelFileError, match="is missing"):
        load_model(saved)
    p.mkdir()
    with pytest.raises(ModelFileError, match="cannot be read"):
        load_model(saved)


def test_integer_tensors_where_weights_belong_are_refused(saved):
    tensors = load_file(str(saved / "model.safetensors"))
    save_file({k: v.to(torch.int32) for k, v in tensors.items()},
              str(saved / "model.safetensors"))
    with pytest.raises(ModelFileError, match=r"has dtype torch.int32 but the model needs"):
        load_model(saved)


def test_round_trip_gives_the_same_outputs(saved, tmp_path):
    model = load_model(saved)
    save_model(model, tmp_path / "again")
    again = load_model(tmp_path / "again")
    x = torch.rand(4, 5)
    assert torch.equal(model.encode(x)[0], again.encode(x)[0])


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


def test_a_model_json_naming_a_huge_model_allocates_nothing_before_the_check(saved):
    """A corrupted model.json must not make vaelab build (and fill) a model of many GB."""
    import resource

    meta = json.loads((saved / "model.json").read_text())
    meta["config"]["hidden"] = [20_000]  # with 20,000 inputs: 8e8 weights, 3.2 GB if built
    meta["spec"]["input_shape"] = [20_000]
    (saved / "model.json").write_text(json.dumps(meta))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ModelFileError, match=r"has shape .* but model.json implies"):
        load_model(saved)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000


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


def test_a_header_length_that_starts_like_a_pickle_still_loads(tmp_path):
    """A safetensors header of 0x80 (+256 k) bytes begins with the pickle opcode byte."""
    for pad in range(300):
        p = tmp_path / "w.safetensors"
        save_file({"w": torch.arange(3.0)}, str(p), metadata={"pad": "x" * pad})
        if p.read_bytes()[0] == 0x80:
            break
    assert p.read_bytes()[0] == 0x80
    assert torch.equal(load_tensors(p)["w"], torch.arange(3.0))
