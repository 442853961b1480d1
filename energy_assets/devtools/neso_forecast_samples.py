"""Deterministic 48-hour forecasts (`/intensity/{from}/fw48h`, `/regional/intensity/{from}/fw48h`) in the API's
format, and the replay samples of the forecast archive under `data/samples/neso/` (run after changing them):

    python -m energy_assets.devtools.neso_forecast_samples [--out DIR]

A forecast issued at `issued` for a half-hour is the synthetic national intensity (`neso_synthetic`) plus an
error that grows with the lead time and changes from issue to issue, so the archive shows real revisions and
the skill tables show error growing with lead. Regions scale it like `neso_regional_samples`.

The demo's recordings: one issue every `DEMO_EVERY` over the sample days, except a gap (an outage of the
recorder) on 2021-03-27, so the capture-rate check has something honest to say. A recording's fetch time is
the `{from}` of its request (`energy_assets.forecast.client.recorded_issue_times`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from energy_assets import settings
from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.devtools.neso_regional_samples import REGIONS, _noise
from energy_assets.http import replay_path
from energy_assets.neso.client import (
    BOUNDARY_SHIFT,
    FORECAST_HORIZON,
    INTENSITY,
    PERIOD,
    REGIONAL,
    SOURCE,
    UTC,
    api_time,
    forecast_from,
    forecast_path,
    uk_day_bounds_utc,
)

DEMO_EVERY = dt.timedelta(hours=6)
DEMO_GAP = (dt.datetime(2021, 3, 27, 8, 0, tzinfo=UTC), dt.datetime(2021, 3, 27, 16, 0, tzinfo=UTC))


def forecast_starts(from_: dt.datetime) -> list[dt.datetime]:
    """The half-hours a fw48h answer for `{from}` covers: the period holding `from - 1 min` and the 48 h after."""
    first = from_ - BOUNDARY_SHIFT
    first = first.replace(minute=first.minute - first.minute % 30, second=0, microsecond=0)
    return synthetic.period_starts(first, first + FORECAST_HORIZON + PERIOD)


def forecast_value(start: dt.datetime, issued: dt.datetime, factor: float = 1.0, region_id: int = 0) -> int:
    lead_hours = max(0.0, (start - issued).total_seconds() / 3600)
    spread = 6 + 1.1 * lead_hours
    value = synthetic.base_intensity(start) + _noise(f"fw{issued.isoformat()}{start.isoformat()}", spread)
    if region_id:
        value = value * factor + _noise(f"fwr{region_id}{issued.isoformat()}{start.isoformat()}", 6)
    return max(0, int(round(value)))


def national_payload(from_: dt.datetime, issued: dt.datetime) -> dict:
    return {
        "data": [
            {
                "from": api_time(s),
                "to": api_time(s + PERIOD),
                "intensity": {"forecast": (f := forecast_value(s, issued)), "actual": None, "index": synthetic.intensity_index(f)},
            }
            for s in forecast_starts(from_)
        ]
    }


def regional_payload(from_: dt.datetime, issued: dt.datetime) -> dict:
    data = []
    for s in forecast_starts(from_):
        regions = []
        for region_id, dno, short, factor in REGIONS:
            f = forecast_value(s, issued, factor, region_id)
            regions.append(
                {"regionid": region_id, "dnoregion": dno, "shortname": short, "intensity": {"forecast": f, "index": synthetic.intensity_index(f)}}
            )
        data.append({"from": api_time(s), "to": api_time(s + PERIOD), "regions": regions})
    return {"data": data}


def payload_for(path: str, issued: dt.datetime | None = None) -> dict:
    """The answer to a fw48h request path, as published at `issued` (default: the request's `{from}`)."""
    parts = path.strip("/").split("/")
    if parts[-1] != "fw48h":
        raise ValueError(f"not a fw48h path: {path}")
    from_ = dt.datetime.strptime(parts[-2], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    issued = issued or from_
    if parts[:-2] == ["intensity"]:
        return national_payload(from_, issued)
    if parts[:-2] == ["regional", "intensity"]:
        return regional_payload(from_, issued)
    raise ValueError(f"not a fw48h path: {path}")


def demo_issue_times(days: list[dt.date] | None = None) -> list[dt.datetime]:
    """The recorded issues of the demo: every `DEMO_EVERY` over the sample days, none inside `DEMO_GAP`."""
    days = days or [dt.date.fromisoformat(d) for d in settings.SAMPLE_DAYS]
    start, _ = uk_day_bounds_utc(days[0])
    _, end = uk_day_bounds_utc(days[-1])
    out, moment = [], start
    while moment < end:
        if not DEMO_GAP[0] <= moment < DEMO_GAP[1]:
            out.append(forecast_from(moment))
        moment += DEMO_EVERY
    return out


def write_samples(out: Path, issues: list[dt.datetime] | None = None) -> list[Path]:
    written = []
    for issued in issues or demo_issue_times():
        for endpoint in (INTENSITY, REGIONAL):
            path = forecast_path(endpoint, issued)
            file = replay_path(out, SOURCE, path, None)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(payload_for(path, issued), separators=(",", ":")) + "\n", encoding="utf-8")
            written.append(file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m energy_assets.devtools.neso_forecast_samples", description="Write the NESO fw48h forecast replay samples."
    )
    parser.add_argument("--out", type=Path, default=settings.SAMPLES_DIR, help="samples root (default data/samples)")
    args = parser.parse_args(argv)
    files = write_samples(args.out)
    print(f"wrote {len(files)} NESO fw48h sample payloads under {args.out / SOURCE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
