"""Fetching the 48-hour forecasts through the NESO client (`NesoClient.fetch_forecast`), live or from recordings.

Live: one issue is the national and the regional fw48h answer fetched now; its fetch time is the issue time.
Past issues cannot be fetched: the API keeps no history of its forecasts, so a missed half-hour stays missed.

Replay (`ENERGY_ASSETS_SOURCE=replay`): the recordings under `<samples>/neso/intensity/<from>/fw48h.json` are
the issues; a recording's fetch time is the `{from}` of its request (the recorder asked for the half-hour in
progress), so replayed issues keep the time they were recorded, not the time of the replay.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from energy_assets.neso.client import INTENSITY, REGIONAL, SOURCE, FetchedResponse, NesoClient, parse_api_time, uk_today

FORECAST_FILE = "fw48h.json"


def recorded_issue_times(samples_dir: Path, days: Sequence[dt.date]) -> list[dt.datetime]:
    """The recorded national issues whose UK day is in `days` (replay mode), oldest first."""
    root = Path(samples_dir) / SOURCE / INTENSITY
    found = []
    for file in root.glob(f"*/{FORECAST_FILE}"):
        try:
            moment = parse_api_time(file.parent.name.replace("_", ":"))
        except ValueError:
            continue
        if uk_today(moment) in set(days):
            found.append(moment)
    return sorted(found)


def fetch_issue(neso: NesoClient, now: dt.datetime, recorded: bool = False) -> list[FetchedResponse]:
    """The national and the regional forecast as published at `now` (one issue). `recorded`: a replayed
    recording, whose fetch time is `now` (its recording time) rather than the replay's clock."""
    out = []
    for endpoint in (INTENSITY, REGIONAL):
        fetched = neso.fetch_forecast(endpoint, now)
        out.append(dataclasses.replace(fetched, fetched_at=now) if recorded else fetched)
    return out
