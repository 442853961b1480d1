"""Deterministic regional payloads in the API's exact format, and the replay samples under
`data/samples/neso/regional/` (run after changing the client or the data):

    python -m energy_assets.devtools.neso_regional_samples [--out DIR]

Each region's forecast is the NESO domain's synthetic national intensity (`energy_assets.devtools.neso_synthetic`)
scaled by a regional factor (Scotland low, South Wales and the Midlands high) plus a little noise, so the
regional numbers move with the national ones like the real ones do. Samples are written for each sample day
and for the whole sample range (the demo's single run), at the exact paths the client requests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path

from energy_assets import settings
from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.http import replay_path
from energy_assets.neso.client import PERIOD, SOURCE, UTC, api_time, regional_path

# (regionid, dnoregion, shortname, factor of the national intensity) as the API lists them.
REGIONS = (
    (1, "Scottish Hydro Electric Power Distribution", "North Scotland", 0.15),
    (2, "SP Distribution", "South Scotland", 0.3),
    (3, "Electricity North West", "North West England", 0.8),
    (4, "NPG North East", "North East England", 0.6),
    (5, "NPG Yorkshire", "Yorkshire", 1.35),
    (6, "SP Manweb", "North Wales and Merseyside", 0.95),
    (7, "WPD South Wales", "South Wales", 1.45),
    (8, "WPD West Midlands", "West Midlands", 1.15),
    (9, "WPD East Midlands", "East Midlands", 1.3),
    (10, "UKPN East", "East England", 0.9),
    (11, "WPD South West", "South West England", 0.7),
    (12, "SSE South", "South England", 1.05),
    (13, "UKPN London", "London", 1.1),
    (14, "UKPN South East", "South East England", 1.0),
    (15, "England", "England", 1.05),
    (16, "Scotland", "Scotland", 0.22),
    (17, "Wales", "Wales", 1.25),
    (18, "GB", "GB", 1.0),
)


def _noise(key: str, spread: float) -> float:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
    return (h * 2 - 1) * spread


def regional_record(start: dt.datetime) -> dict:
    """One half-hour of `/regional/intensity/{from}/{to}`: 18 regions, forecast and index only."""
    national = synthetic.base_intensity(start)
    mix = synthetic.period_generation(start)["generationmix"]
    regions = []
    for region_id, dno, short, factor in REGIONS:
        forecast = max(0, int(round(national * factor + _noise(f"reg{region_id}{start.isoformat()}", 8))))
        regions.append(
            {
                "regionid": region_id,
                "dnoregion": dno,
                "shortname": short,
                "intensity": {"forecast": forecast, "index": synthetic.intensity_index(forecast)},
                "generationmix": mix,
            }
        )
    return {"from": api_time(start), "to": api_time(start + PERIOD), "regions": regions}


def payload_for(path: str) -> dict:
    """The synthetic API's answer for `/regional/intensity/{from}/{to}`."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["regional", "intensity"] or len(parts) != 4:
        raise ValueError(f"not a regional range path: {path}")
    from_, to = (dt.datetime.strptime(p, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC) for p in parts[2:])
    return {"data": [regional_record(s) for s in synthetic.periods_for_api_range(from_, to)]}


def sample_paths(days: list[dt.date]) -> list[str]:
    """One request per sample day and one for the whole range (what single-partition and demo runs ask)."""
    paths = [regional_path([d]) for d in days]
    if len(days) > 1:
        paths.append(regional_path(days))
    return paths


def write_samples(out: Path) -> list[Path]:
    days = [dt.date.fromisoformat(d) for d in settings.SAMPLE_DAYS]
    written = []
    for path in sample_paths(days):
        file = replay_path(out, SOURCE, path, None)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(payload_for(path), separators=(",", ":")) + "\n", encoding="utf-8")
        written.append(file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="energy-assets neso-regional-samples",
        description=(
            "Write the NESO regional replay samples (17 regions and GB for the sample days, in the API's recorded "
            "format, made by the project) under OUT/neso/regional/. Deterministic."
        ),
    )
    parser.add_argument("--out", type=Path, default=settings.SAMPLES_DIR, help="samples root (default data/samples)")
    args = parser.parse_args(argv)
    files = write_samples(args.out)
    print(f"wrote {len(files)} NESO regional sample payloads under {args.out / SOURCE / 'regional'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
