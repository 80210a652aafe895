"""``--dataset shapes``: a dSprites-like data set drawn by vaelab itself, deterministically.

Five factors of variation on dSprites' grid, 3 x 6 x 40 x 32 x 32 = 737,280 binary 64 x 64
images, one per combination:

- ``shape``: square, ellipse, heart;
- ``scale``: 6 values from 0.5 to 1 (square side 20 px, ellipse axes 28 x 14 px and heart
  width 25 px at scale 1);
- ``orientation``: 40 angles k * 2 pi / 40 about the shape's centroid, counter-clockwise;
- ``position_x``, ``position_y``: 32 positions each, the centroid at pixel 16 + index
  (rows grow downwards), so every shape at every angle stays inside the image.

Grid cell g is the combination ``np.unravel_index(g, FACTOR_SIZES)`` (the order of dSprites'
file); row i of the data set is cell ``row_order()[i]``, a fixed shuffle of the grid, so that
any run of consecutive rows (a chunk, as streaming reads them, or a sorted subset's) is a
random sample of the grid rather than one shape at one scale. Each of the 720 (shape, scale,
orientation) sprites is rasterised once on a 32 x 32 grid with 4 x 4 supersampling (a pixel is
1 when at least half of it is covered) and pasted at its position, so any image is rendered on
demand from its factor indices in microseconds: the data set is a
:class:`~vaelab.data.lazy.LazyRows` that never exists whole, the factors travel with it as the
named columns ``Dataset.factors``, and ``render`` draws any factor combination (the FactorVAE
metric fixes one factor and draws the rest).
"""

from __future__ import annotations

import functools

import numpy as np

from vaelab.data.dataset import Dataset
from vaelab.data.lazy import LazyRows

FACTOR_NAMES = ("shape", "scale", "orientation", "position_x", "position_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.arange(40) * (2 * np.pi / 40)
IMAGE_SIZE = 64
SPRITE_SIZE = 32
SUPERSAMPLE = 4
SQUARE_HALF_SIDE = 10.0
ELLIPSE_AXES = (14.0, 7.0)
HEART_UNIT = 11.0
HEART_CENTROID_Y = 0.2935
"""Centroid height of the region (x^2 + y^2 - 1)^3 <= x^2 y^3, so it turns about its centre."""


def _inside(shape: int, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """Whether the points (u, v) (pixels from the centroid, v downwards) lie in the shape."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE * scale
    if shape == 1:
        a, b = ELLIPSE_AXES
        return (u / (a * scale)) ** 2 + (v / (b * scale)) ** 2 <= 1.0
    x = u / (HEART_UNIT * scale)
    y = -v / (HEART_UNIT * scale) + HEART_CENTROID_Y  # lobes up
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0


@functools.cache
def sprites() -> np.ndarray:
    """(3, 6, 40, 32, 32) uint8: every (shape, scale, orientation) rasterised, centroid at the
    corner between pixels 15 and 16 of the sprite."""
    s = SUPERSAMPLE
    axis = (np.arange(SPRITE_SIZE * s) + 0.5) / s - SPRITE_SIZE / 2
    gx, gy = np.meshgrid(axis, axis)  # gy grows downwards with the row
    out = np.zeros((*FACTOR_SIZES[:3], SPRITE_SIZE, SPRITE_SIZE), dtype=np.uint8)
    for k, theta in enumerate(ORIENTATIONS):
        c, sn = np.cos(theta), np.sin(theta)
        # the point turned back by theta (counter-clockwise on screen, where y points down)
        u = c * gx - sn * gy
        v = sn * gx + c * gy
        for shape in range(3):
            for j, scale in enumerate(SCALES):
                cover = _inside(shape, u, v, scale).reshape(SPRITE_SIZE, s, SPRITE_SIZE, s)
                out[shape, j, k] = cover.mean(axis=(1, 3)) >= 0.5
    out.setflags(write=False)
    return out


ORDER_SEED = 14


@functools.cache
def row_order() -> np.ndarray:
    """Grid cell of each data set row: a fixed permutation of the 737,280 cells."""
    order = np.random.default_rng(ORDER_SEED).permutation(int(np.prod(FACTOR_SIZES)))
    order.setflags(write=False)
    return order


def factors_of(cells: np.ndarray) -> np.ndarray:
    """(n, 5) factor indices of grid cells ``cells``."""
    return np.stack(np.unravel_index(np.asarray(cells, dtype=np.int64), FACTOR_SIZES), 1)


def cell_of(factors: np.ndarray) -> np.ndarray:
    """Grid cells of the factor combinations ``factors`` (n, 5)."""
    f = np.asarray(factors, dtype=np.int64)
    return np.ravel_multi_index(tuple(f.T), FACTOR_SIZES)


def render(factors: np.ndarray) -> np.ndarray:
    """(n, 1, 64, 64) uint8 images (0 / 1) of the factor index rows ``factors`` (n, 5)."""
    f = np.asarray(factors, dtype=np.int64).reshape(-1, len(FACTOR_SIZES))
    if f.size and ((f < 0).any() or (f >= np.array(FACTOR_SIZES)).any()):
        from vaelab.errors import DataError

        raise DataError(f"shapes factors must lie in 0..size-1 for sizes {FACTOR_SIZES}; "
                        f"got rows such as {f[((f < 0) | (f >= FACTOR_SIZES)).any(1)][0]}.")
    n = len(f)
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    span = np.arange(SPRITE_SIZE)
    rows = f[:, 4, None, None] + span[None, :, None]
    cols = f[:, 3, None, None] + span[None, None, :]
    out[np.arange(n)[:, None, None], rows, cols] = sprites()[f[:, 0], f[:, 1], f[:, 2]]
    return out[:, None]


class ShapesSource:
    """The whole grid, in row order, as a row source for LazyRows: rendered when read."""

    shape = (int(np.prod(FACTOR_SIZES)), 1, IMAGE_SIZE, IMAGE_SIZE)
    dtype = np.dtype(np.uint8)

    def read(self, start: int, stop: int) -> np.ndarray:
        return render(factors_of(row_order()[start : max(start, stop)]))

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows in any order, rendered directly (no contiguous span is read)."""
        return render(factors_of(row_order()[np.asarray(rows, dtype=np.int64)]))


class ShapesFactors:
    """What the disentanglement metrics need to draw observations: the factor sizes and a
    renderer from factor indices to raw images (``Dataset.factor_source``)."""

    names = FACTOR_NAMES
    sizes = FACTOR_SIZES

    def render(self, factors: np.ndarray) -> np.ndarray:
        return render(factors).astype(np.float32)


def shapes_dataset(chunk_bytes: int = 64 << 20) -> Dataset:
    """Every image of the grid, rendered on demand, with its factors as named columns."""
    n = int(np.prod(FACTOR_SIZES))
    return Dataset(x=LazyRows(ShapesSource(), chunk_bytes=chunk_bytes),  # type: ignore[arg-type]
                   name="shapes", factors=factors_of(row_order()[:n]).astype(np.int32),
                   factor_names=list(FACTOR_NAMES), factor_source=ShapesFactors())
