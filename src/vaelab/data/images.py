"""A folder of images, one sub-folder per class (PNG / JPEG), as grayscale or RGB arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaelab.data.dataset import Dataset
from vaelab.errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def load_image_folder(root: Path, image_size: list[int] | None = None,
                      color: str = "grayscale") -> Dataset:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError("image folders need Pillow; pip install pillow.") from None
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    items: list[tuple[Path, int]] = []
    if classes:
        for k, c in enumerate(classes):
            items += [(f, k) for f in sorted((root / c).iterdir())
                      if f.suffix.lower() in EXTENSIONS]
    else:
        items = [(f, -1) for f in sorted(root.iterdir()) if f.suffix.lower() in EXTENSIONS]
    if not items:
        raise DataError(f"{root} holds no PNG / JPEG images; put them in one sub-folder per "
                        "class.")
    mode = "RGB" if color == "rgb" else "L"
    arrays, sizes = [], set()
    for f, _ in items:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                if image_size:
                    im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
                a = np.asarray(im, dtype=np.float32)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f} is not a readable image ({exc}); remove or replace it.") \
                from None
        sizes.add(a.shape[:2])
        arrays.append(a)
    if len(sizes) > 1:
        raise DataError(f"{root} holds images of {len(sizes)} different sizes (e.g. "
                        f"{', '.join(f'{h}x{w}' for h, w in sorted(sizes)[:3])}); pass "
                        "--image-size H,W to resize them.")
    x = np.stack(arrays)
    x = x[:, None] if x.ndim == 3 else np.transpose(x, (0, 3, 1, 2))
    y = np.array([k for _, k in items], dtype=np.int64)
    return Dataset(x=x, y=y if classes else None, name=root.name,
                   label_names=classes or None)
