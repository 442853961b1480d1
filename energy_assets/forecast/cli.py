"""`energy-assets greenest`: the greenest time to run a load, from the newest forecast in the lake.

    energy-assets greenest --region London --duration 2h --within 24h [--json] [--now 2021-03-29T18:05Z]

`--region`: 0 or "national" (default), 1..17 or a region's name (e.g. "North Scotland", "london"), 18 or "GB".
`--within`: the deadline, counted from now (the load must have finished by then); default: the forecast's end.
`--now`: the moment to decide from (default: now; the newest issue made by then is used).
Exit status 2 with a message naming the problem: unknown region, a duration beyond the horizon, no forecast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import polars as pl

from energy_assets import settings
from energy_assets.forecast import skill
from energy_assets.forecast.archive import ARCHIVE_SCHEMA, NATIONAL_NAME
from energy_assets.forecast.windows import WindowError, choice_record, choose, newest_issue, parse_duration
from energy_assets.lake.store import Lake
from energy_assets.neso.client import FORECAST_HORIZON, UTC

ALIASES = {"national": 0, "gb": 18}


class CommandError(ValueError):
    pass


def region_id(text: str, names: dict[int, str]) -> int:
    """A region id from an id or a name (case-insensitive), checked against the regions in the archive."""
    t = text.strip()
    if t.isdigit():
        rid = int(t)
        if rid not in range(19):
            raise CommandError(f"unknown region {text!r}: ids are 0 (national), 1..17 and 18 (GB)")
        return rid
    key = t.lower()
    if key in ALIASES:
        return ALIASES[key]
    matches = [rid for rid, name in names.items() if name and name.lower() == key]
    if not matches:
        known = ", ".join(f"{rid} {name}" for rid, name in sorted(names.items()))
        raise CommandError(f"unknown region {text!r}; known: {known or '0 national, 1..17, 18 GB (no forecast archived yet)'}")
    return matches[0]


def parse_moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--now {text!r} is not an ISO time such as 2021-03-29T18:05Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def greenest(lake: Lake, region: str, duration: str, within: str | None, now: dt.datetime) -> dict:
    try:
        minutes = parse_duration(duration)
        within_minutes = parse_duration(within) if within else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if minutes > FORECAST_HORIZON.total_seconds() / 60:
        raise CommandError(f"duration {duration} is longer than the forecast horizon ({FORECAST_HORIZON.total_seconds() / 3600:g} h)")
    archive = lake.read("silver/neso_forecast_archive", schema=ARCHIVE_SCHEMA, columns=None)
    names = dict(archive.select("region_id", "region_shortname").unique("region_id").rows()) if archive.height else {}
    names.setdefault(0, NATIONAL_NAME)
    rid = region_id(region, names)
    rows = newest_issue(archive.filter((pl.col("region_id") == rid) & (pl.col("issued_at") <= now)))
    if rows.is_empty():
        raise CommandError(
            f"no forecast in the lake at {lake.root} for region {rid} issued by {now:%Y-%m-%d %H:%M}Z: run the "
            "forecast archive (neso_forecast_archive_sensor, or `energy-assets demo` offline)"
        )
    rmse = skill.latest_rolling_rmse(lake.read("gold/neso_forecast_skill", schema=skill.SKILL_SCHEMA)).filter(pl.col("region_id") == rid)
    deadline = now + dt.timedelta(minutes=within_minutes) if within_minutes else None
    try:
        choice = choose(rows, now, minutes, deadline, {b: r for _, b, r in rmse.rows()})
    except WindowError as exc:
        raise CommandError(str(exc)) from None
    age = now - choice.issued_at
    return {
        "region_id": rid,
        "region": names.get(rid, str(rid)),
        "now": now.isoformat(),
        "forecast_age_minutes": round(age.total_seconds() / 60),
        "deadline": deadline.isoformat() if deadline else None,
        **choice_record(choice),
        "summary": choice.describe(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets greenest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", default="national", help="id (0 national, 1..17, 18 GB) or name")
    parser.add_argument("--duration", default="1h", help="how long the load runs: 30m, 1h, 2h, 1h30m ...")
    parser.add_argument("--within", default=None, help="finish within this long from now (default: the forecast's end)")
    parser.add_argument("--now", default=None, help="decide as of this UTC time (default: now)")
    parser.add_argument("--lake", default=None, help=f"lake root (default: {settings.LAKE_URI_VARIABLE})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        now = parse_moment(args.now) if args.now else dt.datetime.now(UTC)
        result = greenest(Lake.from_settings(args.lake), args.region, args.duration, args.within, now)
    except CommandError as exc:
        print(f"energy-assets greenest: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['region']} (region {result['region_id']}), {result['duration_minutes']} min: {result['summary']}")
    print(f"  start {result['best']['start']}  end {result['best']['end']}  (forecast issued {result['issued_at']}, {result['forecast_age_minutes']} min ago)")
    sd, p = result["best"]["sd_gco2_per_kwh"], result["p_not_better_than_now"]
    if sd is not None:
        print(f"  95% band {max(0, result['best']['mean_gco2_per_kwh'] - 1.96 * sd):.0f}-{result['best']['mean_gco2_per_kwh'] + 1.96 * sd:.0f} g/kWh")
    if p is not None:
        print(f"  chance it is not really greener than now: {p:.0%}")
    if result["forecast_age_minutes"] > 120:
        print("  warning: the forecast is more than 2 h old", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
