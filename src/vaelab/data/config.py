"""Settings of the data layer: where the data comes from and how it is preprocessed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Which data to load and how to split and preprocess it."""

    dataset: str = "digits"
    """Named dataset (digits, iris, mnist, fashion-mnist, mnist-5k); ignored when `data` is set."""
    data: str | None = None
    """Path to a user's file or folder (CSV/TSV, .npy/.npz, IDX, image folder)."""
    data_dir: str | None = None
    """Folder searched first for named datasets' files (IDX .gz for MNIST-like sets)."""
    label_column: str | None = None
    """Table column holding the labels: a header name or a 0-based index (-1 = last)."""
    drop_columns: list[str] = field(default_factory=list)
    """Table columns to ignore: header names or 0-based indices, comma-separated."""
    header: str = "auto"
    """Whether a table's first line is a header: auto (detect), yes or no."""
    image_size: list[int] | None = None
    """Resize image-folder images to H,W (or one number for squares)."""
    color: str = "grayscale"
    """Image-folder colour mode: grayscale or rgb."""
    nan: str = "error"
    """What to do with NaN / inf / missing values: error (say where) or drop those rows."""
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
    """Read a .npy chunk by chunk instead of loading it: auto (when larger than a quarter of
    free memory), on or off."""
    chunk_mb: float = 64.0
    """Size of one chunk, in MB of float32, when streaming a large array."""
