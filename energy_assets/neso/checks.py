"""Asset checks of the NESO domain: pure rule functions (unit-tested) and the Dagster checks using them.

Blocking on silver: unique periods, contiguous half-hours, complete days, plausible values, allowed index,
30-minute periods; regional: unique (period, region) and all 18 regions. Blocking on the national and
regional intensity bronze: the newest fetch of each day is usable (`energy_assets.bronze.rule_latest_fetch_usable`),
so an outage fails the run before silver and gold are built. The generation-mix bronze check runs the same
rule with ERROR severity but does NOT block: the mix is auxiliary (`energy_assets.bronze.AUXILIARY_RULE`),
and a failed blocking check would skip the intensity features too. Non-blocking: share of flagged values,
freshness of the current day, half-hours of gold without a generation mix (WARN).
"""

import datetime as dt

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSpec, AssetIn, asset_check, multi_asset_check

from energy_assets import bronze
from energy_assets.check_outcome import CheckOutcome
from energy_assets.range_checks import report
from energy_assets.neso import regional_transforms, transforms
from energy_assets.neso.assets import (
    QUARANTINE_KEY,
    SILVER_INTENSITY_KEY,
    bronze_neso_carbon_intensity,
    bronze_neso_generation_mix,
    bronze_neso_regional_intensity,
    gold_neso_carbon_intensity_features,
    silver_neso_regional_intensity,
)
from energy_assets.neso.client import UK, UTC, periods_in_uk_day, uk_day_bounds_utc
from energy_assets.partitions import uk_settlement_days

MAX_FLAGGED_SHARE = 0.05
FRESHNESS_LIMIT = dt.timedelta(hours=1)


# ------------------------------------------------------------------------------------------- rules
def rule_latest_fetch_usable(bronze_rows: pl.DataFrame | pl.LazyFrame, what: str) -> CheckOutcome:
    """The one bronze rule (`energy_assets.bronze`) on a NESO bronze table, partitioned by settlement day."""
    return bronze.rule_latest_fetch_usable(bronze_rows, transforms.BRONZE_PARTITION, what)


def rule_unique_periods(silver: pl.DataFrame) -> CheckOutcome:
    dup = silver.filter(pl.col("period_start").is_duplicated()).select("period_start", "settlement_date", "fetched_at")
    return CheckOutcome(
        passed=dup.is_empty(),
        checked="period_start is unique",
        found=f"{dup.height} rows share a period_start with another row among {silver.height}",
        details={"rows": silver.height, "duplicate_rows": dup.height},
        offending=dup,
    )


def rule_contiguous(silver: pl.DataFrame) -> CheckOutcome:
    s = silver.select("period_start", "settlement_date").sort("period_start")
    gaps = s.with_columns(pl.col("period_start").diff().alias("step")).filter(
        pl.col("step").is_not_null() & (pl.col("step") != pl.duration(minutes=30))
    )
    return CheckOutcome(
        passed=gaps.is_empty(),
        checked="consecutive period_starts are exactly 30 minutes apart",
        found=f"{gaps.height} gaps or overlaps among {s.height} half-hours",
        details={"rows": s.height, "breaks": gaps.height},
        offending=gaps.with_columns(pl.col("step").dt.total_minutes().alias("step_minutes")).drop("step"),
    )


def rule_complete_days(silver: pl.DataFrame, expected_days: list[dt.date] = (), now: dt.datetime | None = None) -> CheckOutcome:
    """A complete day (over by the newest fetch) has all its 46/48/50 periods; the current day every
    period that has ended by the newest fetch. Days of `expected_days` that have begun by `now` and have
    no row at all fail too."""
    now = now or dt.datetime.now(UTC)
    present_days = set(silver["settlement_date"].to_list())
    absent = [d for d in expected_days if d not in present_days and uk_day_bounds_utc(d)[0] <= now]
    per_day = silver.group_by("settlement_date").agg(
        pl.len().alias("present"),
        pl.col("fetched_at").max().alias("latest_fetch"),
        (pl.col("period_end") <= pl.col("fetched_at").max()).sum().alias("ended_present"),
        pl.col("settlement_period").max().alias("max_sp"),
    )
    days = per_day["settlement_date"].to_list()
    bounds = {d: uk_day_bounds_utc(d) for d in days}
    expected = pl.DataFrame(
        {
            "settlement_date": days,
            "day_periods": [periods_in_uk_day(d) for d in days],
            "day_start": [bounds[d][0] for d in days],
            "day_end": [bounds[d][1] for d in days],
        },
        schema={"settlement_date": pl.Date, "day_periods": pl.UInt32, "day_start": pl.Datetime("us", "UTC"), "day_end": pl.Datetime("us", "UTC")},
    )
    joined = per_day.join(expected, on="settlement_date").with_columns(
        (pl.col("day_end") <= pl.col("latest_fetch")).alias("complete_day"),
        ((pl.min_horizontal("latest_fetch", "day_end") - pl.col("day_start")).dt.total_minutes() // 30).alias("ended_expected"),
    )
    bad = joined.filter(
        pl.when(pl.col("complete_day"))
        .then(pl.col("present") != pl.col("day_periods"))
        .otherwise(pl.col("ended_present") < pl.col("ended_expected"))
    ).select("settlement_date", "complete_day", "present", "day_periods", "ended_present", "ended_expected")
    complete = int(joined["complete_day"].sum()) if joined.height else 0
    return CheckOutcome(
        passed=bad.is_empty() and not absent,
        checked="complete days hold all 46/48/50 settlement periods; the current day every period ended by the newest fetch; no begun day is absent",
        found=f"{bad.height} of {joined.height} day(s) incomplete ({complete} complete days checked in full); {len(absent)} begun day(s) absent"
        + (f": {', '.join(map(str, absent))}" if absent else ""),
        details={"days": joined.height, "complete_days": complete, "incomplete_days": bad.height, "absent_days": len(absent)},
        offending=bad,
    )


def rule_plausible_values(silver: pl.DataFrame) -> CheckOutcome:
    lo, hi = transforms.PLAUSIBLE_GCO2_PER_KWH
    bad = silver.filter(
        ~pl.col("forecast_gco2_per_kwh").is_between(lo, hi).fill_null(False)
        | (pl.col("actual_gco2_per_kwh").is_not_null() & ~pl.col("actual_gco2_per_kwh").is_between(lo, hi))
    ).select("period_start", "forecast_gco2_per_kwh", "actual_gco2_per_kwh")
    return CheckOutcome(
        passed=bad.is_empty(),
        checked=f"forecast present and within {lo}..{hi} gCO2/kWh; actual null or within {lo}..{hi} (0 is flagged, not failed)",
        found=f"{bad.height} of {silver.height} rows outside the plausible range",
        details={"rows": silver.height, "implausible_rows": bad.height},
        offending=bad,
    )


def rule_index_allowed(silver: pl.DataFrame) -> CheckOutcome:
    bad = silver.filter(~pl.col("intensity_index").is_in(list(transforms.ALLOWED_INDEX)).fill_null(False) | pl.col("intensity_index").is_null())
    return CheckOutcome(
        passed=bad.is_empty(),
        checked="intensity_index is one of " + ", ".join(transforms.ALLOWED_INDEX),
        found=f"{bad.height} of {silver.height} rows with another index",
        details={"rows": silver.height, "bad_index_rows": bad.height},
        offending=bad.select("period_start", "intensity_index"),
    )


def rule_period_length(silver: pl.DataFrame) -> CheckOutcome:
    bad = silver.filter((pl.col("period_end") - pl.col("period_start")) != pl.duration(minutes=30))
    return CheckOutcome(
        passed=bad.is_empty(),
        checked="period_end - period_start is 30 minutes",
        found=f"{bad.height} of {silver.height} periods of another length",
        details={"rows": silver.height, "bad_length_rows": bad.height},
        offending=bad.select("period_start", "period_end"),
    )


def rule_flagged_share(silver: pl.DataFrame, max_share: float = MAX_FLAGGED_SHARE) -> CheckOutcome:
    counts = silver.group_by("data_quality_flag").len().drop_nulls()
    flagged = int(counts["len"].sum()) if counts.height else 0
    share = flagged / silver.height if silver.height else 0.0
    return CheckOutcome(
        passed=share <= max_share,
        checked=f"share of half-hours with a data_quality_flag is at most {max_share:.0%}",
        found=f"{flagged} of {silver.height} half-hours flagged ({share:.1%})",
        details={"rows": silver.height, "flagged": flagged, **{f"flag_{r['data_quality_flag']}": r["len"] for r in counts.iter_rows(named=True)}},
        offending=silver.filter(pl.col("data_quality_flag").is_not_null()).select("period_start", "actual_gco2_per_kwh", "data_quality_flag"),
    )


def rule_fresh(silver: pl.DataFrame, days: list[dt.date], now: dt.datetime, limit: dt.timedelta = FRESHNESS_LIMIT) -> CheckOutcome:
    """Today's silver is fresh when it was fetched within `limit` and its latest half-hour with an actual
    ended within `limit` (in the first hour of the day, before any actual can exist, the fetch alone counts)."""
    today = now.astimezone(UK).date()
    checked = f"today's silver was fetched within {limit} and its latest half-hour with an actual ended within {limit}"
    if today not in days:
        return CheckOutcome(
            passed=True,
            checked=checked,
            found=f"not applicable: the partition(s) checked do not include today ({today})",
            details={"applicable": "no"},
        )
    rows = silver.filter(pl.col("settlement_date") == today)
    if rows.is_empty():
        return CheckOutcome(False, checked, f"no silver rows for today ({today})", {"applicable": "yes"})
    fetch_age = now - rows["fetched_at"].max()
    latest_actual = rows.filter(pl.col("actual_gco2_per_kwh").is_not_null())["period_end"].max()
    if latest_actual is None:
        actual_ok = uk_day_bounds_utc(today)[0] >= now - limit  # no period of today can have an actual yet
        actual_note = "no actual yet" + ("" if actual_ok else " although the day began over an hour ago")
        lag_minutes = -1
    else:
        actual_ok = now - latest_actual <= limit
        lag_minutes = int((now - latest_actual).total_seconds() // 60)
        actual_note = f"latest actual for the period ending {latest_actual:%Y-%m-%d %H:%MZ}, {lag_minutes} min ago"
    fetch_minutes = int(fetch_age.total_seconds() // 60)
    return CheckOutcome(
        passed=actual_ok and fetch_age <= limit,
        checked=checked,
        found=f"{actual_note}; last fetched {fetch_minutes} min ago",
        details={"applicable": "yes", "lag_minutes": lag_minutes, "fetch_age_minutes": fetch_minutes},
    )


def rule_regional_unique_and_complete(silver: pl.DataFrame) -> CheckOutcome:
    dup = silver.filter(pl.struct("period_start", "region_id").is_duplicated())
    incomplete = regional_transforms.incomplete_periods(silver)
    return CheckOutcome(
        passed=dup.is_empty() and incomplete.is_empty() and silver.height > 0,
        checked="(period_start, region_id) is unique and every half-hour carries all 18 regions (1..17 and GB)",
        found=f"{silver['period_start'].n_unique()} half-hours, {dup.height} duplicate rows, {incomplete.height} half-hours without all 18 regions",
        details={"rows": silver.height, "duplicate_rows": dup.height, "incomplete_periods": incomplete.height},
        offending=incomplete if incomplete.height else dup.select("period_start", "region_id"),
    )


def rule_mix_present(features: pl.DataFrame) -> CheckOutcome:
    """Non-blocking (WARN): the half-hours of gold built without a generation mix, counted by reason. Half-hours
    that had not started when the mix was fetched are expected to have none and are only reported."""
    not_yet = features.filter(pl.col("mix_missing_reason") == transforms.MIX_NOT_YET).height
    missing = features.filter(pl.col("mix_missing_reason").is_not_null() & (pl.col("mix_missing_reason") != transforms.MIX_NOT_YET))
    reasons = dict(missing.group_by("mix_missing_reason").len().sort("mix_missing_reason").iter_rows()) if missing.height else {}
    days = missing["settlement_date"].n_unique() if missing.height else 0
    return CheckOutcome(
        passed=missing.is_empty(),
        checked="every half-hour of the intensity features that had started when the generation mix was fetched has a mix (low_carbon_share_fraction set)",
        found=f"{missing.height} of {features.height} half-hour(s) on {days} day(s) without a generation mix"
        + (f": {reasons}" if reasons else "")
        + f"; {not_yet} half-hour(s) not started when the mix was fetched",
        details={"periods": features.height, "periods_without_mix": missing.height, "days_without_mix": days, "periods_not_started": not_yet},
        offending=missing.select("settlement_date", "period_start", "mix_missing_reason"),
        warn_only=True,
    )


def rule_quarantine_empty(quarantine: pl.DataFrame) -> CheckOutcome:
    reasons = dict(quarantine.group_by("reason").len().iter_rows()) if quarantine.height else {}
    return CheckOutcome(
        passed=quarantine.is_empty(),
        checked="no intensity record of a usable payload was quarantined",
        found=f"{quarantine.height} record(s) quarantined" + (f": {reasons}" if reasons else ""),
        details={"quarantined": quarantine.height},
        offending=quarantine.select("settlement_date", "record_from", "reason", "request_url"),
    )


# ------------------------------------------------------------------------------------------- checks
def check_days(context: AssetCheckExecutionContext) -> list[dt.date]:
    op = context.op_execution_context
    if not op.has_partition_key and not op.has_partition_key_range:
        return []
    window = op.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


@asset_check(asset=bronze_neso_carbon_intensity, partitions_def=uk_settlement_days, blocking=True, description="The newest intensity response of each day is usable; an outage fails the run here, before silver and gold.")
def bronze_neso_carbon_intensity_latest_fetch_usable(context: AssetCheckExecutionContext, bronze_neso_carbon_intensity: pl.LazyFrame) -> AssetCheckResult:  # scanned: the bodies are not read
    return report(context, rule_latest_fetch_usable(bronze_neso_carbon_intensity, "bronze/neso_carbon_intensity"))


@asset_check(
    asset=bronze_neso_generation_mix,
    partitions_def=uk_settlement_days,
    blocking=False,
    description=(
        "The newest generation-mix response of each day is usable; fails (ERROR) on an outage, without blocking: "
        "the mix is auxiliary, silver reads only usable answers and gold is built without it (mix_missing_reason)."
    ),
)
def bronze_neso_generation_mix_latest_fetch_usable(context: AssetCheckExecutionContext, bronze_neso_generation_mix: pl.LazyFrame) -> AssetCheckResult:  # scanned: the bodies are not read
    return report(context, rule_latest_fetch_usable(bronze_neso_generation_mix, "bronze/neso_generation_mix"))


@asset_check(
    asset=bronze_neso_regional_intensity,
    partitions_def=uk_settlement_days,
    blocking=True,
    description="The newest regional response of each day is usable; an outage fails the run here, before silver.",
)
def bronze_neso_regional_latest_fetch_usable(context: AssetCheckExecutionContext, bronze_neso_regional_intensity: pl.LazyFrame) -> AssetCheckResult:  # scanned: the bodies are not read
    return report(context, rule_latest_fetch_usable(bronze_neso_regional_intensity, "bronze/neso_regional_intensity"))


@asset_check(
    asset=silver_neso_regional_intensity,
    name="unique_and_all_regions",
    partitions_def=uk_settlement_days,
    blocking=True,
    description="Unique on (period_start, region_id), and every half-hour has all 18 regions.",
)
def silver_neso_regional_unique_and_complete(context: AssetCheckExecutionContext, silver_neso_regional_intensity: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_regional_unique_and_complete(silver_neso_regional_intensity))


@asset_check(
    asset=gold_neso_carbon_intensity_features,
    name="generation_mix_present",
    partitions_def=uk_settlement_days,
    blocking=False,
    description="Counts the half-hours built without a generation mix (WARN): the gap is visible, the intensity features are not held back.",
)
def gold_mix_present(context: AssetCheckExecutionContext, gold_neso_carbon_intensity_features: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_mix_present(gold_neso_carbon_intensity_features))


# The national intensity silver checks: one op evaluates them all over one read of the table (a step costs more
# than most of these rules: in a year's single-run backfill the eight steps took 1.17 s, the one step 0.93 s).
# Each is still its own check in the UI and in every run; any subset can be run.
# (name, rule of (context, silver), blocking, description)
SILVER_RULES = [
    ("unique_periods", lambda ctx, silver: rule_unique_periods(silver), True, "No two rows share a period_start."),
    ("contiguous_half_hours", lambda ctx, silver: rule_contiguous(silver), True, "Half-hours follow each other without gaps or overlaps."),
    ("complete_days", lambda ctx, silver: rule_complete_days(silver, check_days(ctx)), True,
     "Every settled period of a complete day is present (46/48/50); no day of the run that has begun is absent."),
    ("plausible_values", lambda ctx, silver: rule_plausible_values(silver), True, "Forecast and actual lie within 0..1000 gCO2/kWh."),
    ("index_allowed", lambda ctx, silver: rule_index_allowed(silver), True, "intensity_index is one of the API's five values."),
    ("period_length_30_min", lambda ctx, silver: rule_period_length(silver), True, "Every period lasts 30 minutes."),
    ("flagged_values", lambda ctx, silver: rule_flagged_share(silver), False, "Counts flagged values (actual 0, actual missing); fails above 5 %."),
    ("fresh_while_polling", lambda ctx, silver: rule_fresh(silver, check_days(ctx), dt.datetime.now(UTC)), False,
     "For today's partition: fetched within the last hour and the latest half-hour with an actual ended no more than 1 h ago (holds while the sensor runs)."),
]  # fmt: skip


@multi_asset_check(
    name="silver_neso_carbon_intensity_checks",
    description="The national intensity silver checks, evaluated in one step over one read of the table.",
    specs=[
        AssetCheckSpec(name, asset=SILVER_INTENSITY_KEY, blocking=blocking, partitions_def=uk_settlement_days, description=description)
        for name, _rule, blocking, description in SILVER_RULES
    ],
    ins={"silver_neso_carbon_intensity": AssetIn(key=SILVER_INTENSITY_KEY)},
    can_subset=True,
)
def silver_intensity_checks(context: AssetCheckExecutionContext, silver_neso_carbon_intensity: pl.DataFrame):
    selected = {key.name for key in context.selected_asset_check_keys}
    raised: list[tuple[str, Exception]] = []
    for name, rule, _blocking, _description in SILVER_RULES:
        if name not in selected:
            continue
        try:
            outcome = rule(context, silver_neso_carbon_intensity)
        except Exception as exc:  # noqa: BLE001 - re-raised below, once the other checks are recorded
            raised.append((name, exc))
            continue
        yield report(context, outcome, asset_key=SILVER_INTENSITY_KEY, check_name=name)
    if raised:  # one rule's error does not hide the others' results, and fails the step naming it
        names = ", ".join(name for name, _ in raised)
        raise RuntimeError(f"silver/neso_carbon_intensity check(s) {names} raised: {raised[0][1]!r}") from raised[0][1]


@asset_check(
    asset=QUARANTINE_KEY,
    name="no_quarantined_records",
    partitions_def=uk_settlement_days,
    blocking=False,
    description="Counts quarantined intensity records (with their reasons); fails when there are any. The gap they leave in silver fails its blocking completeness check.",
)
def quarantine_empty(context: AssetCheckExecutionContext, silver_neso_carbon_intensity_quarantine: pl.DataFrame) -> AssetCheckResult:
    return report(context, rule_quarantine_empty(silver_neso_carbon_intensity_quarantine))


NESO_CHECKS = [
    quarantine_empty,
    bronze_neso_carbon_intensity_latest_fetch_usable,
    bronze_neso_generation_mix_latest_fetch_usable,
    silver_intensity_checks,
    gold_mix_present,
]

NESO_REGIONAL_CHECKS = [bronze_neso_regional_latest_fetch_usable, silver_neso_regional_unique_and_complete]
