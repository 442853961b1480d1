"""The Electricity Maps key never leaks: a sentinel key, a hostile loopback server that echoes every request
header (the `auth-token` among them) back in its bodies, successful and failing materialisations and sensor
ticks on a real on-disk Dagster instance, then a scan of everything the system kept or said.

Scanned: captured log records and stderr/stdout, every event log record of every run (serialised in full:
step failure messages, causes and stacks, materialisation and check metadata), run configs, tags, the
exceptions raised, every row and column of every Delta table, and the raw bytes of every file under the
instance's home and the lake (SQLite event log, compute logs, Delta logs and parquet).

Also: a base URL that carries a token in its query (`?token=...`, a configuration mistake) is shown redacted.
"""

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    build_sensor_context,
    materialize,
)
from dagster._serdes import serialize_value
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.assets import build_assets
from energy_assets.electricity_maps.checks import build_checks
from energy_assets.electricity_maps.client import ElectricityMapsError, ElectricityMapsResource, resource_from_env
from energy_assets.electricity_maps.sensors import build_sensor
from energy_assets.http import HttpSession, safe_url
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource

SENTINEL = "SENTINEL-KEY-9f3a"
URL_TOKEN = "URLTOKEN-5e1d-77"
GR_ONLY = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1),
        "zone": StaticPartitionsDefinition(["GR"]),
    }
)
ASSETS = build_assets(GR_ONLY)
CHECKS = build_checks(GR_ONLY)
SENSOR = build_sensor(AssetSelection.assets(*ASSETS))


class EchoingApi:
    """Answers like Electricity Maps, but every body also carries the request's headers; `mode` picks the status."""

    def __init__(self):
        self.mode = "200"
        self.seen_keys: list[str] = []

    def __call__(self, request: Request) -> Response:
        headers = dict(request.headers)
        self.seen_keys.append(headers.get("Auth-Token", ""))
        echo = {"echo": {"headers": headers, "note": "request headers, echoed by a careless proxy"}}
        if self.mode in ("401", "403", "500"):
            body = {"error": f"denied for {headers.get('Auth-Token')}", "message": f"headers were {headers}", **echo}
            return Response(json.dumps(body), status=int(self.mode), content_type="application/json")
        kind = request.path.split("/")[2]
        if request.path.endswith("/latest"):
            now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
            return Response(json.dumps({**samples.row(kind, "GR", now), **echo}), content_type="application/json")
        start = dt.datetime.fromisoformat(request.args["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(request.args["end"].replace("Z", "+00:00"))
        rows = [{**samples.row(kind, "GR", h), **echo} for h in samples.hours(start, end)]
        return Response(json.dumps({**samples.past_range_body(kind, "GR", rows), **echo}), content_type="application/json")


@pytest.fixture
def echo_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    api = EchoingApi()
    server.expect_request(re.compile(".*")).respond_with_handler(api)
    server.start()
    yield server, api
    server.stop()


def quick_http() -> HttpSession:
    return HttpSession(connect_timeout_s=0.5, read_timeout_s=1.0, max_attempts=2, backoff_base_s=0.01,
                       backoff_max_s=0.02, max_total_wait_s=0.2, min_interval_s=0.0)  # fmt: skip


def scan_files(root: Path, *secrets: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return hits


def scan_tables(lake: Path, *secrets: str) -> list[str]:
    hits = []
    for log_dir in lake.rglob("_delta_log"):
        table = log_dir.parent
        text = pl.read_delta(str(table)).select(pl.all().cast(pl.String)).write_csv()
        hits += [f"{table}: {s}" for s in secrets if s in text]
    return hits


def run_texts(instance: DagsterInstance, result) -> list[str]:
    run = instance.get_run_by_id(result.run_id)
    texts = [json.dumps(run.run_config, default=str), json.dumps(run.tags, default=str)]
    texts += [serialize_value(record) for record in instance.all_logs(result.run_id)]
    texts += [str(e.event_specific_data.error) + str(e.event_specific_data.error.stack) for e in result.get_step_failure_events()]
    for mat in result.get_asset_materialization_events():
        texts.append(json.dumps({k: str(v.value) for k, v in mat.materialization.metadata.items()}))
    for check in result.get_asset_check_evaluations():
        texts.append(json.dumps({k: str(v.value) for k, v in check.metadata.items()}))
    return texts


def test_the_sentinel_key_appears_nowhere_after_successes_failures_and_sensor_ticks(
    echo_server, tmp_path, monkeypatch, caplog, capfd
):
    server, api = echo_server
    monkeypatch.setenv("ELECTRICITY_MAPS_API_KEY", SENTINEL)
    monkeypatch.setenv("ELECTRICITY_MAPS_API_BASE_URL", server.url_for("/v3"))
    monkeypatch.setenv("ELECTRICITY_MAPS_PAID_TIER", "true")
    monkeypatch.setenv("ELECTRICITY_MAPS_ZONES", "GR")
    caplog.set_level("DEBUG")
    home, lake = tmp_path / "dagster_home", tmp_path / "lake"
    home.mkdir()
    lake.mkdir()
    resources = {"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake))), "http": quick_http(), "electricity_maps": resource_from_env(quick_http())}
    texts: list[str] = []
    outcomes = {}
    with DagsterInstance.local_temp(tempdir=str(home)) as instance:
        for day, mode in [("2024-03-05", "200"), ("2024-03-06", "401"), ("2024-03-07", "403"), ("2024-03-08", "500"), ("2024-03-09", "200")]:
            api.mode = mode
            result = materialize([*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False,
                                 partition_key=MultiPartitionKey({"date": day, "zone": "GR"}))  # fmt: skip
            outcomes[mode] = outcomes.get(mode, []) + [result.success]
            texts += run_texts(instance, result)
        # a raised exception, as a caller outside Dagster sees it
        api.mode = "401"
        with pytest.raises(ElectricityMapsError) as raised:
            ElectricityMapsResource(http=quick_http(), api_key=SENTINEL, base_url=server.url_for("/v3")).api().latest("carbon-intensity", "GR")
        texts += [str(raised.value), repr(raised.value)]
        # sensor ticks against failing and working API
        for mode in ("500", "401", "200"):
            api.mode = mode
            with build_sensor_context(instance=instance, resources={"electricity_maps": resource_from_env(quick_http())}) as ctx:
                outcome = SENSOR(ctx)
            texts.append(repr(outcome))
        assert outcome.run_requests  # the last tick (API working) asked for runs

    assert outcomes == {"200": [True, True], "401": [False], "403": [False], "500": [False]}
    assert api.seen_keys and set(api.seen_keys) == {SENTINEL}  # the key really was sent, and echoed back
    bronze = pl.read_delta(str(lake / "bronze/electricity_maps_carbon_intensity"))
    assert bronze["body"].str.contains('"echo"').all()  # the echoed headers were in the bodies kept...
    assert bronze.filter(pl.col("http_status") == 500).height == 1  # ... including the failed answer's
    captured = capfd.readouterr()
    texts += [r.getMessage() for r in caplog.records if r.name != "werkzeug"] + [captured.out, captured.err]
    assert [t for t in texts if SENTINEL in t] == []
    assert scan_tables(lake, SENTINEL) == []
    assert scan_files(lake, SENTINEL) == []
    assert scan_files(home, SENTINEL) == []


def test_a_token_in_the_base_url_is_redacted_in_errors_logs_and_events(echo_server, tmp_path, monkeypatch, caplog):
    server, api = echo_server
    api.mode = "500"
    monkeypatch.setenv("ELECTRICITY_MAPS_API_KEY", SENTINEL)
    monkeypatch.setenv("ELECTRICITY_MAPS_API_BASE_URL", server.url_for("/v3") + f"?token={URL_TOKEN}")
    monkeypatch.setenv("ELECTRICITY_MAPS_PAID_TIER", "true")
    caplog.set_level("DEBUG")
    lake = tmp_path / "lake"
    lake.mkdir()
    resources = {"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake))), "http": quick_http(), "electricity_maps": resource_from_env(quick_http())}
    with DagsterInstance.ephemeral() as instance:
        result = materialize([*ASSETS, *CHECKS], resources=resources, instance=instance, raise_on_error=False,
                             partition_key=MultiPartitionKey({"date": "2024-03-05", "zone": "GR"}))  # fmt: skip
        texts = run_texts(instance, result)
    assert not result.success
    # the 500 is kept in bronze and the blocking check fails, naming the request with the token masked
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed and all("token=***" in e.description for e in failed)
    texts += [r.getMessage() for r in caplog.records if r.name != "werkzeug"]  # werkzeug: the test server's own log
    assert any("token=***" in r.getMessage() for r in caplog.records if r.name.startswith("urllib3"))
    assert [t for t in texts if URL_TOKEN in t or SENTINEL in t] == []
    assert scan_tables(lake, URL_TOKEN, SENTINEL) == []
    assert safe_url(f"https://h/v3?token={URL_TOKEN}&zone=GR") == "https://h/v3?token=***&zone=GR"
