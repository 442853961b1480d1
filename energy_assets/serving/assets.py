"""The SQL serving asset: a DuckDB database file with every lake table, kept up to date by Dagster."""

from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    ConfigurableResource,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_duckdb import DuckDBResource
from pydantic import Field

from energy_assets import settings
from energy_assets.lake.io_manager import lake_root, storage_options_from_env
from energy_assets.serving import catalog

DEFAULT_DUCKDB_PATH = str(settings.DATA_DIR / "energy.duckdb")
# Files written by DuckDB 2.x are unreadable by older readers (the duckdb-cli 1.5 on PyPI, most BI drivers)
# unless written in an older storage format.
STORAGE_COMPATIBILITY_VERSION = "v1.0.0"

class ServingLake(ConfigurableResource):
    """Where the lake the serving database mirrors lives (the IO manager's root)."""

    root_uri: str = Field(default="", description="Root of the Delta lake; empty: ENERGY_LAKE_URI when the run starts.")


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


def build_serving_asset(deps: Sequence[AssetKey]):
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
            "Query with `duckdb data/energy.duckdb` or any BI tool; no Python or DuckDB extension needed."
        ),
    )
    def serving_duckdb_database(
        context: AssetExecutionContext, serving_duckdb: DuckDBResource, serving_lake: ServingLake
    ) -> MaterializeResult:
        candidates = []
        try:
            keys = context.repository_def.asset_graph.get_all_asset_keys()
            candidates = [tuple(k.path) for k in keys if len(k.path) == 2]
        except Exception:  # noqa: BLE001 - candidates only matter for object-store lakes
            candidates = []
        with serving_duckdb.get_connection() as con:
            report = catalog.sync_database(con, lake_root(serving_lake.root_uri), storage_options_from_env(), candidates)
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
            }
        )

    return serving_duckdb_database


