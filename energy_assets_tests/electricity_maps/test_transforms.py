"""Silver and gold transforms on bronze frames built from the project's format-faithful payloads."""

import datetime as dt
import json

import polars as pl
import pytest

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps import transforms as T
from energy_assets.electricity_maps.client import content_hash
from energy_assets_tests.electricity_maps.conftest import day_rows, hour

CI, PB = "carbon-intensity", "power-breakdown"
FETCH_1 = dt.datetime(2024, 3, 7, 1, tzinfo=dt.timezone.utc)
FETCH_2 = dt.datetime(2024, 3, 7, 2, tzinfo=dt.timezone.utc)


def bronze(*responses) -> pl.DataFrame:
    """responses: (date, zone, body(dict or raw str), fetched_at)."""
    rows = []
    for day, zone, body, fetched in responses:
        text = body if isinstance(body, str) else json.dumps(body)
        rows.append({
            "date": dt.date.fromisoformat(day), "zone": zone, "fetched_at": fetched, "request_url": "/x?zone=" + zone,
            "request_kind": "past-range", "http_status": 200, "body": text, "content_hash": content_hash(text), "attempts": 1,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=T.BRONZE_SCHEMA)


def both(day="2024-03-06", zone="GR", power_rows=None, carbon_rows=None, fetched=FETCH_1):
    power_rows = power_rows if power_rows is not None else day_rows(PB, zone, day)
    carbon_rows = carbon_rows if carbon_rows is not None else day_rows(CI, zone, day)
    return (
        bronze((day, zone, samples.past_range_body(CI, zone, carbon_rows), fetched)),
        bronze((day, zone, samples.past_range_body(PB, zone, power_rows), fetched)),
    )


def at(df: pl.DataFrame, when: str, zone: str = "GR") -> dict:
    return df.filter((pl.col("zone") == zone) & (pl.col("datetime") == hour(when))).to_dicts()[0]


def test_one_row_per_zone_hour_with_normalised_source_columns_and_nulls_kept():
    silver = T.build_silver(*both())
    energy = silver.energy
    assert energy.height == 24 and energy["datetime"].is_unique().all()
    row = at(energy, "2024-03-06T03:00:00")
    source = samples.power_row("GR", hour("2024-03-06T03:00:00"))
    assert row["production_hydro_discharge_mw"] == source["powerProductionBreakdown"]["hydro discharge"] < 0  # pumping
    assert row["production_nuclear_mw"] is None  # no such source in GR: null stays null
    assert row["consumption_battery_discharge_mw"] == 0.0  # consumption uses 0
    assert row["consumption_total_mw"] == source["powerConsumptionTotal"]
    assert row["carbon_intensity_gco2_per_kwh"] == samples.carbon_row("GR", hour("2024-03-06T03:00:00"))["carbonIntensity"]
    assert set(T.SOURCE_COLUMNS) <= set(energy.columns)
    assert {"is_estimated", "estimation_method", "updated_at", "fossil_free_fraction", "renewable_fraction", "missing_feed"} <= set(energy.columns)
    assert row["fossil_free_fraction"] == pytest.approx(source["fossilFreePercentage"] / 100)
    assert row["renewable_fraction"] == pytest.approx(source["renewablePercentage"] / 100)
    assert energy["missing_feed"].null_count() == 24  # both feeds answered every hour


def test_empty_import_maps_and_null_totals_give_no_exchange_rows_and_null_totals():
    rows = day_rows(PB, "GR", "2024-03-06")
    rows[5] = samples.power_row("GR", hour("2024-03-06T05:00:00"), exchanges=False)
    silver = T.build_silver(*both(power_rows=rows))
    row = at(silver.energy, "2024-03-06T05:00:00")
    assert row["import_total_mw"] is None and row["export_total_mw"] is None
    assert silver.exchanges.filter(pl.col("datetime") == hour("2024-03-06T05:00:00")).height == 0
    other = silver.exchanges.filter(pl.col("datetime") == hour("2024-03-06T06:00:00"))
    assert sorted(other["neighbour_zone"].unique()) == sorted(samples.NEIGHBOURS)
    imports = other.filter(pl.col("direction") == "import")["power_mw"].sum()
    assert imports == at(silver.energy, "2024-03-06T06:00:00")["import_total_mw"]


def test_unknown_fields_and_new_source_keys_do_not_break_parsing():
    rows = day_rows(PB, "GR", "2024-03-06")
    rows[0] = {**rows[0], "temporalGranularity": "hourly", "newNestedThing": {"a": [1, 2]}}
    rows[0]["powerProductionBreakdown"] = {**rows[0]["powerProductionBreakdown"], "hydrogen": 12, "Tidal Stream": None}
    silver = T.build_silver(*both(power_rows=rows))
    assert silver.energy.height == 24 and silver.quarantine.height == 0
    unknown = at(silver.energy, "2024-03-06T00:00:00")["unknown_sources"]
    assert {"flow": "production", "source": "hydrogen", "power_mw": 12.0} in unknown
    assert {"flow": "production", "source": "Tidal Stream", "power_mw": None} in unknown
    assert silver.unknown_sources == ["production:Tidal Stream", "production:hydrogen"]


def test_revisions_newest_updated_at_wins_then_newest_fetch():
    when = hour("2024-03-06T10:00:00")
    old = samples.carbon_row("GR", when, updated_at=when + dt.timedelta(hours=1))
    new = {**old, "carbonIntensity": 999, "updatedAt": samples.iso_ms(when + dt.timedelta(hours=9))}
    tie_late_fetch = {**old, "carbonIntensity": 555}
    carbon = bronze(
        ("2024-03-06", "GR", samples.history_body(CI, "GR", [new]), FETCH_1),  # newest revision, fetched first
        ("2024-03-06", "GR", samples.history_body(CI, "GR", [old]), FETCH_2),
        ("2024-03-06", "GR", samples.history_body(CI, "GR", [tie_late_fetch]), FETCH_2 + dt.timedelta(minutes=5)),
    )
    silver = T.build_silver(carbon, bronze())
    assert at(silver.energy, "2024-03-06T10:00:00")["carbon_intensity_gco2_per_kwh"] == 999
    assert silver.stats["carbon_rows_superseded"] == 2
    # without the newest revision, the tie on updatedAt goes to the later fetch
    silver = T.build_silver(carbon.slice(1, 2), bronze())
    assert at(silver.energy, "2024-03-06T10:00:00")["carbon_intensity_gco2_per_kwh"] == 555


def test_an_estimated_hour_becomes_measured_when_its_revision_arrives():
    when = hour("2024-03-06T23:00:00")
    estimated = samples.power_row("GR", when, updated_at=when + dt.timedelta(minutes=50), estimated=True)
    measured = {**samples.power_row("GR", when, updated_at=when + dt.timedelta(hours=6)), "powerConsumptionTotal": 7777}
    power = bronze(("2024-03-06", "GR", samples.history_body(PB, "GR", [estimated]), FETCH_1))
    first = at(T.build_silver(bronze(), power).energy, "2024-03-06T23:00:00")
    assert first["is_estimated"] is True and first["estimation_method"] == "TIME_SLICER_AVERAGE"
    power = pl.concat([power, bronze(("2024-03-06", "GR", samples.history_body(PB, "GR", [measured]), FETCH_2))])
    second = at(T.build_silver(bronze(), power).energy, "2024-03-06T23:00:00")
    assert second["is_estimated"] is False and second["estimation_method"] is None
    assert second["consumption_total_mw"] == 7777


def test_hours_of_other_days_in_a_response_are_left_to_their_own_partition():
    rows = day_rows(CI, "GR", "2024-03-05")[-5:] + day_rows(CI, "GR", "2024-03-06")[:19]  # a history window
    silver = T.build_silver(bronze(("2024-03-06", "GR", samples.history_body(CI, "GR", rows), FETCH_1)), bronze())
    assert silver.energy.height == 19 and (silver.energy["date"] == dt.date(2024, 3, 6)).all()
    assert silver.stats["carbon_rows_for_other_partitions"] == 5
    assert silver.stats["carbon_rows_parsed"] == 24


def test_unusable_rows_and_bodies_are_quarantined_with_a_reason_and_counted():
    good = samples.carbon_row("GR", hour("2024-03-06T01:00:00"))
    rows = [
        good,
        {**good, "datetime": "not a time"},
        {**good, "datetime": "2024-03-06T02:30:00.000Z"},
        {**good, "datetime": "2024-03-06T03:00:00.000Z", "zone": "DE"},
        {**good, "datetime": "2024-03-06T04:00:00.000Z", "carbonIntensity": "high"},
        {k: v for k, v in good.items() if k != "datetime"},
    ]
    carbon = bronze(("2024-03-06", "GR", samples.history_body(CI, "GR", rows), FETCH_1), ("2024-03-06", "GR", "{not json", FETCH_2))
    silver = T.build_silver(carbon, bronze())
    assert silver.energy.height == 1
    reasons = sorted(silver.quarantine["reason"].to_list())
    assert len(reasons) == 6
    assert any("unparseable datetime" in r for r in reasons)
    assert any("not on the hour" in r for r in reasons)
    assert any("zone DE" in r for r in reasons)
    assert "a numeric field holds a non-number" in reasons
    assert "missing datetime" in reasons
    assert "response body is not valid JSON" in reasons
    s = silver.stats
    assert s["carbon_rows_parsed"] == s["carbon_rows_quarantined"] + s["carbon_hours_kept"] + s["carbon_rows_superseded"] + s["carbon_rows_for_other_partitions"]


def test_several_zones_are_kept_apart():
    gr_c, gr_p = both(zone="GR")
    de_c, de_p = both(zone="DE")
    silver = T.build_silver(pl.concat([gr_c, de_c]), pl.concat([gr_p, de_p]))
    assert silver.energy.group_by("zone").len().sort("zone").rows() == [("DE", 24), ("GR", 24)]
    assert at(silver.energy, "2024-03-06T12:00:00", "DE")["carbon_intensity_gco2_per_kwh"] == samples.carbon_row("DE", hour("2024-03-06T12:00:00"))["carbonIntensity"]


def test_carbon_without_power_and_power_without_carbon_are_kept_with_flags():
    carbon = bronze(("2024-03-06", "GR", samples.history_body(CI, "GR", day_rows(CI, "GR", "2024-03-06")[:3]), FETCH_1))
    power = bronze(("2024-03-06", "GR", samples.history_body(PB, "GR", day_rows(PB, "GR", "2024-03-06")[2:4]), FETCH_1))
    energy = T.build_silver(carbon, power).energy
    assert energy.select("has_carbon_intensity", "has_power_breakdown").rows() == [(True, False), (True, False), (True, True), (False, True)]


# ------------------------------------------------------------------------------------------ gold
def silver_days(*days, zone="GR", drop=()):
    frames = [T.build_silver(*both(day=d, zone=zone)).energy for d in days]
    energy = pl.concat(frames)
    return energy.filter(~pl.col("datetime").is_in([hour(h) for h in drop]))


def test_features_cross_the_day_boundary_using_the_previous_day():
    energy = silver_days("2024-03-05", "2024-03-06")
    gold = T.build_features(energy, T.partition_targets([("2024-03-06", "GR")]))
    assert gold.height == 24 and (gold["date"] == dt.date(2024, 3, 6)).all()
    first = gold.row(0, named=True)
    prev = at(energy, "2024-03-05T23:00:00")
    assert first["lag_carbon_intensity_gco2_per_kwh_1h"] == prev["carbon_intensity_gco2_per_kwh"]
    assert first["lag_consumption_total_mw_1h"] == prev["consumption_total_mw"]
    window = energy.filter((pl.col("datetime") > hour("2024-03-05T00:00:00")) & (pl.col("datetime") <= hour("2024-03-06T00:00:00")))
    assert first["rolling_avg_carbon_intensity_gco2_per_kwh_24h"] == pytest.approx(window["carbon_intensity_gco2_per_kwh"].mean())
    assert first["rolling_hours_24h"] == 24
    assert (first["hour"], first["day_of_week"], first["month"]) == (0, 3, 3)  # Wednesday


def test_a_missing_hour_gives_a_null_lag_not_the_previous_row_and_a_shorter_window():
    energy = silver_days("2024-03-05", "2024-03-06", drop=["2024-03-06T09:00:00"])
    gold = T.build_features(energy, T.partition_targets([("2024-03-06", "GR")]))
    assert gold.height == 23
    ten = at(gold, "2024-03-06T10:00:00")
    assert ten["lag_carbon_intensity_gco2_per_kwh_1h"] is None  # not the 08:00 value
    assert ten["rolling_hours_24h"] == 23
    window = energy.filter((pl.col("datetime") > hour("2024-03-05T10:00:00")) & (pl.col("datetime") <= hour("2024-03-06T10:00:00")))
    assert ten["rolling_avg_consumption_total_mw_24h"] == pytest.approx(window["consumption_total_mw"].mean())
    assert at(gold, "2024-03-06T11:00:00")["lag_carbon_intensity_gco2_per_kwh_1h"] == at(energy, "2024-03-06T10:00:00")["carbon_intensity_gco2_per_kwh"]


def test_features_never_cross_zones():
    energy = pl.concat([silver_days("2024-03-06", zone="GR"), silver_days("2024-03-05", "2024-03-06", zone="DE")])
    gold = T.build_features(energy, T.partition_targets([("2024-03-06", "GR"), ("2024-03-06", "DE")]))
    gr0 = at(gold, "2024-03-06T00:00:00", "GR")
    assert gr0["lag_carbon_intensity_gco2_per_kwh_1h"] is None  # GR has no previous day, DE's must not leak in
    assert gr0["rolling_hours_24h"] == 1
    assert gr0["rolling_avg_carbon_intensity_gco2_per_kwh_24h"] == gr0["carbon_intensity_gco2_per_kwh"]
    assert at(gold, "2024-03-06T00:00:00", "DE")["lag_carbon_intensity_gco2_per_kwh_1h"] == at(energy, "2024-03-05T23:00:00", "DE")["carbon_intensity_gco2_per_kwh"]


def test_a_null_carbon_intensity_stays_null_and_is_neither_zero_nor_quarantined():
    rows = day_rows(CI, "GR", "2024-03-06")
    rows[3] = {**rows[3], "carbonIntensity": None}
    silver = T.build_silver(*both(carbon_rows=rows))
    row = at(silver.energy, "2024-03-06T03:00:00")
    assert row["carbon_intensity_gco2_per_kwh"] is None and row["has_carbon_intensity"] is True
    assert silver.quarantine.height == 0 and silver.energy.height == 24


def test_hours_one_feed_lacks_are_built_from_the_other_and_say_which_feed_is_missing():
    carbon_rows = day_rows(CI, "GR", "2024-03-06")[:20]  # the carbon feed lacks the last four hours
    silver = T.build_silver(*both(carbon_rows=carbon_rows, power_rows=day_rows(PB, "GR", "2024-03-06")[2:]))
    energy = silver.energy.sort("datetime")
    assert energy.height == 24
    assert energy["missing_feed"].to_list() == ["power-breakdown"] * 2 + [None] * 18 + ["carbon-intensity"] * 4
    assert at(energy, "2024-03-06T00:00:00")["consumption_total_mw"] is None
    assert at(energy, "2024-03-06T23:00:00")["carbon_intensity_gco2_per_kwh"] is None
