"""Data-quality rules for silver and gold (pure functions, unit tested) and the asset checks that run them."""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    AssetKey,
    MetadataValue,
    MultiPartitionsDefinition,
    asset_check,
)

from energy_assets.electricity_maps.transforms import FEATURE_VALUES, KNOWN_SOURCES, lag_column, rolling_column, source_column
from energy_assets.partitions import utc_day_by_zone

SILVER = AssetKey(["silver", "electricity_maps_energy"])
EXCHANGES = AssetKey(["silver", "electricity_maps_exchanges"])
GOLD = AssetKey(["gold", "electricity_maps_ml_features"])
CARBON_RANGE_GCO2_PER_KWH = (0.0, 2000.0)
TOTAL_TOLERANCE_PER_TERM_MW = 0.5  # each breakdown value is rounded to whole MW
TOTAL_TOLERANCE_BASE_MW = 1.0
TOTAL_TOLERANCE_SHARE = 0.01


def _rows(df: pl.DataFrame, n: int = 5) -> MetadataValue:
    return MetadataValue.json([{k: (str(v) if v is not None else None) for k, v in r.items()} for r in df.head(n).to_dicts()])


def _result(passed: bool, checked: str, found: dict, offending: pl.DataFrame | None = None) -> dict:
    meta = {"checked": MetadataValue.text(checked), **{k: MetadataValue.int(int(v)) if isinstance(v, int) else v for k, v in found.items()}}
    if offending is not None and offending.height:
        meta["first_offending_rows"] = _rows(offending)
    return {"passed": passed, "metadata": meta}


# ---------------------------------------------------------------------------------------------- silver rules
def unique_zone_hour(energy: pl.DataFrame) -> dict:
    dup = energy.group_by("zone", "datetime").len().filter(pl.col("len") > 1).sort("zone", "datetime")
    return _result(dup.height == 0, "one row per (zone, datetime)", {"rows": energy.height, "duplicated_zone_hours": dup.height}, dup)


def datetimes_on_the_hour(energy: pl.DataFrame) -> dict:
    bad = energy.filter(pl.col("datetime").is_null() | (pl.col("datetime").dt.truncate("1h") != pl.col("datetime")))
    return _result(bad.height == 0, "every datetime is a UTC hour start (no minutes, seconds or nulls)", {"rows": energy.height, "rows_off_the_hour": bad.height}, bad.select("zone", "datetime"))


def carbon_intensity_plausible(energy: pl.DataFrame, low: float = CARBON_RANGE_GCO2_PER_KWH[0], high: float = CARBON_RANGE_GCO2_PER_KWH[1]) -> dict:
    col = pl.col("carbon_intensity_gco2_per_kwh")
    bad = energy.filter(col.is_not_null() & ((col < low) | (col > high) | col.is_nan()))
    present = energy.filter(col.is_not_null())
    return _result(
        bad.height == 0,
        f"carbon_intensity_gco2_per_kwh within [{low:g}, {high:g}] where present",
        {
            "rows_with_intensity": present.height,
            "rows_out_of_range": bad.height,
            "min_gco2_per_kwh": MetadataValue.float(float(present[col.meta.output_name()].min())) if present.height else MetadataValue.text("n/a"),
            "max_gco2_per_kwh": MetadataValue.float(float(present[col.meta.output_name()].max())) if present.height else MetadataValue.text("n/a"),
        },
        bad.select("zone", "datetime", "carbon_intensity_gco2_per_kwh"),
    )


def _unknown_sum(flow: str, positive_only: bool) -> pl.Expr:
    element = pl.element().struct.field("power_mw")
    keep = (pl.element().struct.field("flow") == flow) & element.is_not_null()
    if positive_only:
        keep = keep & (element > 0)
    return pl.col("unknown_sources").list.eval(element.filter(keep)).list.sum().fill_null(0.0)


def _unknown_count(flow: str) -> pl.Expr:
    keep = (pl.element().struct.field("flow") == flow) & pl.element().struct.field("power_mw").is_not_null()
    return pl.col("unknown_sources").list.eval(pl.element().filter(keep)).list.len().fill_null(0)


def breakdown_sums(energy: pl.DataFrame, exchanges: pl.DataFrame) -> pl.DataFrame:
    """Per zone-hour: each total, the sum of its breakdown and the number of terms summed.

    Production totals exclude negative values (pumping into storage is consumption, not negative
    production), as in the API's own totals; consumption sums every value.
    """
    prod = [source_column("production", s) for s in KNOWN_SOURCES]
    cons = [source_column("consumption", s) for s in KNOWN_SOURCES]
    exch = (
        exchanges.filter(pl.col("power_mw").is_not_null())
        .group_by("zone", "datetime", "direction")
        .agg(pl.col("power_mw").sum().alias("sum"), pl.len().alias("terms"))
    )
    base = energy.select(
        "zone", "datetime", "production_total_mw", "consumption_total_mw", "import_total_mw", "export_total_mw",
        (pl.sum_horizontal([pl.col(c).clip(lower_bound=0) for c in prod]) + _unknown_sum("production", True)).alias("production_sum"),
        (pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int32) for c in prod]) + _unknown_count("production")).alias("production_terms"),
        (pl.sum_horizontal(cons) + _unknown_sum("consumption", False)).alias("consumption_sum"),
        (pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int32) for c in cons]) + _unknown_count("consumption")).alias("consumption_terms"),
    )
    for direction in ("import", "export"):
        part = exch.filter(pl.col("direction") == direction).select(
            "zone", "datetime", pl.col("sum").alias(f"{direction}_sum"), pl.col("terms").alias(f"{direction}_terms")
        )
        base = base.join(part, on=["zone", "datetime"], how="left").with_columns(pl.col(f"{direction}_terms").fill_null(0))
    return base


def totals_consistent(energy: pl.DataFrame, exchanges: pl.DataFrame) -> dict:
    sums = breakdown_sums(energy, exchanges)
    offending = []
    found: dict = {}
    for total in ("production", "consumption", "import", "export"):
        t, s, n = pl.col(f"{total}_total_mw"), pl.col(f"{total}_sum"), pl.col(f"{total}_terms")
        tolerance = pl.max_horizontal(TOTAL_TOLERANCE_BASE_MW + TOTAL_TOLERANCE_PER_TERM_MW * n, TOTAL_TOLERANCE_SHARE * t.abs())
        both = sums.filter(t.is_not_null() & (n > 0))
        bad = both.filter((t - s).abs() > tolerance)
        found[f"{total}_hours_compared"] = both.height
        found[f"{total}_hours_inconsistent"] = bad.height
        found[f"{total}_max_abs_difference_mw"] = MetadataValue.float(float((both[f"{total}_total_mw"] - both[f"{total}_sum"]).abs().max() or 0.0))
        if bad.height:
            offending.append(bad.select("zone", "datetime", pl.lit(total).alias("total"), t.alias("total_mw"), s.alias("breakdown_sum_mw")))
    bad_all = pl.concat(offending) if offending else None
    return _result(
        bad_all is None,
        "each total (production, consumption, import, export) matches the sum of its breakdown where both exist; "
        f"tolerance max({TOTAL_TOLERANCE_BASE_MW:g} MW + {TOTAL_TOLERANCE_PER_TERM_MW:g} MW per summed value, "
        f"{TOTAL_TOLERANCE_SHARE:.0%} of the total); production sums positive values only",
        found,
        bad_all,
    )


# ---------------------------------------------------------------------------------------------- gold rules
def _expected_from_values(gold: pl.DataFrame) -> pl.DataFrame:
    """Lags and rolling means recomputed from gold's own value columns, with boundary flags."""
    first = pl.col("datetime").min().over("zone")
    prev = gold.select("zone", (pl.col("datetime") + pl.duration(hours=1)).alias("datetime"), *[pl.col(v).alias(f"exp_lag_{v}") for v in FEATURE_VALUES])
    return (
        gold.join(prev, on=["zone", "datetime"], how="left")
        .sort("zone", "datetime")
        .with_columns(
            ((pl.col("datetime") - pl.duration(hours=1)) < first).alias("lag_unverifiable"),
            ((pl.col("datetime") - pl.duration(hours=23)) < first).alias("window_truncated"),
            *[pl.col(v).rolling_mean_by("datetime", window_size="24h").over("zone").alias(f"exp_roll_{v}") for v in FEATURE_VALUES],
        )
    )


def lag_equals_previous_hour(gold: pl.DataFrame) -> dict:
    exp = _expected_from_values(gold)
    checkable = exp.filter(~pl.col("lag_unverifiable"))
    bad_parts = []
    for v in FEATURE_VALUES:
        lag, want = pl.col(lag_column(v)), pl.col(f"exp_lag_{v}")
        mismatch = ~((lag.is_null() & want.is_null()) | ((lag - want).abs() <= 1e-9).fill_null(False))
        bad = checkable.filter(mismatch)
        if bad.height:
            bad_parts.append(bad.select("zone", "datetime", pl.lit(lag_column(v)).alias("feature"), lag.alias("lag"), want.alias("value_at_t_minus_1h")))
    bad_all = pl.concat(bad_parts) if bad_parts else None
    return _result(
        bad_all is None,
        "for every row whose previous hour is in the loaded partitions, lag_<col>_1h equals <col> at t - 1 h "
        "(null when that hour is missing)",
        {
            "rows": gold.height,
            "rows_verified": checkable.height,
            "rows_unverifiable_first_hour": exp.height - checkable.height,
            "mismatches": 0 if bad_all is None else bad_all.height,
        },
        bad_all,
    )


def features_null_only_without_history(gold: pl.DataFrame) -> dict:
    exp = _expected_from_values(gold)
    bad_parts = []
    unexplained = {}
    for col in ("hour", "day_of_week", "month"):
        bad = exp.filter(pl.col(col).is_null())
        unexplained[col] = bad.height
        if bad.height:
            bad_parts.append(bad.select("zone", "datetime", pl.lit(col).alias("feature")))
    for v in FEATURE_VALUES:
        lag, roll = pl.col(lag_column(v)), pl.col(rolling_column(v))
        # a null lag is explained when the previous hour (in the loaded partitions) is missing or null,
        # or when the previous hour lies before them (then the asset had the previous day; nothing to say)
        lag_bad = exp.filter(lag.is_null() & ~pl.col("lag_unverifiable") & pl.col(f"exp_lag_{v}").is_not_null())
        # a null rolling mean is explained only when no value at all exists in the loaded part of the window
        roll_bad = exp.filter(roll.is_null() & pl.col(f"exp_roll_{v}").is_not_null())
        for name, bad in ((lag_column(v), lag_bad), (rolling_column(v), roll_bad)):
            unexplained[name] = bad.height
            if bad.height:
                bad_parts.append(bad.select("zone", "datetime", pl.lit(name).alias("feature")))
    bad_all = pl.concat(bad_parts) if bad_parts else None
    nulls = {f"null_{c}": int(gold[c].null_count()) for c in [lag_column(v) for v in FEATURE_VALUES] + [rolling_column(v) for v in FEATURE_VALUES]}
    return _result(
        bad_all is None,
        "hour/day_of_week/month never null; a lag is null only when the hour before is missing or null; "
        "a 24 h rolling mean is null only when its window holds no value",
        {"rows": gold.height, "unexplained_nulls": sum(unexplained.values()), **nulls},
        bad_all,
    )


# ---------------------------------------------------------------------------------------------- asset checks
def _to_check(outcome: dict, severity=AssetCheckSeverity.ERROR) -> AssetCheckResult:
    return AssetCheckResult(passed=outcome["passed"], metadata=outcome["metadata"], severity=severity)


def build_checks(partitions_def: MultiPartitionsDefinition = utc_day_by_zone) -> list:
    """The silver and gold checks over `partitions_def` (the assets' partitions)."""

    @asset_check(asset=SILVER, partitions_def=partitions_def, blocking=True, description="Exactly one row per (zone, UTC hour).")
    def silver_unique_zone_hour(electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return _to_check(unique_zone_hour(electricity_maps_energy))


    @asset_check(asset=SILVER, partitions_def=partitions_def, blocking=True, description="Every datetime is the start of a UTC hour.")
    def silver_datetimes_on_the_hour(electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return _to_check(datetimes_on_the_hour(electricity_maps_energy))


    @asset_check(
        asset=SILVER, partitions_def=partitions_def, blocking=True,
        description="Carbon intensity lies within a plausible range (0 to 2000 gCO2eq/kWh).",
    )
    def silver_carbon_intensity_plausible(electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return _to_check(carbon_intensity_plausible(electricity_maps_energy))


    @asset_check(
        asset=SILVER, partitions_def=partitions_def, blocking=True,
        additional_ins={"exchanges": AssetIn(key=EXCHANGES)},
        description="Production, consumption, import and export totals match the sums of their breakdowns (rounding tolerance).",
    )
    def silver_totals_match_breakdowns(electricity_maps_energy: pl.DataFrame, exchanges: pl.DataFrame) -> AssetCheckResult:
        return _to_check(totals_consistent(electricity_maps_energy, exchanges))


    @asset_check(
        asset=GOLD, partitions_def=partitions_def, blocking=True,
        description="No feature is null except where the history it needs is missing.",
    )
    def gold_features_null_only_without_history(electricity_maps_ml_features: pl.DataFrame) -> AssetCheckResult:
        return _to_check(features_null_only_without_history(electricity_maps_ml_features))


    @asset_check(
        asset=GOLD, partitions_def=partitions_def, blocking=True,
        description="lag_<col>_1h of row t equals <col> at t - 1 h in the same zone (not the previous row).",
    )
    def gold_lag_equals_previous_hour(electricity_maps_ml_features: pl.DataFrame) -> AssetCheckResult:
        return _to_check(lag_equals_previous_hour(electricity_maps_ml_features))

    return [silver_unique_zone_hour, silver_datetimes_on_the_hour, silver_carbon_intensity_plausible, silver_totals_match_breakdowns, gold_features_null_only_without_history, gold_lag_equals_previous_hour]


CHECKS = build_checks()
