"""IDX files (the MNIST format), plain or gzip-compressed, read with clear errors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from vaelab.data.checks import data_errors_only
from vaelab.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (by magic number, not by name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror}); check the path.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path} is a corrupted gzip file ({exc}); delete it and download it again."
            ) from None
    return raw


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes: magic 0x0000, a type code, the number of dimensions, big-endian sizes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(
            f"{name} does not start with an IDX magic number (got {data[:4].hex() or 'nothing'}); "
            "it is not an MNIST-style IDX file."
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name} has a truncated IDX header; download the file again.")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{name} holds {len(data)} bytes but its header {dims} implies {expected}; the file "
            "is truncated or damaged - download it again."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


@data_errors_only("an IDX file")
def read_idx(path: str | Path) -> np.ndarray:
    """Read an .idx or .idx.gz file into an array; DataError on anything malformed."""
    return parse_idx(read_bytes(path), name=str(path))
