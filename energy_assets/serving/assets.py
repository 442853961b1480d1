"""The SQL serving asset: a DuckDB database file with every lake table, kept up to date by Dagster."""

from collections.abc import Mapping, Sequence

from dagster import (
    AssetKey,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_duckdb import DuckDBResource

from energy_assets import settings
from energy_assets.lake.resource import LakeResource
from energy_assets.serving import catalog

# Files written by DuckDB 2.x are unreadable by older readers (the duckdb-cli 1.5 on PyPI, most BI drivers)
# unless written in an older storage format.
STORAGE_COMPATIBILITY_VERSION = "v1.0.0"


def serving_duckdb_resource() -> DuckDBResource:
    return DuckDBResource(
        database=settings.env_var("ENERGY_DUCKDB_PATH"),
        connection_config={"storage_compatibility_version": STORAGE_COMPATIBILITY_VERSION},
    )


def refresh_when_any_table_changes() -> AutomationCondition:
    """Re-sync after any upstream partition is updated, once nothing upstream or here is running.

    Not `eager()`: for an unpartitioned asset over daily partitions its `any_deps_missing` is true as long as any
    historical day is missing, which would block the sync forever.
    """
    return (
        AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("any upstream table updated since the last sync")


def build_serving_asset(deps: Sequence[AssetKey], descriptions: Mapping[tuple[str, str], Mapping[str, str]] | None = None):
    """The serving asset over the lake tables `deps` (on an object store, those are the tables it can find:
    delta-rs cannot list a bucket; a local lake is listed from the file system, so any table there is copied).
    `descriptions` (`{(layer, table): {column: text}}`) become the tables' column comments."""
    known = [tuple(key.path) for key in deps]
    descriptions = dict(descriptions or {})

    @asset(
        key=["serving", "duckdb_database"],
        group_name="serving",
        kinds={"duckdb", "delta"},
        deps=list(deps),
        automation_condition=refresh_when_any_table_changes(),
        description=(
            "DuckDB database file (ENERGY_DUCKDB_PATH, default data/energy.duckdb) with one table per lake table in "
            "schemas raw, bronze, silver, gold and presentation (e.g. presentation.carbon_per_product_per_day), copied "
            "from each Delta table's current snapshot (delta-rs: only the files of the latest version, never removed "
            "ones). Tables whose Delta version did not change are skipped; main.lake_tables records the version copied. "
            "Every column carries its description as a column comment (`SELECT comment FROM duckdb_columns()`). "
            "Query with `duckdb data/energy.duckdb` or any BI tool; no Python or DuckDB extension needed."
        ),
    )
    def serving_duckdb_database(serving_duckdb: DuckDBResource, lake: LakeResource) -> MaterializeResult:
        with serving_duckdb.get_connection() as con:
            report = catalog.sync_database(con, lake.lake(), known, descriptions=descriptions)
            per_layer = con.execute(f"SELECT layer, count(*), sum(row_count) FROM {catalog.SYNC_TABLE} GROUP BY layer ORDER BY layer").fetchall()
        lines = ["| table | delta version | rows |", "|---|---|---|"] + [f"| {t} | {v} | {n} |" for t, v, n in report.copied]
        return MaterializeResult(
            metadata={
                "database": MetadataValue.path(str(serving_duckdb.database)),
                "dagster/uri": MetadataValue.path(str(serving_duckdb.database)),
                "tables": MetadataValue.int(report.tables),
                "tables_copied": MetadataValue.int(len(report.copied)),
                "tables_unchanged": MetadataValue.int(len(report.unchanged)),
                "tables_dropped": MetadataValue.text(", ".join(report.dropped) or "none"),
                "copied": MetadataValue.md("\n".join(lines) if report.copied else "nothing changed"),
                **{f"{layer}_tables": MetadataValue.int(int(n)) for layer, n, _ in per_layer},
                "rows_copied": MetadataValue.int(sum(n for _, _, n in report.copied)),
                "column_comments": MetadataValue.int(report.commented),
            }
        )

    return serving_duckdb_database


