"""Deterministic, realistic-looking NESO data in the API's exact format.

Shared by the replay samples (`samples.py`) and the local fake API (`fake_api.py`). Every value is a pure
function of the period's start time, the observer's "now" and a revision number:

- `forecast` follows a daily shape plus period-specific noise; until a period has ended it is revised:
  each revision moves it by a few gCO2/kWh (as the real API's forecasts move);
- `actual` appears 30 minutes after the period ends (like the real API), else it is `null`;
- `index` follows `actual` when present, else `forecast`;
- the generation mix (9 fuels, percentages summing to 100) is consistent with the intensity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Collection

from energy_assets.neso.client import PERIOD, UK, UTC, api_time, uk_day_bounds_utc

ACTUAL_DELAY = dt.timedelta(minutes=30)
FUELS = ("biomass", "coal", "imports", "gas", "nuclear", "other", "hydro", "solar", "wind")


def _noise(key: str, spread: float) -> float:
    """A deterministic value in [-spread, spread] for `key`."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
    return (h * 2 - 1) * spread


def intensity_index(value: int) -> str:
    if value < 60:
        return "very low"
    if value < 140:
        return "low"
    if value < 220:
        return "moderate"
    if value < 330:
        return "high"
    return "very high"


def _local_hour(start: dt.datetime) -> float:
    local = start.astimezone(UK)
    return local.hour + local.minute / 60


def base_intensity(start: dt.datetime) -> float:
    hour = _local_hour(start)
    day = start.astimezone(UK).toordinal()
    daily = 45 * math.sin(2 * math.pi * (hour - 10) / 24)  # high in the evening peak, low before dawn
    weather = 40 * math.sin(day / 3.1)  # windy and calm spells over days
    return max(25.0, 190 + daily + weather + _noise(f"base{start.isoformat()}", 12))


def period_intensity(
    start: dt.datetime, now: dt.datetime, revision: int = 0, missing_actual: bool = False
) -> dict:
    """One record of `/intensity/...` as the API writes it."""
    end = start + PERIOD
    base = base_intensity(start)
    forecast = base + _noise(f"fc{start.isoformat()}", 18)
    if now < end:  # forecasts of periods not yet over are revised
        forecast += _noise(f"rev{revision}{start.isoformat()}", 6)
    forecast_i = int(round(forecast))
    actual = None
    if now >= end + ACTUAL_DELAY and not missing_actual:
        actual = int(round(base + _noise(f"ac{start.isoformat()}", 4)))
    return {
        "from": api_time(start),
        "to": api_time(end),
        "intensity": {
            "forecast": forecast_i,
            "actual": actual,
            "index": intensity_index(actual if actual is not None else forecast_i),
        },
    }


def period_generation(start: dt.datetime) -> dict:
    """One record of `/generation/{from}/{to}`: 9 fuels, `perc` with one decimal, summing to 100."""
    base = base_intensity(start)
    hour = _local_hour(start)
    solar = max(0.0, 9 * math.sin(math.pi * (hour - 6) / 12)) if 6 <= hour <= 18 else 0.0
    mix = {
        "biomass": 6.0 + _noise(f"bio{start}", 1),
        "coal": 1.0 if base > 200 else 0.0,
        "imports": 9.0 + _noise(f"imp{start}", 3),
        "gas": min(60.0, base / 4.2),
        "nuclear": 16.0 + _noise(f"nuc{start}", 1),
        "other": 0.5,
        "hydro": 1.5 + _noise(f"hyd{start}", 0.5),
        "solar": solar,
    }
    mix = {k: round(v, 1) for k, v in mix.items()}
    wind = round(100 - sum(mix.values()), 1)
    if wind < 0:
        mix["gas"] = round(mix["gas"] + wind, 1)
        wind = 0.0
    mix["wind"] = wind
    return {
        "from": api_time(start),
        "to": api_time(start + PERIOD),
        "generationmix": [{"fuel": fuel, "perc": mix[fuel]} for fuel in FUELS],
    }


def period_starts(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Half-hour starts in [start, end), aligned to :00/:30 UTC."""
    first = start.astimezone(UTC).replace(second=0, microsecond=0)
    if first.minute % 30:
        first += dt.timedelta(minutes=30 - first.minute % 30)
    out = []
    while first < end:
        out.append(first)
        first += PERIOD
    return out


def periods_for_api_range(from_: dt.datetime, to: dt.datetime) -> list[dt.datetime]:
    """Which half-hours the API returns for `/{from}/{to}`: a `from` on :00/:30 belongs to the previous period."""
    # Periods whose end is at or after `from` and whose start is before `to`.
    return period_starts(from_ - PERIOD, to)


def intensity_payload(starts, now, revision=0, missing_actuals: Collection[dt.datetime] = ()) -> dict:
    return {"data": [period_intensity(s, now, revision, s in missing_actuals) for s in starts]}


def generation_payload(starts) -> dict:
    return {"data": [period_generation(s) for s in starts]}


def uk_day_starts(day: dt.date) -> list[dt.datetime]:
    start, end = uk_day_bounds_utc(day)
    return period_starts(start, end)
