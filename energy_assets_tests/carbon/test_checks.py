import polars as pl

from energy_assets.carbon import checks
from energy_assets.carbon import transforms as tr
from energy_assets_tests.carbon.factories import day_of_data
from energy_assets_tests.carbon.test_transforms import fallback_case
import datetime as dt


def good_footprint() -> pl.DataFrame:
    r, n, g = day_of_data(dt.date(2021, 3, 27), {"m1": "London", "m2": "Yorkshire"})
    return tr.build_footprint(r, n, g)


def test_unique_readings_passes_and_fails():
    fp = good_footprint()
    good = checks.rule_unique_readings(fp)
    assert good.passed and good.found == "all 96 rows have a distinct (meterpoint_id, interval_start_utc)"
    bad = checks.rule_unique_readings(pl.concat([fp, fp.head(2)]))
    assert not bad.passed and bad.details["duplicate_rows"] == 4
    assert bad.found == "4 of 98 rows share a reading key with another row, e.g. meterpoint m1 at 2021-03-27 00:00 UTC has 2 rows"
    assert bad.result().metadata["first_offending_rows"].value.startswith("| meterpoint_id")


def test_emissions_arithmetic_detects_a_wrong_value_and_a_missing_source():
    fp = good_footprint()
    assert checks.rule_emissions_arithmetic(fp).passed
    wrong = fp.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.col("emissions_gco2") + 1).otherwise(pl.col("emissions_gco2")).alias("emissions_gco2"))
    outcome = checks.rule_emissions_arithmetic(wrong)
    assert not outcome.passed and outcome.details["bad_rows"] == 1
    assert outcome.found == (
        "1 of 96 rows break the arithmetic, e.g. meterpoint m1 at 2021-03-27 01:30 UTC: 0.5 kWh x 100.0 gCO2/kWh "
        "(source regional_forecast) but emissions_gco2 = 51.0"
    )
    no_source = fp.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("intensity_source")).alias("intensity_source"))
    assert not checks.rule_emissions_arithmetic(no_source).passed


def test_regions_mapped_warns_and_names_the_unmapped_region():
    assert checks.rule_regions_mapped(good_footprint()).passed
    outcome = checks.rule_regions_mapped(tr.build_footprint(*fallback_case()))
    assert not outcome.passed and outcome.warn_only
    assert "Atlantis" in outcome.found and outcome.details["unmapped_readings"] == 4
    assert outcome.result().severity.value == "WARN"


def test_intensity_coverage_counts_readings_without_any_intensity():
    assert checks.rule_intensity_coverage(good_footprint()).passed
    outcome = checks.rule_intensity_coverage(tr.build_footprint(*fallback_case()))
    assert not outcome.passed and outcome.details["without_intensity"] == 1
    assert outcome.details["source_regional_forecast"] == 1


def test_reconciles_passes_on_the_real_summary_and_fails_when_a_row_is_lost():
    fp = good_footprint()
    per_product = tr.carbon_per_product_per_day(fp)
    per_region = tr.carbon_per_region_per_day(fp)
    product = checks.rule_reconciles(per_product, fp, "p")
    assert product.passed and product.found == "1 day(s) reconcile: 48.000000 kWh, 7.200000 kgCO2, 96 readings on both sides"
    assert checks.rule_reconciles(per_region, fp, "r").passed
    lost = checks.rule_reconciles(per_region.head(1), fp, "r")  # London only: Yorkshire's row is lost
    assert not lost.passed and lost.details["days_disagreeing"] == 1
    assert lost.found == (
        "1 of 1 day(s) disagree, e.g. 2021-03-27: r has 24.000000 kWh, 2.400000 kgCO2, 48 readings; "
        "the footprint 48.000000 kWh, 7.200000 kgCO2, 96 readings"
    )
