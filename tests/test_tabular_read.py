"""Reading spreadsheet tables: dialects, column types (detected and declared), missing cells."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.config import Config
from vaelab.data import DataConfig, load_data, load_raw
from vaelab.data.columns import declared_types
from vaelab.data.dialect import detect_decimal, parse_number
from vaelab.data.tabular import read_table
from vaelab.errors import DataError

EURO = ('\ufeffalcohol;"ash; grey";proline;colour;organic\n'
        '14,23;2,43;1.065;rosso;sì\n'
        '13,2;"2,14";1.050;rosé;no\n'
        '13,16;;1.185;bianco;sì\n'
        '14,37;2,5;1.480;rosso;NA\n')


def test_european_spreadsheet_export(tmp_path):
    p = tmp_path / "wine.csv"
    p.write_text(EURO, encoding="utf-8")
    ds = read_table(p)
    assert ds.feature_names == ["alcohol", "ash; grey", "proline", "colour", "organic"]
    kinds = {c["name"]: c["kind"] for c in ds.columns}
    assert kinds == {"alcohol": "numeric", "ash; grey": "numeric", "proline": "numeric",
                     "colour": "categorical", "organic": "binary"}
    np.testing.assert_allclose(ds.x[:, 0], [14.23, 13.2, 13.16, 14.37], rtol=1e-6)
    np.testing.assert_allclose(ds.x[:, 2], [1065, 1050, 1185, 1480])  # thousands groups
    assert np.isnan(ds.x[2, 1]) and np.isnan(ds.x[3, 4])  # missing cells kept
    organic = ds.columns[4]
    assert organic["categories"] == ["no", "sì"] and ds.x[0, 4] == 1  # 'sì' is the 1
    assert ds.columns[3]["categories"] == ["bianco", "rosso", "rosé"]
    assert ds.columns[2]["integer"] and ds.table["dialect"]["decimal"] == ","
    assert ds.table["dialect"]["bom"]


def test_latin1_and_utf16_files_read_the_same(tmp_path):
    want = read_table(_write(tmp_path / "u.csv", EURO.lstrip("\ufeff").encode("utf-8")))
    for name, raw in (("l.csv", EURO.lstrip("\ufeff").encode("latin-1")),
                      ("w.txt", EURO.replace(";", "\t").encode("utf-16"))):
        ds = read_table(_write(tmp_path / name, raw))
        np.testing.assert_array_equal(np.nan_to_num(ds.x, nan=-9), np.nan_to_num(want.x, nan=-9))
        assert ds.columns[3]["categories"] == ["bianco", "rosso", "rosé"]


def _write(path, raw: bytes):
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(("cell", "decimal", "value"), [
    ("1.234,5", ",", 1234.5), ("1,234.5", ".", 1234.5), ("1 234,5", ",", 1234.5),
    ("1'234.5", ".", 1234.5), ("-3,5E-2", ",", -0.035), ("1,5", ".", None), ("12%", ".", None),
])
def test_numbers_as_spreadsheets_write_them(cell, decimal, value):
    assert parse_number(cell, decimal) == value


def test_decimal_comma_is_detected_and_can_be_forced(tmp_path):
    assert detect_decimal([["14,23", "1,71"], ["13,2", "7"]], ";") == ","
    assert detect_decimal([["1.5", "2"]], ",") == "."
    p = tmp_path / "q.csv"
    p.write_text('a,b\n"1,5",2\n"2,5",3\n')  # decimal commas in a comma file: quoted
    assert read_table(p).x[:, 0].tolist() == [1.5, 2.5]
    assert read_table(p, decimal=",").x[:, 0].tolist() == [1.5, 2.5]
    assert read_table(p, decimal=".").columns[0]["kind"] == "binary"  # '1,5' is then text


def test_declared_types_override_detection(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("size,flag,code,grade\n1,0,10,a\n2,1,20,b\n3,1,10,c\n2,0,20,a\n")
    ds = read_table(p, types=declared_types(categorical=["size"], numeric=["flag"],
                                            binary=["code"]))
    kinds = [c["kind"] for c in ds.columns]
    assert kinds == ["categorical", "numeric", "binary", "categorical"]
    assert ds.columns[0]["categories"] == ["1", "2", "3"] and ds.x[:, 0].tolist() == [0, 1, 2, 1]
    assert ds.columns[2]["categories"] == ["10", "20"]
    toml = tmp_path / "c.toml"
    toml.write_text(f'[data]\ndata = "{p}"\n[data.columns]\nsize = "categorical"\n')
    raw = load_raw(Config.from_toml(toml).data)
    assert raw.train.columns[0]["kind"] == "categorical"


@pytest.mark.parametrize(("text", "types", "message"), [
    ("a,b\n1,2\n3,x\n4,5\n", {}, r"column 'b' holds numbers but also the non-numeric value 'x' "
     r"\(line 3\); .* --categorical b"),
    ("a,b\n1,2\n3,abc\n", {"b": "numeric"}, r"column 'b' is declared numeric but holds the "
     r"non-numeric value 'abc' \(line 3\); .* --categorical b"),
    ('a,b\n1,2\n3,"4,5"\n5,6.5\n', {}, "reads as a number with a decimal comma: pass --decimal ,"),
    ("id,v\n" + "".join(f"u{i},{i}\n" for i in range(40)), {},
     "40 different text values in 40 rows, more like an identifier.*--drop-columns id"),
    ("a,b\n1,x\n2,y\n3,z\n", {"b": "binary"}, "declared binary but holds 3 different values"),
    ("a,b\n1,x\n2,y\n", {"c": "numeric"}, "column 'c' is declared numeric but is not a column"),
    ("a,b\n1,inf\n2,3\n", {}, r"column 'b' holds the infinite value 'inf' \(line 2\)"),
    ("a,b\n1,2\n3,-1e300\n", {}, r"column 'b' holds '-1e300' \(line 3\), beyond float32's "
     r"range .*; rescale the column"),
])
def test_column_errors_name_the_column_and_the_way_out(tmp_path, text, types, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        read_table(p, types=types)
    assert "\n" not in str(err.value)


def test_a_column_declared_twice_is_refused():
    with pytest.raises(DataError, match="declared both categorical and numeric"):
        declared_types(categorical=["a"], table={"a": "numeric"})
    with pytest.raises(DataError, match="use numeric, binary or categorical"):
        declared_types(table="a=text")


def test_missing_cells_masked_dropped_or_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,c\n1,2,x\n,4,y\n5,6,\n7,8,z\n9,1,y\n3,3,x\n")
    assert np.isnan(read_table(p).x).sum() == 2
    assert len(read_table(p, nan="drop").x) == 4
    with pytest.raises(DataError, match="2 missing or infinite values"):
        read_table(p, nan="error")
    d = load_data(DataConfig(data=str(p), val_fraction=0.2, test_fraction=0.2), seed=0)
    assert d.preprocessor.kind == "columns" and d.likelihood_hint == "mixed"
    width = d.preprocessor.params["width"]  # a, b, c (2 categories + unknown), 3 observed flags
    assert d.example_shape == (width,) and width == 1 + 1 + 3 + 3
    assert np.isfinite(d.train.x).all()


def test_plain_preprocessing_only_for_all_numeric_complete_tables(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n" + "".join(f"{i},{i * i % 7}\n" for i in range(20)))
    d = load_data(DataConfig(data=str(p), preprocess="standardize"), seed=0)
    assert d.preprocessor.kind == "standardize" and d.train.columns is None
    q = tmp_path / "u.csv"
    q.write_text("a,b\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(20)))
    with pytest.raises(DataError, match="column 'b' is binary; leave --preprocess auto"):
        load_data(DataConfig(data=str(q), preprocess="minmax"), seed=0)


def test_categories_only_in_the_test_split_are_unknown_with_a_warning(tmp_path):
    p = tmp_path / "t.csv"
    rows = [f"{i},{'ab'[i % 2]}" for i in range(40)] + ["40,c"]
    p.write_text("v,kind\n" + "\n".join(rows) + "\n")
    for seed in range(20):  # a seed that puts the one 'c' row outside the training split
        d = load_data(DataConfig(data=str(p)), seed=seed)
        notes = d.info.get("notes", [])
        if any("'c'" in n for n in notes):
            break
    assert any("column 'kind': value 'c'" in n and "unknown" in n for n in notes)
    col = d.preprocessor.params["columns"][1]
    assert col["labels"] == ["a", "b", "(unknown)"]
