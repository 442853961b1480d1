"""The mapping from the utility's meterpoint regions to NESO Carbon Intensity region ids.

NESO publishes regional intensity for 14 DNO regions (1..14) plus the nations England (15), Scotland (16),
Wales (17) and GB (18). The utility's `meterpoint.region` names its 13 regions differently (the 14 GB DNO
areas without North Scotland); each maps to exactly one DNO region. A region not listed here (a new name,
a typo, NULL) is *unmapped*: its readings fall back to the national intensity, and the footprint asset and
its check report it.
"""

from __future__ import annotations

import polars as pl

NESO_REGIONS: dict[int, str] = {
    1: "North Scotland",
    2: "South Scotland",
    3: "North West England",
    4: "North East England",
    5: "Yorkshire",
    6: "North Wales and Merseyside",
    7: "South Wales",
    8: "West Midlands",
    9: "East Midlands",
    10: "East England",
    11: "South West England",
    12: "South England",
    13: "London",
    14: "South East England",
    15: "England",
    16: "Scotland",
    17: "Wales",
    18: "GB",
}

# Smart-meter region name (as in the utility's `meterpoint` table) -> NESO DNO region id.
SMART_METER_REGION_TO_NESO: dict[str, int] = {
    "Southern Scotland": 2,
    "North Western England": 3,
    "North Eastern England": 4,
    "Yorkshire": 5,
    "Merseyside and Northern Wales": 6,
    "Southern Wales": 7,
    "West Midlands": 8,
    "East Midlands": 9,
    "Eastern England": 10,
    "South Western England": 11,
    "Southern England": 12,
    "London": 13,
    "South Eastern England": 14,
}

REGION_MAP_SCHEMA = pl.Schema({"region": pl.String, "neso_region_id": pl.Int16, "neso_region_name": pl.String})


def region_map_frame(mapping: dict[str, int] | None = None) -> pl.DataFrame:
    """The mapping as a join table: region, neso_region_id, neso_region_name."""
    mapping = SMART_METER_REGION_TO_NESO if mapping is None else mapping
    unknown = sorted(set(mapping.values()) - set(NESO_REGIONS))
    if unknown:
        raise ValueError(f"region mapping points at NESO region ids that do not exist: {unknown}")
    return pl.DataFrame(
        {
            "region": list(mapping),
            "neso_region_id": list(mapping.values()),
            "neso_region_name": [NESO_REGIONS[i] for i in mapping.values()],
        },
        schema=REGION_MAP_SCHEMA,
    )


def unmapped_regions(readings: pl.DataFrame, mapping: dict[str, int] | None = None) -> pl.DataFrame:
    """Regions of `readings` with no NESO region (NULL included), with their reading and meterpoint counts."""
    mapping = SMART_METER_REGION_TO_NESO if mapping is None else mapping
    return (
        readings.filter(pl.col("region").is_null() | ~pl.col("region").is_in(list(mapping)))
        .group_by("region")
        .agg(pl.len().alias("readings"), pl.col("meterpoint_id").n_unique().alias("meterpoints"))
        .sort("readings", "region", descending=[True, False], nulls_last=True)
    )
