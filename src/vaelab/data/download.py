"""Download files into vaelab's cache with a SHA-256 check, atomically."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from vaelab.errors import DataError


def cache_dir() -> Path:
    """$VAELAB_CACHE, else $XDG_CACHE_HOME/vaelab, else ~/.cache/vaelab."""
    env = os.environ.get("VAELAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vaelab"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(urls: list[str], dest: Path, check: callable, timeout: float = 60.0) -> Path:
    """Fetch the first URL that answers into ``dest`` (atomic), after ``check(bytes)`` passes.

    ``check`` raises DataError when the bytes are not the expected file. Tries each mirror in
    turn; raises DataError naming the file and the mirrors when none works.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                data = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        check(data, url)
        tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return dest
    raise DataError(f"could not download {dest.name} ({'; '.join(errors)}).")
