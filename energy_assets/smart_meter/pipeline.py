"""Running the smart-meter steps over a run's days, a chunk at a time. No Dagster: a `Lake`, folders and plain
settings values in; frames and batch generators out. The assets (assets.py) only load, call this, return and
attach metadata; the decisions are in the pure modules (`ingestion`, `silver`, `presentation`), the reading of
the drop in `source`.

Memory follows the chunk, not the run: ingestion reads the files a chunk of about `chunk_bytes` at a time
(hashing in a thread while DuckDB parses), silver and presentation take `chunk_days` days at a time; the
chunks are streamed into ONE Delta transaction per table by the IO manager (`FrameStream`).

Buckets (`SMART_METER_BUCKETS` > 1, see `buckets.py`): a run covers days x a set of meterpoint buckets
(`Bucketing`). Ingestion reads only the files of its buckets and writes only their slice, silver works a
bucket at a time, and the presentation aggregates combine per-bucket partial aggregates (sums add up; distinct
meterpoint counts add up because a meterpoint lives in one bucket). Without a `Bucketing` (one bucket) the code
path is the unbucketed one, unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from energy_assets.lake.store import Lake
from energy_assets.smart_meter import buckets as bucketing
from energy_assets.smart_meter import ingestion, presentation, silver, source

RAW_READINGS = ("raw", "smart_meter_readings")
INGESTION_LOG = ("raw", "ingestion_log")


def on_days(days: list[dt.date], column: str = "settlement_date") -> pl.Expr:
    return pl.col(column).is_in(days)


def detached(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with its own copy of every buffer. A polars string longer than 12 bytes is a view into a shared data
    buffer, so a small frame derived from a chunk (a group-by's file names, a few quarantined rows) keeps the
    whole chunk's text alive; frames kept across chunks are detached so memory follows the chunk, not the run
    (at scale, ingestion grew by ~0.12 GiB per 64 MiB chunk without it)."""
    return pl.from_arrow(df.to_arrow(compat_level=pl.CompatLevel.oldest()))  # type: ignore[return-value]


@dataclass(frozen=True)
class Bucketing:
    """A bucketed run: the bucket count and the bucket keys ("0".."count-1") the run covers."""

    count: int
    keys: tuple[str, ...]

    def expr(self) -> pl.Expr:
        return pl.col(bucketing.BUCKET_COLUMN).is_in(list(self.keys))

    def schema(self, schema: dict) -> dict:
        """A table's schema with the bucket column (a physical partition column after the day)."""
        return {**schema, bucketing.BUCKET_COLUMN: pl.String}


# ---------------------------------------------------------------------------------------------- ingestion
def read_log(lake: Lake, days: list[dt.date], buckets: Bucketing | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From the ingestion log: every version's identity (narrow columns, no lists) and the (file, hash, day)
    rows of the run's days (partition-pruned). Cost grows with files and versions, not with rows. A missing
    log reads as empty. Bucketed: only the run's buckets' partitions (its files' versions) are read."""
    schema = ingestion.LOG_SCHEMA
    versions_schema = {c: schema[c] for c in ingestion.VERSION_COLUMNS}
    logged_schema = {c: schema[c] for c in ("file_name", "content_hash", "settlement_date")}
    own = None if buckets is None else buckets.expr()
    versions = lake.read(INGESTION_LOG, where=own, schema=versions_schema, columns=ingestion.VERSION_COLUMNS).unique(
        ["file_name", "content_hash", "size_bytes", "modified_ns"]
    )
    where = on_days(days) if own is None else on_days(days) & own
    logged = lake.read(INGESTION_LOG, where=where, schema=logged_schema, columns=list(logged_schema))
    return versions, logged


class Ingestion:
    """One ingestion run over `days`: which files to read (from the folder listing and the log), then the raw
    rows as a stream of batches and, once the stream is consumed, the log rows and the counts.

    The files are read a chunk at a time (parse -> raw rows -> the chunk's share of the plan) so only one
    chunk of text rows is in memory. Every planning frame (rows per file and day, version summary,
    replacements) is per file, so the chunks' shares just concatenate. `raw_batches` may be called again (a
    commit conflict re-runs the write): it starts afresh each time.
    """

    def __init__(self, lake: Lake, readings_dir: Path, days: list[dt.date], chunk_bytes: int, now: dt.datetime | None = None,
                 buckets: Bucketing | None = None):  # fmt: skip
        self.readings_dir, self.days, self.buckets = readings_dir, days, buckets
        self.now = now or dt.datetime.now(dt.UTC)
        self.folder = source.snapshot_folder(readings_dir)
        if buckets is not None:  # only the files of the run's buckets exist for this run
            own = bucketing.in_buckets(self.folder["file_name"].to_list(), buckets.count, list(buckets.keys))
            self.folder = self.folder.filter(pl.col("file_name").is_in(own))
        versions, self.logged = read_log(lake, days, buckets)
        self.to_read = ingestion.files_to_read(ingestion.known_versions(self.folder, versions), self.logged, days)
        self.file_chunks = ingestion.file_chunks(self.folder.filter(pl.col("file_name").is_in(self.to_read)), chunk_bytes) or [[]]
        # The rows already ingested for the run's days, as a lazy scan made here: the batches are pulled by the
        # Delta writer from its own runtime, where a table cannot be opened; the scan reads the snapshot current
        # when it is collected (after the new rows, so a retried write sees the latest one).
        where = on_days(days) if buckets is None else on_days(days) & buckets.expr()
        self._existing = lake.scan(RAW_READINGS, where) if lake.exists(RAW_READINGS) else None
        self.metadata: dict = {}  # filled when the stream is consumed
        self._parts: dict[str, list[pl.DataFrame]] = {"per_day": [], "summary": [], "replace": []}

    @property
    def raw_schema(self) -> dict:
        return ingestion.RAW_SCHEMA if self.buckets is None else self.buckets.schema(ingestion.RAW_SCHEMA)

    def raw_batches(self) -> Iterator[pl.DataFrame]:
        """The run's raw partitions: the new versions' rows chunk by chunk, then the rows kept from earlier
        ingestions of the run's days (bucketed: each row with its file's bucket)."""
        if self.buckets is None:
            yield from self._raw_batches()
            return
        for batch in self._raw_batches():
            yield bucketing.with_file_bucket(batch, self.buckets.count)

    def _raw_batches(self) -> Iterator[pl.DataFrame]:
        for part in self._parts.values():
            part.clear()
        self.metadata.clear()
        days = self.days
        with ThreadPoolExecutor(max_workers=1) as pool:  # hashing and the number search (GIL released) overlap the DuckDB parse
            for names in self.file_chunks:
                reading = pool.submit(source.read_versions, self.readings_dir, names)
                parsed = source.parse_reading_files(self.readings_dir, names, as_written=False)
                hashes, inexact = reading.result()
                if inexact:  # numbers DuckDB rewrites: kept as written (source.numbers_as_written)
                    parsed = source.numbers_as_written(parsed, self.readings_dir, inexact)
                new = ingestion.raw_rows(parsed, self.folder, self.now)
                del parsed  # each copy of the rows is released as soon as the next exists
                per_day = ingestion.per_file_day(new)
                summary = ingestion.version_summary(per_day, hashes, self.folder, new)
                replace = ingestion.replacements(summary, self.logged, days)
                self._parts["per_day"].append(detached(per_day))
                self._parts["summary"].append(detached(summary))
                self._parts["replace"].append(detached(replace))
                added = ingestion.merge_raw(pl.DataFrame(schema=ingestion.RAW_SCHEMA), new, replace, per_day, days)
                del new
                yield added
        per_day, summary, replace = self.plan()
        existing = pl.DataFrame(schema=ingestion.RAW_SCHEMA) if self._existing is None else self._existing.collect().cast(ingestion.RAW_SCHEMA)  # type: ignore[arg-type]
        kept = ingestion.kept_raw(existing, replace)
        del existing
        yield kept
        keys = replace.select(source_file="file_name", settlement_date="settlement_date")
        replaced_rows = int(per_day.join(keys, on=["source_file", "settlement_date"], how="semi")["rows_in_partition"].sum())
        malformed = summary.filter(pl.col("file_error").is_not_null())
        self.metadata.update({
            "file_days_replaced": replace.height,
            "rows_ingested": replaced_rows,
            "rows_kept_from_earlier_ingestions": kept.height,
            "malformed_files": malformed.select("file_name", "file_error").to_dicts(),
        })  # fmt: skip

    def plan(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """(rows per file and day, version summary, replaced (file, hash, day)) of the files read so far."""
        return tuple(pl.concat(self._parts[k]) for k in ("per_day", "summary", "replace"))  # type: ignore[return-value]

    def log_rows(self) -> pl.DataFrame:
        """The ingestion log's rows for this run (after `raw_batches` was consumed)."""
        per_day, summary, replace = self.plan()
        rows = ingestion.log_rows(summary, replace, per_day, self.now)
        return rows if self.buckets is None else bucketing.with_file_bucket(rows, self.buckets.count, "file_name")


# ---------------------------------------------------------------------------------------------- silver
class Silver:
    """Silver over `days`, `chunk_days` at a time (days are independent in silver: see `silver.day_chunks`):
    `readings()` streams the silver rows and, after the last chunk, refuses an unbalanced row accounting
    before anything is committed; then `quarantine()` and `stats` hold the rest. `readings` may be called
    again (a commit conflict re-runs the write): it starts afresh each time."""

    def __init__(self, raw: pl.LazyFrame, agreements: pl.DataFrame, products: pl.DataFrame, meterpoints: pl.DataFrame,
                 days: list[dt.date], chunk_days: int, buckets: Bucketing | None = None):  # fmt: skip
        self.raw, self.agreements, self.products, self.meterpoints = raw, agreements, products, meterpoints
        self.buckets = buckets
        self.chunks = silver.day_chunks(days, chunk_days)
        self.totals: dict[str, int] = {}
        self.metadata: dict = {}
        self._quarantine: list[pl.DataFrame] = []

    def readings(self) -> Iterator[pl.DataFrame]:
        self._quarantine.clear()
        self.totals.clear()
        self.metadata.clear()
        for chunk in self.chunks:
            for bucket in [None] if self.buckets is None else self.buckets.keys:  # a bucket at a time
                where = on_days(chunk) if bucket is None else on_days(chunk) & (pl.col(bucketing.BUCKET_COLUMN) == bucket)
                raw = self.raw.filter(where).collect()
                if bucket is not None:
                    raw = raw.drop(bucketing.BUCKET_COLUMN)
                part = silver.silver_readings(raw, self.agreements, self.products, self.meterpoints)
                del raw
                self.totals.update(silver.add_stats(self.totals, part.stats))
                if bucket is None:
                    self._quarantine.append(detached(part.quarantine))
                    yield part.readings
                else:
                    self._quarantine.append(detached(part.quarantine.with_columns(pl.lit(bucket, pl.String).alias(bucketing.BUCKET_COLUMN))))
                    yield part.readings.with_columns(pl.lit(bucket, pl.String).alias(bucketing.BUCKET_COLUMN))
        # after the last chunk, before the commit: a failure here leaves silver as it was
        t = {k: self.totals.get(k, 0) for k in ("rows_in", "rows_kept", "duplicates", "quarantined")}
        if t["rows_in"] != t["rows_kept"] + t["duplicates"] + t["quarantined"]:
            raise RuntimeError(f"smart-meter silver row accounting does not balance: {self.totals}")  # refuse rather than lose rows
        self.metadata.update(dict(sorted(self.totals.items())))
        self.metadata["row_accounting"] = (
            f"{t['rows_in']} rows in = {t['rows_kept']} kept + {t['duplicates']} duplicates + {t['quarantined']} quarantined"
        )

    @property
    def stats(self) -> dict[str, int]:
        keys = ("rows_in", "rows_kept", "duplicates", "quarantined", "readings_without_agreement")
        return {k: self.totals.get(k, 0) for k in keys}

    @property
    def readings_schema(self) -> dict:
        return silver.SILVER_SCHEMA if self.buckets is None else self.buckets.schema(silver.SILVER_SCHEMA)

    def quarantine(self) -> pl.DataFrame:
        if not self._quarantine:
            schema = silver.QUARANTINE_SCHEMA if self.buckets is None else self.buckets.schema(silver.QUARANTINE_SCHEMA)
            return pl.DataFrame(schema=schema)
        return pl.concat(self._quarantine, how="vertical")


# ---------------------------------------------------------------------------------------------- presentation
def presentation_tables(con: duckdb.DuckDBPyConnection, silver_rows: pl.LazyFrame, days: list[dt.date], chunk_days: int,
                        buckets: Bucketing | None = None) -> dict[str, pl.DataFrame]:  # fmt: skip
    """The presentation aggregates of silver over `days`, `chunk_days` at a time (every aggregate groups by
    settlement day; chunks are taken in day order, which keeps each table's ORDER BY): only one chunk of
    silver (the columns used) is in memory. Bucketed: within a chunk, one bucket's silver at a time, its
    partial aggregates combined (`presentation.combine_buckets`). Keys: total, per_product, avg, without, gold."""
    parts = []
    for chunk in silver.day_chunks(days, chunk_days):
        if buckets is None:
            rows = silver_rows.filter(on_days(chunk)).select(presentation.SILVER_COLUMNS).collect()
            parts.append(presentation.aggregate(con, rows))
            del rows
            continue
        partials = []
        for bucket in buckets.keys:
            where = on_days(chunk) & (pl.col(bucketing.BUCKET_COLUMN) == bucket)
            rows = silver_rows.filter(where).select(presentation.SILVER_COLUMNS).collect()
            partials.append(presentation.aggregate(con, rows, presentation.PARTIAL_AGGREGATES))
            del rows
        parts.append(presentation.combine_buckets(partials))
    return presentation.combine(parts)
