"""Settings of the data layer: where the data comes from and how it is preprocessed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Which data to load and how to split and preprocess it."""

    dataset: str = "digits"
    """Named dataset (digits, iris, mnist, fashion-mnist, mnist-5k, shapes); ignored when `data`
    is set."""
    data: str | None = None
    """Path to a user's file or folder (CSV/TSV, .npy/.npz, IDX, image folder)."""
    data_dir: str | None = None
    """Folder searched first for named datasets' files (IDX .gz for MNIST-like sets)."""
    label_column: str | None = None
    """Table column holding the labels: a header name or a 0-based index (-1 = last)."""
    drop_columns: list[str] = field(default_factory=list)
    """Table columns to ignore: header names or 0-based indices, comma-separated."""
    factor_columns: list[str] = field(default_factory=list)
    """Table columns holding known factors of variation (not features): the disentanglement
    metrics score the code against them. An image folder's factors come from its factors.csv."""
    header: str = "auto"
    """Whether a table's first line is a header: auto (detect), yes or no."""
    image_size: list[int] | None = None
    """Resize image-folder images to H,W (e.g. 64,48), or one number for a square (32 = 32x32);
    without it all images must have the same size."""
    color: str = "auto"
    """Image-folder colour mode: auto (rgb when the folder's images hold colour, else
    grayscale), grayscale (1 channel) or rgb (3); images are converted."""
    nan: str = "auto"
    """Missing values: auto (tables keep missing cells, masked out of the likelihood; arrays
    refuse them), mask, error (say where) or drop those rows."""
    decimal: str = "auto"
    """Decimal mark of a table's numbers: auto (detect '14,23' vs '14.23'), '.' or ','."""
    encoding: str = "auto"
    """Text encoding of a table: auto (UTF-8 with or without BOM, UTF-16 with BOM, else
    Windows-1252 / Latin-1), utf-8, utf-16, cp1252 or latin-1."""
    categorical: list[str] = field(default_factory=list)
    """Table columns to treat as categories (one-hot in, categorical likelihood out)."""
    numeric: list[str] = field(default_factory=list)
    """Table columns to treat as numbers (standardised, Gaussian with learned variance)."""
    binary: list[str] = field(default_factory=list)
    """Table columns with two values to treat as binary (Bernoulli)."""
    columns: dict[str, str] = field(default_factory=dict)
    """Column types as a [data.columns] table (colour = "categorical") or NAME=KIND pairs."""
    preprocess: str = "auto"
    """none, minmax, standardize, binarize, binarize-dynamic, or auto (per dataset)."""
    binarize_threshold: float = 0.5
    """Threshold in [0, 1] (after min-max scaling) for preprocess binarize."""
    val_fraction: float = 0.1
    """Share of the training rows held out for validation."""
    test_fraction: float = 0.2
    """Share held out for testing when the dataset has no official test split."""
    subset: int | None = None
    """Keep only this many training rows (quick experiments, tests)."""
    flatten: bool = False
    """Give images to the model as flat vectors even for convolutional-capable data."""
    stream: str = "auto"
    """Read a .npy (or an image folder's cache) chunk by chunk instead of loading it: auto (when
    larger than a quarter of free memory), on or off."""
    chunk_mb: float = 64.0
    """Size of one chunk, in MB of float32, when streaming a large array."""


COLORS = ("auto", "grayscale", "rgb")


def image_size_hw(image_size: list[int] | tuple[int, ...] | int | None) -> tuple[int, int] | None:
    """``--image-size`` as (H, W): one number is a square; None keeps the images' own size."""
    from vaelab.errors import ConfigError

    if image_size is None:
        return None
    if isinstance(image_size, str):
        values: list = [v for v in image_size.replace(" ", "").split(",") if v]
    else:
        values = [image_size] if isinstance(image_size, (int, float)) else list(image_size)
    try:
        ints = [int(v) for v in values]
        ok = all(float(v) == i for v, i in zip(values, ints, strict=True)) and not any(
            isinstance(v, bool) for v in values)
    except (TypeError, ValueError):
        ok = False
    if not ok or len(ints) not in (1, 2) or min(ints) < 1:
        got = ",".join(str(v) for v in values) or "nothing"
        raise ConfigError(f"--image-size got {got}; give one positive number for a square (32 = "
                          "32x32) or two as H,W (e.g. 64,48).")
    return (ints[0], ints[0]) if len(ints) == 1 else (ints[0], ints[1])


def check_color(color: str) -> str:
    """``--color`` checked: auto, grayscale or rgb."""
    from vaelab.errors import ConfigError

    if color not in COLORS:
        raise ConfigError(f"--color got {color!r}; choose auto, grayscale or rgb.")
    return color
