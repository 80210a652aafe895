"""Model files: weights in safetensors, everything needed to rebuild the model in model.json.

Nothing is ever unpickled. Loading checks that the file is safetensors and that tensor names and
shapes match what model.json describes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaelab.errors import ModelFileError
from vaelab.models import BaseModel, ModelConfig, ModelSpec, build_model

FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def umask_mode() -> int:
    """The mode a new file gets under the process umask (0o644 for the usual umask 022)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # no /proc (macOS): read it by setting it, then put it back
    os.umask(mask)
    return 0o666 & ~mask


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write a safetensors file atomically with the mode the user's umask gives new files.

    (The safetensors writer itself creates files readable by their owner only.)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp))
    os.chmod(tmp, umask_mode())
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers as contiguous CPU tensors (batch-norm statistics included)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_model(model: BaseModel, folder: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.safetensors`` and ``model.json`` atomically into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = state_tensors(model)
    meta = {
        "format_version": FORMAT_VERSION,
        "config": _asdict(model.config),
        "spec": {
            "input_shape": list(model.spec.input_shape),
            "likelihood": model.spec.likelihood,
            "num_classes": model.spec.num_classes,
            **({"columns": model.spec.columns} if model.spec.columns is not None else {}),
        },
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                    for k, v in tensors.items()},
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    save_safetensors(tensors, folder / "model.safetensors")
    atomic_write_text(folder / "model.json", json.dumps(meta, indent=2))


def _asdict(cfg: ModelConfig) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)


def read_model_json(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing; this folder holds no saved model.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}); the file is damaged.") from None
    if not isinstance(meta, dict) or not {"config", "spec"} <= meta.keys():
        raise ModelFileError(f"{path} lacks the 'config' and 'spec' entries of a vaelab model.")
    return meta


_FOREIGN = {  # magic numbers of files people mistake for weights
    b"PK\x03\x04": "a zip archive (torch.save / .pt files are zipped pickles)",
    b"\x80": "a Python pickle",
    b"\x89HDF": "an HDF5 (Keras) file",
    b"\x93NUMPY": "a NumPy .npy file",
}


def check_safetensors_header(path: Path) -> None:
    """Refuse, from its first bytes, a file that cannot be safetensors (never unpickling it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read ({exc.strerror}); restore the file or "
                             "retrain.") from None
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) >= 9 and n <= size - 8 and head[8:9] == b"{":
        return  # looks like safetensors: the library checks the rest
    for magic, what in _FOREIGN.items():  # checked after: a header length may start with 0x80
        if head.startswith(magic):
            raise ModelFileError(
                f"{path} is {what}, not safetensors; vaelab never unpickles model files - "
                "save the weights with safetensors (vaelab.modelio.save_model)."
            )
    if len(head) < 9:
        raise ModelFileError(f"{path} holds only {size} bytes; it is truncated or empty - "
                             "retrain or restore it.")
    raise ModelFileError(
        f"{path} is not a safetensors file (its header length {n} does not fit the file's "
        f"{size} bytes, or the header is not JSON); it is truncated or of another format - "
        "retrain or restore it."
    )


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, refusing anything else with a clear error."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path} is missing; train a model first or check the run folder.")
    check_safetensors_header(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise ModelFileError(
            f"{path} is not a readable safetensors file ({exc}); it may be truncated or of "
            "another format - retrain or restore it."
        ) from None


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> BaseModel:
    """Rebuild the model described by ``folder/model.json`` and load its safetensors weights."""
    folder = Path(folder)
    meta = read_model_json(folder)
    from vaelab.config import flatten_dict
    from vaelab.errors import ConfigError

    try:
        flat = flatten_dict({"model": meta["config"]}, source=str(folder / "model.json"))
        cfg = ModelConfig(**flat)
        spec = ModelSpec(
            input_shape=tuple(int(s) for s in meta["spec"]["input_shape"]),
            likelihood=str(meta["spec"]["likelihood"]),
            num_classes=meta["spec"].get("num_classes"),
            columns=meta["spec"].get("columns"),
        )
        with torch.device("meta"):  # shapes only: a model.json naming a huge model allocates
            shell = build_model(cfg, spec)  # nothing before it is checked against the weights
    except (ConfigError, TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{folder / 'model.json'} does not describe a valid model: {exc}"
        ) from None
    tensors = load_tensors(folder / "model.safetensors")
    want = shell.state_dict()
    expected = {k: tuple(v.shape) for k, v in want.items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected.keys() != got.keys():
        missing = sorted(expected.keys() - got.keys())[:3]
        unexpected = sorted(got.keys() - expected.keys())[:3]
        raise ModelFileError(
            f"{folder / 'model.safetensors'} does not match model.json: missing tensors "
            f"{missing}, unexpected {unexpected}; the two files come from different models."
        )
    for k, shape in expected.items():
        if got[k] != shape:
            raise ModelFileError(
                f"{folder / 'model.safetensors'}: tensor '{k}' has shape {list(got[k])} but "
                f"model.json implies {list(shape)}; the two files come from different models."
            )
        if want[k].is_floating_point() != tensors[k].is_floating_point():
            raise ModelFileError(
                f"{folder / 'model.safetensors'}: tensor '{k}' has dtype {tensors[k].dtype} "
                f"but the model needs {want[k].dtype}; the file was not written by vaelab."
            )
    model = build_model(cfg, spec)  # as large as the weights just read
    model.load_state_dict(tensors)
    model.eval()
    return model.to(device)
