"""Pure transforms of the smart-meter domain: polars frames in, frames out; no Dagster, no I/O.

- `plan_ingestion` / `raw_rows` / `merge_raw` / `log_rows`: which file versions a run must read and how
  the raw partitions are rebuilt from what was already ingested plus what is new;
- `typed_agreements` / `snapshot`: the database tables typed, one copy per settlement day;
- `silver_readings`: raw rows -> silver rows + quarantine rows (+ counts);
- `active_agreements` and the presentation SQL (run by DuckDB in the assets).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

UK_TZ = "Europe/London"
# A domestic supply above ~100 kW is not a home meter: 50 kWh in half an hour is implausible.
MAX_PLAUSIBLE_KWH = 50.0

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


# ---------------------------------------------------------------------------------------------- static
def snapshot(table: pl.DataFrame, days: list[dt.date]) -> pl.DataFrame:
    """The table as delivered, once per settlement day of the run (`snapshot_date`)."""
    return table.join(pl.DataFrame({"snapshot_date": days}, schema={"snapshot_date": pl.Date}), how="cross")


def typed_agreements(raw: pl.DataFrame) -> pl.DataFrame:
    """Agreement dates parsed; a date that does not parse fails loudly (the database is the contract)."""
    typed = raw.with_columns(
        valid_from=pl.col("agreement_valid_from").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        valid_to=pl.col("agreement_valid_to").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
    )
    bad = typed.filter(
        pl.col("valid_from").is_null() | (pl.col("valid_to").is_null() & pl.col("agreement_valid_to").is_not_null())
    )
    if bad.height:
        raise ValueError(f"agreement table: {bad.height} rows with unreadable dates; first: {bad.row(0, named=True)}")
    return typed


# ---------------------------------------------------------------------------------------------- silver
@dataclass(frozen=True)
class SilverResult:
    readings: pl.DataFrame
    quarantine: pl.DataFrame
    stats: dict[str, int]


SILVER_SCHEMA = {
    "meterpoint_id": pl.String,
    "interval_start_utc": pl.Datetime("us", "UTC"),
    "interval_start_local": pl.Datetime("us"),
    "consumption_kwh": pl.Float64,
    "agreement_id": pl.Int64,
    "agreement_valid_from": pl.Date,
    "agreement_valid_to": pl.Date,
    "product_id": pl.String,
    "product_display_name": pl.String,
    "is_variable": pl.Boolean,
    "region": pl.String,
    "covering_agreement_count": pl.Int32,
    "settlement_date": pl.Date,
}


def day_chunks(days: list[dt.date], size: int) -> list[list[dt.date]]:
    """The run's days in consecutive chunks of at most `size` days. Silver and the presentation aggregates
    are separable by settlement day (duplicates, the autumn ambiguity and attribution never span two UK
    local days), so a range can be processed a chunk at a time with the same result."""
    size = max(1, int(size))
    return [days[i : i + size] for i in range(0, len(days), size)]


def add_stats(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    """Counts of two chunks of days, added key by key."""
    return {k: total.get(k, 0) + part.get(k, 0) for k in {**total, **part}}


QUARANTINE_SCHEMA = {
    "source_file": pl.String,
    "source_row": pl.Int64,
    "meterpoint_id": pl.String,
    "interval_start": pl.String,
    "consumption_delta": pl.String,
    "disposition": pl.String,
    "reason": pl.String,
    "ingested_at": pl.Datetime("us", "UTC"),
    "settlement_date": pl.Date,
}

REASONS = {
    "malformed_file": "malformed file",
    "bad_timestamp": "interval_start is not a YYYY-MM-DD HH:MM:SS local time",
    "off_half_hour": "interval_start is not on :00 or :30",
    "nonexistent_local_time": "interval_start does not exist in UK local time (spring clock change)",
    "missing_meterpoint": "meterpoint_id is missing",
    "non_numeric_consumption": "consumption_delta is not a number",
    "negative_consumption": "consumption_delta is negative",
    "implausible_consumption": f"consumption_delta exceeds {MAX_PLAUSIBLE_KWH} kWh per half-hour",
    "unknown_meterpoint": "meterpoint_id is not in the meterpoint table",
}


def silver_readings(
    raw: pl.DataFrame, agreements: pl.DataFrame, products: pl.DataFrame, meterpoints: pl.DataFrame
) -> SilverResult:
    """Raw rows -> one row per (meterpoint_id, interval_start_utc), plus every other row in quarantine.

    `agreements`, `products`, `meterpoints` are the raw snapshots (with `snapshot_date`); a reading of
    settlement day D uses the snapshot of D.

    Rules:
    - local -> UTC in Europe/London. An ambiguous autumn local time is resolved by occurrence in file
      order (source_file, source_row): the first is BST (the earlier instant), the second GMT, any further
      one a duplicate. A local time that does not exist (spring) is quarantined.
    - Duplicates of (meterpoint_id, interval_start_utc): the first in file order is kept, the others go to
      the quarantine table with disposition `duplicate` (counted, not lost).
    - Attribution: the agreement of the reading's meterpoint with valid_from <= settlement_date <
      valid_to (NULL valid_to = open): the dates are UK local days, so this is exactly the half-open
      [valid_from 00:00, valid_to 00:00) in local time; a zero-length agreement covers nothing. If
      agreements overlap, the one that started last (then the highest agreement_id) wins and
      `covering_agreement_count` shows the overlap. Readings with no covering agreement stay, with
      null agreement and product columns.

    Cost: timestamps are parsed and converted once per *distinct* local string (a few thousand), the
    attribution is computed once per (meterpoint, day); each reading takes two hash joins, and only the
    rare ambiguous or duplicated rows are sorted.
    """
    # integer keys: a meterpoint code (categorical) with the day or the half-hour, for cheap joins and
    # duplicate detection on millions of rows
    mp_code = pl.col("meterpoint_id").cast(pl.Categorical).to_physical().cast(pl.UInt64) * (1 << 32)
    base = raw.with_row_index("__row").with_columns(
        __mp=mp_code,
        __kwh=pl.col("consumption_delta").str.strip_chars().cast(pl.Float64, strict=False),
    ).with_columns(__pair=pl.col("__mp") + pl.col("settlement_date").cast(pl.Int32).cast(pl.UInt64))
    times = _local_times(base.select("interval_start").unique())
    pair_keys = base.select("__pair", "meterpoint_id", "settlement_date").unique("__pair")
    pairs = _per_meterpoint_day(pair_keys, agreements, products, meterpoints).drop("meterpoint_id", "settlement_date")
    code = (
        pl.when(pl.col("file_error").is_not_null())
        .then(pl.lit("malformed_file"))
        .when(pl.col("__time_code").is_not_null())
        .then(pl.col("__time_code"))
        .when(pl.col("meterpoint_id").is_null())
        .then(pl.lit("missing_meterpoint"))
        .when(pl.col("__kwh").is_null() | pl.col("__kwh").is_nan())
        .then(pl.lit("non_numeric_consumption"))
        .when(pl.col("__kwh") < 0)
        .then(pl.lit("negative_consumption"))
        .when(pl.col("__kwh") > MAX_PLAUSIBLE_KWH)
        .then(pl.lit("implausible_consumption"))
        .when(pl.col("region").is_null())
        .then(pl.lit("unknown_meterpoint"))
    )
    df = (
        base.lazy()
        .join(times.lazy(), on="interval_start", how="left", nulls_equal=True)
        .join(pairs.lazy(), on="__pair", how="left")
        .with_columns(__code=code)
        # only what silver needs: the raw text columns are fetched back by row for the few rows that need them
        .select(
            "__row", "meterpoint_id", "settlement_date", "__kwh", "__mp", "__local", "__earliest", "__latest", "__ambiguous",
            "__code", "agreement_id", "valid_from", "valid_to", "product_id", "display_name", "is_variable", "region",
            "covering_agreement_count", "source_file", "source_row",
        )
        .collect()
    )  # fmt: skip
    rows_in = raw.height
    del raw  # the text columns live on in `base` only until the few rows that need them are taken
    valid = pl.col("__code").is_null()
    bad = base.join(df.filter(~valid).select("__row", "__code"), on="__row", how="inner")
    order = df.select("__row", "source_file", "source_row")

    # Ambiguous autumn local times: occurrence in file order picks BST (earliest), then GMT (latest).
    # Only days with such times pay for it.
    amb = df.filter(valid & pl.col("__ambiguous"))
    if amb.height:
        occ = (
            amb.join(order, on="__row").sort(["source_file", "source_row"])
            .select("__row", __occ=pl.int_range(pl.len()).over(["meterpoint_id", "__local"]))
        )
        df = df.join(occ, on="__row", how="left").with_columns(pl.col("__occ").fill_null(0))
    else:
        df = df.with_columns(__occ=pl.lit(0, pl.Int64))
    df = df.with_columns(__utc=pl.when(pl.col("__occ") >= 1).then(pl.col("__latest")).otherwise(pl.col("__earliest")))
    # Duplicates: (meterpoint code, half-hour number) as one integer; only rows whose key repeats are sorted.
    key = pl.col("__mp") + (pl.col("__utc").dt.epoch("s") // 1800).cast(pl.UInt64)
    repeated = df.filter(valid & (pl.when(valid).then(key).is_duplicated() | (pl.col("__occ") >= 2)))
    dups = (
        repeated.join(order, on="__row")
        .sort(["source_file", "source_row"])
        .filter(~(key.is_first_distinct() & (pl.col("__occ") < 2)))
    )
    kept = valid & ~pl.col("__row").is_in(dups["__row"].implode()) if dups.height else valid
    amb_resolved = amb.height - int(dups.filter(pl.col("__ambiguous")).height)
    duplicated_rows = base.join(dups.select("__row"), on="__row", how="inner")
    del amb, repeated, base, order

    readings = df.filter(kept).select(
        "meterpoint_id",
        interval_start_utc=pl.col("__utc"),
        interval_start_local=pl.col("__local"),
        consumption_kwh=pl.col("__kwh"),
        agreement_id="agreement_id",
        agreement_valid_from="valid_from",
        agreement_valid_to="valid_to",
        product_id="product_id",
        product_display_name="display_name",
        is_variable="is_variable",
        region="region",
        covering_agreement_count=pl.col("covering_agreement_count").fill_null(0).cast(pl.Int32),
        settlement_date="settlement_date",
    )
    del df

    reason_text = pl.col("__code").replace_strict(REASONS, return_dtype=pl.String)
    quarantined = bad.select(
        *_quarantine_cols(),
        disposition=pl.lit("quarantined"),
        reason=pl.when(pl.col("__code") == "malformed_file")
        .then(pl.lit("malformed_file: ") + pl.col("file_error"))
        .when(pl.col("__code") == "non_numeric_consumption")
        .then(pl.lit("non_numeric_consumption: ") + pl.col("consumption_delta").fill_null("null"))
        .otherwise(pl.col("__code") + pl.lit(": ") + reason_text),
    )
    duplicated = duplicated_rows.select(
        *_quarantine_cols(),
        disposition=pl.lit("duplicate"),
        reason=pl.lit("duplicate: an earlier row in file order has the same meterpoint_id and interval_start_utc"),
    )
    quarantine = (
        pl.concat([quarantined, duplicated], how="vertical")
        .select(list(QUARANTINE_SCHEMA))
        .cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
        .sort(["settlement_date", "source_file", "source_row"], nulls_last=True)
    )
    stats = {
        "rows_in": rows_in,
        "rows_kept": readings.height,
        "duplicates": dups.height,
        "quarantined": bad.height,
        "ambiguous_local_times_resolved": amb_resolved,
        "readings_without_agreement": readings.select(pl.col("agreement_id").null_count()).item(),
        "readings_with_overlapping_agreements": readings.select((pl.col("covering_agreement_count") > 1).sum()).item(),
        **{f"quarantined_{c}": n for c, n in bad.group_by("__code").len().iter_rows()},
    }
    return SilverResult(readings, quarantine, stats)


def _local_times(distinct: pl.DataFrame) -> pl.DataFrame:
    """Per distinct `interval_start` string: local time, both UTC readings, ambiguity and any problem."""
    local = pl.col("interval_start").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    df = distinct.with_columns(__local=local).with_columns(
        __earliest=pl.col("__local").dt.replace_time_zone(UK_TZ, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"),
        __latest=pl.col("__local").dt.replace_time_zone(UK_TZ, ambiguous="latest", non_existent="null").dt.convert_time_zone("UTC"),
    )
    problem = (
        pl.when(pl.col("__local").is_null())
        .then(pl.lit("bad_timestamp"))
        .when(~pl.col("__local").dt.minute().is_in([0, 30]) | (pl.col("__local").dt.second() != 0))
        .then(pl.lit("off_half_hour"))
        .when(pl.col("__earliest").is_null())
        .then(pl.lit("nonexistent_local_time"))
    )
    return df.with_columns(__time_code=problem, __ambiguous=(pl.col("__earliest") != pl.col("__latest")).fill_null(False))


def _quarantine_cols() -> list[str]:
    return ["source_file", "source_row", "meterpoint_id", "interval_start", "consumption_delta", "ingested_at", "settlement_date"]


def _per_meterpoint_day(pairs: pl.DataFrame, agreements: pl.DataFrame, products: pl.DataFrame, meterpoints: pl.DataFrame) -> pl.DataFrame:
    """Per (meterpoint, day): region (null = unknown meterpoint) and the one agreement covering the day."""
    typed = typed_agreements(agreements)
    covering = (
        pairs.join(typed, left_on=["meterpoint_id", "settlement_date"], right_on=["meterpoint_id", "snapshot_date"], how="inner")
        .filter(
            (pl.col("valid_from") <= pl.col("settlement_date"))
            & (pl.col("valid_to").is_null() | (pl.col("settlement_date") < pl.col("valid_to")))
        )
        .sort(["valid_from", "agreement_id"], descending=True)
        .group_by(["meterpoint_id", "settlement_date"], maintain_order=True)
        .agg(pl.all().first(), covering_agreement_count=pl.len())
        .select("meterpoint_id", "settlement_date", "agreement_id", "valid_from", "valid_to", "product_id", "covering_agreement_count")
    )
    prod = products.unique(["product_id", "snapshot_date"], keep="first").select(
        "product_id", "display_name", pl.col("is_variable").cast(pl.Boolean), "snapshot_date"
    )
    mp = meterpoints.unique(["meterpoint_id", "snapshot_date"], keep="first").select("meterpoint_id", "region", "snapshot_date")
    return (
        pairs.join(covering, on=["meterpoint_id", "settlement_date"], how="left")
        .join(prod, left_on=["product_id", "settlement_date"], right_on=["product_id", "snapshot_date"], how="left")
        .join(mp, left_on=["meterpoint_id", "settlement_date"], right_on=["meterpoint_id", "snapshot_date"], how="left")
    )


# ---------------------------------------------------------------------------------------------- presentation
def active_agreements(agreements: pl.DataFrame, products: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Agreements active on `as_of` with strict bounds: valid_from < as_of AND (valid_to IS NULL OR valid_to > as_of)."""
    typed = typed_agreements(agreements)
    return (
        typed.filter((pl.col("valid_from") < as_of) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > as_of)))
        .join(products.select("product_id", "display_name", "is_variable", "snapshot_date"), on=["product_id", "snapshot_date"], how="left")
        .select(
            "agreement_id",
            "meterpoint_id",
            product_display_name="display_name",
            is_variable=pl.col("is_variable").cast(pl.Boolean),
            product_id="product_id",
            agreement_valid_from="valid_from",
            agreement_valid_to="valid_to",
            as_of_date=pl.lit(as_of, pl.Date),
            snapshot_date="snapshot_date",
        )
        .sort(["snapshot_date", "agreement_id"])
    )


# Presentation aggregates, run by DuckDB over the silver rows registered as `silver` (Arrow).
# Sums are rounded to the Wh (3 decimals); the readings are delivered with at most 3 decimals.
TOTAL_CONSUMPTION_HALF_HOUR_SQL = """
SELECT interval_start_utc AS interval_start,
       count(DISTINCT meterpoint_id)::BIGINT AS meterpoint_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh,
       settlement_date
FROM silver
GROUP BY interval_start_utc, settlement_date
ORDER BY interval_start
"""

CONSUMPTION_PER_PRODUCT_PER_DAY_SQL = """
SELECT product_display_name,
       settlement_date AS date,
       count(DISTINCT meterpoint_id)::BIGINT AS meterpoint_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh
FROM silver
WHERE agreement_id IS NOT NULL
GROUP BY product_display_name, settlement_date
ORDER BY date, product_display_name
"""

GOLD_AVG_HALF_HOUR_BY_PRODUCT_SQL = """
SELECT interval_start_utc AS interval_start,
       product_display_name,
       avg(consumption_kwh) AS avg_consumption_kwh,
       count(*)::BIGINT AS reading_count,
       settlement_date
FROM silver
WHERE agreement_id IS NOT NULL
GROUP BY interval_start_utc, product_display_name, settlement_date
ORDER BY interval_start, product_display_name
"""

READINGS_WITHOUT_AGREEMENT_SQL = """
SELECT meterpoint_id,
       count(*)::BIGINT AS reading_count,
       round(sum(consumption_kwh), 3) AS total_consumption_kwh,
       min(interval_start_utc) AS first_interval_start,
       max(interval_start_utc) AS last_interval_start,
       settlement_date
FROM silver
WHERE agreement_id IS NULL
GROUP BY meterpoint_id, settlement_date
ORDER BY settlement_date, meterpoint_id
"""


def gold_aggregate_per_half_hour(total: pl.DataFrame) -> pl.DataFrame:
    """The half-hour totals as dashboards use them: UTC and UK local start, average per meterpoint."""
    return total.select(
        "interval_start",
        interval_start_local=pl.col("interval_start").dt.convert_time_zone(UK_TZ).dt.replace_time_zone(None),
        meterpoint_count="meterpoint_count",
        total_consumption_kwh="total_consumption_kwh",
        avg_consumption_kwh_per_meterpoint=(pl.col("total_consumption_kwh") / pl.col("meterpoint_count")).round(6),
        settlement_date="settlement_date",
    )
