"""Deterministic, format-faithful Electricity Maps payloads: the replay samples and the tests' fixtures.

The numbers are synthetic (a plausible Greek grid: lignite, gas, hydro with pumped storage, wind, solar,
interconnectors to AL, BG, MK, TR and IT) but the JSON has exactly the API v3 shape: camelCase fields,
`"hydro discharge"`/`"battery discharge"` keys with spaces, `null` for production sources the zone does not
have and `0` in consumption, ISO timestamps with milliseconds and `Z`, and a top-level field newer API
versions add (`temporalGranularity`). Values come from a hash of (zone, hour), never from a random state.

Replay files are written at the exact paths the client requests in replay mode (`replay_path` of the shared
session): one `past-range` file per (kind, UTC day) of `settings.SAMPLE_DAYS` for zone GR, plus `latest`
files (the last sample hour) for the sensor.

    python -m energy_assets.devtools.electricity_maps_samples   (or `energy-assets electricity-maps-samples`) [--out data/samples]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
from pathlib import Path

from energy_assets import settings
from energy_assets.electricity_maps.client import SOURCE, day_window, utc_z
from energy_assets.http import replay_path

KNOWN_SOURCES = (
    "nuclear", "geothermal", "biomass", "coal", "wind", "solar", "hydro", "gas", "oil", "unknown",
    "hydro discharge", "battery discharge",
)  # fmt: skip
ABSENT_IN_GR = ("nuclear", "geothermal", "battery discharge")
NEIGHBOURS = ("AL", "BG", "MK", "TR", "IT")
# Lifecycle emission factors (gCO2eq/kWh) used to derive a consistent carbon intensity.
FACTORS = {
    "nuclear": 12, "geothermal": 38, "biomass": 230, "coal": 1100, "wind": 11, "solar": 45, "hydro": 24,
    "gas": 490, "oil": 650, "unknown": 700, "hydro discharge": 150, "battery discharge": 300,
}  # fmt: skip
# Where imported power comes from, for the consumption (flow-traced) breakdown.
IMPORT_MIX = {"nuclear": 0.35, "coal": 0.25, "hydro": 0.2, "gas": 0.2}


def noise(zone: str, when: dt.datetime, name: str) -> float:
    """A deterministic value in [0, 1) for (zone, hour, name)."""
    digest = hashlib.sha256(f"{zone}|{when.isoformat()}|{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def iso_ms(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def hour_values(zone: str, when: dt.datetime) -> dict:
    """Production, imports and exports for one hour (MW), before rounding into the API's shape."""
    h = when.hour + 2  # local hour in Greece (UTC+2/+3), enough for shapes
    sun = max(0.0, math.sin(math.pi * (h - 6.5) / 13.0))
    demand = 5200 + 900 * math.sin(math.pi * (h - 9) / 12.0) ** 2 + 300 * noise(zone, when, "demand")
    production = {
        "biomass": 45 + 10 * noise(zone, when, "biomass"),
        "coal": 700 + 300 * noise(zone, when, "coal"),
        "wind": 600 + 1800 * noise(zone, when.replace(hour=0), "wind") * (0.8 + 0.4 * noise(zone, when, "wind")),
        "solar": 1700 * sun * (0.7 + 0.3 * noise(zone, when, "solar")),
        "hydro": 250 + 700 * max(0.0, math.sin(math.pi * (h - 15) / 8.0)),
        "oil": 150 + 40 * noise(zone, when, "oil"),
        "unknown": 30 + 40 * noise(zone, when, "unknown"),
        # pumped storage: pumping (negative) around midday solar and at night, discharging in the evening
        "hydro discharge": 350 * math.sin(math.pi * (h - 14) / 12.0) - 60 * sun,
    }
    imports = {n: 80 + 420 * noise(zone, when, "imp" + n) for n in NEIGHBOURS}
    exports = {n: 60 * noise(zone, when, "exp" + n) for n in NEIGHBOURS}
    supplied = sum(v for v in production.values() if v > 0) + sum(imports.values()) - sum(exports.values())
    production["gas"] = max(400.0, demand - supplied)
    return {"production": production, "imports": imports, "exports": exports}


def power_row(
    zone: str,
    when: dt.datetime,
    *,
    updated_at: dt.datetime | None = None,
    estimated: bool = False,
    exchanges: bool = True,
) -> dict:
    """One `power-breakdown` hour in API format. `exchanges=False` gives empty maps and null totals."""
    values = hour_values(zone, when)
    production = {k: (None if k in ABSENT_IN_GR else round(values["production"].get(k, 0.0))) for k in KNOWN_SOURCES}
    imports = {n: round(v) for n, v in values["imports"].items()} if exchanges else {}
    exports = {n: round(v) for n, v in values["exports"].items()} if exchanges else {}
    import_total = sum(imports.values()) if exchanges else None
    export_total = sum(exports.values()) if exchanges else None
    pumping = -min(0, production["hydro discharge"])
    production_total = sum(v for v in production.values() if v is not None and v > 0)
    consumption_total = production_total + (import_total or 0) - (export_total or 0) - pumping
    pool = {k: float(v) if v is not None and v > 0 else 0.0 for k, v in production.items()}
    for source, share in IMPORT_MIX.items():
        pool[source] += share * (import_total or 0)
    scale = consumption_total / sum(pool.values())
    consumption = {k: round(v * scale) for k, v in pool.items()}
    consumption_total = sum(consumption.values())
    fossil = sum(consumption[k] for k in ("coal", "gas", "oil", "unknown"))
    renewable = sum(consumption[k] for k in ("biomass", "wind", "solar", "hydro", "geothermal"))
    updated_at = updated_at or when + dt.timedelta(hours=5, minutes=48, seconds=27, milliseconds=926)
    return {
        "zone": zone,
        "datetime": iso_ms(when),
        "updatedAt": iso_ms(updated_at),
        "createdAt": iso_ms(when - dt.timedelta(days=3) + dt.timedelta(minutes=47, seconds=16, milliseconds=265)),
        "powerConsumptionBreakdown": consumption,
        "powerProductionBreakdown": production,
        "powerImportBreakdown": imports,
        "powerExportBreakdown": exports,
        "fossilFreePercentage": round(100 * (consumption_total - fossil) / consumption_total),
        "renewablePercentage": round(100 * renewable / consumption_total),
        "powerConsumptionTotal": consumption_total,
        "powerProductionTotal": production_total,
        "powerImportTotal": import_total,
        "powerExportTotal": export_total,
        "isEstimated": estimated,
        "estimationMethod": "TIME_SLICER_AVERAGE" if estimated else None,
    }


def carbon_row(
    zone: str, when: dt.datetime, *, updated_at: dt.datetime | None = None, estimated: bool = False, exchanges: bool = True
) -> dict:
    """One `carbon-intensity` hour in API format, consistent with `power_row` for the same hour."""
    power = power_row(zone, when, updated_at=updated_at, estimated=estimated, exchanges=exchanges)
    consumption = power["powerConsumptionBreakdown"]
    intensity = sum(consumption[k] * FACTORS[k] for k in consumption) / power["powerConsumptionTotal"]
    return {
        "zone": zone,
        "carbonIntensity": round(intensity),
        "datetime": power["datetime"],
        "updatedAt": power["updatedAt"],
        "createdAt": power["createdAt"],
        "emissionFactorType": "lifecycle",
        "isEstimated": estimated,
        "estimationMethod": power["estimationMethod"],
    }


def hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    count = int((end - start).total_seconds() // 3600)
    return [start + dt.timedelta(hours=i) for i in range(count)]


def row(kind: str, zone: str, when: dt.datetime, **kwargs) -> dict:
    return (carbon_row if kind == "carbon-intensity" else power_row)(zone, when, **kwargs)


def past_range_body(kind: str, zone: str, rows: list[dict]) -> dict:
    return {"zone": zone, "data": rows, "temporalGranularity": "hourly"}


def history_body(kind: str, zone: str, rows: list[dict]) -> dict:
    return {"zone": zone, "history": rows}


# ---------------------------------------------------------------------------------------------- replay files
SAMPLE_ZONE = "GR"
NO_EXCHANGE_HOURS = frozenset({dt.datetime(2021, 3, 27, 3, tzinfo=dt.timezone.utc)})  # interconnector feed gap
ESTIMATED_HOURS = 2  # the newest hours of the last sample day are still estimates


def sample_rows(kind: str, day: dt.date, zone: str = SAMPLE_ZONE) -> list[dict]:
    last = day_window(dt.date.fromisoformat(settings.SAMPLE_DAYS[-1]))[1]
    out = []
    for when in hours(*day_window(day)):
        estimated = when >= last - dt.timedelta(hours=ESTIMATED_HOURS)
        updated = when + dt.timedelta(minutes=48, seconds=27, milliseconds=926) if estimated else None
        out.append(row(kind, zone, when, updated_at=updated, estimated=estimated, exchanges=when not in NO_EXCHANGE_HOURS))
    return out


def write_json(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def generate(samples_dir: Path, zone: str = SAMPLE_ZONE) -> list[Path]:
    """Write the replay payloads for `settings.SAMPLE_DAYS`; returns the files written."""
    written = []
    for kind in ("carbon-intensity", "power-breakdown"):
        for day_text in settings.SAMPLE_DAYS:
            day = dt.date.fromisoformat(day_text)
            start, end = day_window(day)
            params = {"zone": zone, "start": utc_z(start), "end": utc_z(end)}
            path = replay_path(samples_dir, SOURCE, f"/{kind}/past-range", params)
            write_json(path, past_range_body(kind, zone, sample_rows(kind, day, zone)))
            written.append(path)
        last_day = dt.date.fromisoformat(settings.SAMPLE_DAYS[-1])
        latest = sample_rows(kind, last_day, zone)[-1]
        path = replay_path(samples_dir, SOURCE, f"/{kind}/latest", {"zone": zone})
        write_json(path, latest)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="energy-assets electricity-maps-samples",
        description=(
            "Write the Electricity Maps replay samples (carbon intensity and power breakdown of zone GR for the sample "
            "days, `past-range` and `latest`, in the API's recorded format, made by the project) under "
            "OUT/electricity_maps/. Replay acts like a paid key over them. Deterministic."
        ),
    )
    parser.add_argument("--out", type=Path, default=settings.SAMPLES_DIR, help="samples root (default data/samples)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
