"""Pure transforms: bronze rows, parsing, newest-fetch-wins, settlement periods, flags and gold features."""

import dataclasses
import datetime as dt
import json

import polars as pl
import pytest

from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.bronze import latest_fetch_problems
from energy_assets.neso import transforms
from energy_assets.neso.client import INTENSITY, UTC, FetchedResponse, chunk_path

D = dt.date
LATER = dt.datetime(2030, 1, 1, tzinfo=UTC)


def fetched(days, body, at, problem=None, status=200, endpoint=INTENSITY) -> FetchedResponse:
    days = tuple(days)
    text = body if isinstance(body, str) else json.dumps(body)
    return FetchedResponse(endpoint, "http://127.0.0.1/" + chunk_path(endpoint, list(days)), days, at, status, text, 1, problem)


def intensity_body(days, now=LATER, revision=0, **kw):
    starts = [s for d in days for s in synthetic.uk_day_starts(d)]
    return synthetic.intensity_payload(starts, now, revision, **kw)


def silver_for(*responses) -> pl.DataFrame:
    return transforms.build_silver_intensity(transforms.parse_intensity(transforms.bronze_rows(list(responses))))


def test_bronze_has_one_row_per_response_and_day_with_the_body_verbatim():
    body = json.dumps(intensity_body([D(2024, 7, 4), D(2024, 7, 5)]), indent=4)
    rows = transforms.bronze_rows([fetched([D(2024, 7, 4), D(2024, 7, 5)], body, LATER)])
    assert rows.schema == transforms.BRONZE_SCHEMA
    assert rows["settlement_date"].to_list() == [D(2024, 7, 4), D(2024, 7, 5)]
    assert rows["body"].to_list() == [body, body]
    assert rows["content_hash"].n_unique() == 1 and len(rows["content_hash"][0]) == 64


def test_bronze_rows_of_several_responses_are_one_per_response_and_day_in_order_with_each_answers_facts():
    first = fetched([D(2024, 7, 4), D(2024, 7, 5), D(2024, 7, 6)], intensity_body([D(2024, 7, 4)]), LATER)
    failed = fetched([D(2024, 7, 7)], "{}", LATER + dt.timedelta(seconds=1), problem="GET x: empty JSON object {}", status=200)
    no_day = dataclasses.replace(first, days=(), request_url="http://127.0.0.1/none")
    rows = transforms.bronze_rows([first, no_day, failed])
    assert rows.schema == transforms.BRONZE_SCHEMA
    expected = [{"settlement_date": day, **{c: getattr(r, c) for c in rows.columns if c != "settlement_date"}} for r in (first, failed) for day in r.days]
    assert rows.to_dicts() == expected  # a response without days adds no row
    assert transforms.bronze_rows([]).schema == transforms.BRONZE_SCHEMA and transforms.bronze_rows([]).is_empty()


@pytest.mark.parametrize(
    "day,periods,first_start",
    [
        (D(2024, 1, 15), 48, dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC)),  # GMT
        (D(2024, 7, 4), 48, dt.datetime(2024, 7, 3, 23, 0, tzinfo=UTC)),  # BST
        (D(2021, 3, 28), 46, dt.datetime(2021, 3, 28, 0, 0, tzinfo=UTC)),
        (D(2021, 10, 31), 50, dt.datetime(2021, 10, 30, 23, 0, tzinfo=UTC)),
    ],
)
def test_settlement_days_and_periods_follow_uk_local_time(day, periods, first_start):
    # the response also holds the neighbouring days' periods: only this day's belong to its bronze row
    body = intensity_body([day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)])
    silver = silver_for(fetched([day], body, LATER))
    assert silver.schema == transforms.SILVER_INTENSITY_SCHEMA
    assert silver.height == periods
    assert silver["settlement_period"].to_list() == list(range(1, periods + 1))
    assert silver["period_start"][0] == first_start
    assert silver["settlement_date"].unique().to_list() == [day]


def test_a_range_response_is_split_over_the_days_it_covers():
    days = [D(2021, 3, 27), D(2021, 3, 28), D(2021, 3, 29)]
    silver = silver_for(fetched(days, intensity_body(days), LATER))
    counts = dict(silver.group_by("settlement_date").len().iter_rows())
    assert counts == {D(2021, 3, 27): 48, D(2021, 3, 28): 46, D(2021, 3, 29): 48}


def test_revisions_newest_fetch_wins_and_both_stay_in_bronze():
    day = D(2024, 7, 4)
    noon = dt.datetime(2024, 7, 4, 11, 0, tzinfo=UTC)  # forecasts of later periods are open and revised
    old = fetched([day], intensity_body([day], now=noon, revision=1), noon)
    new = fetched([day], intensity_body([day], now=noon + dt.timedelta(hours=1), revision=2), noon + dt.timedelta(hours=1))
    bronze = transforms.bronze_rows([new, old])  # delivery order must not matter
    assert bronze.height == 2 and bronze["content_hash"].n_unique() == 2
    silver = transforms.build_silver_intensity(transforms.parse_intensity(bronze))
    expected = {r["from"]: r["intensity"] for r in json.loads(new.body)["data"]}
    assert silver.height == 48
    assert (silver["fetched_at"] == new.fetched_at).all()
    got = {f"{r['period_start']:%Y-%m-%dT%H:%MZ}": (r["forecast_gco2_per_kwh"], r["actual_gco2_per_kwh"]) for r in silver.iter_rows(named=True)}
    assert got == {k: (v["forecast"], v["actual"]) for k, v in expected.items()}
    old_forecasts = [r["intensity"]["forecast"] for r in json.loads(old.body)["data"]]
    assert old_forecasts != silver["forecast_gco2_per_kwh"].to_list()  # the revision is visible


def test_unusable_bronze_rows_are_ignored_by_silver():
    day = D(2024, 7, 4)
    good = fetched([day], intensity_body([day]), LATER)
    bad = fetched([day], "{}", LATER + dt.timedelta(hours=1), problem="GET ...: empty JSON object {}")
    truncated = fetched([day], '{"data":[{"fro', LATER + dt.timedelta(hours=2), problem="invalid JSON")
    silver = silver_for(good, bad, truncated)
    assert silver.height == 48 and (silver["fetched_at"] == good.fetched_at).all()
    problems = latest_fetch_problems(transforms.bronze_rows([good, bad, truncated]), ["settlement_date"])
    assert problems["problem"].to_list() == ["invalid JSON"]
    assert latest_fetch_problems(transforms.bronze_rows([bad, dataclasses.replace(good, fetched_at=LATER + dt.timedelta(hours=3))]), ["settlement_date"]).is_empty()


def test_flags_actual_zero_and_missing_actual_of_settled_periods():
    day = D(2024, 7, 4)
    body = intensity_body([day])
    body["data"][3]["intensity"]["actual"] = 0
    body["data"][5]["intensity"]["actual"] = None
    at = dt.datetime(2024, 7, 4, 12, 0, tzinfo=UTC)
    body["data"][-1]["intensity"]["actual"] = None  # future period at fetch time: not flagged
    silver = silver_for(fetched([day], body, at))
    flags = dict(zip(silver["settlement_period"].to_list(), silver["data_quality_flag"].to_list(), strict=True))
    assert flags[4] == transforms.FLAG_ACTUAL_ZERO
    assert flags[6] == transforms.FLAG_ACTUAL_MISSING
    assert flags[48] is None
    assert sum(f is not None for f in flags.values()) == 2


@pytest.mark.parametrize(
    "field,value,reason",
    [("index", "extreme", "index not in"), ("forecast", 5000, "outside 0..1000"), ("to", "2024-07-04T00:45Z", "not 30 minutes"), ("from", "yesterday", "unparseable")],
)
def test_schema_violations_raise_naming_the_request(field, value, reason):
    day = D(2024, 7, 4)
    body = intensity_body([day])
    target = body["data"][2] if field in ("from", "to") else body["data"][2]["intensity"]
    target[field] = value
    resp = fetched([day], body, LATER)
    records = transforms.parse_intensity(transforms.bronze_rows([resp]))
    with pytest.raises(transforms.NesoDataError, match=reason) as err:
        transforms.build_silver_intensity(records)
    assert resp.request_url in str(err.value)
    # the asset path: the record is quarantined with its reason and request, the rest goes on
    valid, quarantine = transforms.split_intensity(records)
    assert valid.height == 47 and quarantine.height == 1
    assert valid.height + quarantine.height == records.height  # every record accounted for
    row = quarantine.row(0, named=True)
    assert row["reason"].startswith(reason.split(" ")[0]) or reason in row["reason"]
    assert row["request_url"] == resp.request_url and row["settlement_date"] == day
    assert quarantine.schema == transforms.QUARANTINE_SCHEMA
    assert transforms.build_silver_intensity(valid).height == 47


def test_generation_mix_one_row_per_period_and_fuel():
    day = D(2024, 7, 4)
    starts = synthetic.uk_day_starts(day)
    resp = fetched([day], synthetic.generation_payload(starts), LATER, endpoint="generation")
    mix = transforms.build_silver_mix(transforms.bronze_rows([resp]))
    assert mix.schema == transforms.SILVER_MIX_SCHEMA
    assert mix.height == 48 * 9
    sums = mix.group_by("period_start").agg(pl.col("generation_fraction").sum())["generation_fraction"]
    assert ((sums - 1).abs() < 0.0005).all()
    assert mix["generation_fraction"].is_between(0, 1).all()


def _silver_days(days, now=LATER):
    return silver_for(fetched(days, intensity_body(days, now=now), now))


def test_gold_rolling_window_reaches_into_the_previous_day_and_returns_only_its_days():
    prev, day = D(2024, 7, 3), D(2024, 7, 4)
    silver = _silver_days([prev, day])
    starts = synthetic.uk_day_starts(day)
    mix = transforms.build_silver_mix(transforms.bronze_rows([fetched([day], synthetic.generation_payload(starts), LATER, endpoint="generation")]))
    gold = transforms.build_features(silver, mix, [day])
    assert gold.height == 48 and gold["settlement_date"].unique().to_list() == [day]
    first = gold.row(0, named=True)
    window = silver.filter(pl.col("period_start") <= first["period_start"])  # 47 of yesterday + this one
    assert first["rolling_24h_period_count"] == 48
    assert first["rolling_24h_mean_gco2_per_kwh"] == pytest.approx(window["actual_gco2_per_kwh"].tail(48).mean())
    assert first["rolling_24h_max_gco2_per_kwh"] == window["actual_gco2_per_kwh"].tail(48).max()
    # without the previous day the window only holds the day's own periods
    alone = transforms.build_features(silver.filter(pl.col("settlement_date") == day), mix, [day])
    assert alone["rolling_24h_period_count"][0] == 1


def test_gold_errors_low_carbon_share_and_calendar():
    day = D(2024, 7, 6)  # a Saturday in BST
    body = intensity_body([day])
    body["data"][0]["intensity"].update(forecast=100, actual=120)
    body["data"][1]["intensity"].update(forecast=100, actual=0)  # flagged: not trusted
    body["data"][2]["intensity"].update(forecast=90, actual=None)
    silver = silver_for(fetched([day], body, LATER))
    gen = synthetic.generation_payload(synthetic.uk_day_starts(day))
    gen["data"][0]["generationmix"] = [{"fuel": f, "perc": p} for f, p in
                                       [("biomass", 5), ("coal", 1), ("imports", 9), ("gas", 40), ("nuclear", 15), ("other", 0), ("hydro", 2), ("solar", 3), ("wind", 25)]]
    mix = transforms.build_silver_mix(transforms.bronze_rows([fetched([day], gen, LATER, endpoint="generation")]))
    gold = transforms.build_features(silver, mix, [day])
    r0, r1, r2 = gold.head(3).iter_rows(named=True)
    assert (r0["forecast_error_gco2_per_kwh"], r0["abs_forecast_error_gco2_per_kwh"]) == (20, 20)
    assert r0["relative_forecast_error"] == pytest.approx(20 / 120)
    assert r0["low_carbon_share_fraction"] == pytest.approx(0.5)  # 5 + 15 + 2 + 3 + 25 %
    assert r0["mix_missing_reason"] is None
    assert r1["forecast_error_gco2_per_kwh"] is None and r1["intensity_gco2_per_kwh"] == 100
    assert r1["relative_forecast_error"] is None and r1["data_quality_flag"] == transforms.FLAG_ACTUAL_ZERO  # never / 0
    assert r2["forecast_error_gco2_per_kwh"] is None and r2["intensity_gco2_per_kwh"] == 90
    assert (r0["hour_local"], r0["day_of_week"], r0["is_weekend"], r0["month"], r0["settlement_period"]) == (0, 6, True, 7, 1)


def test_a_lazy_scan_of_a_bronze_table_reads_each_body_once_and_parses_as_the_frame_does(tmp_path):
    """Silver scans bronze (a Delta table partitioned by day): each distinct usable body is read from one day's
    partition only, and the records, their fetches and the silver rows are those of the whole frame."""
    days = [D(2024, 7, 3), D(2024, 7, 4), D(2024, 7, 5)]
    first = fetched(days, intensity_body(days, revision=1), LATER)
    revised = fetched(days[1:], intensity_body(days[1:], revision=2), LATER + dt.timedelta(hours=1))
    outage = fetched(days[:1], "{}", LATER + dt.timedelta(hours=2), problem="GET ...: empty JSON object {}")
    frame = transforms.bronze_rows([first, revised, outage])
    frame.write_delta(str(tmp_path / "bronze"), delta_write_options={"partition_by": ["settlement_date"]})
    scan = pl.scan_delta(str(tmp_path / "bronze"))

    bodies = transforms.distinct_usable_bodies(scan)
    assert sorted(bodies["content_hash"]) == sorted({first.content_hash, revised.content_hash}) and bodies.height == 2
    assert dict(bodies.iter_rows()) == {first.content_hash: first.body, revised.content_hash: revised.body}
    order = ["period_start", "settlement_date", "fetched_at"]
    from_scan, from_frame = transforms.parse_intensity(scan).sort(order), transforms.parse_intensity(frame).sort(order)
    assert from_scan.height == 3 * 48 + 2 * 48 and from_scan.equals(from_frame.select(from_scan.columns))
    silver = transforms.build_silver_intensity(from_scan)
    assert silver.equals(transforms.build_silver_intensity(from_frame))
    assert dict(silver.group_by("fetched_at").len().iter_rows()) == {first.fetched_at: 48, revised.fetched_at: 96}
    assert transforms.parse_intensity(scan.filter(pl.col("problem").is_not_null())).height == 0  # the outage alone: nothing
