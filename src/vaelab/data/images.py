"""A folder of images, one sub-folder per class (PNG / JPEG / BMP / GIF), as grayscale or RGB.

``--color auto`` (the default) reads a folder as RGB when its images hold colour
(:func:`detect_color`: up to 32 images spread over the folder, a pixel in colour where its
channels differ by more than 12 levels, an image in colour when 1% of its pixels are), else as
grayscale; ``--color rgb`` / ``grayscale`` choose.

The folder is converted once into a uint8 cache (``vaelab.data.image_cache``) and trained on
from there: loaded as float32 when it fits comfortably in memory, streamed row by row otherwise.

Conversion of one image (:func:`to_uint8`):

- 16-bit greyscale (PIL modes ``I;16*`` / ``I``) is scaled to 8 bits (value / 257, so 65535
  becomes 255), never clipped;
- transparency (RGBA, LA, palette images with a transparent colour) is composited on a white
  background, then dropped;
- greyscale images become RGB by repeating the grey value, colour images become greyscale by
  PIL's luma (L = 0.299 R + 0.587 G + 0.114 B);
- with ``--image-size`` the 8-bit image is resized bilinearly; without it every image must have
  the same size;
- only the first frame of an animated GIF is used; EXIF orientation is not applied.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vaelab.data.config import check_color, image_size_hw
from vaelab.data.dataset import Dataset
from vaelab.errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
GREY_MODES = {"1", "L", "LA", "La", "F", *SIXTEEN_BIT}
COLOR_SAMPLE = 32
"""Images ``--color auto`` looks at, spread evenly over the folder's sorted files."""


def detect_color(items: list[tuple[Path, int]]) -> str:
    """``--color auto``'s choice: rgb when any sampled image holds colour, else grayscale.

    Greyscale modes are decided from the header; colour-capable ones (RGB, palette, CMYK) are
    decoded (JPEGs at a reduced scale) and composited on white like the conversion, so a grey
    image saved as RGB, or hidden colour under full transparency, does not count. An unreadable
    file is skipped here: the conversion names it."""
    from PIL import Image

    n = len(items)
    picks = sorted({(i * (n - 1)) // max(COLOR_SAMPLE - 1, 1) for i in range(min(n, COLOR_SAMPLE))})
    for i in picks:
        try:
            with Image.open(items[i][0]) as im:
                if im.mode in GREY_MODES:
                    continue
                im.draft("RGB", (128, 128))  # JPEG: decode at 1/2 .. 1/8 scale
                im.load()
                a = to_uint8(im, None, "rgb").astype(np.int16)
        except Exception:  # an unreadable file: the conversion names it
            continue
        spread = a.max(0) - a.min(0)
        if np.mean(spread > 12) >= 0.01:
            return "rgb"
    return "grayscale"


def list_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sub-folders, sorted) and ``(file, label)`` pairs; label -1 without classes.

    Hidden sub-folders and files (names starting with a dot) are skipped.
    """
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
    items: list[tuple[Path, int]] = []
    if classes:
        for k, c in enumerate(classes):
            items += [(f, k) for f in _images_in(root / c)]
    else:
        items = [(f, -1) for f in _images_in(root)]
    if not items:
        raise DataError(f"{root} holds no PNG / JPEG images; put them in one sub-folder per "
                        "class.")
    return classes, items


def _images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; hidden ones (``._x.png``) are skipped."""
    with os.scandir(folder) as it:  # no stat per file: fast for 100,000s of images
        names = sorted(e.name for e in it if not e.name.startswith(".")
                       and os.path.splitext(e.name)[1].lower() in EXTENSIONS and e.is_file())
    return [folder / n for n in names]


def to_uint8(im: Any, size: tuple[int, int] | None, color: str) -> np.ndarray:
    """A PIL image as a (C, H, W) uint8 array in ``color`` (grayscale or rgb), resized to size."""
    from PIL import Image

    if im.mode in SIXTEEN_BIT:  # convert("L") would clip everything above 255
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
        im = Image.fromarray(a, mode="L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    im = im.convert("RGB" if color == "rgb" else "L")
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def image_hw(path: Path) -> tuple[int, int]:
    """(H, W) of an image from its header only (no decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception as exc:  # any failure: one sentence naming the file
        raise DataError(_unreadable(path, exc)) from None


class OtherSize(Exception):
    """An image whose (H, W) is not the expected one (no --image-size given)."""

    def __init__(self, hw: tuple[int, int]) -> None:
        super().__init__(f"{hw[0]}x{hw[1]}")
        self.hw = hw


def decode_image(path: Path, size: tuple[int, int] | None, color: str,
                 expect: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as (C, H, W) uint8 (see :func:`to_uint8`); DataError naming the file.

    Without ``size``, an image whose header says another (H, W) than ``expect`` raises
    :class:`OtherSize` before anything is decoded.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            if size is None and expect is not None and (im.size[1], im.size[0]) != expect:
                raise OtherSize((im.size[1], im.size[0]))
            im.load()
            return to_uint8(im, size, color)
    except OtherSize:
        raise
    except Exception as exc:  # truncated files raise OSError, SyntaxError, ...
        raise DataError(_unreadable(path, exc)) from None


def _unreadable(path: Path, exc: BaseException) -> str:
    from vaelab.data.checks import one_line

    return (f"{path} is not a readable image ({type(exc).__name__}: {one_line(exc)}); remove or "
            "replace it.")


def load_image_folder(root: Path, image_size: list[int] | None = None,
                      color: str = "auto", stream: str = "auto", chunk_mb: float = 64.0,
                      progress: bool | None = None) -> Dataset:
    """The images under ``root`` as a Dataset of raw 0..255 values, (N, C, H, W).

    ``x`` is float32 in memory, or a LazyRows over the uint8 cache when it is too large for
    memory or ``stream='on'`` (see ``vaelab.data.lazy.should_stream``). Labels come from the
    class sub-folders (none when the images lie directly in ``root``).
    """
    try:
        import PIL  # noqa: F401
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError("image folders need Pillow; pip install pillow.") from None
    from vaelab.data.image_cache import cached_folder, open_cached

    size = image_size_hw(image_size)
    check_color(color)
    classes, items = list_image_folder(root)
    npy, meta = cached_folder(root, items, classes, size, color, progress=progress)
    x = open_cached(npy, meta, stream, chunk_mb)
    y = np.asarray(meta["labels"], dtype=np.int64) if classes else None
    return Dataset(x=x, y=y, name=root.name, label_names=classes or None,
                   row_names=meta.get("files"))
