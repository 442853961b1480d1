"""The check rules find what they claim to find (and pass on good data)."""

import polars as pl

from energy_assets.electricity_maps import checks as K
from energy_assets.electricity_maps import transforms as T
from energy_assets_tests.electricity_maps.conftest import hour
from energy_assets_tests.electricity_maps.test_transforms import both, silver_days


def good_silver():
    return T.build_silver(*both())


def meta(outcome, key):
    return outcome.details[key]


def test_silver_rules_pass_on_good_data():
    silver = good_silver()
    for outcome in (
        K.unique_zone_hour(silver.energy),
        K.datetimes_on_the_hour(silver.energy),
        K.carbon_intensity_plausible(silver.energy),
        K.totals_consistent(silver.energy, silver.exchanges),
    ):
        assert outcome.passed, outcome.checked


def test_duplicate_zone_hours_are_found():
    energy = good_silver().energy
    outcome = K.unique_zone_hour(pl.concat([energy, energy.head(2)]))
    assert not outcome.passed and meta(outcome, "duplicated_zone_hours") == 2
    assert outcome.offending.height == 2 and "first_offending_rows" in outcome.result().metadata


def test_datetimes_off_the_hour_are_found():
    energy = good_silver().energy.with_columns(
        pl.when(pl.col("datetime") == hour("2024-03-06T05:00:00")).then(pl.col("datetime") + pl.duration(minutes=30)).otherwise(pl.col("datetime")).alias("datetime")
    )
    outcome = K.datetimes_on_the_hour(energy)
    assert not outcome.passed and meta(outcome, "rows_off_the_hour") == 1


def test_implausible_carbon_intensity_is_found_and_nulls_are_allowed():
    energy = good_silver().energy
    bad = energy.with_columns(pl.when(pl.col("datetime").dt.hour() == 3).then(2500.0).when(pl.col("datetime").dt.hour() == 4).then(-1.0).when(pl.col("datetime").dt.hour() == 5).then(None).otherwise(pl.col("carbon_intensity_gco2_per_kwh")).alias("carbon_intensity_gco2_per_kwh"))
    outcome = K.carbon_intensity_plausible(bad)
    assert not outcome.passed and meta(outcome, "rows_out_of_range") == 2 and meta(outcome, "rows_with_intensity") == 23


def test_totals_that_disagree_with_their_breakdowns_are_found_within_the_rounding_tolerance():
    silver = good_silver()
    shifted = silver.energy.with_columns(
        pl.when(pl.col("datetime").dt.hour() == 7).then(pl.col("production_total_mw") + 500).otherwise(pl.col("production_total_mw")).alias("production_total_mw"),
        pl.when(pl.col("datetime").dt.hour() == 8).then(pl.col("consumption_total_mw") + 3).otherwise(pl.col("consumption_total_mw")).alias("consumption_total_mw"),
    )
    outcome = K.totals_consistent(shifted, silver.exchanges)
    assert not outcome.passed
    assert meta(outcome, "production_hours_inconsistent") == 1
    assert meta(outcome, "consumption_hours_inconsistent") == 0  # 3 MW is rounding over 12 values
    missing_exchange = silver.exchanges.filter(~((pl.col("datetime") == hour("2024-03-06T09:00:00")) & (pl.col("neighbour_zone") == "BG")))
    outcome = K.totals_consistent(silver.energy, missing_exchange)
    assert meta(outcome, "import_hours_inconsistent") + meta(outcome, "export_hours_inconsistent") >= 1


def test_negative_hydro_discharge_is_not_subtracted_from_production():
    silver = good_silver()
    assert (silver.energy["production_hydro_discharge_mw"] < 0).any()
    sums = K.breakdown_sums(silver.energy, silver.exchanges)
    assert (sums["production_total_mw"] - sums["production_sum"]).abs().max() <= 1


def gold_frame(drop=()):
    energy = silver_days("2024-03-05", "2024-03-06", drop=drop)
    return T.build_features(energy, T.partition_targets([("2024-03-05", "GR"), ("2024-03-06", "GR")]))


def test_gold_rules_pass_on_good_features_including_a_gap():
    gold = gold_frame(drop=["2024-03-06T09:00:00"])
    lag = K.lag_equals_previous_hour(gold)
    assert lag.passed and meta(lag, "rows_verified") == gold.height - 1 and meta(lag, "rows_unverifiable_first_hour") == 1
    nulls = K.features_null_only_without_history(gold)
    assert nulls.passed and meta(nulls, "null_lag_carbon_intensity_gco2_per_kwh_1h") == 2  # first hour and after the gap


def test_a_lag_taken_from_the_previous_row_across_a_gap_is_caught():
    gold = gold_frame(drop=["2024-03-06T09:00:00"])
    wrong = gold.with_columns(pl.col("carbon_intensity_gco2_per_kwh").shift(1).alias("lag_carbon_intensity_gco2_per_kwh_1h"))
    outcome = K.lag_equals_previous_hour(wrong)
    assert not outcome.passed and meta(outcome, "mismatches") == 1  # only the hour after the gap differs


def test_unexplained_null_features_are_caught():
    gold = gold_frame()
    broken = gold.with_columns(
        pl.when(pl.col("datetime") == hour("2024-03-06T12:00:00")).then(None).otherwise(pl.col("rolling_avg_import_total_mw_24h")).alias("rolling_avg_import_total_mw_24h"),
        pl.when(pl.col("datetime") == hour("2024-03-06T13:00:00")).then(None).otherwise(pl.col("lag_export_total_mw_1h")).alias("lag_export_total_mw_1h"),
        pl.when(pl.col("datetime") == hour("2024-03-06T14:00:00")).then(None).otherwise(pl.col("hour")).alias("hour"),
    )
    outcome = K.features_null_only_without_history(broken)
    assert not outcome.passed and meta(outcome, "unexplained_nulls") == 3


def test_gold_rules_are_clean_on_an_empty_frame():
    gold = gold_frame().clear()
    assert K.lag_equals_previous_hour(gold).passed and K.features_null_only_without_history(gold).passed


def test_unknown_new_sources_count_towards_the_totals():
    from energy_assets.devtools import electricity_maps_samples as samples
    from energy_assets_tests.electricity_maps.conftest import day_rows

    rows = day_rows("power-breakdown", "GR", "2024-03-06")
    row = rows[4]
    row["powerProductionBreakdown"] = {**row["powerProductionBreakdown"], "hydrogen": 300}
    row["powerProductionTotal"] += 300
    silver = T.build_silver(*both(power_rows=rows))
    assert K.totals_consistent(silver.energy, silver.exchanges).passed
    row["powerProductionTotal"] -= 300  # the total no longer includes the new source's 300 MW
    silver = T.build_silver(*both(power_rows=rows))
    outcome = K.totals_consistent(silver.energy, silver.exchanges)
    assert not outcome.passed and meta(outcome, "production_hours_inconsistent") == 1
    assert samples.KNOWN_SOURCES == T.KNOWN_SOURCES
