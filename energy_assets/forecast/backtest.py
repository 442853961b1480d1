"""Decision backtest: every decision the carbon-aware scheduler would have made from the archive, against what
the chosen window really had. Pure functions of frames.

For each archived issue, region and duration (DURATIONS_MINUTES), the decision made at the issue time with a
24-hour deadline (`choose`); then the intensity the chosen window and the run-now window (the earliest start)
really had: national against the final actual, regional against the final-forecast stand-in (`skill`), each
only when every half-hour of both windows has its reference (else the realised columns are null and
`realised_missing_half_hours` says how many are missing). Realised saving = run-now - chosen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from energy_assets.forecast import skill
from energy_assets.forecast.archive import NATIONAL_REGION_ID
from energy_assets.forecast.windows import DURATIONS_MINUTES, WindowError, choose
from energy_assets.neso.client import PERIOD

DEADLINE_AFTER = dt.timedelta(hours=24)

BACKTEST_SCHEMA = pl.Schema(
    {
        "region_id": pl.Int16,
        "reference": pl.String,
        "issued_at": pl.Datetime("us", "UTC"),
        "duration_minutes": pl.Int32,
        "deadline": pl.Datetime("us", "UTC"),
        "chosen_start": pl.Datetime("us", "UTC"),
        "run_now_start": pl.Datetime("us", "UTC"),
        "predicted_window_gco2_per_kwh": pl.Float64,
        "predicted_now_gco2_per_kwh": pl.Float64,
        "predicted_saving_gco2_per_kwh": pl.Float64,
        "realised_window_gco2_per_kwh": pl.Float64,
        "realised_now_gco2_per_kwh": pl.Float64,
        "realised_saving_gco2_per_kwh": pl.Float64,
        "realised_saving_fraction": pl.Float64,
        "realised_missing_half_hours": pl.Int32,
    }
)


def references(archive: pl.DataFrame, intensity: pl.DataFrame) -> dict[tuple[int, dt.datetime], float]:
    """(region_id, period_start) -> the reference value (final actual national, final forecast regional)."""
    out: dict[tuple[int, dt.datetime], float] = {}
    for start, value, status in skill.final_actuals(intensity).rows():
        if status == "scored":
            out[(NATIONAL_REGION_ID, start)] = value
    for region, start, value, _ in skill.final_forecasts(archive).rows():
        out[(region, start)] = value
    return out


def backtest(archive: pl.DataFrame, intensity: pl.DataFrame, durations: Sequence[int] = DURATIONS_MINUTES) -> pl.DataFrame:
    if archive.is_empty():
        return pl.DataFrame(schema=BACKTEST_SCHEMA)
    refs = references(archive, intensity)
    rows = []
    for (region, issued), issue in archive.group_by("region_id", "issued_at"):
        deadline = issued + DEADLINE_AFTER
        for minutes in durations:
            try:
                c = choose(issue, issued, minutes, deadline)
            except WindowError:
                continue
            if c.run_now is None:
                continue
            half_hours = [c.best.start + PERIOD * i for i in range(minutes // 30)] + [c.run_now.start + PERIOD * i for i in range(minutes // 30)]
            values = [refs.get((region, s)) for s in half_hours]
            missing = sum(v is None for v in values)
            k = minutes // 30
            realised_window = None if missing else sum(values[:k]) / k
            realised_now = None if missing else sum(values[k:]) / k
            saving = None if missing else realised_now - realised_window
            rows.append(
                {
                    "region_id": region,
                    "reference": skill.FINAL_ACTUAL if region == NATIONAL_REGION_ID else skill.FINAL_FORECAST,
                    "issued_at": issued,
                    "duration_minutes": minutes,
                    "deadline": deadline,
                    "chosen_start": c.best.start,
                    "run_now_start": c.run_now.start,
                    "predicted_window_gco2_per_kwh": c.best.mean_gco2_per_kwh,
                    "predicted_now_gco2_per_kwh": c.run_now.mean_gco2_per_kwh,
                    "predicted_saving_gco2_per_kwh": c.saving_gco2_per_kwh,
                    "realised_window_gco2_per_kwh": realised_window,
                    "realised_now_gco2_per_kwh": realised_now,
                    "realised_saving_gco2_per_kwh": saving,
                    "realised_saving_fraction": saving / realised_now if saving is not None and realised_now else None,
                    "realised_missing_half_hours": missing,
                }
            )
    return pl.DataFrame(rows, schema=BACKTEST_SCHEMA).sort("region_id", "issued_at", "duration_minutes")
