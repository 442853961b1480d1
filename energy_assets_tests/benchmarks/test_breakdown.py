"""The typed-raw alternative measured by `benchmarks/breakdown.py` gives every delivered cell back, so its times
compare like with like: awkward cells (text in a number's place, numbers with trailing zeros or exponents, times that
do not exist or do not parse, nulls) are kept as text and rebuilt exactly."""

import json

import duckdb
import polars as pl

from benchmarks.breakdown import rebuilt_cells, typed_parse
from energy_assets.smart_meter import source

AWKWARD = [
    ["2021-01-01 00:00:00", 0.438, "mp1"],
    ["2021-01-01 00:30:00", 0.0, "mp1"],
    ["2021-01-01 01:00:00", 0.50, "mp1"],  # written 0.50 below: the trailing zero is delivered text
    ["2021-01-01 01:30:00", 1e-3, "mp1"],
    ["2021-01-01 02:00:00", "0.2", "mp1"],  # a number as a JSON string
    ["2021-01-01 02:30:00", "n/a", "mp1"],
    ["2021-01-01 03:00:00", None, "mp1"],
    ["2021-03-27 25:30:00", 0.1, "mp1"],
    ["garbage", 0.1, "mp1"],
    ["2021-01-01 03:15:00", -0.25, None],
    [None, 12, "mp1"],
]


def test_typed_raw_rebuilds_every_delivered_cell(tmp_path):
    text = json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": AWKWARD})
    text = text.replace("0.5,", "0.50,").replace("0.001", "1E-3")
    (tmp_path / "mp1.json").write_text(text)
    delivered = source.parse_reading_files(tmp_path, ["mp1.json"]).select("file_name", "source_row", "interval_start", "consumption_delta")
    assert "0.50" in delivered["consumption_delta"].to_list() and "1E-3" in delivered["consumption_delta"].to_list()
    con = duckdb.connect()
    typed = typed_parse(con, [str(tmp_path / "mp1.json")])
    assert typed.height == len(AWKWARD)
    # the clean cells are typed only; the awkward ones keep their text
    kept = typed.filter(pl.col("consumption_text").is_not_null())["consumption_text"].to_list()
    assert sorted(kept) == sorted(["0.50", "1E-3", "12", "n/a"])  # 12 is 12.0 as a double
    assert sorted(typed["interval_start_text"].drop_nulls().to_list()) == ["2021-03-27 25:30:00", "garbage"]
    assert typed.filter(pl.col("source_row") == 0)["consumption_kwh"].item() == 0.438
    assert rebuilt_cells(con, typed).sort("source_row").equals(delivered.sort("source_row"))


def test_a_lossy_rebuild_is_caught(tmp_path):
    """The comparison the benchmark relies on fails when a text cell is dropped."""
    text = json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": AWKWARD})
    (tmp_path / "mp1.json").write_text(text)
    delivered = source.parse_reading_files(tmp_path, ["mp1.json"]).select("file_name", "source_row", "interval_start", "consumption_delta")
    con = duckdb.connect()
    typed = typed_parse(con, [str(tmp_path / "mp1.json")]).with_columns(consumption_text=pl.lit(None, pl.String))
    assert not rebuilt_cells(con, typed).sort("source_row").equals(delivered.sort("source_row"))
