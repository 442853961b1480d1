"""Generate the NESO replay samples in `data/samples/neso/` (deterministic; run after changing the client).

    python -m energy_assets.devtools.neso_samples [--out DIR]

For the UK days in `settings.SAMPLE_DAYS` (2021-03-28 is the spring clock change: 46 half-hours) it writes,
at the exact replay paths the client requests (`energy_assets.http.replay_path`):

- `/intensity/{from}/{to}` and `/generation/{from}/{to}` for every contiguous run of sample days, so any
  partition or partition range of the sample days replays (one request per range, as in live mode);
- `/intensity/date/{date}` for each day.

Data come from `synthetic.py` as seen a month later (all actuals in), except one settled half-hour whose
actual is missing (2021-03-27T12:00Z), as the real API sometimes has: silver flags it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from energy_assets import settings
from energy_assets.devtools import neso_synthetic as synthetic
from energy_assets.http import replay_path
from energy_assets.neso.client import GENERATION, INTENSITY, SOURCE, UTC, chunk_path

OBSERVED_AT = dt.datetime(2021, 4, 30, tzinfo=UTC)
MISSING_ACTUALS = frozenset({dt.datetime(2021, 3, 27, 12, 0, tzinfo=UTC)})


def sample_days() -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in settings.SAMPLE_DAYS]


def payload_for(path: str) -> dict:
    """The synthetic API's answer for a request path (range or date)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["intensity", "date"]:
        starts = synthetic.uk_day_starts(dt.date.fromisoformat(parts[2]))
        return synthetic.intensity_payload(starts, OBSERVED_AT, 0, MISSING_ACTUALS)
    endpoint, start, end = parts
    starts = synthetic.periods_for_api_range(
        dt.datetime.strptime(start, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC),
        dt.datetime.strptime(end, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC),
    )
    if endpoint == INTENSITY:
        return synthetic.intensity_payload(starts, OBSERVED_AT, 0, MISSING_ACTUALS)
    return synthetic.generation_payload(starts)


def sample_paths(days: list[dt.date]) -> list[str]:
    paths = []
    for i in range(len(days)):
        for j in range(i, len(days)):
            run = days[i : j + 1]
            for endpoint in (INTENSITY, GENERATION):
                paths.append(chunk_path(endpoint, run))
    paths += [f"/intensity/date/{d.isoformat()}" for d in days]
    return paths


def write_samples(out: Path) -> list[Path]:
    written = []
    for path in sample_paths(sample_days()):
        file = replay_path(out, SOURCE, path, None)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(payload_for(path)) + "\n", encoding="utf-8")
        written.append(file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="energy-assets neso-samples",
        description=(
            "Write the NESO replay samples (intensity and generation mix for the sample days, in the API's recorded "
            "format, made by the project) under OUT/neso/. `energy-assets demo` and ENERGY_ASSETS_SOURCE=replay "
            "answer NESO requests from them. Deterministic: running it again rewrites the same files."
        ),
    )
    parser.add_argument("--out", type=Path, default=settings.SAMPLES_DIR, help="samples root (default data/samples)")
    args = parser.parse_args(argv)
    files = write_samples(args.out)
    print(f"wrote {len(files)} NESO sample payloads under {args.out / SOURCE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
