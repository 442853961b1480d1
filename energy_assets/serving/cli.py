"""`energy-assets show` and `energy-assets sql`: look at the lake from the terminal.

    energy-assets show silver/neso_carbon_intensity --limit 20 --where "actual_gco2_per_kwh > 200"
    energy-assets sql "select date, sum(total_emissions_kgco2) from presentation.carbon_per_product_per_day group by 1"

Both read the lake directly (the lake settings, or `--lake`): an in-memory
DuckDB with one view per Delta table over its current snapshot (delta-rs), so results are always current and
need no sync. On an object store (which delta-rs cannot list) the tables are the code location's. `sql --db FILE`
queries the serving database file instead (read-only). Output is a table, or `--format csv|json`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import duckdb
import polars as pl

from energy_assets import settings
from energy_assets.lake.store import Lake, LakeTableNotFound
from energy_assets.serving import catalog

FORMATS = ("table", "csv", "json")


def _print(df: pl.DataFrame, fmt: str, out, max_rows: int | None = None) -> None:
    if fmt == "csv":
        out.write(df.write_csv())
    elif fmt == "json":
        out.write(df.write_ndjson())
    else:
        rows = max_rows if max_rows is not None else df.height
        with pl.Config(tbl_rows=max(rows, 1), tbl_cols=-1, fmt_str_lengths=48, tbl_width_chars=240, tbl_hide_dataframe_shape=False):
            print(df, file=out)


def default_order(columns: Sequence[str], partition_columns: Sequence[str]) -> str:
    """The ORDER BY of `show` without `--order-by`: the table's Delta partition columns (its days, zones), then
    every other column in table order (keys come first in every table), so the rows print in a stable order."""
    ordered = [c for c in partition_columns if c in columns] + [c for c in columns if c not in partition_columns]
    return ", ".join(f'"{c}"' for c in ordered)


def show(argv: Sequence[str] | None = None, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(prog="energy-assets show", description="Print rows of one lake table.")
    parser.add_argument("table", help="layer/table, e.g. silver/neso_carbon_intensity")
    parser.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    parser.add_argument("--where", default=None, help="SQL condition, e.g. \"settlement_date = '2021-03-28'\"")
    parser.add_argument("--order-by", default=None, help="SQL ORDER BY list (default: the partition columns, then every column in table order)")
    parser.add_argument("--columns", default=None, help="comma-separated columns (default all)")
    parser.add_argument("--lake", default=None, help=f"lake root (default {settings.LAKE_URI_VARIABLE} or data/lake)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    args = parser.parse_args(argv)
    if args.limit < 0:
        parser.error("--limit must be 0 or more")
    lake = Lake.from_settings(args.lake)
    try:
        table = lake.find(args.table)
    except LakeTableNotFound as exc:
        print(f"error: {exc}", file=err)
        return 2
    con = duckdb.connect()
    try:
        dataset, version = catalog.current_dataset(lake, table)
        con.register("t", dataset)
        columns = args.columns or "*"
        sql = f"SELECT {columns} FROM t"
        if args.where:
            sql += f" WHERE {args.where}"
        total = con.execute("SELECT count(*) FROM t" + (f" WHERE {args.where}" if args.where else "")).fetchall()[0][0]
        delta = lake.open(table.name)
        partition_columns = list(delta.metadata().partition_columns) if delta is not None else []
        sql += f" ORDER BY {args.order_by or default_order(dataset.schema.names, partition_columns)}"
        sql += f" LIMIT {args.limit}"
        df = con.sql(sql).pl()
    except duckdb.Error as exc:
        print(f"error: {table.name}: {str(exc).splitlines()[0]}", file=err)
        return 1
    finally:
        con.close()
    if args.format == "table":
        print(f"{table.name} (Delta version {version}, {total} matching rows, showing {df.height})", file=out)
    _print(df, args.format, out)
    return 0


def sql(argv: Sequence[str] | None = None, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="energy-assets sql",
        description="Run SQL over the lake: every Delta table is a view <layer>.<table> (raw, bronze, silver, gold, presentation).",
    )
    parser.add_argument("query", help='e.g. "select count(*) from silver.neso_carbon_intensity"')
    parser.add_argument("--lake", default=None, help=f"lake root (default {settings.LAKE_URI_VARIABLE} or data/lake)")
    parser.add_argument("--db", default=None, help="query this DuckDB file (the serving database) instead of the lake")
    parser.add_argument("--max-rows", type=int, default=100, help="rows printed in table format (default 100)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    args = parser.parse_args(argv)
    try:
        if args.db:
            con = duckdb.connect(args.db, read_only=True)
        else:
            con = duckdb.connect()
            lake = Lake.from_settings(args.lake)
            catalog.register_views(con, lake)
    except duckdb.Error as exc:
        print(f"error: cannot open {args.db or 'the lake'}: {str(exc).splitlines()[0]}", file=err)
        return 1
    try:
        relation = con.sql(args.query)
        df = relation.pl() if relation is not None else pl.DataFrame()
    except duckdb.Error as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=err)
        return 1
    finally:
        con.close()
    if args.format == "table" and df.height > args.max_rows:
        print(f"({df.height} rows, showing {args.max_rows}; use --max-rows or --format csv for all)", file=out)
        df = df.head(args.max_rows)
    _print(df, args.format, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`energy-assets-serving show ...` / `... sql ...` (the lead wires `show` and `sql` as subcommands)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("show", "sql"):
        print("usage: show <layer>/<table> [--limit N] [--where SQL] | sql \"select ...\"", file=sys.stderr)
        return 2
    return show(argv[1:]) if argv[0] == "show" else sql(argv[1:])


def show_main(argv: list[str]) -> int:
    """Entry point for `energy-assets show`."""
    return show(argv)


def sql_main(argv: list[str]) -> int:
    """Entry point for `energy-assets sql`."""
    return sql(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
