"""The fake API speaks the real format and quirks; the committed samples are exactly what the generator writes
and replay through the client."""

import datetime as dt
import json

import requests

from energy_assets import settings
from energy_assets.http import HttpSession
from energy_assets.devtools import neso_samples as samples
from energy_assets.neso.client import GENERATION, INTENSITY, UTC, NesoClient, usability_problem

D = dt.date


def get(url):
    resp = requests.get(url, timeout=5)
    return resp.status_code, resp.text


def test_fake_api_boundary_rule_and_shapes(fake_api):
    status, text = get(fake_api + "/intensity/2024-01-01T00:00Z/2024-01-01T01:00Z")
    data = json.loads(text)["data"]
    assert status == 200 and [r["from"] for r in data] == ["2023-12-31T23:30Z", "2024-01-01T00:00Z", "2024-01-01T00:30Z"]
    status, text = get(fake_api + "/intensity/2024-01-01T00:01Z/2024-01-01T01:00Z")
    assert [r["from"] for r in json.loads(text)["data"]] == ["2024-01-01T00:00Z", "2024-01-01T00:30Z"]
    status, text = get(fake_api + "/generation/2024-01-01T00:01Z/2024-01-01T01:00Z")
    assert usability_problem(text, GENERATION) is None and len(json.loads(text)["data"][0]["generationmix"]) == 9
    status, text = get(fake_api + "/intensity/2024-01-01T00:01Z/2024-01-20T00:00Z")
    assert status == 400 and "error" in json.loads(text)
    status, text = get(fake_api + "/intensity/2024-01-01/2024-01-02")
    assert status == 400 and "ISO8601" in text


def test_fake_api_actuals_appear_and_forecasts_get_revised(fake_api, fake_state, clock):
    clock.now = dt.datetime(2024, 7, 4, 12, 0, tzinfo=UTC)
    url = fake_api + "/intensity/2024-07-04T11:01Z/2024-07-04T13:00Z"  # 11:00, 11:30, 12:00, 12:30
    before = json.loads(get(url)[1])["data"]
    assert [r["intensity"]["actual"] is None for r in before] == [False, True, True, True]
    fake_state.manual_revision += 1
    clock.now += dt.timedelta(minutes=30)
    after = json.loads(get(url)[1])["data"]
    assert [r["intensity"]["actual"] is None for r in after] == [False, False, True, True]
    assert after[3]["intensity"]["forecast"] != before[3]["intensity"]["forecast"] or after[2] != before[2]


def test_fake_api_fault_switch_over_http(fake_api):
    assert json.loads(get(fake_api + "/_control?fault=empty&count=1")[1])["fault"] == "empty"
    assert get(fake_api + "/intensity/date/2024-07-04")[1] == "{}"
    status, text = get(fake_api + "/intensity/date/2024-07-04")  # count=1: recovered
    assert status == 200 and len(json.loads(text)["data"]) == 48
    get(fake_api + "/_control?fault=500")
    assert get(fake_api + "/intensity")[0] == 500
    get(fake_api + "/_control?fault=none")
    status, text = get(fake_api + "/intensity")
    assert status == 200 and json.loads(text)["data"][0]["intensity"]["actual"] is not None


def test_committed_samples_are_exactly_what_the_generator_writes(tmp_path):
    files = samples.write_samples(tmp_path)
    # neso/regional/ belongs to the regional domain and fw48h.json to the forecast archive
    # (energy_assets.devtools.neso_forecast_samples); this generator owns the rest of neso/intensity and neso/generation
    committed = sorted(
        p.relative_to(settings.SAMPLES_DIR)
        for sub in ("intensity", "generation")
        for p in (settings.SAMPLES_DIR / "neso" / sub).rglob("*.json")
        if p.name != "fw48h.json"
    )
    assert sorted(p.relative_to(tmp_path) for p in files) == committed
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (settings.SAMPLES_DIR / rel).read_bytes(), rel


def test_samples_replay_through_the_client_for_every_sample_range():
    client = NesoClient(http=HttpSession(source_mode=settings.REPLAY), base_url="https://api.carbonintensity.org.uk")
    days = samples.sample_days()
    for endpoint in (INTENSITY, GENERATION):
        (resp,) = client.fetch_days(endpoint, days)
        assert resp.ok, resp.problem
        assert len(json.loads(resp.body)["data"]) == 48 + 48 + 46 + 48
    clock_change = client.fetch_intensity_for_date(D(2021, 3, 28))
    assert len(json.loads(clock_change.body)["data"]) == 46


def test_fake_api_revision_control_over_http(fake_api, fake_state):
    """`/_control?revision=+1` as documented: a raw `+` in a query string arrives as a space."""
    before = fake_state.manual_revision
    assert requests.get(fake_api + "/_control?revision=+1", timeout=5).status_code == 200
    assert requests.get(fake_api + "/_control?revision=%2B2", timeout=5).status_code == 200
    assert fake_state.manual_revision == before + 3
