"""The plain-script peer (issue 16): what a user could write instead of the lakehouse. Context, not a product.

About 60 lines of polars, as a careful user would write them for the same files and database: polars'
own JSON reader on every file (two threads: both cores), the same rules for unusable rows (unreadable
time or number, off the half-hour, negative or implausible kWh, meterpoint not in the database), the
first row in file order kept for a (meterpoint, UTC half-hour), local -> UTC in Europe/London, the
agreement valid on the reading's UK day by an as-of join (latest-starting agreement with valid_from <=
day, kept if day < valid_to) with its product, silver and the five presentation tables written as Delta
tables. No raw layer, no quarantine table, no ingestion log, no checks, no orchestration, no
incremental runs, no partitions. (The autumn ambiguous hour is not resolved by occurrence: the 90-day
benchmark range has none.) `orjson` is not installed in the project's environment, so polars parses.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.harness import Phases

UK = "Europe/London"
DOC = {"columns": pl.List(pl.String), "data": pl.List(pl.List(pl.String))}
TABLES = ["silver", "active_agreements", "total_consumption_half_hour", "consumption_per_product_per_day",
          "gold_aggregate_per_half_hour", "gold_avg_half_hour_by_product"]  # fmt: skip


def read_file(path: Path) -> pl.DataFrame:
    doc = pl.read_json(path, schema=DOC)
    at = {name: i for i, name in enumerate(doc["columns"][0])}  # columns located by name
    rows = doc.select(pl.col("data").explode())
    return rows.select(pl.col("data").list.get(at[c]).alias(c) for c in ("meterpoint_id", "interval_start", "consumption_delta"))


def run(readings_dir: Path, db_path: Path, out_dir: Path, phases: Phases, as_of: str = "2021-01-01", threads: int = 2) -> dict[str, Any]:
    with phases.phase("script: parse every file") as rec:
        files = sorted(readings_dir.glob("*.json"))
        with ThreadPoolExecutor(threads) as pool:
            raw = pl.concat(list(pool.map(read_file, files)), rechunk=False)  # file order kept: dedupe keeps the first
        rec["rows"] = raw.height
    with phases.phase("script: silver (rules, dedupe, as-of agreements) + Delta write"):
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        sql = lambda q: pl.read_database(q, con, infer_schema_length=None)  # noqa: E731
        agreements = sql("SELECT agreement_id, meterpoint_id, product_id, agreement_valid_from, agreement_valid_to FROM agreement").with_columns(
            valid_from=pl.col("agreement_valid_from").str.to_date(), valid_to=pl.col("agreement_valid_to").str.to_date()
        ).sort("valid_from", "agreement_id")
        products = sql("SELECT product_id, display_name, is_variable FROM product").unique("product_id", keep="first", maintain_order=True)
        meterpoints = sql("SELECT meterpoint_id, region FROM meterpoint").unique("meterpoint_id", keep="first", maintain_order=True)
        con.close()
        local = pl.col("interval_start").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        kwh = pl.col("consumption_delta").str.strip_chars().cast(pl.Float64, strict=False)
        readings = (
            raw.lazy().with_columns(local=local, kwh=kwh)
            .with_columns(utc=pl.col("local").dt.replace_time_zone(UK, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC"))
            .filter(pl.col("utc").is_not_null() & pl.col("local").dt.minute().is_in([0, 30]) & (pl.col("local").dt.second() == 0)
                    & pl.col("kwh").is_between(0, 50) & pl.col("meterpoint_id").is_not_null())
            .join(meterpoints.lazy(), on="meterpoint_id", how="inner", maintain_order="left")
            .unique(["meterpoint_id", "utc"], keep="first", maintain_order=True)
            .with_columns(day=pl.col("local").dt.date())
            .collect()
        )  # fmt: skip
        del raw
        covering = (
            readings.select("meterpoint_id", "day").unique().sort("day")
            .join_asof(agreements, left_on="day", right_on="valid_from", by="meterpoint_id", strategy="backward", check_sortedness=False)
            .filter(pl.col("valid_to").is_null() | (pl.col("day") < pl.col("valid_to")))
            .join(products, on="product_id", how="left")
        )  # fmt: skip
        silver = readings.join(covering, on=["meterpoint_id", "day"], how="left").select(
            "meterpoint_id", interval_start_utc="utc", interval_start_local="local", consumption_kwh="kwh", agreement_id="agreement_id",
            product_id="product_id", product_display_name="display_name", is_variable=pl.col("is_variable").cast(pl.Boolean),
            region="region", settlement_date="day",
        )  # fmt: skip
        del readings
        silver.write_delta(str(out_dir / "silver"), mode="overwrite")
    with phases.phase("script: five presentation tables + Delta writes"):
        day = dt.date.fromisoformat(as_of)
        attributed = silver.lazy().filter(pl.col("agreement_id").is_not_null())
        total = silver.lazy().group_by("interval_start_utc", "settlement_date").agg(
            meterpoint_count=pl.col("meterpoint_id").n_unique(), total_consumption_kwh=pl.col("consumption_kwh").sum().round(3))
        tables = {
            "active_agreements": agreements.lazy().filter((pl.col("valid_from") < day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day)))
            .join(products.lazy(), on="product_id", how="left"),
            "total_consumption_half_hour": total,
            "consumption_per_product_per_day": attributed.group_by("product_display_name", "settlement_date").agg(
                meterpoint_count=pl.col("meterpoint_id").n_unique(), total_consumption_kwh=pl.col("consumption_kwh").sum().round(3)),
            "gold_aggregate_per_half_hour": total.with_columns(
                interval_start_local=pl.col("interval_start_utc").dt.convert_time_zone(UK).dt.replace_time_zone(None),
                avg_consumption_kwh_per_meterpoint=(pl.col("total_consumption_kwh") / pl.col("meterpoint_count")).round(6)),
            "gold_avg_half_hour_by_product": attributed.group_by("interval_start_utc", "product_display_name", "settlement_date").agg(
                avg_consumption_kwh=pl.col("consumption_kwh").mean(), reading_count=pl.len()),
        }  # fmt: skip
        frames = dict(zip(tables, pl.collect_all(tables.values()), strict=True))
        for name, frame in frames.items():
            frame.write_delta(str(out_dir / name), mode="overwrite")
    return {"table_rows": {"silver": silver.height, **{name: f.height for name, f in frames.items()}}}
