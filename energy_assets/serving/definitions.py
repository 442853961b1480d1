"""SQL serving: the DuckDB database file mirroring the lake."""

from dagster import Definitions

from energy_assets import settings
from energy_assets.serving.assets import ServingLake, serving_duckdb_database, serving_duckdb_resource

defs = Definitions(
    assets=[serving_duckdb_database],
    resources={
        "serving_duckdb": serving_duckdb_resource(),
        "serving_lake": ServingLake(root_uri=settings.lake_uri()),
    },
)
