"""Hand-made frames in the column contracts of the upstream silver tables (smart meter, NESO national and regional)."""

import datetime as dt

import polars as pl

UTC = dt.timezone.utc
TS = pl.Datetime("us", "UTC")


def t(text: str) -> dt.datetime:
    """'2021-03-28T10:00' -> aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def readings(rows: list[dict]) -> pl.DataFrame:
    """silver/smart_meter_readings rows: meterpoint_id, interval_start_utc, consumption_kwh, product..., region."""
    base = {"product_id": "VAR-17-01-11", "product_display_name": "Flexible Octopus", "is_variable": True, "region": "London"}
    full = [{**base, **r} for r in rows]
    df = pl.DataFrame(
        full,
        schema={
            "meterpoint_id": pl.String,
            "interval_start_utc": TS,
            "consumption_kwh": pl.Float64,
            "product_id": pl.String,
            "product_display_name": pl.String,
            "is_variable": pl.Boolean,
            "region": pl.String,
        },
    )
    return df.with_columns(
        pl.col("interval_start_utc").dt.convert_time_zone("Europe/London").dt.replace_time_zone(None).alias("interval_start_local"),
        pl.col("interval_start_utc").dt.convert_time_zone("Europe/London").dt.date().alias("settlement_date"),
    )


def national(rows: list[dict]) -> pl.DataFrame:
    """silver/neso_carbon_intensity rows: period_start, forecast, actual, index, data_quality_flag."""
    df = pl.DataFrame(
        [{"actual_gco2_per_kwh": None, "data_quality_flag": None, "intensity_index": "moderate", **r} for r in rows],
        schema={
            "period_start": TS,
            "forecast_gco2_per_kwh": pl.Int32,
            "actual_gco2_per_kwh": pl.Int32,
            "intensity_index": pl.String,
            "data_quality_flag": pl.String,
        },
    )
    return df.with_columns(
        (pl.col("period_start") + pl.duration(minutes=30)).alias("period_end"),
        pl.col("period_start").dt.convert_time_zone("Europe/London").dt.date().alias("settlement_date"),
    )


def regional(rows: list[dict]) -> pl.DataFrame:
    """silver/neso_regional_intensity rows: period_start, region_id, forecast, index."""
    df = pl.DataFrame(
        [{"intensity_index": "moderate", **r} for r in rows],
        schema={"period_start": TS, "region_id": pl.Int16, "forecast_gco2_per_kwh": pl.Int32, "intensity_index": pl.String},
    )
    return df.with_columns(
        (pl.col("period_start") + pl.duration(minutes=30)).alias("period_end"),
        pl.col("period_start").dt.convert_time_zone("Europe/London").dt.date().alias("settlement_date"),
    )


def day_of_data(day: dt.date, meterpoints: dict[str, str], kwh: float = 0.5, national_value: int = 200, regional_value: int = 100):
    """A full UK day: every half-hour, each meterpoint (id -> region) reading `kwh`; national and regional for
    every half-hour (regional only for London, id 13)."""
    from zoneinfo import ZoneInfo

    uk = ZoneInfo("Europe/London")
    start = dt.datetime.combine(day, dt.time(0), tzinfo=uk).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=uk).astimezone(UTC)
    starts = pl.datetime_range(start, end, "30m", closed="left", time_zone="UTC", eager=True).to_list()
    r = readings([{"meterpoint_id": mp, "interval_start_utc": s, "consumption_kwh": kwh, "region": region} for mp, region in meterpoints.items() for s in starts])
    n = national([{"period_start": s, "forecast_gco2_per_kwh": national_value + 10, "actual_gco2_per_kwh": national_value, "intensity_index": "moderate"} for s in starts])
    g = regional([{"period_start": s, "region_id": 13, "forecast_gco2_per_kwh": regional_value, "intensity_index": "low"} for s in starts])
    return r, n, g
