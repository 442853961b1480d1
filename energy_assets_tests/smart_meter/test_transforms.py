"""Silver, attribution, as-of and presentation rules on hand-made frames."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from energy_assets.smart_meter import ingestion as ing
from energy_assets.smart_meter import presentation as pres
from energy_assets.smart_meter import silver as sv

D = dt.date


def raw(rows: list[tuple], file_error: str | None = None) -> pl.DataFrame:
    """rows: (source_file, source_row, meterpoint_id, interval_start, consumption_delta)."""
    df = pl.DataFrame(
        rows,
        schema={"source_file": pl.String, "source_row": pl.Int64, "meterpoint_id": pl.String, "interval_start": pl.String, "consumption_delta": pl.String},
        orient="row",
    )
    day = pl.col("interval_start").str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    return df.with_columns(
        file_error=pl.lit(file_error, pl.String),
        ingested_at=pl.lit(dt.datetime(2021, 4, 1, tzinfo=dt.UTC)),
        settlement_date=pl.coalesce(day, pl.lit(D(2021, 3, 28))),
    ).select(list(ing.RAW_SCHEMA))


def static(agreements, meterpoints=("m1", "m2", "m3"), products=(("Fixed", 0, 1, "FIX-A"), ("Fixed", 0, 2, "FIX-B"), ("Agile", 1, 3, "AGILE"))):
    a = pl.DataFrame(
        agreements,
        schema={"agreement_id": pl.Int64, "agreement_valid_from": pl.String, "agreement_valid_to": pl.String, "product_id": pl.String, "meterpoint_id": pl.String, "account_id": pl.String},
        orient="row",
    )
    p = pl.DataFrame(list(products), schema={"display_name": pl.String, "is_variable": pl.Int64, "id": pl.Int64, "product_id": pl.String}, orient="row")
    m = pl.DataFrame({"region": ["London"] * len(meterpoints), "meterpoint_id": list(meterpoints)})
    return a, p, m  # the database as delivered: one version, no per-day copies


def silver(rows, agreements, **kw):
    a, p, m = static(agreements, **kw)
    res = sv.silver_readings(raw(rows), a, p, m)
    # row order carries no meaning in silver: sort for readable assertions
    return sv.SilverResult(res.readings.sort("meterpoint_id", "interval_start_utc"), res.quarantine, res.stats)


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_product_switch_is_half_open_and_never_double_counts_the_switch_day():
    agreements = [(1, "2020-01-01", "2021-03-28", "FIX-A", "m1", "acc"), (2, "2021-03-28", None, "AGILE", "m1", "acc")]
    res = silver([("m1.json", 0, "m1", "2021-03-27 23:30:00", "1.0"), ("m1.json", 1, "m1", "2021-03-28 00:00:00", "2.0")], agreements)
    got = res.readings.select("interval_start_local", "agreement_id", "product_id", "product_display_name", "is_variable", "covering_agreement_count")
    assert got.rows() == [
        (dt.datetime(2021, 3, 27, 23, 30), 1, "FIX-A", "Fixed", False, 1),
        (dt.datetime(2021, 3, 28, 0, 0), 2, "AGILE", "Agile", True, 1),
    ]
    assert res.readings.height == 2  # no multiplication by agreements


def test_no_covering_agreement_keeps_the_reading_with_null_product():
    agreements = [(1, "2020-01-01", "2021-01-01", "FIX-A", "m2", "acc"), (2, "2021-03-28", "2021-03-28", "FIX-B", "m2", "acc")]  # ended; zero-length
    res = silver([("m2.json", 0, "m2", "2021-03-28 10:00:00", "0.7")], agreements)
    row = res.readings.row(0, named=True)
    assert row["agreement_id"] is None and row["product_display_name"] is None and row["covering_agreement_count"] == 0
    assert row["region"] == "London"
    assert res.stats["readings_without_agreement"] == 1


def test_overlapping_agreements_pick_the_latest_start_and_are_flagged():
    agreements = [(1, "2020-01-01", None, "FIX-A", "m1", "acc"), (2, "2021-03-01", "2021-04-01", "AGILE", "m1", "acc")]
    res = silver([("m1.json", 0, "m1", "2021-03-28 10:00:00", "0.7")], agreements)
    assert res.readings.select("agreement_id", "covering_agreement_count").row(0) == (2, 2)
    assert res.stats["readings_with_overlapping_agreements"] == 1


def test_duplicates_keep_the_first_in_file_order_and_are_counted_not_lost():
    rows = [
        ("m1.json", 0, "m1", "2021-03-27 10:00:00", "1.0"),
        ("m1.json", 1, "m1", "2021-03-27 10:00:00", "9.0"),  # same key, later in the file
        ("m1.json", 2, "m1", "2021-03-27 10:30:00", "0"),  # zero is a reading
    ]
    res = silver(rows, [(1, "2020-01-01", None, "FIX-A", "m1", "acc")])
    assert res.readings.select("consumption_kwh").to_series().to_list() == [1.0, 0.0]
    assert res.quarantine.select("source_row", "disposition").rows() == [(1, "duplicate")]
    assert res.stats["duplicates"] == 1
    assert res.stats["rows_in"] == res.stats["rows_kept"] + res.stats["duplicates"] + res.stats["quarantined"]


def test_autumn_ambiguous_hour_first_occurrence_is_bst_second_gmt_third_duplicate():
    rows = [
        ("m1.json", 5, "m1", "2021-10-31 01:30:00", "0.2"),  # second in file order -> GMT
        ("m1.json", 2, "m1", "2021-10-31 01:30:00", "0.1"),  # first in file order -> BST
        ("m1.json", 7, "m1", "2021-10-31 01:30:00", "0.3"),  # third -> duplicate
        ("m1.json", 1, "m1", "2021-10-31 00:30:00", "0.4"),
        ("m1.json", 3, "m1", "2021-10-31 02:00:00", "0.5"),
    ]
    res = silver(rows, [(1, "2020-01-01", None, "FIX-A", "m1", "acc")])
    got = res.readings.select("interval_start_utc", "consumption_kwh").rows()
    assert got == [
        (utc(2021, 10, 30, 23, 30), 0.4),
        (utc(2021, 10, 31, 0, 30), 0.1),  # 01:30 BST
        (utc(2021, 10, 31, 1, 30), 0.2),  # 01:30 GMT
        (utc(2021, 10, 31, 2, 0), 0.5),
    ]
    assert res.quarantine.select("source_row", "disposition").rows() == [(7, "duplicate")]
    assert res.stats["ambiguous_local_times_resolved"] == 2


def test_spring_missing_hour_is_quarantined_and_the_day_has_46_half_hours():
    rows = [("m1.json", i, "m1", f"2021-03-28 {h:02d}:{m:02d}:00", "0.1") for i, (h, m) in enumerate((h, m) for h in range(24) for m in (0, 30))]
    res = silver(rows, [(1, "2020-01-01", None, "FIX-A", "m1", "acc")])
    assert res.readings.height == 46
    assert res.readings["interval_start_utc"].n_unique() == 46
    bad = res.quarantine.filter(pl.col("disposition") == "quarantined")
    assert sorted(bad["interval_start"].to_list()) == ["2021-03-28 01:00:00", "2021-03-28 01:30:00"]
    assert bad["reason"].str.starts_with("nonexistent_local_time").all()
    # local 02:00 BST is 01:00 UTC; 00:30 GMT is 00:30 UTC
    assert utc(2021, 3, 28, 1, 0) in res.readings["interval_start_utc"].to_list()


@pytest.mark.parametrize(
    "row,reason",
    [
        (("m1.json", 0, "m1", "2021-03-27 25:00:00", "0.1"), "bad_timestamp"),
        (("m1.json", 0, "m1", "yesterday", "0.1"), "bad_timestamp"),
        (("m1.json", 0, "m1", None, "0.1"), "bad_timestamp"),
        (("m1.json", 0, "m1", "2021-03-27 10:15:00", "0.1"), "off_half_hour"),
        (("m1.json", 0, None, "2021-03-27 10:00:00", "0.1"), "missing_meterpoint"),
        (("m1.json", 0, "m1", "2021-03-27 10:00:00", "n/a"), "non_numeric_consumption"),
        (("m1.json", 0, "m1", "2021-03-27 10:00:00", None), "non_numeric_consumption"),
        (("m1.json", 0, "m1", "2021-03-27 10:00:00", "-0.2"), "negative_consumption"),
        (("m1.json", 0, "m1", "2021-03-27 10:00:00", "500"), "implausible_consumption"),
        (("x.json", 0, "zz99", "2021-03-27 10:00:00", "0.1"), "unknown_meterpoint"),
    ],
)
def test_every_kind_of_bad_row_is_quarantined_with_its_reason_and_source(row, reason):
    good = ("m1.json", 9, "m1", "2021-03-27 11:00:00", "0.1")
    res = silver([row, good], [(1, "2020-01-01", None, "FIX-A", "m1", "acc")])
    assert res.readings.height == 1
    q = res.quarantine.row(0, named=True)
    assert q["disposition"] == "quarantined" and q["reason"].startswith(reason)
    assert (q["source_file"], q["source_row"]) == (row[0], 0)
    assert res.stats[f"quarantined_{reason}"] == 1


def test_malformed_file_row_is_quarantined_with_the_parser_message():
    df = raw([("bad.json", None, None, None, None)], file_error="bad.json: malformed JSON: unexpected end of data")
    a, p, m = static([])
    res = sv.silver_readings(df, a, p, m)
    assert res.readings.height == 0
    assert res.quarantine.select("source_file", "reason").row(0) == ("bad.json", "malformed_file: bad.json: malformed JSON: unexpected end of data")


def test_active_agreements_use_strict_bounds():
    as_of = D(2021, 1, 1)
    agreements = [
        (1, "2020-06-01", None, "FIX-A", "m1", "a"),  # active, open-ended
        (2, "2021-01-01", None, "FIX-B", "m2", "a"),  # starts on the as-of date: not active (strict)
        (3, "2020-01-01", "2021-01-01", "AGILE", "m3", "a"),  # ends on the as-of date: not active (strict)
        (4, "2020-12-31", "2021-01-02", "AGILE", "m3", "a"),  # active
        (5, "2020-12-31", "2020-12-31", "FIX-A", "m1", "a"),  # zero-length
    ]
    a, p, _ = static(agreements)
    got = pres.active_agreements(a, p, as_of)
    assert got.select("agreement_id", "meterpoint_id", "product_display_name", "is_variable").rows() == [
        (1, "m1", "Fixed", False),
        (4, "m3", "Agile", True),
    ]


def test_presentation_sql_counts_distinct_meterpoints_and_groups_shared_display_names():
    agreements = [(1, "2020-01-01", None, "FIX-A", "m1", "a"), (2, "2020-01-01", None, "FIX-B", "m2", "a")]
    rows = [
        ("m1.json", 0, "m1", "2021-03-27 10:00:00", "1.001"),
        ("m2.json", 0, "m2", "2021-03-27 10:00:00", "2.002"),
        ("m3.json", 0, "m3", "2021-03-27 10:00:00", "0.5"),  # no agreement
        ("m1.json", 1, "m1", "2021-03-27 10:30:00", "0.25"),
    ]
    res = silver(rows, agreements)
    con = duckdb.connect()
    con.register("silver", res.readings.to_arrow())
    total = con.sql(pres.TOTAL_CONSUMPTION_HALF_HOUR_SQL).pl()
    assert total.select("meterpoint_count", "total_consumption_kwh").rows() == [(3, 3.503), (1, 0.25)]
    per = con.sql(pres.CONSUMPTION_PER_PRODUCT_PER_DAY_SQL).pl()
    assert per.rows() == [("Fixed", D(2021, 3, 27), 2, 3.253)]  # FIX-A and FIX-B share the name
    avg = con.sql(pres.GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL).pl()
    assert avg.select("product_display_name", "avg_consumption_kwh", "reading_count").rows() == [("Fixed", pytest.approx(1.5015), 2), ("Fixed", 0.25, 1)]
    without = con.sql(pres.READINGS_WITHOUT_AGREEMENT_SQL).pl()
    assert without.select("meterpoint_id", "reading_count", "total_consumption_kwh").rows() == [("m3", 1, 0.5)]
    gold = pres.gold_aggregate_per_half_hour(total.with_columns(pl.col("interval_start").dt.convert_time_zone("UTC")))
    assert gold["interval_start_local"].to_list()[0] == dt.datetime(2021, 3, 27, 10, 0)
    assert gold["avg_consumption_kwh_per_meterpoint"].to_list()[0] == pytest.approx(3.503 / 3, abs=1e-6)


def test_contiguous_ranges_and_ingestion_planning():
    from energy_assets.smart_meter.sensors import contiguous_ranges

    assert contiguous_ranges([D(2021, 1, 3), D(2021, 1, 1), D(2021, 1, 2), D(2021, 1, 5)]) == [
        (D(2021, 1, 1), D(2021, 1, 3)),
        (D(2021, 1, 5), D(2021, 1, 5)),
    ]
    folder = pl.DataFrame({"file_name": ["a.json", "b.json", "c.json"], "size_bytes": [10, 20, 30], "modified_ns": [1, 2, 3]})
    versions = pl.DataFrame(
        {
            "file_name": ["a.json", "b.json", "c.json"],
            "content_hash": ["ha", "hb", "hc"],
            "size_bytes": [10, 20, 31],  # c changed size: a new version
            "modified_ns": [1, 2, 3],
            "first_settlement_date": [D(2021, 1, 1)] * 3,
            "last_settlement_date": [D(2021, 1, 2), D(2021, 1, 1), D(2021, 1, 1)],
            "ingested_at": [utc(2021, 1, 3)] * 3,
        }
    )
    logged = pl.DataFrame({"file_name": ["a.json", "b.json", "c.json"], "content_hash": ["ha", "hb", "hc"], "settlement_date": [D(2021, 1, 1)] * 3})
    known = ing.known_versions(folder, versions)
    # a: day 2 not yet ingested for this version -> read; b: all done -> not read; c: unknown version -> read
    assert ing.files_to_read(known, logged, [D(2021, 1, 1), D(2021, 1, 2)]) == ["a.json", "c.json"]
    assert ing.files_to_read(known, logged.filter(pl.col("settlement_date") == D(2021, 1, 1)), [D(2021, 1, 1)]) == ["c.json"]


def test_presentation_aggregates_by_chunk_of_days_equal_one_pass():
    agreements = [(1, "2020-01-01", None, "FIX-A", "m1", "a"), (2, "2020-01-01", None, "AGILE", "m2", "a")]  # m3: none
    # (meterpoint, local start, kWh) across two days
    readings = [("m1", "03-27 10:00", "1.001"), ("m2", "03-27 10:00", "2.002"), ("m3", "03-27 23:30", "0.5"),
                ("m1", "03-28 10:30", "0.25"), ("m3", "03-28 00:00", "0.75")]  # fmt: skip
    rows = [(f"{mp}.json", i, mp, f"2021-{start}:00", kwh) for i, (mp, start, kwh) in enumerate(readings)]
    readings = silver(rows, agreements).readings.select(pres.SILVER_COLUMNS)
    con = duckdb.connect()
    whole = pres.combine([pres.aggregate(con, readings)])
    by_day = pres.combine([pres.aggregate(con, readings.filter(pl.col("settlement_date") == d)) for d in (D(2021, 3, 27), D(2021, 3, 28))])
    assert set(whole) == {"total", "per_product", "avg", "without", "gold"}
    for name, table in whole.items():
        assert by_day[name].equals(table), name
    assert whole["total"]["interval_start"].dtype == pl.Datetime("us", "UTC")
    assert whole["without"].select("meterpoint_id", "reading_count", "total_consumption_kwh", "settlement_date").rows() == [
        ("m3", 1, 0.5, D(2021, 3, 27)),
        ("m3", 1, 0.75, D(2021, 3, 28)),
    ]
    assert "silver" not in con.sql("SHOW TABLES").pl()["name"].to_list()  # unregistered after each call
