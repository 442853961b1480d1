"""Partition definitions, in one place so that domains line up.

- UK sources (NESO, smart meter) use UK settlement days: daily partitions in `Europe/London`, so a
  partition is a local day of 46, 48 or 50 half-hours.
- Electricity Maps uses UTC days combined with a zone dimension (`2024-07-04|GR`).
- The per-meterpoint smart-meter assets use UK settlement days, or, with `SMART_METER_BUCKETS` = N > 1, UK
  days x meterpoint bucket ("0".."N-1"), so one day runs as N independent runs (see
  `energy_assets/smart_meter/buckets.py`).
Today's partition exists (`end_offset=1`) so that sensors can keep the current day fresh.
"""

from __future__ import annotations

from energy_assets import settings

from dagster import DailyPartitionsDefinition, MultiPartitionsDefinition, StaticPartitionsDefinition

UK_TIMEZONE = "Europe/London"
UK_START_DATE = "2018-05-11"  # the NESO Carbon Intensity API's first full UK day
ELECTRICITY_MAPS_START_DATE = "2021-01-01"
DEFAULT_ZONES = "GR"

uk_settlement_days = DailyPartitionsDefinition(
    start_date=UK_START_DATE, timezone=UK_TIMEZONE, end_offset=1
)

utc_days = DailyPartitionsDefinition(start_date=ELECTRICITY_MAPS_START_DATE, timezone="UTC", end_offset=1)


def electricity_maps_zones() -> list[str]:
    """`ELECTRICITY_MAPS_ZONES`: comma-separated zone keys (default `GR`)."""
    return list(settings.graph().electricity_maps_zones)


zone_partitions = StaticPartitionsDefinition(electricity_maps_zones())

utc_day_by_zone = MultiPartitionsDefinition({"date": utc_days, "zone": zone_partitions})


def smart_meter_bucket_count() -> int:
    """`SMART_METER_BUCKETS` (default 1), read once at load."""
    return settings.graph().smart_meter_buckets


def smart_meter_partitions(buckets: int) -> DailyPartitionsDefinition | MultiPartitionsDefinition:
    """The partitions of the per-meterpoint smart-meter assets for a bucket count: UK days for 1, else UK days x
    bucket (dimensions `date` and `bucket`)."""
    if buckets <= 1:
        return uk_settlement_days
    return MultiPartitionsDefinition(
        {"date": uk_settlement_days, "bucket": StaticPartitionsDefinition([str(i) for i in range(buckets)])}
    )


uk_day_by_meterpoint_bucket = smart_meter_partitions(smart_meter_bucket_count())
