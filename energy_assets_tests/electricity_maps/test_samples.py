"""The replay samples are reproducible from committed code and sit where the client looks in replay mode."""

import datetime as dt
import filecmp
import json

from energy_assets import settings
from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.client import ElectricityMapsResource
from energy_assets.http import HttpSession


def test_generated_samples_equal_the_committed_files(tmp_path):
    written = samples.generate(tmp_path)
    assert len(written) == 2 * (len(settings.SAMPLE_DAYS) + 1)
    for path in written:
        committed = settings.SAMPLES_DIR / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} missing: run python -m energy_assets.devtools.electricity_maps_samples"
        assert filecmp.cmp(path, committed, shallow=False), f"{committed} differs from the generator's output"


def test_samples_have_the_api_shape_and_the_quirks():
    body = json.loads(next((settings.SAMPLES_DIR / "electricity_maps" / "power-breakdown").glob("past-range__*2021-03-27T00_00_00Z_zone_GR.json")).read_text())
    assert set(body) == {"zone", "data", "temporalGranularity"} and len(body["data"]) == 24
    row = body["data"][3]
    assert row["datetime"].endswith(".000Z") and row["powerProductionBreakdown"]["nuclear"] is None
    assert row["powerConsumptionBreakdown"]["nuclear"] is not None
    assert "hydro discharge" in row["powerProductionBreakdown"]
    assert any(r["powerProductionBreakdown"]["hydro discharge"] < 0 for r in body["data"])


def test_the_replay_client_reads_each_sample_day_and_latest():
    em = ElectricityMapsResource(http=HttpSession(source_mode="replay", min_interval_s=0.0), api_key="").api()
    days = [dt.date.fromisoformat(d) for d in settings.SAMPLE_DAYS]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for kind in ("carbon-intensity", "power-breakdown"):
        fetches = em.fetch_days(kind, "GR", days, now=now)
        assert [f.dates for f in fetches] == [(d,) for d in days] and all(f.ok for f in fetches)
        latest = em.latest(kind, "GR").json()
        assert latest["datetime"] == "2021-03-29T23:00:00.000Z" and latest["isEstimated"] is True
