"""Silver, pure: raw rows -> one row per (meterpoint_id, interval_start_utc) plus every other row in quarantine
(with the reason), attributed to the agreement, product and region valid on the reading's day. Polars frames in,
frames out; no Dagster, no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from energy_assets.smart_meter.ingestion import UK_TZ

# A domestic supply above ~100 kW is not a home meter: 50 kWh in half an hour is implausible.
MAX_PLAUSIBLE_KWH = 50.0


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


def typed_products(raw: pl.DataFrame) -> pl.DataFrame:
    """One row per product_id (the first delivered), with is_variable as a boolean."""
    return raw.unique("product_id", keep="first").select("product_id", "display_name", pl.col("is_variable").cast(pl.Boolean))


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

    `agreements`, `products`, `meterpoints` are the database's tables as delivered (raw, one version of each:
    the lake keeps them versioned by content); an agreement applies to a reading by its validity dates.

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
        pairs.join(typed, on="meterpoint_id", how="inner")
        .filter(
            (pl.col("valid_from") <= pl.col("settlement_date"))
            & (pl.col("valid_to").is_null() | (pl.col("settlement_date") < pl.col("valid_to")))
        )
        .sort(["valid_from", "agreement_id"], descending=True)
        .group_by(["meterpoint_id", "settlement_date"], maintain_order=True)
        .agg(pl.all().first(), covering_agreement_count=pl.len())
        .select("meterpoint_id", "settlement_date", "agreement_id", "valid_from", "valid_to", "product_id", "covering_agreement_count")
    )
    prod = typed_products(products)
    mp = meterpoints.unique("meterpoint_id", keep="first").select("meterpoint_id", "region")
    return (
        pairs.join(covering, on=["meterpoint_id", "settlement_date"], how="left")
        .join(prod, on="product_id", how="left")
        .join(mp, on="meterpoint_id", how="left")
    )


def quarantine_reasons(quarantine: pl.DataFrame) -> list[dict]:
    """Quarantined and duplicate rows per disposition and reason code, most frequent first."""
    return (
        quarantine.group_by("disposition", pl.col("reason").str.extract(r"^([a-z_]+)"))
        .len()
        .sort("len", descending=True)
        .to_dicts()
    )
