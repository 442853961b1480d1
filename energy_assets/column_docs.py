"""Column descriptions: what each column of each lake table means, in which unit.

Each domain's `columns.py` holds one dict per table, `{column: (polars dtype, description)}`: the one source
of truth for that table's columns. It is used three ways:

- on the asset (or `AssetOut`) as definition metadata `dagster/column_schema` (`column_schema_metadata`), so
  the UI's Columns tab describes every column before anything ran;
- by the IO manager, which keeps these descriptions in the schema it reports with each materialisation;
- by the serving sync, which writes them as column comments into the DuckDB file
  (`COMMENT ON COLUMN layer.table.col IS '...'`; `duckdb_columns()` shows them).

`energy_assets_tests/test_columns.py` checks that every lake table of the code location describes exactly the
columns the demo writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl
from dagster import AssetKey, AssetsDefinition, TableColumn, TableSchema

from energy_assets.bronze import FETCH_COLUMNS

Columns = Mapping[str, tuple[pl.DataType | type[pl.DataType], str]]

COLUMN_SCHEMA = "dagster/column_schema"
UTC_TS = pl.Datetime("us", "UTC")
LOCAL_TS = pl.Datetime("us")  # wall-clock time in Europe/London, no zone attached


def dtype_name(dtype: pl.DataType | type[pl.DataType]) -> str:
    """The type as the IO manager reports it (`str` of the polars dtype), so the UI shows the same before and
    after a run."""
    return str(dtype() if isinstance(dtype, type) else dtype)


def table_schema(columns: Columns) -> TableSchema:
    return TableSchema(columns=[TableColumn(name=name, type=dtype_name(dtype), description=text) for name, (dtype, text) in columns.items()])


def column_schema_metadata(columns: Columns) -> dict[str, TableSchema]:
    """Definition metadata for an asset or `AssetOut`: `{"dagster/column_schema": TableSchema(...)}`."""
    return {COLUMN_SCHEMA: table_schema(columns)}


def descriptions_of(schema: object) -> dict[str, str]:
    """`{column: description}` of a `TableSchema` (or its metadata value); empty for anything else."""
    schema = getattr(schema, "schema", schema)
    if not isinstance(schema, TableSchema):
        return {}
    return {c.name: c.description for c in schema.columns if c.description}


def declared_descriptions(assets: Iterable[AssetsDefinition]) -> dict[AssetKey, dict[str, str]]:
    """`{asset key: {column: description}}` declared by `assets` (their specs' `dagster/column_schema`)."""
    found: dict[AssetKey, dict[str, str]] = {}
    for assets_def in assets:
        for spec in getattr(assets_def, "specs", []):
            described = descriptions_of((spec.metadata or {}).get(COLUMN_SCHEMA))
            if described:
                found[spec.key] = described
    return found


BRONZE_FETCH_DESCRIPTIONS = {
    "fetched_at": "UTC time of the latest fetch that returned this content (an identical refetch moves it forward: the newest fetch is what the API says now).",
    "request_url": "The request, without secrets (keys travel in headers, never in the URL).",
    "http_status": "HTTP status of the answer.",
    "body": "The answer verbatim (text); never rewritten or deleted.",
    "content_hash": "SHA-256 (hex) of body; with the partition columns and request_url it identifies one distinct answer.",
    "attempts": "Requests made for this answer (retries included).",
    "problem": "Null when the answer is usable; else why not (HTTP 500, {}, truncated JSON, NaN, no data).",
}


def bronze_columns(partition_columns: Columns, extra: Columns | None = None) -> dict:
    """The columns of the one bronze contract (`energy_assets.bronze.FETCH_COLUMNS`) after the table's partition
    columns, then the table's own `extra` columns."""
    return {
        **partition_columns,
        **{name: (dtype, BRONZE_FETCH_DESCRIPTIONS[name]) for name, dtype in FETCH_COLUMNS.items()},
        **(extra or {}),
    }
