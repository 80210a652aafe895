"""--dataset shapes: a deterministic renderer whose factors are right (centroid follows x / y,
area follows scale, orientation turns the shape), drawn on demand, factors beside the rows."""

import hashlib
import itertools

import numpy as np
import pytest

from vaelab.data import DataConfig, load_data
from vaelab.data.lazy import LazyRows
from vaelab.data.shapes import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    ShapesSource,
    cell_of,
    factors_of,
    render,
    row_order,
    shapes_dataset,
)
from vaelab.errors import DataError

ROW_ORDER_START = [111210, 384520, 67793]
"""The first grid cells of the fixed row order (numpy default_rng(14).permutation)."""
DIGEST = "bf77096037cca081776990675c5a3759aaf58c8f0ac723cebb1bf75fa69ace7d"
"""sha256 of render(factors_of(range(0, 737280, 7919))): changes only with the renderer."""


def _centroid(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img[0])
    return float(rows.mean()), float(cols.mean())


def test_rendering_is_deterministic_and_binary():
    f = np.random.default_rng(0).integers(0, FACTOR_SIZES, (64, 5))
    a, b = render(f), render(f.copy())
    assert a.shape == (64, 1, 64, 64) and a.dtype == np.uint8
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1}
    # the same pixels in every process and version: the digest of every 7919th image
    grid = render(factors_of(np.arange(0, 737280, 7919)))
    assert hashlib.sha256(grid.tobytes()).hexdigest() == DIGEST
    assert grid.sum(axis=(1, 2, 3)).min() > 20  # every image shows its shape


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_the_centroid_follows_the_position_factors(shape):
    for orientation in (0, 7, 23):
        base = render(np.array([[shape, 5, orientation, 0, 0]]))[0]
        r0, c0 = _centroid(base)
        assert abs(r0 - 15.5) < 0.75 and abs(c0 - 15.5) < 0.75  # the centroid is at 16 + index
        for ix, iy in ((31, 0), (0, 31), (9, 20)):
            img = render(np.array([[shape, 5, orientation, ix, iy]]))[0]
            r, c = _centroid(img)
            assert r == pytest.approx(r0 + iy, abs=1e-9) and c == pytest.approx(c0 + ix, abs=1e-9)


def test_the_area_follows_the_scale_and_orientation_turns_the_shape():
    for shape in range(3):
        areas = [int(render(np.array([[shape, s, 0, 16, 16]])).sum()) for s in range(6)]
        assert all(a < b for a, b in itertools.pairwise(areas))
        assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.12)  # scale 1 vs 0.5
    square = render(np.array([[0, 5, k, 16, 16] for k in (0, 5, 10)]))
    assert not np.array_equal(square[0], square[1])  # 45 degrees
    assert np.array_equal(square[0], square[2])  # a square turned by 90 degrees is itself
    heart = render(np.array([[2, 5, k, 16, 16] for k in (0, 20)]))
    assert np.array_equal(heart[1][0], heart[0][0][::-1, ::-1])  # 180 degrees
    assert not np.array_equal(heart[0][0], heart[0][0][::-1])  # a heart is not symmetric
    kinds = render(np.array([[s, 5, 0, 16, 16] for s in range(3)]))
    assert len({k.tobytes() for k in kinds}) == 3


def test_rows_are_rendered_on_demand_with_their_factors():
    ds = shapes_dataset()
    assert isinstance(ds.x, LazyRows) and len(ds) == 737280 == int(np.prod(FACTOR_SIZES))
    assert ds.factor_names == list(FACTOR_NAMES) and ds.factors.shape == (737280, 5)
    rows = np.array([5, 737279, 123456, 7])
    np.testing.assert_array_equal(np.asarray(ds.x[rows]), render(ds.factors[rows]))
    np.testing.assert_array_equal(cell_of(factors_of(rows)), rows)
    np.testing.assert_array_equal(ShapesSource().read(10, 13), render(ds.factors[10:13]))
    # rows are a fixed shuffle of the grid: a block of consecutive rows (what streaming reads
    # as one chunk) holds every shape, scale and position, in the same order in every process
    assert np.array_equal(np.sort(row_order()), np.arange(737280))
    block = ds.factors[:4096]
    assert all(len(np.unique(block[:, k])) == s for k, s in enumerate(FACTOR_SIZES))
    assert row_order()[:3].tolist() == ROW_ORDER_START
    with pytest.raises(DataError, match="shapes factors must lie in"):
        render(np.array([[3, 0, 0, 0, 0]]))


def test_load_data_splits_keep_factors_and_images_aligned():
    data = load_data(DataConfig(dataset="shapes", subset=300, val_fraction=0.001,
                                test_fraction=0.001), seed=3)
    assert len(data.train) == 300 and data.likelihood_hint == "bernoulli"
    for split in (data.train, data.val, data.test):
        assert split.factor_names == list(FACTOR_NAMES)
        x = np.asarray(split.x[:20])
        np.testing.assert_array_equal(x, render(split.factors[:20]).astype(np.float32))
