"""Data-quality rules for bronze, silver and gold (pure functions returning `CheckOutcome`, unit tested) and
the asset checks that run them."""

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSpec, AssetIn, AssetKey, MultiPartitionsDefinition, asset_check, multi_asset_check

from energy_assets.bronze import AUXILIARY_RULE, latest_fetches, rule_latest_fetch_usable
from energy_assets.check_outcome import CheckOutcome
from energy_assets.range_checks import report
from energy_assets.electricity_maps.client import NO_DATA
from energy_assets.electricity_maps.transforms import FEATURE_VALUES, KNOWN_SOURCES, lag_column, rolling_column, source_column
from energy_assets.partitions import utc_day_by_zone

CARBON_BRONZE = AssetKey(["bronze", "electricity_maps_carbon_intensity"])
POWER_BRONZE = AssetKey(["bronze", "electricity_maps_power_breakdown"])
SILVER = AssetKey(["silver", "electricity_maps_energy"])
EXCHANGES = AssetKey(["silver", "electricity_maps_exchanges"])
GOLD = AssetKey(["gold", "electricity_maps_ml_features"])
CARBON_RANGE_GCO2_PER_KWH = (0.0, 2000.0)
TOTAL_TOLERANCE_PER_TERM_MW = 0.5  # each breakdown value is rounded to whole MW
TOTAL_TOLERANCE_BASE_MW = 1.0
TOTAL_TOLERANCE_SHARE = 0.01


BY = ["date", "zone"]


def _round(value) -> float | str:
    return "n/a" if value is None else round(float(value), 3)


# ---------------------------------------------------------------------------------------------- bronze rules
def bronze_usable(bronze: pl.DataFrame, other: pl.DataFrame, what: str) -> CheckOutcome:
    """Blocking: the newest answer of every partition is usable (`rule_latest_fetch_usable`), where a "no data"
    answer counts as usable when the other feed's newest answer for that partition has data (silver is then
    built from the feed that answered, AUXILIARY_RULE); "no data" from both feeds fails."""
    latest_other = latest_fetches(other, BY)
    other_has_data = latest_other.filter(pl.col("problem").is_null()).select(BY) if latest_other.height else pl.DataFrame(schema={"date": pl.Date, "zone": pl.String})
    excused = pl.DataFrame(schema={"date": pl.Date, "zone": pl.String, "fetched_at": bronze.schema.get("fetched_at", pl.Datetime("us", "UTC")), "content_hash": pl.String})
    if bronze.height:
        excused = (
            latest_fetches(bronze, BY)
            .filter(pl.col("problem").str.starts_with("Electricity Maps: ") & pl.col("problem").str.contains(f": {NO_DATA}: ", literal=True))
            .join(other_has_data, on=BY, how="semi")
            .select(*BY, "fetched_at", "content_hash")
        )
    adjusted = bronze
    if excused.height:
        adjusted = (
            bronze.join(excused.with_columns(pl.lit(True).alias("_excused")), on=[*BY, "fetched_at", "content_hash"], how="left")
            .with_columns(pl.when(pl.col("_excused")).then(None).otherwise(pl.col("problem")).alias("problem"))
            .drop("_excused")
        )
    outcome = rule_latest_fetch_usable(adjusted, BY, what)
    outcome.checked += '; "no data" is accepted only when the other feed has data for the partition'
    if excused.height:
        outcome.found += (
            f"; {excused.height} partition(s) answered \"no data\" while the other feed has data: silver is built "
            f"without this feed ({AUXILIARY_RULE})"
        )
    outcome.details["no_data_partitions_with_other_feed"] = excused.height
    return outcome


# ---------------------------------------------------------------------------------------------- silver rules
def unique_zone_hour(energy: pl.DataFrame) -> CheckOutcome:
    dup = energy.group_by("zone", "datetime").len().filter(pl.col("len") > 1).sort("zone", "datetime")
    return CheckOutcome(
        passed=dup.height == 0,
        checked="one row per (zone, datetime)",
        found=f"{dup.height} duplicated zone-hour(s) among {energy.height} row(s)",
        details={"rows": energy.height, "duplicated_zone_hours": dup.height},
        offending=dup,
    )


def datetimes_on_the_hour(energy: pl.DataFrame) -> CheckOutcome:
    bad = energy.filter(pl.col("datetime").is_null() | (pl.col("datetime").dt.truncate("1h") != pl.col("datetime")))
    first = f"; first: {bad['zone'][0]} {bad['datetime'][0]}" if bad.height else ""
    return CheckOutcome(
        passed=bad.height == 0,
        checked="every datetime is a UTC hour start (no minutes, seconds or nulls)",
        found=f"{bad.height} of {energy.height} row(s) off the hour{first}",
        details={"rows": energy.height, "rows_off_the_hour": bad.height},
        offending=bad.select("zone", "datetime"),
    )


def carbon_intensity_plausible(energy: pl.DataFrame, low: float = CARBON_RANGE_GCO2_PER_KWH[0], high: float = CARBON_RANGE_GCO2_PER_KWH[1]) -> CheckOutcome:
    col = pl.col("carbon_intensity_gco2_per_kwh")
    bad = energy.filter(col.is_not_null() & ((col < low) | (col > high) | col.is_nan()))
    present = energy.filter(col.is_not_null())
    nulls = energy.filter(pl.col("has_carbon_intensity") & col.is_null()).height if "has_carbon_intensity" in energy.columns else 0
    low_seen = _round(present["carbon_intensity_gco2_per_kwh"].min()) if present.height else "n/a"
    high_seen = _round(present["carbon_intensity_gco2_per_kwh"].max()) if present.height else "n/a"
    return CheckOutcome(
        passed=bad.height == 0,
        checked=f"carbon_intensity_gco2_per_kwh within [{low:g}, {high:g}] where present (a null from the API stays null)",
        found=(
            f"{bad.height} of {present.height} value(s) out of range; seen min {low_seen}, max {high_seen} gCO2/kWh; "
            f"{nulls} hour(s) where the API answered carbonIntensity null"
        ),
        details={
            "rows_with_intensity": present.height,
            "rows_out_of_range": bad.height,
            "rows_null_from_api": nulls,
            "min_gco2_per_kwh": low_seen,
            "max_gco2_per_kwh": high_seen,
        },
        offending=bad.select("zone", "datetime", "carbon_intensity_gco2_per_kwh"),
    )


def feeds_complete(energy: pl.DataFrame) -> CheckOutcome:
    """Non-blocking: hours built from one feed only (the other answered no data or lacks the hour)."""
    missing = energy.filter(pl.col("missing_feed").is_not_null())
    carbon = missing.filter(pl.col("missing_feed") == "carbon-intensity").height
    power = missing.height - carbon
    return CheckOutcome(
        passed=missing.height == 0,
        checked=f"every zone-hour has both carbon intensity and power breakdown ({AUXILIARY_RULE})",
        found=f"{missing.height} of {energy.height} hour(s) built from one feed: {carbon} without carbon intensity, {power} without power breakdown",
        details={"rows": energy.height, "hours_without_carbon_intensity": carbon, "hours_without_power_breakdown": power},
        offending=missing.select("zone", "datetime", "missing_feed"),
        warn_only=True,
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


def totals_consistent(energy: pl.DataFrame, exchanges: pl.DataFrame) -> CheckOutcome:
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
        found[f"{total}_max_abs_difference_mw"] = float((both[f"{total}_total_mw"] - both[f"{total}_sum"]).abs().max() or 0.0)
        if bad.height:
            offending.append(bad.select("zone", "datetime", pl.lit(total).alias("total"), t.alias("total_mw"), s.alias("breakdown_sum_mw")))
    bad_all = pl.concat(offending) if offending else None
    summary = ", ".join(
        f"{t} {found[f'{t}_hours_inconsistent']}/{found[f'{t}_hours_compared']} (max |diff| {found[f'{t}_max_abs_difference_mw']:.3f} MW)"
        for t in ("production", "consumption", "import", "export")
    )
    return CheckOutcome(
        passed=bad_all is None,
        checked=(
            "each total (production, consumption, import, export) matches the sum of its breakdown where both exist; "
            f"tolerance max({TOTAL_TOLERANCE_BASE_MW:g} MW + {TOTAL_TOLERANCE_PER_TERM_MW:g} MW per summed value, "
            f"{TOTAL_TOLERANCE_SHARE:.0%} of the total); production sums positive values only"
        ),
        found=f"inconsistent hours / hours compared: {summary}",
        details=found,
        offending=bad_all,
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


def lag_equals_previous_hour(gold: pl.DataFrame) -> CheckOutcome:
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
    mismatches = 0 if bad_all is None else bad_all.height
    return CheckOutcome(
        passed=bad_all is None,
        checked=(
            "for every row whose previous hour is in the loaded partitions, lag_<col>_1h equals <col> at t - 1 h "
            "(null when that hour is missing)"
        ),
        found=f"{mismatches} mismatch(es) in {checkable.height} verified row(s) ({exp.height - checkable.height} first hour(s) unverifiable)",
        details={
            "rows": gold.height,
            "rows_verified": checkable.height,
            "rows_unverifiable_first_hour": exp.height - checkable.height,
            "mismatches": mismatches,
        },
        offending=bad_all,
    )


def features_null_only_without_history(gold: pl.DataFrame) -> CheckOutcome:
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
    worst = ", ".join(f"{k}={v}" for k, v in unexplained.items() if v) or "none"
    return CheckOutcome(
        passed=bad_all is None,
        checked=(
            "hour/day_of_week/month never null; a lag is null only when the hour before is missing or null; "
            "a 24 h rolling mean is null only when its window holds no value"
        ),
        found=f"{sum(unexplained.values())} unexplained null(s) in {gold.height} row(s) ({worst})",
        details={"rows": gold.height, "unexplained_nulls": sum(unexplained.values()), **nulls},
        offending=bad_all,
    )


# ---------------------------------------------------------------------------------------------- asset checks
def build_checks(partitions_def: MultiPartitionsDefinition = utc_day_by_zone) -> list:
    """The bronze, silver and gold checks over `partitions_def` (the assets' partitions)."""

    bronze_doc = (
        "The newest answer of every partition is usable (an outage is kept in bronze, then fails the run before "
        "silver); \"no data\" passes only when the other feed has data."
    )

    @multi_asset_check(
        name="electricity_maps_bronze_latest_answers_usable",
        specs=[
            AssetCheckSpec("latest_answer_usable", asset=CARBON_BRONZE, blocking=True, partitions_def=partitions_def, description=bronze_doc),
            AssetCheckSpec("latest_answer_usable", asset=POWER_BRONZE, blocking=True, partitions_def=partitions_def, description=bronze_doc),
        ],
        ins={"carbon": AssetIn(key=CARBON_BRONZE), "power": AssetIn(key=POWER_BRONZE)},
    )
    def bronze_latest_answers_usable(context: AssetCheckExecutionContext, carbon: pl.DataFrame, power: pl.DataFrame):
        """One op for both bronze tables: each one's verdict needs the other's newest answers."""
        for key, mine, other in ((CARBON_BRONZE, carbon, power), (POWER_BRONZE, power, carbon)):
            yield report(context, bronze_usable(mine, other, key.to_user_string()), asset_key=key, check_name="latest_answer_usable")

    @asset_check(
        asset=SILVER, partitions_def=partitions_def, blocking=False,
        description="Warns about hours built from one feed only (the other answered no data for them).",
    )
    def silver_both_feeds_present(context: AssetCheckExecutionContext, electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return report(context, feeds_complete(electricity_maps_energy))

    @asset_check(asset=SILVER, partitions_def=partitions_def, blocking=True, description="Exactly one row per (zone, UTC hour).")
    def silver_unique_zone_hour(context: AssetCheckExecutionContext, electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return report(context, unique_zone_hour(electricity_maps_energy))


    @asset_check(asset=SILVER, partitions_def=partitions_def, blocking=True, description="Every datetime is the start of a UTC hour.")
    def silver_datetimes_on_the_hour(context: AssetCheckExecutionContext, electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return report(context, datetimes_on_the_hour(electricity_maps_energy))


    @asset_check(
        asset=SILVER, partitions_def=partitions_def, blocking=True,
        description="Carbon intensity lies within a plausible range (0 to 2000 gCO2eq/kWh).",
    )
    def silver_carbon_intensity_plausible(context: AssetCheckExecutionContext, electricity_maps_energy: pl.DataFrame) -> AssetCheckResult:
        return report(context, carbon_intensity_plausible(electricity_maps_energy))


    @asset_check(
        asset=SILVER, partitions_def=partitions_def, blocking=True,
        additional_ins={"exchanges": AssetIn(key=EXCHANGES)},
        description="Production, consumption, import and export totals match the sums of their breakdowns (rounding tolerance).",
    )
    def silver_totals_match_breakdowns(context: AssetCheckExecutionContext, electricity_maps_energy: pl.DataFrame, exchanges: pl.DataFrame) -> AssetCheckResult:
        return report(context, totals_consistent(electricity_maps_energy, exchanges))


    @asset_check(
        asset=GOLD, partitions_def=partitions_def, blocking=True,
        description="No feature is null except where the history it needs is missing.",
    )
    def gold_features_null_only_without_history(context: AssetCheckExecutionContext, electricity_maps_ml_features: pl.DataFrame) -> AssetCheckResult:
        return report(context, features_null_only_without_history(electricity_maps_ml_features))


    @asset_check(
        asset=GOLD, partitions_def=partitions_def, blocking=True,
        description="lag_<col>_1h of row t equals <col> at t - 1 h in the same zone (not the previous row).",
    )
    def gold_lag_equals_previous_hour(context: AssetCheckExecutionContext, electricity_maps_ml_features: pl.DataFrame) -> AssetCheckResult:
        return report(context, lag_equals_previous_hour(electricity_maps_ml_features))

    return [bronze_latest_answers_usable, silver_both_feeds_present, silver_unique_zone_hour, silver_datetimes_on_the_hour, silver_carbon_intensity_plausible, silver_totals_match_breakdowns, gold_features_null_only_without_history, gold_lag_equals_previous_hour]


CHECKS = build_checks()
