"""The check logic finds the violations it is there to find (and passes clean data)."""

import datetime as dt

import polars as pl

from energy_assets.smart_meter import checks

U = dt.UTC


def silver(**over) -> pl.DataFrame:
    base = {
        "meterpoint_id": ["m1", "m1", "m2"],
        "interval_start_utc": [dt.datetime(2021, 3, 27, 10, 0, tzinfo=U), dt.datetime(2021, 3, 27, 10, 30, tzinfo=U), dt.datetime(2021, 3, 27, 10, 0, tzinfo=U)],
        "consumption_kwh": [0.5, 0.25, 1.0],
        "agreement_id": [1, 1, None],
        "agreement_valid_from": [dt.date(2021, 1, 1)] * 2 + [None],
        "agreement_valid_to": [None, None, None],
        "product_display_name": ["Fixed", "Fixed", None],
        "settlement_date": [dt.date(2021, 3, 27)] * 3,
    }
    base.update(over)
    return pl.DataFrame(base, schema_overrides={"agreement_valid_to": pl.Date, "agreement_valid_from": pl.Date})


def test_clean_silver_passes_every_check():
    s = silver().lazy()
    assert checks.duplicate_keys(s)[1] == 0
    assert checks.off_grid(s)[0] == 0
    assert checks.implausible(s)[0]["out_of_range"] == 0
    assert checks.misattributed(s)[:2] == (0, 0)


def test_violations_are_found_and_shown():
    dup = silver(interval_start_utc=[dt.datetime(2021, 3, 27, 10, 0, tzinfo=U)] * 3).lazy()
    assert checks.duplicate_keys(dup)[1] == 1
    off = silver(interval_start_utc=[dt.datetime(2021, 3, 27, 10, 15, tzinfo=U), dt.datetime(2021, 3, 27, 10, 30, tzinfo=U), dt.datetime(2021, 3, 27, 10, 0, 1, tzinfo=U)]).lazy()
    n, examples = checks.off_grid(off)
    assert n == 2 and examples.row(0, named=True)["meterpoint_id"] == "m1"
    assert checks.implausible(silver(consumption_kwh=[-0.1, 99.0, 1.0]).lazy())[0]["out_of_range"] == 2
    outside = silver(agreement_valid_to=[dt.date(2021, 3, 27), None, None]).lazy()  # ends on the reading's day: half-open
    assert checks.misattributed(outside)[0] == 1


def test_accounting_reconciliation_and_counts():
    s = silver().lazy()
    q = pl.DataFrame({"disposition": ["duplicate", "quarantined"]}).lazy()
    raw = pl.DataFrame({"x": range(5)}).lazy()
    assert checks.accounting(raw, s, q) == {"raw_rows": 5, "silver_rows": 3, "duplicates": 1, "quarantined": 1}

    total = pl.DataFrame({"interval_start": [dt.datetime(2021, 3, 27, 10, 0, tzinfo=U), dt.datetime(2021, 3, 27, 10, 30, tzinfo=U)], "total_consumption_kwh": [1.5, 0.25], "meterpoint_count": [2, 1]}).lazy()
    assert checks.reconcile(s, total, ["interval_start_utc"], ["interval_start"])[0] == 0
    assert checks.too_many_meterpoints(s, total, ["interval_start_utc"], ["interval_start"])[0] == 0
    wrong = total.with_columns(total_consumption_kwh=pl.Series([1.502, 0.25]), meterpoint_count=pl.Series([3, 1]))
    assert checks.reconcile(s, wrong, ["interval_start_utc"], ["interval_start"])[0] == 1  # off by 2 Wh
    assert checks.too_many_meterpoints(s, wrong, ["interval_start_utc"], ["interval_start"])[0] == 1

    reported = pl.DataFrame({"meterpoint_id": ["m2"], "reading_count": [1], "total_consumption_kwh": [1.0]}).lazy()
    found = checks.unattributed_reported(s, reported)
    assert found["silver_readings_without_agreement"] == found["reported_readings"] == 1


def test_outcomes_say_what_was_found_with_the_numbers():
    clean = checks.rule_plausible(silver().lazy())
    assert clean.passed and clean.found == "0 rows out of range; consumption_kwh min 0.25, max 1.0, mean 0.583"

    bad = checks.rule_plausible(silver(consumption_kwh=[-0.1, 99.0, 1.0]).lazy())
    assert not bad.passed and bad.found.startswith("2 rows out of range; consumption_kwh min -0.1, max 99.0")
    result = bad.result()
    assert result.passed is False
    assert result.metadata["found"].value == bad.found and result.metadata["out_of_range"].value == 2
    assert "99.0" in result.metadata["first_offending_rows"].value

    dup = checks.rule_unique_keys(silver(interval_start_utc=[dt.datetime(2021, 3, 27, 10, 0, tzinfo=U)] * 3).lazy())
    assert (dup.passed, dup.found) == (False, "1 duplicated (meterpoint_id, interval_start_utc) keys among 3 rows")

    q = pl.DataFrame({"disposition": ["duplicate"]}).lazy()
    acc = checks.rule_accounting(pl.DataFrame({"x": range(5)}).lazy(), silver().lazy(), q)
    assert (acc.passed, acc.found) == (False, "5 raw rows, 3 silver + 1 duplicates + 0 quarantined = 4; difference 1")

    total = pl.DataFrame({"interval_start": [dt.datetime(2021, 3, 27, 10, 0, tzinfo=U), dt.datetime(2021, 3, 27, 10, 30, tzinfo=U)],
                          "total_consumption_kwh": [1.502, 0.25], "meterpoint_count": [2, 1]}).lazy()  # fmt: skip
    rec = checks.rule_totals_reconcile(silver().lazy(), total, checks.HALF_HOUR, "half-hour")
    assert (rec.passed, rec.found) == (False, "1 mismatched groups; silver 1.750 kWh, table 1.752 kWh")

    reported = pl.DataFrame({"meterpoint_id": ["m2"], "reading_count": [1], "total_consumption_kwh": [1.0]}).lazy()
    rep = checks.rule_unattributed_reported(silver().lazy(), reported)
    assert rep.passed and rep.found == "silver: 1 readings without agreement, 1.000 kWh, 1 meterpoints; reported: 1 readings, 1.000 kWh, 1 meterpoints"


def test_key_checks_taken_chunk_by_chunk_find_every_repeated_key():
    # a reading every 12 h over 10 days for two meterpoints; chunks of 1 day hold a day of keys each
    times = [dt.datetime(2021, 3, 20, tzinfo=U) + dt.timedelta(hours=12 * i) for i in range(20)]
    n = len(times)
    rows = silver(
        meterpoint_id=["m1"] * n + ["m2"] * n,
        interval_start_utc=times * 2,
        consumption_kwh=[0.5] * 2 * n,
        agreement_id=[1] * n + [2] * n,
        agreement_valid_from=[dt.date(2021, 1, 1)] * 2 * n,
        agreement_valid_to=[None] * 2 * n,
        product_display_name=["Fixed"] * 2 * n,
        settlement_date=[t.date() for t in times] * 2,
    )
    parts = list(checks.key_chunks(rows.lazy(), 1))
    assert len(parts) == 10 and sum(p.collect().height for p in parts) == rows.height  # every row in exactly one chunk
    assert checks.duplicate_keys(rows.lazy(), 1)[:2] == (40, 0)
    assert checks.misattributed(rows.lazy(), 1)[:2] == (0, 0)
    # the same key stored under two settlement days, in the first and the last chunk: still one key seen twice
    last = rows.row(n - 1, named=True)
    repeated = pl.concat([rows, pl.DataFrame([{**last, "settlement_date": dt.date(2021, 3, 20), "agreement_id": 3}], schema=rows.schema)])
    total, dups, offending = checks.duplicate_keys(repeated.lazy(), 1)
    assert (total, dups) == (41, 1)
    assert offending.row(0, named=True) == {"meterpoint_id": "m1", "interval_start_utc": last["interval_start_utc"], "rows": 2}
    assert checks.misattributed(repeated.lazy(), 1)[1] == 1  # two agreements for that key
    # the distinct meterpoints per half-hour, counted a 1-day window at a time, are those of the whole range
    table = rows.group_by("interval_start_utc").agg(meterpoint_count=pl.col("meterpoint_id").n_unique()).rename({"interval_start_utc": "interval_start"})
    assert checks.too_many_meterpoints(rows.lazy(), table.lazy(), ["interval_start_utc"], ["interval_start"], chunk_days=1)[0] == 0
    inflated = table.with_columns(meterpoint_count=pl.when(pl.col("interval_start") == times[-1]).then(3).otherwise(pl.col("meterpoint_count")))
    bad, offending = checks.too_many_meterpoints(rows.lazy(), inflated.lazy(), ["interval_start_utc"], ["interval_start"], chunk_days=1)
    assert bad == 1 and offending.row(0, named=True)["meterpoints_with_readings"] == 2
    # an empty range is no chunk at all to fail on
    assert checks.duplicate_keys(rows.lazy().head(0), 1)[:2] == (0, 0)
