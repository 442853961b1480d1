"""Checks of the NESO regional tables: pure rules (unit-tested) and the Dagster checks using them."""

import polars as pl
from dagster import AssetCheckResult, asset_check

from energy_assets.check_outcome import CheckOutcome
from energy_assets.neso import checks as neso_checks
from energy_assets.neso_regional import transforms
from energy_assets.neso_regional.assets import bronze_neso_regional_intensity, silver_neso_regional_intensity
from energy_assets.partitions import uk_settlement_days


def rule_latest_fetch_usable(bronze: pl.DataFrame) -> CheckOutcome:
    return neso_checks.rule_latest_fetch_usable(bronze, what="regional")


def rule_unique_and_complete(silver: pl.DataFrame) -> CheckOutcome:
    dup = silver.filter(pl.struct("period_start", "region_id").is_duplicated())
    incomplete = transforms.incomplete_periods(silver)
    return CheckOutcome(
        passed=dup.is_empty() and incomplete.is_empty() and silver.height > 0,
        checked="(period_start, region_id) is unique and every half-hour carries all 18 regions (1..17 and GB)",
        found=f"{silver['period_start'].n_unique()} half-hours, {dup.height} duplicate rows, {incomplete.height} half-hours without all 18 regions",
        details={"rows": silver.height, "duplicate_rows": dup.height, "incomplete_periods": incomplete.height},
        offending=incomplete if incomplete.height else dup.select("period_start", "region_id"),
    )


@asset_check(
    asset=bronze_neso_regional_intensity,
    partitions_def=uk_settlement_days,
    blocking=True,
    description="The newest regional response of each day is usable; an outage fails the run here, before silver.",
)
def bronze_neso_regional_latest_fetch_usable(bronze_neso_regional_intensity: pl.DataFrame) -> AssetCheckResult:
    return rule_latest_fetch_usable(bronze_neso_regional_intensity).result()


@asset_check(
    asset=silver_neso_regional_intensity,
    name="unique_and_all_regions",
    partitions_def=uk_settlement_days,
    blocking=True,
    description="Unique on (period_start, region_id), and every half-hour has all 18 regions.",
)
def silver_neso_regional_unique_and_complete(silver_neso_regional_intensity: pl.DataFrame) -> AssetCheckResult:
    return rule_unique_and_complete(silver_neso_regional_intensity).result()


NESO_REGIONAL_CHECKS = [bronze_neso_regional_latest_fetch_usable, silver_neso_regional_unique_and_complete]
