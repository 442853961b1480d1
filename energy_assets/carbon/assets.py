"""Cross-domain carbon assets: the footprint of smart-meter consumption and its daily summaries.

All are partitioned by UK settlement day, like the smart-meter and NESO tables they join, and refresh
themselves (declarative automation) when either side changes for a day, past days included.
"""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, AutomationCondition, BackfillPolicy, MetadataValue, asset

from energy_assets.carbon import columns, transforms
from energy_assets.check_outcome import markdown_table
from energy_assets.column_docs import column_schema_metadata
from energy_assets.carbon.regions import unmapped_regions
from energy_assets.partitions import uk_settlement_days

GROUP = "carbon"
KINDS = {"delta", "polars"}


def refresh_any_day_when_inputs_change() -> AutomationCondition:
    """`eager()` without its latest-time-window restriction.

    `eager()` only looks at the latest partition (today). This variant requests *any* day whose upstream
    partitions were updated (a late smart-meter file for last week, a revised NESO day) or that became
    missing, once no dependency of that day is missing or in progress. Updates made by a run that also
    built this asset do not re-trigger it, and the very first evaluation requests nothing (no mass backfill).
    """
    return AutomationCondition.eager().without(AutomationCondition.in_latest_time_window()).with_label(
        "eager_any_day: a day's inputs changed (any day, not only the latest)"
    )


COMMON = dict(
    group_name=GROUP,
    kinds=KINDS,
    partitions_def=uk_settlement_days,
    backfill_policy=BackfillPolicy.single_run(),
    automation_condition=refresh_any_day_when_inputs_change(),
)


@asset(
    key_prefix="gold",
    name="smart_meter_carbon_footprint",
    ins={
        "readings": AssetIn(key=["silver", "smart_meter_readings"]),
        "national": AssetIn(key=["silver", "neso_carbon_intensity"]),
        "regional": AssetIn(key=["silver", "neso_regional_intensity"]),
    },
    metadata={"partition_expr": "settlement_date", **column_schema_metadata(columns.FOOTPRINT)},
    description=(
        "Carbon footprint per meterpoint and half-hour: consumption_kwh from silver/smart_meter_readings, the grid "
        "intensity used (intensity_gco2_per_kwh) and where it came from (intensity_source: the NESO regional forecast "
        "for the meterpoint's region when the region maps to a NESO region, else the national actual, else the "
        "national forecast), its intensity_index, and emissions_gco2 = consumption_kwh x intensity. One row per "
        "reading; regions with no NESO region are reported in metadata and by a check."
    ),
    **COMMON,
)
def gold_smart_meter_carbon_footprint(
    context: AssetExecutionContext, readings: pl.DataFrame, national: pl.DataFrame, regional: pl.DataFrame
) -> pl.DataFrame:
    footprint = transforms.build_footprint(readings, national, regional)
    unmapped = unmapped_regions(readings)
    counts = transforms.source_counts(footprint)
    context.add_output_metadata(
        {
            "readings_in": MetadataValue.int(readings.height),
            "rows_out": MetadataValue.int(footprint.height),
            **{f"readings_{source}": MetadataValue.int(n) for source, n in counts.items()},
            "unmapped_regions": MetadataValue.text(", ".join(str(r) for r in unmapped["region"].to_list()) or "none"),
            "unmapped_region_readings": MetadataValue.int(int(unmapped["readings"].sum()) if unmapped.height else 0),
            "unmapped_region_table": MetadataValue.md(markdown_table(unmapped) if unmapped.height else "every region maps"),
            "total_consumption_kwh": MetadataValue.float(float(footprint["consumption_kwh"].sum() or 0.0)),
            "total_emissions_kgco2": MetadataValue.float(float(footprint["emissions_gco2"].sum() or 0.0) / 1000.0),
        }
    )
    return footprint


def _summary_metadata(context: AssetExecutionContext, table: pl.DataFrame) -> None:
    context.add_output_metadata(
        {
            "rows": MetadataValue.int(table.height),
            "total_consumption_kwh": MetadataValue.float(float(table["total_consumption_kwh"].sum() or 0.0)),
            "total_emissions_kgco2": MetadataValue.float(float(table["total_emissions_kgco2"].sum() or 0.0)),
        }
    )


@asset(
    key_prefix="presentation",
    name="carbon_per_product_per_day",
    ins={"footprint": AssetIn(key=["gold", "smart_meter_carbon_footprint"])},
    metadata={"partition_expr": "date", **column_schema_metadata(columns.CARBON_PER_PRODUCT_PER_DAY)},
    description=(
        "Per UK day and product (display name, is_variable) so variable and fixed tariffs can be compared: "
        "meterpoint_count, reading_count, total_consumption_kwh, total_emissions_kgco2, consumption-weighted "
        "avg_intensity_gco2_per_kwh, low_carbon_consumption_fraction (0..1: fraction of kWh in 'low'/'very low' "
        "half-hours), regional_intensity_consumption_fraction (0..1: fraction of kWh priced at the regional forecast) "
        "and consumption_without_intensity_kwh. Readings without an agreement form the row with a null product."
    ),
    **COMMON,
)
def presentation_carbon_per_product_per_day(context: AssetExecutionContext, footprint: pl.DataFrame) -> pl.DataFrame:
    table = transforms.carbon_per_product_per_day(footprint)
    _summary_metadata(context, table)
    return table


@asset(
    key_prefix="presentation",
    name="carbon_per_region_per_day",
    ins={"footprint": AssetIn(key=["gold", "smart_meter_carbon_footprint"])},
    metadata={"partition_expr": "date", **column_schema_metadata(columns.CARBON_PER_REGION_PER_DAY)},
    description=(
        "Per UK day and smart-meter region (with the NESO region it maps to): the same measures as "
        "presentation/carbon_per_product_per_day. An unmapped region shows a null neso_region_id."
    ),
    **COMMON,
)
def presentation_carbon_per_region_per_day(context: AssetExecutionContext, footprint: pl.DataFrame) -> pl.DataFrame:
    table = transforms.carbon_per_region_per_day(footprint)
    _summary_metadata(context, table)
    return table


CARBON_ASSETS = [
    gold_smart_meter_carbon_footprint,
    presentation_carbon_per_product_per_day,
    presentation_carbon_per_region_per_day,
]
