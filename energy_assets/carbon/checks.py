"""Checks of the carbon tables: pure rules (unit-tested) and the Dagster checks using them."""

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetIn, asset_check

from energy_assets.carbon.assets import (
    gold_smart_meter_carbon_footprint,
    presentation_carbon_per_product_per_day,
    presentation_carbon_per_region_per_day,
)
from energy_assets.check_outcome import CheckOutcome
from energy_assets.range_checks import report
from energy_assets.carbon.regions import SMART_METER_REGION_TO_NESO
from energy_assets.partitions import uk_settlement_days

EMISSIONS_TOLERANCE_G = 1e-6
RECONCILE_TOLERANCE = 1e-6  # kWh and kg: far below the Wh


def rule_unique_readings(footprint: pl.DataFrame) -> CheckOutcome:
    dup = footprint.filter(pl.struct("meterpoint_id", "interval_start_utc").is_duplicated())
    if dup.height:
        first = dup.sort("meterpoint_id", "interval_start_utc").row(0, named=True)
        copies = dup.filter((pl.col("meterpoint_id") == first["meterpoint_id"]) & (pl.col("interval_start_utc") == first["interval_start_utc"])).height
        found = (f"{dup.height} of {footprint.height} rows share a reading key with another row, e.g. meterpoint "
                 f"{first['meterpoint_id']} at {first['interval_start_utc']:%Y-%m-%d %H:%M} UTC has {copies} rows")
    else:
        found = f"all {footprint.height} rows have a distinct (meterpoint_id, interval_start_utc)"
    return CheckOutcome(
        passed=dup.is_empty(),
        checked="(meterpoint_id, interval_start_utc) is unique: one footprint row per reading",
        found=found,
        details={"rows": footprint.height, "duplicate_rows": dup.height},
        offending=dup.select("meterpoint_id", "interval_start_utc"),
    )


def rule_emissions_arithmetic(footprint: pl.DataFrame) -> CheckOutcome:
    expected = pl.col("consumption_kwh") * pl.col("intensity_gco2_per_kwh")
    bad = footprint.filter(
        (pl.col("emissions_gco2").is_null() != pl.col("intensity_gco2_per_kwh").is_null())
        | ((pl.col("emissions_gco2") - expected).abs() > EMISSIONS_TOLERANCE_G)
        | (pl.col("intensity_source").is_null() != pl.col("intensity_gco2_per_kwh").is_null())
    )
    if bad.height:
        r = bad.row(0, named=True)
        found = (f"{bad.height} of {footprint.height} rows break the arithmetic, e.g. meterpoint {r['meterpoint_id']} at "
                 f"{r['interval_start_utc']:%Y-%m-%d %H:%M} UTC: {r['consumption_kwh']} kWh x {r['intensity_gco2_per_kwh']} gCO2/kWh "
                 f"(source {r['intensity_source']}) but emissions_gco2 = {r['emissions_gco2']}")
    else:
        found = f"all {footprint.height} rows: emissions_gco2 = consumption_kwh x intensity (to {EMISSIONS_TOLERANCE_G} g) with a source named"
    return CheckOutcome(
        passed=bad.is_empty(),
        checked="emissions_gco2 = consumption_kwh x intensity_gco2_per_kwh, and a source is named exactly when an intensity is used",
        found=found,
        details={"rows": footprint.height, "bad_rows": bad.height},
        offending=bad.select("meterpoint_id", "interval_start_utc", "consumption_kwh", "intensity_gco2_per_kwh", "intensity_source", "emissions_gco2"),
    )


def rule_regions_mapped(footprint: pl.DataFrame, mapping: dict[str, int] | None = None) -> CheckOutcome:
    mapping = SMART_METER_REGION_TO_NESO if mapping is None else mapping
    unmapped = (
        footprint.filter(pl.col("neso_region_id").is_null())
        .group_by("region")
        .agg(pl.len().alias("readings"), pl.col("meterpoint_id").n_unique().alias("meterpoints"))
        .sort("readings", descending=True)
    )
    n = int(unmapped["readings"].sum()) if unmapped.height else 0
    return CheckOutcome(
        passed=unmapped.is_empty(),
        checked=f"every meterpoint region maps to a NESO region ({len(mapping)} regions mapped); unmapped ones fall back to national intensity",
        found=(f"{unmapped.height} unmapped region(s) ({', '.join(str(r) for r in unmapped['region'].to_list())}) with {n} of {footprint.height} readings"
               if unmapped.height else f"all {footprint['region'].n_unique()} region(s) in {footprint.height} readings map"),
        details={"rows": footprint.height, "unmapped_regions": unmapped.height, "unmapped_readings": n},
        offending=unmapped,
        warn_only=True,
    )


def rule_intensity_coverage(footprint: pl.DataFrame) -> CheckOutcome:
    missing = footprint.filter(pl.col("intensity_gco2_per_kwh").is_null())
    by_source = footprint.group_by(pl.col("intensity_source").fill_null("none")).len().sort("intensity_source")
    return CheckOutcome(
        passed=missing.is_empty() and footprint.height > 0,
        checked="every reading got a grid intensity (regional forecast, national actual or national forecast)",
        found=(f"{missing.height} of {footprint.height} readings have no intensity for their half-hour" if missing.height
               else f"all {footprint.height} readings have an intensity" if footprint.height else "no readings in the partition(s)"),
        details={"rows": footprint.height, "without_intensity": missing.height,
                 **{f"source_{r[0]}": int(r[1]) for r in by_source.iter_rows()}},
        offending=missing.select("meterpoint_id", "interval_start_utc").unique().sort("interval_start_utc"),
    )


def rule_reconciles(summary: pl.DataFrame, footprint: pl.DataFrame, name: str) -> CheckOutcome:
    """Daily totals of a summary table equal those of the footprint (kWh, kg CO2, readings)."""
    def totals(df: pl.DataFrame, date_col: str, kwh: str, kg: pl.Expr, n: pl.Expr) -> pl.DataFrame:
        return df.group_by(pl.col(date_col).alias("date")).agg(
            pl.col(kwh).sum().alias("kwh"), kg.alias("kg"), n.alias("readings")
        )
    s = totals(summary, "date", "total_consumption_kwh", pl.col("total_emissions_kgco2").sum(), pl.col("reading_count").sum().cast(pl.Int64))
    f = totals(footprint, "settlement_date", "consumption_kwh", pl.col("emissions_gco2").sum() / 1000.0, pl.len().cast(pl.Int64))
    joined = s.join(f, on="date", how="full", suffix="_footprint", coalesce=True).fill_null(0)
    bad = joined.filter(
        ((pl.col("kwh") - pl.col("kwh_footprint")).abs() > RECONCILE_TOLERANCE)
        | ((pl.col("kg") - pl.col("kg_footprint")).abs() > RECONCILE_TOLERANCE)
        | (pl.col("readings") != pl.col("readings_footprint"))
    ).sort("date")
    if bad.height:
        d = bad.row(0, named=True)
        found = (f"{bad.height} of {joined.height} day(s) disagree, e.g. {d['date']}: {name} has {d['kwh']:.6f} kWh, "
                 f"{d['kg']:.6f} kgCO2, {d['readings']} readings; the footprint {d['kwh_footprint']:.6f} kWh, "
                 f"{d['kg_footprint']:.6f} kgCO2, {d['readings_footprint']} readings")
    else:
        found = (f"{joined.height} day(s) reconcile: {float(joined['kwh'].sum()):.6f} kWh, {float(joined['kg'].sum()):.6f} kgCO2, "
                 f"{int(joined['readings'].sum())} readings on both sides")
    return CheckOutcome(
        passed=bad.is_empty(),
        checked=f"daily kWh, kg CO2 and reading counts of {name} equal those of gold/smart_meter_carbon_footprint (to {RECONCILE_TOLERANCE})",
        found=found,
        details={"days": joined.height, "days_disagreeing": bad.height,
                 "total_kwh": float(summary["total_consumption_kwh"].sum() or 0.0)},
        offending=bad,
    )


def _footprint_check(name: str, rule, description: str, blocking: bool):
    @asset_check(asset=gold_smart_meter_carbon_footprint, name=name, partitions_def=uk_settlement_days, blocking=blocking, description=description)
    def _check(context: AssetCheckExecutionContext, smart_meter_carbon_footprint: pl.DataFrame) -> AssetCheckResult:
        return report(context, rule(smart_meter_carbon_footprint))

    return _check


footprint_unique = _footprint_check("unique_readings", rule_unique_readings, "One footprint row per (meterpoint, half-hour).", True)
footprint_arithmetic = _footprint_check("emissions_arithmetic", rule_emissions_arithmetic, "emissions_gco2 = consumption_kwh x intensity_gco2_per_kwh.", True)
footprint_regions = _footprint_check("regions_mapped", rule_regions_mapped, "Reports meterpoint regions with no NESO region (they fall back to national intensity); warns when any.", False)
footprint_coverage = _footprint_check("intensity_coverage", rule_intensity_coverage, "Every reading got an intensity; counts readings per intensity source.", False)


@asset_check(
    asset=presentation_carbon_per_product_per_day,
    name="reconciles_with_footprint",
    partitions_def=uk_settlement_days,
    blocking=True,
    additional_ins={"footprint": AssetIn(key=["gold", "smart_meter_carbon_footprint"])},
    description="Daily kWh, kg CO2 and readings equal the footprint's.",
)
def product_reconciles(context: AssetCheckExecutionContext, carbon_per_product_per_day: pl.DataFrame, footprint: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_reconciles(carbon_per_product_per_day, footprint, "presentation/carbon_per_product_per_day"))


@asset_check(
    asset=presentation_carbon_per_region_per_day,
    name="reconciles_with_footprint",
    partitions_def=uk_settlement_days,
    blocking=True,
    additional_ins={"footprint": AssetIn(key=["gold", "smart_meter_carbon_footprint"])},
    description="Daily kWh, kg CO2 and readings equal the footprint's.",
)
def region_reconciles(context: AssetCheckExecutionContext, carbon_per_region_per_day: pl.DataFrame, footprint: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_reconciles(carbon_per_region_per_day, footprint, "presentation/carbon_per_region_per_day"))


CARBON_CHECKS = [footprint_unique, footprint_arithmetic, footprint_regions, footprint_coverage, product_reconciles, region_reconciles]
