"""Shared plotting helpers: Agg backend, image tiling, display scaling."""

from __future__ import annotations

import math
import os
import sys

import matplotlib

# Headless by default; a notebook (ipykernel) or an explicit MPLBACKEND keeps its own backend so
# returned figures display inline.
if "ipykernel" not in sys.modules and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

LABEL_CMAP = "tab10"


def new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot's global state (safe in loops and servers)."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def tile(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """Tile (N, C, H, W) images into one (rows*H, ncols*W[, 3]) canvas with padding.

    One channel gives a grey (H, W) canvas and three an RGB one; other channel counts (a
    multispectral array) are shown as the grey mean of their channels.
    """
    images = np.asarray(images)
    if images.shape[1] not in (1, 3):
        images = images.mean(axis=1, keepdims=True)
    n = len(images)
    c, h, w = images.shape[1:]
    nrows = max(1, math.ceil(n / ncols))
    canvas = np.ones((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), dtype=np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, ncols)
        canvas[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = (
            np.transpose(img, (1, 2, 0))
        )
    return canvas[..., 0] if c == 1 else canvas


def unit_range(x: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Scale to [0, 1] for display with the given (or the array's) range."""
    lo = float(np.min(x)) if lo is None else lo
    hi = float(np.max(x)) if hi is None else hi
    return np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1)


def to_rgba(img: np.ndarray) -> np.ndarray:
    """A [0, 1] grey (H, W) or colour (H, W, 3|4) canvas as float32 RGBA (the grey colour map
    is linear; NaN shows white, as before). matplotlib resamples an RGBA float32 image in
    float32; grey or RGB input went through float64 RGBA planes at the output size, about
    110 MB for a tall traversal grid."""
    img = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32), nan=1.0), 0.0, 1.0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 3:
        img = np.concatenate([img, np.ones((*img.shape[:2], 1), np.float32)], axis=-1)
    return img


def show_image(ax, img: np.ndarray) -> None:
    """Show a canvas as :func:`tile` makes it: (H, W) grey or (H, W, 3) colour, in [0, 1]."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] not in (3, 4):
        raise ValueError(f"show_image takes an (H, W) or (H, W, 3) canvas, not {img.shape}")
    ax.imshow(to_rgba(img), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def close(fig: Figure) -> None:
    plt.close(fig)


def add_note(fig: Figure, text: str | None) -> Figure:
    """Put a one-line number (a metric, how it was measured) under the figure."""
    if text:
        fig.supxlabel(text, fontsize=9, color="0.2")
    return fig


PAD_INCHES = 0.12
"""White margin around the drawn content of a saved figure."""


def save_figure(fig: Figure, path, dpi: int = 110) -> None:
    """Save as PNG cropped to the drawn content plus a small margin (titles never touch the
    edge), written to a temporary name and renamed, so a reader never sees half a file.

    The figure is rendered once and the raster cropped to its tight bounding box: the result
    ``savefig(bbox_inches="tight")`` gives, without its second full draw (a third to a half
    of the figure's time). Content that reaches outside the figure (which cropping cannot
    show) is saved by ``savefig(bbox_inches="tight")`` itself.
    """
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        image = _render_cropped(fig, dpi)
        if image is None:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=PAD_INCHES)
        else:
            from PIL import Image

            Image.fromarray(image).save(tmp, format="png", dpi=(dpi, dpi), compress_level=6)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _render_cropped(fig: Figure, dpi: int) -> np.ndarray | None:
    """The figure drawn once at ``dpi`` (RGB, uint8) and cropped to its tight bounding box
    plus ``PAD_INCHES``; None when the content reaches outside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    old_dpi = fig.dpi
    fig.set_dpi(dpi)
    try:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        box = fig.get_tightbbox(canvas.get_renderer())  # inches
        w_in, h_in = fig.get_size_inches()
        tol = 0.04  # inches: layout's text extents overshoot the edge by a pixel or two
        if box.x0 < -tol or box.y0 < -tol or box.x1 > w_in + tol or box.y1 > h_in + tol:
            return None
        rgba = np.asarray(canvas.buffer_rgba())
    finally:
        fig.set_dpi(old_dpi)
    height, width = rgba.shape[:2]
    x0, x1 = round((box.x0 - PAD_INCHES) * dpi), round((box.x1 + PAD_INCHES) * dpi)
    y0, y1 = round((h_in - box.y1 - PAD_INCHES) * dpi), round((h_in - box.y0 + PAD_INCHES) * dpi)
    out = np.full((y1 - y0, x1 - x0, 3), 255, dtype=np.uint8)  # the margin beyond the figure
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = _on_white(rgba[sy0:sy1, sx0:sx1])
    return out


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA pixels composited on white, as RGB (an opaque figure passes unchanged)."""
    if (rgba[..., 3] == 255).all():
        return rgba[..., :3]
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
