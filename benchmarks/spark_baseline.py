"""The Spark baseline: the smart-meter work done the way a Spark lakehouse pipeline does it.

PySpark, `local[2]`, default settings except the driver memory (the default 1 GiB cannot hold the job's
broadcast and shuffle buffers for 8.6 M readings). Medallion style, like the pipelines this project
replaces:

1. silver: `spark.read.json` of every reading file (`multiLine`, explicit schema of the split-orient layout),
   `explode` the rows, cast, `dropDuplicates(["meterpoint_id", "interval_start"])`, local time to UTC
   (`to_utc_timestamp(..., "Europe/London")`), left join the agreements valid at the reading's date
   (half-open `[valid_from, valid_to)`; where agreements overlap, the one that started last, by a
   `row_number()` window) and their products and the meterpoint region, write Parquet;
2. presentation: read the silver Parquet back and write the five business tables as Parquet
   (active agreements as of a date, total per half-hour, per product per day, the dashboard half-hour
   aggregate, average per reading per half-hour per product).

The SQLite database is read with Python's sqlite3 and handed to Spark (`createDataFrame`): a Spark pipeline
would use JDBC, but the SQLite JDBC driver cannot be downloaded here; the tables are small (thousands of
rows), so this costs Spark nothing measurable.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from benchmarks.harness import Phases

DEFAULT_DRIVER_MEMORY = "4g"


def _read_db(spark, db_path: Path):
    from pyspark.sql.types import DateType, IntegerType, LongType, StringType, StructField, StructType

    con = sqlite3.connect(db_path)
    try:
        agreements = con.execute(
            "SELECT agreement_id, agreement_valid_from, agreement_valid_to, product_id, meterpoint_id, account_id FROM agreement"
        ).fetchall()
        products = con.execute("SELECT product_id, display_name, is_variable FROM product").fetchall()
        meterpoints = con.execute("SELECT meterpoint_id, region FROM meterpoint").fetchall()
    finally:
        con.close()

    def day(text):
        return None if text is None else dt.date.fromisoformat(text)

    agreement_schema = StructType(
        [
            StructField("agreement_id", LongType()),
            StructField("valid_from", DateType()),
            StructField("valid_to", DateType()),
            StructField("product_id", StringType()),
            StructField("meterpoint_id", StringType()),
            StructField("account_id", StringType()),
        ]
    )
    agreement_df = spark.createDataFrame(
        [(a, day(f), day(t), p, m, acc) for a, f, t, p, m, acc in agreements], agreement_schema
    )
    product_df = spark.createDataFrame(
        products,
        StructType(
            [StructField("product_id", StringType()), StructField("product_display_name", StringType()), StructField("is_variable", IntegerType())]
        ),
    )
    meterpoint_df = spark.createDataFrame(
        meterpoints, StructType([StructField("meterpoint_id", StringType()), StructField("region", StringType())])
    )
    return agreement_df, product_df, meterpoint_df


def run(readings_dir: Path, db_path: Path, out_dir: Path, phases: Phases, as_of: str = "2021-01-01",
        master: str = "local[2]", driver_memory: str = DEFAULT_DRIVER_MEMORY) -> dict[str, Any]:
    from pyspark.sql import SparkSession
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    out_dir.mkdir(parents=True, exist_ok=True)
    with phases.phase("spark session start"):
        spark = (
            SparkSession.builder.master(master)
            .appName("energy_assets smart-meter baseline")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")

    try:
        with phases.phase("silver: read JSON, dropDuplicates, join agreements/products, write Parquet") as rec:
            split_schema = StructType(
                [StructField("columns", ArrayType(StringType())), StructField("data", ArrayType(ArrayType(StringType())))]
            )
            raw = spark.read.schema(split_schema).option("multiLine", True).json(str(readings_dir))
            readings = (
                raw.select(F.explode("data").alias("r"))
                .select(
                    F.col("r")[2].alias("meterpoint_id"),
                    F.col("r")[0].alias("interval_start"),
                    F.col("r")[1].cast("double").alias("consumption_kwh"),
                )
                .dropDuplicates(["meterpoint_id", "interval_start"])
                .withColumn("interval_start_local", F.to_timestamp("interval_start", "yyyy-MM-dd HH:mm:ss"))
                .withColumn("interval_start_utc", F.to_utc_timestamp("interval_start_local", "Europe/London"))
                .withColumn("reading_date", F.to_date("interval_start_local"))
            )
            agreements, products, meterpoints = _read_db(spark, db_path)
            agreed = agreements.join(F.broadcast(products), "product_id", "left")
            r = readings.alias("r")
            a = agreed.alias("a")
            cond = (
                (F.col("r.meterpoint_id") == F.col("a.meterpoint_id"))
                & (F.col("r.reading_date") >= F.col("a.valid_from"))
                & (F.col("a.valid_to").isNull() | (F.col("r.reading_date") < F.col("a.valid_to")))
            )
            silver = (
                r.join(F.broadcast(a), cond, "left")
                .select(
                    "r.meterpoint_id",
                    "r.interval_start_utc",
                    "r.interval_start_local",
                    "r.reading_date",
                    "r.consumption_kwh",
                    "a.agreement_id",
                    "a.product_id",
                    "a.product_display_name",
                    "a.is_variable",
                    F.col("a.valid_from").alias("a_valid_from"),
                )
                .join(F.broadcast(meterpoints), "meterpoint_id", "left")
            )
            # overlapping agreements: a reading belongs to one agreement, the one that started last
            newest_first = Window.partitionBy("meterpoint_id", "interval_start_utc").orderBy(
                F.col("a_valid_from").desc_nulls_last(), F.col("agreement_id").desc_nulls_last()
            )
            silver = (
                silver.withColumn("_rank", F.row_number().over(newest_first))
                .filter(F.col("_rank") == 1)
                .drop("_rank", "a_valid_from")
            )
            silver.write.mode("overwrite").parquet(str(out_dir / "silver_smart_meter_readings"))

        with phases.phase("presentation: five aggregates from silver Parquet, write Parquet") as rec2:
            s = spark.read.parquet(str(out_dir / "silver_smart_meter_readings"))
            as_of_lit = F.lit(as_of).cast("date")
            active = (
                agreements.filter((F.col("valid_from") < as_of_lit) & (F.col("valid_to").isNull() | (F.col("valid_to") > as_of_lit)))
                .join(F.broadcast(products), "product_id", "left")
                .select("agreement_id", "meterpoint_id", "product_display_name", "is_variable", "valid_from", "valid_to")
            )
            total_hh = s.groupBy(F.col("interval_start_utc").alias("interval_start")).agg(
                F.countDistinct("meterpoint_id").alias("meterpoint_count"), F.sum("consumption_kwh").alias("total_consumption_kwh")
            )
            per_product_day = (
                s.filter(F.col("product_display_name").isNotNull())
                .groupBy("product_display_name", F.col("reading_date").alias("date"))
                .agg(F.countDistinct("meterpoint_id").alias("meterpoint_count"), F.sum("consumption_kwh").alias("total_consumption_kwh"))
            )
            gold_hh = s.groupBy(F.col("interval_start_utc").alias("interval_start")).agg(
                F.countDistinct("meterpoint_id").alias("meterpoint_count"),
                F.sum("consumption_kwh").alias("total_consumption_kwh"),
                F.avg("consumption_kwh").alias("avg_consumption_kwh"),
                F.count(F.lit(1)).alias("reading_count"),
            )
            avg_by_product = (
                s.filter(F.col("product_display_name").isNotNull())
                .groupBy(F.col("interval_start_utc").alias("interval_start"), "product_display_name")
                .agg(F.avg("consumption_kwh").alias("avg_consumption_kwh"))
            )
            outputs = {
                "active_agreements": active,
                "total_consumption_half_hour": total_hh,
                "consumption_per_product_per_day": per_product_day,
                "gold_aggregate_per_half_hour": gold_hh,
                "gold_avg_half_hour_by_product": avg_by_product,
            }
            for name, frame in outputs.items():
                frame.write.mode("overwrite").parquet(str(out_dir / name))

        with phases.phase("verify (not part of the work)"):
            counts = {name: spark.read.parquet(str(out_dir / name)).count() for name in ["silver_smart_meter_readings", *outputs]}
            silver_rows = counts["silver_smart_meter_readings"]
            unattributed = spark.read.parquet(str(out_dir / "silver_smart_meter_readings")).filter(F.col("agreement_id").isNull()).count()
            total_kwh = spark.read.parquet(str(out_dir / "total_consumption_half_hour")).agg(F.sum("total_consumption_kwh")).first()[0]
        rec["rows"] = silver_rows
        rec2["rows"] = silver_rows
        return {"table_rows": counts, "silver_rows": silver_rows, "unattributed_rows": unattributed, "total_kwh": total_kwh}
    finally:
        spark.stop()
