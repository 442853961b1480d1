"""The smart-meter batch taken apart (issue 16): what the plain script also does, what the lakehouse adds, and the
typed-raw alternative the issue proposes, each timed in one worker process without Dagster.

The pieces are the product's own functions (`source`, `ingestion`, `silver`, `presentation`, the checks' rules, the
lake's write engine) run in the order a batch runs them, on the same files. Phase names start with what they are:

- `data work:` what the plain script does too (parse, silver, its write, the presentation aggregates and their writes);
- `lakehouse:` what the script does not do (content hashes and, in the same read, the search for numbers DuckDB
  rewrites, raw rows and the ingestion plan, the raw write and its read back, the quarantine write, presentation's
  read of silver, the ten checks);
- `alternative:` the typed raw of issue 16 ("one pass from bytes to typed columns"): the parse with typed cells and
  the delivered text kept only where the typed value does not give it back, the raw write with typed cells, and the
  part of silver that parses text cells (what typed raw would save there). The alternative's raw is verified to
  reproduce every delivered cell (`typed_raw_faithful`) before its times mean anything.

Dagster's bookkeeping is not here: the batch scenario's floor run measures it in the same invocation.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from benchmarks.harness import Phases
from benchmarks.tasks import register

# The alternative parse: the product's SQL, with typed cells and the delivered text only where the typed value does not
# give it back exactly (DuckDB's own formatting of the value).
_LOCAL = "TRY_STRPTIME(interval_start, '%Y-%m-%d %H:%M:%S')"
_KWH = "TRY_CAST(consumption_delta AS DOUBLE)"
TYPED_PARSE_SQL = f"""
SELECT file_name, source_row, meterpoint_id, bad_layout,
       {_LOCAL} AS interval_start_local,
       CASE WHEN strftime({_LOCAL}, '%Y-%m-%d %H:%M:%S') IS DISTINCT FROM interval_start THEN interval_start END AS interval_start_text,
       {_KWH} AS consumption_kwh,
       CASE WHEN CAST({_KWH} AS VARCHAR) IS DISTINCT FROM consumption_delta THEN consumption_delta END AS consumption_text
FROM ({{parse}})
"""

# The delivered cells rebuilt from the typed raw, to compare with the text parse.
REBUILT_SQL = f"""
SELECT file_name, source_row,
       coalesce(interval_start_text, strftime(interval_start_local, '%Y-%m-%d %H:%M:%S')) AS interval_start,
       coalesce(consumption_text, CAST(consumption_kwh AS VARCHAR)) AS consumption_delta
FROM typed
"""


# A file with numbers DuckDB does not give back as written (`source.INEXACT_NUMBER`): its cells as written (the
# product's parse of that file) decide which text the typed raw keeps.
AS_WRITTEN_SQL = f"""
SELECT t.file_name, t.source_row, coalesce(e.meterpoint_id, t.meterpoint_id) AS meterpoint_id, t.bad_layout, t.interval_start_local,
       CASE WHEN e.file_name IS NULL THEN t.interval_start_text
            WHEN strftime(t.interval_start_local, '%Y-%m-%d %H:%M:%S') IS DISTINCT FROM e.interval_start THEN e.interval_start END
         AS interval_start_text,
       t.consumption_kwh,
       CASE WHEN e.file_name IS NULL THEN t.consumption_text
            WHEN CAST(t.consumption_kwh AS VARCHAR) IS DISTINCT FROM e.consumption_delta THEN e.consumption_delta END
         AS consumption_text
FROM typed t LEFT JOIN exact e ON t.file_name = e.file_name AND t.source_row = e.source_row
ORDER BY t.file_name, t.source_row
"""


def typed_parse(con, paths: list[str], inexact: list[str] | None = None):
    """The alternative parse of the files at `paths`: the product's SQL with typed cells (`TYPED_PARSE_SQL`), as
    faithful as the product's parse: the files with numbers DuckDB rewrites (`inexact`, names, as the hashing read
    finds them; searched here when not given) take their text cells from the product's parse of those files."""
    from energy_assets.smart_meter import source

    parse = source._PARSE_SQL.replace("{max_object_size}", str(source.max_object_size(paths)))
    typed = con.sql(TYPED_PARSE_SQL.format(parse=parse), params={"files": paths}).pl()
    folder = Path(paths[0]).parent
    if inexact is None:
        inexact = source.read_versions(folder, [Path(p).name for p in paths])[1]
    if not inexact:
        return typed
    exact = source.parse_reading_files(folder, inexact)  # noqa: F841 (read by DuckDB below)
    return con.sql(AS_WRITTEN_SQL).pl()


def rebuilt_cells(con, typed):
    """The delivered cells (file_name, source_row, interval_start, consumption_delta) rebuilt from a typed parse."""
    con.register("typed", typed.to_arrow())
    try:
        return con.sql(REBUILT_SQL).pl()
    finally:
        con.unregister("typed")


@register("sm_breakdown")
def task_breakdown(params: dict[str, Any], phases: Phases) -> None:
    import duckdb
    import polars as pl

    from energy_assets import settings
    from energy_assets.lake import engine
    from energy_assets.lake.store import Lake
    from energy_assets.smart_meter import checks, ingestion, presentation, silver, source

    folder, out = Path(params["readings_dir"]), Path(params["out_dir"])
    lake = Lake(root=str(out))
    static = source.read_static_tables(Path(params["db_path"]))
    listing = source.snapshot_folder(folder)
    chunks = ingestion.file_chunks(listing, settings.smart_meter_ingest_chunk_bytes())
    chunk_days = settings.smart_meter_chunk_days()
    now = dt.datetime.now(dt.UTC)

    def write(key: str, frames: list, schema: dict, partition_by: list[str] | None) -> None:
        table = engine.create_table(lake, key, schema, partition_by)
        engine.write_frames(table, frames, pl.Schema(schema), "overwrite", ())

    # ---- what the product does, in order
    with phases.phase("data work: parse every file (DuckDB, cells as delivered text)") as rec:
        parsed = [source.parse_reading_files(folder, names, as_written=False) for names in chunks]
        rec["rows"] = sum(p.height for p in parsed)
    with phases.phase("lakehouse: content hash of every file, its bytes searched for numbers DuckDB rewrites"):
        versions = [source.read_versions(folder, names) for names in chunks]
    hashes, inexact = [v[0] for v in versions], [v[1] for v in versions]
    with phases.phase("lakehouse: the numbers DuckDB rewrote, as written"):
        parsed = [source.numbers_as_written(part, folder, found) if found else part for part, found in zip(parsed, inexact, strict=True)]
    with phases.phase("lakehouse: raw rows and the ingestion plan"):
        raws = []
        for part, digest in zip(parsed, hashes, strict=True):
            rows = ingestion.raw_rows(part, listing, now)
            ingestion.version_summary(ingestion.per_file_day(rows), digest, listing, rows)
            raws.append(rows)
    with phases.phase("lakehouse: write raw (Delta, text cells)"):
        write("raw/smart_meter_readings", raws, ingestion.RAW_SCHEMA, ["settlement_date"])
    del raws
    with phases.phase("lakehouse: read raw back"):
        raw = lake.scan("raw/smart_meter_readings").collect()
    days = sorted(raw["settlement_date"].unique().to_list())
    day_chunks = silver.day_chunks(days, chunk_days)
    with phases.phase("data work: silver (rules, time zones, duplicates, attribution)"):
        parts = [silver.silver_readings(raw.filter(pl.col("settlement_date").is_in(c)), static.agreements, static.products, static.meterpoints)
                 for c in day_chunks]  # fmt: skip
    with phases.phase("data work: write silver (Delta)") as rec:
        write("silver/smart_meter_readings", [p.readings for p in parts], silver.SILVER_SCHEMA, ["settlement_date"])
        rec["rows"] = sum(p.readings.height for p in parts)
    with phases.phase("lakehouse: write the quarantine (Delta)"):
        write("silver/smart_meter_quarantine", [p.quarantine for p in parts], silver.QUARANTINE_SCHEMA, ["settlement_date"])
    del parts
    silver_scan = lake.scan("silver/smart_meter_readings")
    with phases.phase("lakehouse: presentation reads silver back"):
        silver_rows = [silver_scan.filter(pl.col("settlement_date").is_in(c)).select(presentation.SILVER_COLUMNS).collect() for c in day_chunks]
    with phases.phase("data work: presentation aggregates (DuckDB)"):
        con = duckdb.connect()
        tables = presentation.combine([presentation.aggregate(con, rows) for rows in silver_rows])
    del silver_rows
    with phases.phase("data work: write the presentation tables (Delta)"):
        for name, df in tables.items():
            write(f"presentation/{name}", [df], dict(df.schema), None)
    with phases.phase("lakehouse: the ten checks") as rec:
        scan = lake.scan
        s, total, per_product, without = (scan("silver/smart_meter_readings"), scan("presentation/total"),
                                          scan("presentation/per_product"), scan("presentation/without"))  # fmt: skip
        outcomes = [
            checks.rule_unique_keys(s, chunk_days),
            checks.rule_on_half_hour(s),
            checks.rule_plausible(s),
            checks.rule_one_covering_agreement(s, chunk_days),
            checks.rule_accounting(scan("raw/smart_meter_readings"), s, scan("silver/smart_meter_quarantine")),
            checks.rule_unattributed_reported(s, without),
            checks.rule_totals_reconcile(s, total, checks.HALF_HOUR, "half-hour"),
            checks.rule_meterpoints_bounded(s, total, checks.HALF_HOUR, "half-hour", chunk_days=chunk_days),
            checks.rule_per_product_reconciles(per_product, s, without),
            checks.rule_meterpoints_bounded(s, per_product, checks.PRODUCT_DAY, "(product, day)", silver_filter=checks.ATTRIBUTED),
        ]
        rec["rows"] = len(outcomes)
    phases.extra["checks_failed"] = [o.checked for o in outcomes if not o.passed]

    # ---- the typed-raw alternative
    with phases.phase("alternative: silver's parse of text cells (kWh cast, local-time join)"):
        for c in day_chunks:
            part = raw.filter(pl.col("settlement_date").is_in(c))
            part.select(pl.col("consumption_delta").str.strip_chars().cast(pl.Float64, strict=False))
            times = silver._local_times(part.select("interval_start").unique())
            part.join(times, on="interval_start", how="left", nulls_equal=True)
    del raw
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    with phases.phase("alternative: parse every file to typed cells, text kept where the value does not give it back"):
        typed_parts = [typed_parse(con, [str(folder / n) for n in names], found) for names, found in zip(chunks, inexact, strict=True)]
    # in the same chunks and on the same days as the text raw (a row without a readable date would go to 1970-01-01
    # here; the benchmark data has none)
    day = pl.col("interval_start_local").dt.date().fill_null(dt.date(1970, 1, 1)).alias("settlement_date")
    typed_raw = [part.drop("bad_layout").with_columns(day) for part in typed_parts]
    with phases.phase("alternative: write raw (Delta, typed cells)"):
        write("raw/typed_readings", typed_raw, dict(typed_raw[0].schema), ["settlement_date"])
    typed = pl.concat(typed_parts, how="vertical")
    del typed_parts, typed_raw
    text = pl.concat(parsed, how="vertical").select("file_name", "source_row", "interval_start", "consumption_delta")
    rebuilt = rebuilt_cells(con, typed)
    phases.extra["typed_raw_faithful"] = text.sort("file_name", "source_row").equals(rebuilt.sort("file_name", "source_row"))
    phases.extra["typed_raw_text_cells_kept"] = int(typed["interval_start_text"].count() + typed["consumption_text"].count())
    phases.extra["rows"] = text.height
