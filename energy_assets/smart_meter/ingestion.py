"""Ingestion planning, pure: which file versions a run must read, the raw rows of what it read, how the raw
partitions are rebuilt from what was already ingested plus what is new, and the ingestion log's rows.
Polars frames in, frames out; no Dagster, no I/O (the drop is read by `source.py`, the
lake by `pipeline.py`).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

UK_TZ = "Europe/London"

LOG_SCHEMA = {
    "file_name": pl.String,
    "content_hash": pl.String,
    "size_bytes": pl.Int64,
    "modified_ns": pl.Int64,
    "rows_in_file": pl.Int64,
    "first_interval_local": pl.String,
    "last_interval_local": pl.String,
    "settlement_dates_touched": pl.List(pl.Date),
    "first_settlement_date": pl.Date,
    "last_settlement_date": pl.Date,
    "file_error": pl.String,
    "settlement_date": pl.Date,
    "rows_in_partition": pl.Int64,
    "ingested_at": pl.Datetime("us", "UTC"),
}

RAW_SCHEMA = {
    "meterpoint_id": pl.String,
    "interval_start": pl.String,
    "consumption_delta": pl.String,
    "source_file": pl.String,
    "source_row": pl.Int64,
    "file_error": pl.String,
    "ingested_at": pl.Datetime("us", "UTC"),
    "settlement_date": pl.Date,
}



# ---------------------------------------------------------------------------------------------- ingestion
VERSION_COLUMNS = ["file_name", "content_hash", "size_bytes", "modified_ns", "first_settlement_date", "last_settlement_date", "ingested_at"]


def known_versions(folder: pl.DataFrame, versions: pl.DataFrame) -> pl.DataFrame:
    """The folder's files, each with the logged version it still is (same name, size and mtime), if any.

    `versions`: the log's VERSION_COLUMNS (no list column: planning never reads it). Columns out:
    file_name, size_bytes, modified_ns, content_hash (null: unknown version), first/last_settlement_date.
    """
    latest = (
        versions.sort("ingested_at")
        .group_by(["file_name", "size_bytes", "modified_ns"])
        .agg(pl.col("content_hash", "first_settlement_date", "last_settlement_date").last())
    )
    return folder.join(latest, on=["file_name", "size_bytes", "modified_ns"], how="left")


def files_to_read(known: pl.DataFrame, logged: pl.DataFrame, days: list[dt.date]) -> list[str]:
    """Files this run must read: unknown versions, and known ones with a run day not yet ingested.

    `logged`: the log's (file_name, content_hash, settlement_date) rows for the run's days. A known version
    whose days within the run (between its first and last day) are all logged is not read again.
    """
    unknown = known.filter(pl.col("content_hash").is_null())["file_name"].to_list()
    run_days = pl.DataFrame({"settlement_date": days}, schema={"settlement_date": pl.Date})
    pending = (
        known.filter(pl.col("content_hash").is_not_null())
        .join(run_days, how="cross")
        .filter(pl.col("settlement_date").is_between(pl.col("first_settlement_date"), pl.col("last_settlement_date")))
        .join(logged.select("file_name", "content_hash", "settlement_date"), on=["file_name", "content_hash", "settlement_date"], how="anti")
    )
    return sorted(set(unknown) | set(pending["file_name"].to_list()))


def file_chunks(files: pl.DataFrame, max_bytes: int) -> list[list[str]]:
    """File names (in name order) in consecutive chunks of about `max_bytes`: a chunk ends with the first
    file that reaches the next multiple of `max_bytes`, so a chunk exceeds it by less than one file. A run
    reads a chunk at a time, so its memory follows the chunk size, not the folder's."""
    files = files.sort("file_name").with_columns(
        chunk=(pl.col("size_bytes").cum_sum() - pl.col("size_bytes")) // max(1, int(max_bytes))
    )
    # a new chunk starts where the running total crosses a multiple of max_bytes
    return [g["file_name"].to_list() for _, g in files.group_by("chunk", maintain_order=True)]


def raw_rows(parsed: pl.DataFrame, folder: pl.DataFrame, ingested_at: dt.datetime) -> pl.DataFrame:
    """Parsed rows as raw rows, each with its settlement day.

    The day of a row is the date of its `interval_start` (a UK local time). A row whose date cannot be
    read (e.g. `2021-03-27 25:30:00` still has one; `garbage` has none) and the error row of a malformed
    file go to the file version's *home day*: the last day of its dated rows, or, when it has none, the
    UK local date of the file's modification time. The rule depends only on the version, so every run
    places such rows on the same day.
    """
    # the date of each distinct interval_start string (a few thousand), joined back: no per-row parsing
    dates = parsed.select("interval_start").unique().with_columns(
        day=pl.col("interval_start").str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    )
    rows = parsed.join(dates, on="interval_start", how="left", nulls_equal=True)
    if rows["day"].null_count():
        mtime_day = (
            pl.from_epoch(pl.col("modified_ns"), time_unit="ns").dt.replace_time_zone("UTC").dt.convert_time_zone(UK_TZ).dt.date()
        )
        home = (
            rows.group_by("file_name")
            .agg(last_day=pl.col("day").max())
            .join(folder.select("file_name", "modified_ns"), on="file_name", how="left")
            .select("file_name", home_day=pl.coalesce("last_day", mtime_day))
        )
        rows = rows.join(home, on="file_name", how="left").with_columns(settlement_date=pl.coalesce("day", "home_day"))
    else:
        rows = rows.rename({"day": "settlement_date"})
    return rows.select(
        "meterpoint_id",
        "interval_start",
        "consumption_delta",
        source_file=pl.col("file_name"),
        source_row="source_row",
        file_error="file_error",
        ingested_at=pl.lit(ingested_at, pl.Datetime("us", "UTC")),
        settlement_date="settlement_date",
    ).cast(RAW_SCHEMA)  # type: ignore[arg-type]


def per_file_day(raw: pl.DataFrame) -> pl.DataFrame:
    """One pass over the new rows: rows per (file, settlement day) and any file error."""
    return raw.group_by(["source_file", "settlement_date"]).agg(
        rows_in_partition=pl.len(),
        data_rows=pl.col("source_row").count(),
        file_error=pl.col("file_error").drop_nulls().first(),
    )


def version_summary(per_day: pl.DataFrame, hashes: pl.DataFrame, folder: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """One row per file version read: hash, size, rows, first/last interval, days touched, error."""
    bounds = raw.group_by("source_file").agg(
        first_interval_local=pl.col("interval_start").min(), last_interval_local=pl.col("interval_start").max()
    )
    return (
        per_day.group_by("source_file")
        .agg(
            rows_in_file=pl.col("data_rows").sum(),
            settlement_dates_touched=pl.col("settlement_date").unique().sort(),
            first_settlement_date=pl.col("settlement_date").min(),
            last_settlement_date=pl.col("settlement_date").max(),
            file_error=pl.col("file_error").drop_nulls().first(),
        )
        .join(bounds, on="source_file", how="left")
        .rename({"source_file": "file_name"})
        .join(hashes, on="file_name", how="left")
        .join(folder, on="file_name", how="left")
    )


def replacements(summary: pl.DataFrame, logged: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """(file_name, content_hash, settlement_date) whose rows this run (re)writes: a day of the run the
    version touches and that the log does not yet hold for this version."""
    return (
        summary.select("file_name", "content_hash", "settlement_dates_touched")
        .explode("settlement_dates_touched")
        .rename({"settlement_dates_touched": "settlement_date"})
        .filter(pl.col("settlement_date").is_in(days))
        .join(logged.select("file_name", "content_hash", "settlement_date"), on=["file_name", "content_hash", "settlement_date"], how="anti")
    )


def merge_raw(existing: pl.DataFrame, new: pl.DataFrame, replace: pl.DataFrame, per_day: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """The run's raw partitions: rows already ingested, with those of each replaced (file, day) swapped
    for the new version's rows. Rows of other files, and of days a new version does not touch, stay."""
    keys = replace.select(source_file="file_name", settlement_date="settlement_date")
    kept = kept_raw(existing, replace)
    pairs_in_run = per_day.filter(pl.col("settlement_date").is_in(days)).height
    in_run = new if pairs_in_run == per_day.height else new.filter(pl.col("settlement_date").is_in(days))
    # usual case (every new (file, day) of the run is replaced): a filter on days is enough, no key join
    added = in_run if pairs_in_run == keys.height else in_run.join(keys, on=["source_file", "settlement_date"], how="semi")
    if not kept.height:
        return added.cast(RAW_SCHEMA)  # type: ignore[arg-type]
    return pl.concat([kept.cast(RAW_SCHEMA), added.cast(RAW_SCHEMA)], how="vertical")  # type: ignore[arg-type]


def kept_raw(existing: pl.DataFrame, replace: pl.DataFrame) -> pl.DataFrame:
    """Rows already ingested that stay: all but those of the (file, day) pairs a new version replaces."""
    if not existing.height:
        return existing
    keys = replace.select(source_file="file_name", settlement_date="settlement_date")
    return existing.join(keys, on=["source_file", "settlement_date"], how="anti")


def log_rows(summary: pl.DataFrame, replace: pl.DataFrame, per_day: pl.DataFrame, ingested_at: dt.datetime) -> pl.DataFrame:
    """One log row per (file version, settlement day) ingested by this run."""
    counts = per_day.select(file_name="source_file", settlement_date="settlement_date", rows_in_partition="rows_in_partition")
    return (
        replace.join(summary.drop("content_hash"), on="file_name", how="left")
        .join(counts, on=["file_name", "settlement_date"], how="left")
        .with_columns(
            rows_in_partition=pl.col("rows_in_partition").fill_null(0),
            ingested_at=pl.lit(ingested_at, pl.Datetime("us", "UTC")),
        )
        .select(list(LOG_SCHEMA))
        .cast(LOG_SCHEMA)  # type: ignore[arg-type]
        .sort(["settlement_date", "file_name"])
    )



