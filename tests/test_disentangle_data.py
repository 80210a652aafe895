"""Factors in users' data: --factor-columns of a CSV (taken out of the features, coded as
integers) and factors.csv inside an image folder; clear errors."""

import numpy as np
import pytest

from vaelab.data import DataConfig, load_data, load_raw
from vaelab.data.factors import factor_codes
from vaelab.errors import DataError


def test_factor_codes_for_text_few_and_many_numbers():
    np.testing.assert_array_equal(factor_codes(["b", "a", "b", ""]), [2, 1, 2, 0])
    np.testing.assert_array_equal(factor_codes(["3", "1.0", "3", "2"]), [2, 0, 2, 1])
    many = factor_codes([str(v) for v in np.linspace(0, 1, 100)])
    assert many.min() == 0 and many.max() == 19 and np.all(np.diff(many) >= 0)


def _csv(tmp_path, n=60):
    rng = np.random.default_rng(0)
    lines = ["a,b,colour,size,c"]
    for i in range(n):
        colour = ["red", "green"][i % 2]
        lines.append(f"{rng.normal():.3f},{rng.normal():.3f},{colour},{i % 3},{rng.normal():.3f}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_factor_columns_of_a_table_are_not_features(tmp_path):
    path = _csv(tmp_path)
    raw = load_raw(DataConfig(data=str(path), factor_columns=["colour", "size"]))
    ds = raw.train
    assert ds.factor_names == ["colour", "size"] and ds.factors.shape == (60, 2)
    assert ds.x.shape[1] == 3  # a, b, c
    np.testing.assert_array_equal(ds.factors[:4], [[1, 0], [0, 1], [1, 2], [0, 0]])
    data = load_data(DataConfig(data=str(path), factor_columns=["3"]), seed=1)  # by index
    assert data.train.factor_names == ["size"] and len(data.train.factors) == len(data.train)
    with pytest.raises(DataError, match="--factor-columns names 'shade', which is not a column"
                       ) as err:
        load_raw(DataConfig(data=str(path), factor_columns=["shade"]))
    assert "\n" not in str(err.value)


def test_factors_csv_in_an_image_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6), 40 * i, np.uint8), "L").save(root / cls / f"{i}.png")
    rows = ["file,brightness"] + [f"{c}/{i}.png,{i}" for c in ("b", "a") for i in range(3)]
    (root / "factors.csv").write_text("\n".join(rows) + "\n")
    ds = load_raw(DataConfig(data=str(root))).train
    assert ds.factor_names == ["brightness"]
    # each row's factor is its own image's (rows are stored shuffled; row_names say which)
    np.testing.assert_array_equal(ds.x[:, 0, 0, 0], 40 * ds.factors[:, 0])
    assert sorted(ds.factors[:, 0].tolist()) == [0, 0, 1, 1, 2, 2]
    assert sorted(ds.row_names) == [f"{c}/{i}.png" for c in ("a", "b") for i in range(3)]
    (root / "factors.csv").rename(tmp_path / "imgs.factors.csv")  # beside the folder
    assert load_raw(DataConfig(data=str(root))).train.factor_names == ["brightness"]
    (tmp_path / "imgs.factors.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(DataError, match=r"imgs.factors.csv has no row for the image 'a/2\.png'"):
        load_raw(DataConfig(data=str(root)))
    with pytest.raises(DataError, match="applies to CSV / TSV files and image folders"):
        np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
        load_raw(DataConfig(data=str(tmp_path / "x.npy"), factor_columns=["0"]))


def test_a_table_without_header_names_factor_columns_by_index(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("".join(f"{i * 0.1:.1f},{i % 2},{i * 0.3:.1f}\n" for i in range(30)))
    data = load_data(DataConfig(data=str(path), factor_columns=["1"]), seed=0)
    assert data.train.factor_names == ["1"]
    assert load_raw(DataConfig(data=str(path), factor_columns=["1"])).train.x.shape == (30, 2)
    assert set(np.unique(data.train.factors)) == {0, 1}
