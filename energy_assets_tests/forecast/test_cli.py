"""`energy-assets greenest`: answers from the lake, and clear errors."""

import datetime as dt
import json

import deltalake
import polars as pl
import pytest

from energy_assets.forecast.cli import main
from energy_assets_tests.forecast.test_scheduling import ISSUE, VALUES, issue


@pytest.fixture
def lake(tmp_path):
    root = tmp_path / "lake"
    london = issue(region=13).with_columns(pl.lit("London").alias("region_shortname"))
    deltalake.write_deltalake(str(root / "silver" / "neso_forecast_archive"), pl.concat([issue(), london]).to_arrow())
    return str(root)


def test_json_answer_by_region_name(lake, capsys):
    assert main(["--lake", lake, "--region", "london", "--duration", "2h", "--within", "6h", "--now", "2024-01-10T00:10Z", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["region_id"] == 13 and out["region"] == "London"
    assert out["best"]["start"] == "2024-01-10T02:30:00+00:00" and out["best"]["mean_gco2_per_kwh"] == 61.0
    assert out["summary"] == "02:30-04:30, 61 g/kWh against 180 now, -66%"
    assert out["p_not_better_than_now"] is None  # no skill table yet: no probability invented


def test_text_answer_for_national(lake, capsys):
    assert main(["--lake", lake, "--duration", "30m", "--now", "2024-01-10T00:10Z"]) == 0
    assert capsys.readouterr().out.startswith("National (region 0), 30 min: 02:30-03:00, 60 g/kWh against 180 now, -67%")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--region", "Atlantis"], "unknown region 'Atlantis'; known: 0 National, 13 London"),
        (["--region", "42"], "unknown region '42': ids are 0 (national), 1..17 and 18 (GB)"),
        (["--duration", "49h"], "duration 49h is longer than the forecast horizon (48 h)"),
        (["--duration", "45m"], "must be a positive multiple of 30 minutes"),
        (["--duration", "4h", "--within", "3h"], "no 240-minute window starts at or after 2024-01-10 00:00Z and ends by 2024-01-10 03:10Z"),
        (["--now", "2024-01-09T12:00Z"], "no forecast in the lake at"),
    ],
)
def test_errors_name_the_problem(lake, capsys, args, message):
    argv = ["--lake", lake, "--now", "2024-01-10T00:10Z", *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_empty_lake_says_there_is_no_forecast(tmp_path, capsys):
    assert main(["--lake", str(tmp_path / "nothing"), "--now", "2024-01-10T00:10Z"]) == 2
    assert "no forecast in the lake" in capsys.readouterr().err
