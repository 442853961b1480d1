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


def test_numbers_are_kept_as_written_where_duckdb_would_rewrite_them(tmp_path):
    """DuckDB gives a JSON number back in its own text (`0.50` -> "0.5"); raw keeps the text the utility wrote."""
    (tmp_path / "aaaaaaaaaa.json").write_text(
        '{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":['
        '["2021-03-26 00:00:00",0.50,"aaaaaaaaaa"],["2021-03-26 00:30:00",1E-3,"aaaaaaaaaa"],'
        '["2021-03-26 01:00:00",-0,"aaaaaaaaaa"],["2021-03-26 01:30:00",0.00001,"aaaaaaaaaa"],'
        '["2021-03-26 02:00:00",0.12345678901234567890,"aaaaaaaaaa"],["2021-03-26 02:30:00", 0.438 ,1234],'
        '["2021-03-26 03:00:00","0.50","aaaaaaaaaa"],["2021-03-26 03:30:00",null,"aaaaaaaaaa"]]}'
    )
    write_readings(tmp_path, "bbbbbbbbbb", [["2021-03-26 00:00:00", 0.25, "bbbbbbbbbb"]])  # nothing DuckDB rewrites
    parsed = source.parse_reading_files(tmp_path, ["aaaaaaaaaa.json", "bbbbbbbbbb.json"])
    assert parsed["file_error"].null_count() == parsed.height
    a = parsed.filter(pl.col("file_name") == "aaaaaaaaaa.json")
    assert a["source_row"].to_list() == list(range(8))  # row order kept
    assert a["consumption_delta"].to_list() == ["0.50", "1E-3", "-0", "0.00001", "0.12345678901234567890", "0.438", "0.50", None]
    assert a["meterpoint_id"].to_list()[5] == "1234"
    assert parsed.filter(pl.col("file_name") == "bbbbbbbbbb.json")["consumption_delta"].to_list() == ["0.25"]
    names = ["aaaaaaaaaa.json", "bbbbbbbbbb.json"]
    hashes, inexact = source.read_versions(tmp_path, names)  # the search, in the hashing read
    assert inexact == ["aaaaaaaaaa.json"] and hashes.equals(source.hash_files(tmp_path, names))
    # DuckDB alone rewrites them; the fix applied later (as ingestion does, after its hashing thread) gives the same rows
    duck = source.parse_reading_files(tmp_path, names, as_written=False)
    assert duck.filter(pl.col("file_name") == "aaaaaaaaaa.json")["consumption_delta"].to_list()[:3] == ["0.5", "0.001", "0"]
    assert source.numbers_as_written(duck, tmp_path, inexact).equals(parsed)


def test_every_number_duckdb_rewrites_is_found_by_the_search(tmp_path):
    """No false negatives: for numbers written in many ways, DuckDB's text differs from the written text only where
    `INEXACT_NUMBER` matches (the search may also match numbers DuckDB keeps: that costs only a re-read)."""
    import random
    import re

    import duckdb

    rng = random.Random(7)
    written = {"0", "-0", "0.0", "-0.0", "1", "-1", "10", "100", "12.0", "0.5", "0.50", "1e2", "1E2", "1.5e-3", "1e-7"}
    for _ in range(400):
        x = rng.choice([rng.uniform(0, 5), rng.uniform(0, 1e-3), rng.uniform(1e3, 1e18), -rng.uniform(0, 5), float(rng.randint(0, 10**6))])
        written |= {repr(x), f"{x:.3f}", f"{x:.1f}", f"{x:.6f}", f"{x:.15g}", f"{x:.17g}", f"{x:e}", str(int(x))}
    written = sorted(w for w in written if w not in ("inf", "-inf", "nan"))
    doc = json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": []})
    doc = doc.replace('"data": []', '"data": [' + ",".join(f'["x", {w}, "m"]' for w in written) + "]")
    (tmp_path / "numbers.json").write_text(doc)
    # DuckDB's text of each cell, read as the product reads the files (data as VARCHAR[][])
    sql = "SELECT unnest(data)[2] FROM read_json($f, columns = {'columns': 'VARCHAR[]', 'data': 'VARCHAR[][]'}, format = 'auto', records = true)"
    got = [r[0] for r in duckdb.connect().sql(sql, params={"f": str(tmp_path / "numbers.json")}).fetchall()]
    assert len(got) == len(written)
    rewritten = [w for w, g in zip(written, got, strict=True) if w != g]
    assert {"0.50", "1E2", "-0"} <= set(rewritten)  # the comparison can fail
    pattern = re.compile(source.INEXACT_NUMBER)
    missed = [w for w in rewritten if not pattern.search(f'["x", {w}, "m"]')]
    assert missed == []


def test_a_file_replaced_between_the_two_reads_is_refused_not_mixed(tmp_path):
    """The numbers' second read must be of the version DuckDB parsed: a file replaced in between (another row count)
    fails the run with the file's name, before anything is written, rather than mixing two versions' rows."""
    path = tmp_path / "aaaaaaaaaa.json"
    path.write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[["2021-03-26 00:00:00",0.50,"a"]]}')
    parsed = source.parse_reading_files(tmp_path, ["aaaaaaaaaa.json"], as_written=False)
    path.write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[["2021-03-26 00:00:00",0.50,"a"],["2021-03-26 00:30:00",0.10,"a"]]}')
    with pytest.raises(source.ReadingFileError, match=r"aaaaaaaaaa.json: changed while it was being read \(1 rows parsed, 2 rows"):
        source.numbers_as_written(parsed, tmp_path, ["aaaaaaaaaa.json"])
    path.unlink()
    with pytest.raises(source.ReadingFileError, match="aaaaaaaaaa.json: could not be read again") as gone:
        source.numbers_as_written(parsed, tmp_path, ["aaaaaaaaaa.json"])
    assert str(tmp_path) not in str(gone.value)
