"""NumPy files: .npy (memory-mapped, never unpickled) and .npz with keys x and optional y."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaelab.data.checks import data_errors_only
from vaelab.data.dataset import Dataset
from vaelab.data.tabular import handle_nonfinite
from vaelab.errors import DataError


def _check_numeric(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {a.dtype}, not numbers; save a numeric array.")


def as_examples(x: np.ndarray, name: str) -> np.ndarray:
    """(N, D) stays; (N, H, W) gains a channel; (N, H, W, C) with C in 1/3/4 goes channel-first."""
    if x.ndim == 1 or x.ndim > 4 or x.ndim == 0:
        raise DataError(f"{name} has shape {x.shape}; give (N, features) or (N, [C,] H, W).")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return np.transpose(x, (0, 3, 1, 2))
    return x


@data_errors_only("a .npy file")
def load_npy(path: Path, nan: str = "error", stream: str = "auto", chunk_mb: float = 64.0
             ) -> Dataset:
    """A .npy is opened memory-mapped: large files are not read into memory here.

    Too large for memory (or ``stream='on'``): rows are read with pread, chunk by chunk, and
    never mapped whole (see vaelab.data.lazy); NaN / inf then surface as a non-finite loss.
    """
    from vaelab.data.lazy import open_npy_lazy

    lazy = open_npy_lazy(path, stream, chunk_mb)
    if lazy is not None:
        return Dataset(x=lazy, y=None, name=Path(path).stem)
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path} cannot be loaded without unpickling ({exc}); save a plain "
                        "numeric array with np.save.") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy file ({exc}).") from None
    _check_numeric(x, str(path))
    x = as_examples(x, str(path))
    check_finite_chunked(x, str(path), nan)
    return Dataset(x=x, y=None, name=path.stem)


def check_finite_chunked(x: np.ndarray, name: str, nan: str, chunk: int = 8192) -> None:
    """Scan a (possibly memory-mapped) array for NaN / inf without loading it whole."""
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start : start + chunk], dtype=np.float32)
        if not np.isfinite(part).all():
            if nan == "drop":
                raise DataError(f"{name} holds NaN / inf values; --nan drop is supported for "
                                "tables and .npz files, not memory-mapped .npy - clean the file.")
            handle_nonfinite(part, None, name, "error")


@data_errors_only("an .npz file")
def load_npz(path: Path, nan: str = "error") -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if "x" not in keys:
                raise DataError(f"{path} has arrays {sorted(keys) or 'none'} but no 'x'; save it "
                                "with np.savez(path, x=..., y=...).")
            x = f["x"]
            y = f["y"] if "y" in keys else None
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{path} cannot be loaded without unpickling ({exc}); save numeric "
                        "arrays only.") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc}).") from None
    _check_numeric(x, f"{path}: x")
    x = as_examples(x.astype(np.float32, copy=False), f"{path}: x")
    if y is not None:
        _check_numeric(y, f"{path}: y")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: x has {len(x)} rows but y has shape {y.shape}; give one "
                            "integer label per row (-1 for unlabelled).")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
            raise DataError(f"{path}: y holds non-integer labels; use class indices.")
        y = y.astype(np.int64)
        if (y < -1).any():
            raise DataError(f"{path}: y holds labels below -1; use 0..K-1 and -1 for unlabelled.")
    x, y = handle_nonfinite(x, y, str(path), nan)
    return Dataset(x=x, y=y, name=path.stem)
