"""Reading the drop: one DuckDB pass over the files, malformed files named and isolated, the database as delivered."""

import json

import polars as pl
import pytest

from energy_assets.smart_meter import source

from .conftest import PRODUCTS, write_db, write_readings


def test_parse_keeps_cells_as_delivered_and_isolates_malformed_files(tmp_path):
    write_readings(tmp_path, "aaaaaaaaaa", [["2021-03-26 00:30:00", 0.03, "aaaaaaaaaa"], ["2021-03-26 01:00:00", "n/a", "aaaaaaaaaa"], ["2021-03-26 01:30:00", None, "aaaaaaaaaa"]])
    # columns in another order are located by name
    write_readings(tmp_path, "bbbbbbbbbb", [["bbbbbbbbbb", "2021-03-26 00:00:00", 1.5]], columns=["meterpoint_id", "interval_start", "consumption_delta"])
    (tmp_path / "truncated.json").write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[["2021')
    write_readings(tmp_path, "cccccccccc", [["2021-03-26 00:00:00", "cccccccccc"]], columns=["interval_start", "meterpoint_id"])
    (tmp_path / "records.json").write_text(json.dumps([{"interval_start": "2021-03-26 00:00:00"}]))
    write_readings(tmp_path, "eeeeeeeeee", [])  # empty but well-formed: no rows, no error
    names = ["aaaaaaaaaa.json", "bbbbbbbbbb.json", "truncated.json", "cccccccccc.json", "records.json", "eeeeeeeeee.json"]
    parsed = source.parse_reading_files(tmp_path, names).sort("file_name", "source_row")
    good = parsed.filter(pl.col("file_error").is_null())
    assert good.select("file_name", "source_row", "interval_start", "consumption_delta", "meterpoint_id").rows() == [
        ("aaaaaaaaaa.json", 0, "2021-03-26 00:30:00", "0.03", "aaaaaaaaaa"),
        ("aaaaaaaaaa.json", 1, "2021-03-26 01:00:00", "n/a", "aaaaaaaaaa"),
        ("aaaaaaaaaa.json", 2, "2021-03-26 01:30:00", None, "aaaaaaaaaa"),
        ("bbbbbbbbbb.json", 0, "2021-03-26 00:00:00", "1.5", "bbbbbbbbbb"),
    ]
    errors = dict(parsed.filter(pl.col("file_error").is_not_null()).select("file_name", "file_error").iter_rows())
    assert set(errors) == {"truncated.json", "cccccccccc.json", "records.json"}
    assert errors["truncated.json"].startswith("truncated.json: malformed JSON")
    assert "columns" in errors["cccccccccc.json"] and "data" in errors["records.json"]
    assert str(tmp_path) not in "".join(errors.values())  # file names, not host paths


def test_folder_snapshot_and_hashes_identify_versions(tmp_path):
    write_readings(tmp_path, "aaaaaaaaaa", [["2021-03-26 00:30:00", 0.03, "aaaaaaaaaa"]])
    (tmp_path / "notes.txt").write_text("ignored")
    snap = source.snapshot_folder(tmp_path)
    assert snap["file_name"].to_list() == ["aaaaaaaaaa.json"]
    h1 = source.hash_files(tmp_path, ["aaaaaaaaaa.json"])["content_hash"][0]
    write_readings(tmp_path, "aaaaaaaaaa", [["2021-03-26 00:30:00", 0.04, "aaaaaaaaaa"]])
    assert source.hash_files(tmp_path, ["aaaaaaaaaa.json"])["content_hash"][0] != h1
    with pytest.raises(FileNotFoundError, match="SMART_METER_READINGS_DIR"):
        source.snapshot_folder(tmp_path / "missing")


def test_static_tables_as_delivered(tmp_path):
    db = write_db(tmp_path / "x.db", [(1, "2021-01-01", None, "FIX-A", "aaaaaaaaaa", "acc")], PRODUCTS, [("London", "aaaaaaaaaa")])
    tables = source.read_static_tables(db)
    assert tables.agreements.rows() == [(1, "2021-01-01", None, "FIX-A", "aaaaaaaaaa", "acc")]
    assert tables.products["display_name"].to_list() == ["Octopus 12M Fixed", "Octopus 12M Fixed", "Agile Octopus"]
    assert tables.meterpoints.rows() == [("London", "aaaaaaaaaa")]
    with pytest.raises(FileNotFoundError, match="SMART_METER_DB_PATH"):
        source.read_static_tables(tmp_path / "nope.db")


def test_duckdb_object_size_follows_the_files_so_a_file_over_16_mib_still_parses_whole(tmp_path):
    """DuckDB's `maximum_object_size` is sized from the largest file of the call (a file is one JSON object): small
    files get 16 MiB buffers (not 1 GiB, which made parsing 2.3x slower), and a 20 MiB file still parses whole."""
    small = write_readings(tmp_path, "aaaaaaaaaa", [["2021-01-01 00:00:00", 0.5, "aaaaaaaaaa"]])
    assert source.max_object_size([str(small)]) == 1 << 24
    rows = [[f"2021-01-01 00:{i % 60:02d}:00", i / 1000, "bbbbbbbbbb"] for i in range(500_000)]
    big = write_readings(tmp_path, "bbbbbbbbbb", rows)
    assert 20 << 20 < big.stat().st_size < 32 << 20
    assert source.max_object_size([str(small), str(big)]) == 1 << 25
    parsed = source.parse_reading_files(tmp_path, ["aaaaaaaaaa.json", "bbbbbbbbbb.json"])
    assert parsed["file_error"].null_count() == parsed.height  # neither file is an error row
    got = parsed.filter(pl.col("file_name") == "bbbbbbbbbb.json").sort("source_row")
    assert got.height == len(rows)
    assert got.row(499_999) == ("bbbbbbbbbb.json", 499_999, "2021-01-01 00:19:00", "499.999", "bbbbbbbbbb", None)
