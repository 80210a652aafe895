"""Settings of the data layer: where the data comes from and how it is preprocessed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Which data to load and how to split and preprocess it."""

    dataset: str = "digits"
    """Named dataset (digits, iris, mnist, fashion-mnist, mnist-5k); ignored when `data` is set."""
    data: str | None = None
    """Path to a user's file or folder (CSV/TSV, .npy/.npz, image folder)."""
    data_dir: str | None = None
    """Folder searched first for named datasets' files (IDX .gz for MNIST-like sets)."""
    label_column: str | None = None
    drop_columns: list[str] = field(default_factory=list)
    image_size: list[int] | None = None
    """Resize image-folder images to [H, W]."""
    color: str = "grayscale"
    """Image-folder colour mode: grayscale or rgb."""
    nan: str = "error"
    """What to do with NaN / inf rows: error or drop."""
    preprocess: str = "auto"
    """none, minmax, standardize, binarize, binarize-dynamic, or auto (per dataset)."""
    binarize_threshold: float = 0.5
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    """Share held out for testing when the dataset has no official test split."""
    subset: int | None = None
    """Keep only this many training rows (quick experiments, tests)."""
    flatten: bool = False
    """Give images to the model as flat vectors even for convolutional-capable data."""
