"""API fault matrix for both APIs (NESO national, Electricity Maps), through real Dagster materialisations.

A loopback server (pytest-httpserver on 127.0.0.1) answers in each API's own format (NESO: the project's fake
API `energy_assets.devtools.neso_fake_api.answer`; Electricity Maps: `energy_assets.devtools.electricity_maps_samples`) and
injects one fault: refused connection, read timeout, 429 with and without Retry-After, 500/502/503, HTTP 200
with `{}`, truncated JSON, a 200 text/html error page, a payload missing its data member, one with extra fields.

- transient (the fault clears after one request, or the server comes up while the client backs off): the run
  succeeds, silver/gold are built exactly as without the fault;
- persistent: the run fails naming the request; silver and gold keep their Delta version; when an answer
  arrived, bronze holds it verbatim with the problem;
- extra fields: ignored, the run succeeds with the same silver;
- the domain's sensor, evaluated during each persistent fault, skips without raising, and requests runs once
  the API recovers.
"""

import datetime as dt
import json
import re
import shutil
import socket
import threading
import time

import polars as pl
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    SensorResult,
    SkipReason,
    StaticPartitionsDefinition,
    build_sensor_context,
    materialize,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from energy_assets.devtools.neso_fake_api import FakeNesoState, answer
from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.assets import build_assets
from energy_assets.electricity_maps.checks import build_checks
from energy_assets.electricity_maps.client import ElectricityMapsResource
from energy_assets.electricity_maps.sensors import build_sensor
from energy_assets.http import HttpSession
from energy_assets.jobs import build_jobs
from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.lake.store import Lake
from energy_assets.neso.assets import NESO_ASSETS
from energy_assets.neso.checks import NESO_CHECKS
from energy_assets.neso.client import NesoClient
from energy_assets.neso.sensors import neso_carbon_intensity_poller

EM_KEY = "emk-faults-test-key"
EM_DAY = "2024-03-06"
NESO_DAY = "2024-07-04"
NESO_PATH = "/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z"
EM_PATH = "/v3/carbon-intensity/past-range"

GR_ONLY = MultiPartitionsDefinition(
    {
        "date": DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1),
        "zone": StaticPartitionsDefinition(["GR"]),
    }
)
EM_ASSETS = build_assets(GR_ONLY)
EM_CHECKS = build_checks(GR_ONLY)
EM_SENSOR = build_sensor(AssetSelection.assets(*EM_ASSETS))

EM_TABLES = {
    "bronze": "bronze/electricity_maps_carbon_intensity",
    "silver": "silver/electricity_maps_energy",
    "downstream": ["silver/electricity_maps_energy", "silver/electricity_maps_exchanges",
                   "silver/electricity_maps_quarantine", "gold/electricity_maps_ml_features"],
}  # fmt: skip
NESO_TABLES = {
    "bronze": "bronze/neso_carbon_intensity",
    "silver": "silver/neso_carbon_intensity",
    "downstream": ["silver/neso_carbon_intensity", "silver/neso_carbon_intensity_quarantine",
                   "gold/neso_carbon_intensity_features"],
    # auxiliary (energy_assets.bronze.AUXILIARY_RULE): not blocked, rebuilt from usable answers only, so unchanged
    "auxiliary": ["silver/neso_generation_mix"],
}  # fmt: skip

ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>upstream is down for maintenance</body></html>"


def session(**overrides) -> HttpSession:
    values = dict(connect_timeout_s=0.5, read_timeout_s=0.4, max_attempts=5, backoff_base_s=0.1, backoff_max_s=0.2,
                  max_total_wait_s=2.5, min_interval_s=0.0)  # fmt: skip
    return HttpSession(**{**values, **overrides})


# ---------------------------------------------------------------------------------------------- good answers
def neso_good(request: Request, state=FakeNesoState(revise_every_s=0)) -> tuple[int, dict, str]:
    return answer(state, request.path)


def em_good(request: Request) -> tuple[int, dict, str]:
    kind = request.path.split("/")[2]
    zone = request.args.get("zone", "GR")
    if request.path.endswith("/latest"):
        now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        return 200, {}, json.dumps(samples.row(kind, zone, now))
    start = dt.datetime.fromisoformat(request.args["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(request.args["end"].replace("Z", "+00:00"))
    rows = [samples.row(kind, zone, h) for h in samples.hours(start, end)]
    return 200, {}, json.dumps(samples.past_range_body(kind, zone, rows))


def _drop_list_member(text: str) -> str:
    """The payload without its records (`data`/`history`), or for `latest` without `datetime`."""
    body = json.loads(text)
    if not any(isinstance(v, list) for v in body.values()):
        return json.dumps({k: v for k, v in body.items() if k != "datetime"})
    return json.dumps({k: v for k, v in body.items() if not isinstance(v, list)})


def _add_extra_fields(text: str) -> str:
    body = json.loads(text)
    body["newTopLevelField"] = {"added": "by a future API version"}
    for value in body.values():
        if isinstance(value, list):
            for record in value:
                if isinstance(record, dict):
                    record["someNewField"] = 42
    return json.dumps(body)


class FaultyApi:
    """A request handler answering `good` except for the first `times` data requests (None: all) of `fault`."""

    def __init__(self, good, fault: str, times: int | None):
        self.good, self.fault, self.remaining = good, fault, times
        self.log: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()

    def set(self, fault: str, times: int | None = None):
        with self.lock:
            self.fault, self.remaining = fault, times

    def __call__(self, request: Request) -> Response:
        with self.lock:
            fault = self.fault if (self.remaining is None or self.remaining > 0) else "none"
            if self.remaining:
                self.remaining -= 1
        status, headers, body = self.good(request)
        content_type = "application/json"
        if fault == "timeout":
            time.sleep(0.6)  # longer than the client's read timeout
        elif fault in ("500", "502", "503"):
            status, body = int(fault), json.dumps({"error": {"code": f"{fault} Server Error", "message": "try later"}})
        elif fault == "429":
            status, body = 429, json.dumps({"error": "Too Many Requests"})
        elif fault == "429_retry_after":
            status, headers, body = 429, {"Retry-After": "1"}, json.dumps({"error": "Too Many Requests"})
        elif fault == "empty":
            status, body = 200, "{}"
        elif fault == "truncated":
            body = body[: len(body) // 2]
        elif fault == "html":
            status, body, content_type = 200, ERROR_PAGE, "text/html; charset=utf-8"
        elif fault == "missing":
            body = _drop_list_member(body)
        elif fault == "extra":
            body = _add_extra_fields(body)
        with self.lock:
            self.log.append((time.monotonic(), request.path, status))
        return Response(body, status=status, headers=headers, content_type=content_type)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A loopback server for one API; `refused` until `start()` for the refused-connection cases."""

    def __init__(self, handler: FaultyApi, start: bool = True):
        self.handler = handler
        self.port = free_port()
        self.server = HTTPServer(host="127.0.0.1", port=self.port, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(handler)
        if start:
            self.server.start()

    def start_later(self, delay_s: float):
        timer = threading.Timer(delay_s, self.server.start)
        timer.start()
        return timer

    def stop(self):
        if self.server.is_running():
            self.server.stop()


# ---------------------------------------------------------------------------------------------- runs
def em_resources(lake, base_url, http=None):
    return {
        "io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake))),
        "electricity_maps": ElectricityMapsResource(http=http or session(), api_key=EM_KEY, base_url=base_url, paid_tier=True),
    }


def neso_resources(lake, base_url, http=None):
    return {"io_manager": DeltaLakeIOManager(lake=LakeResource(root_uri=str(lake))), "neso": NesoClient(http=http or session(), base_url=base_url)}


def run_em(lake, base_url, instance):
    return materialize(
        [*EM_ASSETS, *EM_CHECKS], resources=em_resources(lake, base_url), instance=instance, raise_on_error=False,
        partition_key=MultiPartitionKey({"date": EM_DAY, "zone": "GR"}),
    )  # fmt: skip


def run_neso(lake, base_url, instance):
    defs = Definitions(assets=NESO_ASSETS, asset_checks=NESO_CHECKS, jobs=build_jobs(NESO_ASSETS), resources=neso_resources(lake, base_url))
    job = defs.get_job_def("uk_days_job")
    tags = {"dagster/asset_partition_range_start": NESO_DAY, "dagster/asset_partition_range_end": NESO_DAY}
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


APIS = {
    "neso": dict(good=neso_good, run=run_neso, tables=NESO_TABLES, path=NESO_PATH, url=lambda port: f"http://127.0.0.1:{port}"),
    "electricity_maps": dict(good=em_good, run=run_em, tables=EM_TABLES, path=EM_PATH, url=lambda port: f"http://127.0.0.1:{port}/v3"),
}


def version(lake, table):
    """The table's Delta version; None only when it does not exist in this lake."""
    return Lake(str(lake)).version(table)


def failure_text(result, instance) -> str:
    """Everything the failed run says: step failures (message and cause) and failed check metadata."""
    parts = [str(e.event_specific_data.error) for e in result.get_step_failure_events()]
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            parts += [f"{k}={v.value}" for k, v in check.metadata.items()]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    """Per API, a lake where the partition was built once without faults (copied by every test)."""
    out = {}
    for name, api in APIS.items():
        lake = tmp_path_factory.mktemp(f"baseline_{name}") / "lake"
        lake.mkdir()
        server = Api(FaultyApi(api["good"], "none", None))
        try:
            with DagsterInstance.ephemeral() as instance:
                result = api["run"](lake, api["url"](server.port), instance)
            assert result.success
        finally:
            server.stop()
        out[name] = lake
    return out


def fresh_lake(baselines, name, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(baselines[name], lake)
    return lake


# 500, 502 and 503 (and 429 with or without Retry-After) take the same path through the session: each is run
# transient or persistent, not both (500 persistent is also in energy_assets_tests/neso), to keep the runtime down.
TRANSIENT = ["refused", "timeout", "429_retry_after", "500", "empty", "truncated", "html"]
PERSISTENT = ["refused", "timeout", "429", "502", "503", "empty", "truncated", "html", "missing"]


@pytest.mark.parametrize("name", list(APIS))
@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_transient_fault_is_retried_and_the_run_builds_the_same_tables(baselines, tmp_path, instance, name, fault):
    api, tables = APIS[name], APIS[name]["tables"]
    lake = fresh_lake(baselines, name, tmp_path)
    silver_before = pl.read_delta(str(lake / tables["silver"]))
    handler = FaultyApi(api["good"], "none" if fault == "refused" else fault, None if fault == "refused" else 1)
    server = Api(handler, start=fault != "refused")
    timer = server.start_later(0.2) if fault == "refused" else None  # the API comes up while the client backs off
    try:
        result = api["run"](lake, api["url"](server.port), instance)
    finally:
        if timer:
            timer.join()
        server.stop()
    assert result.success, failure_text(result, instance)
    first = [entry for entry in handler.log if entry[1].startswith(api["path"])]
    if fault == "refused":
        assert first and first[0][2] == 200  # nothing answered before the server came up; then it did
    else:
        assert len(first) >= 2 and first[-1][2] == 200  # the fault was retried until the good answer
    if fault == "429_retry_after":
        assert first[1][0] - first[0][0] >= 0.9  # Retry-After: 1 was honoured (not the 0.1 s backoff)
    silver = pl.read_delta(str(lake / tables["silver"]))
    assert silver.height == silver_before.height > 0
    assert all(version(lake, t) is not None for t in tables["downstream"])


@pytest.mark.parametrize("name", list(APIS))
@pytest.mark.parametrize("fault", PERSISTENT)
def test_a_persistent_fault_fails_the_run_naming_the_request_keeps_the_answer_and_writes_nothing_downstream(
    baselines, tmp_path, instance, name, fault
):
    api, tables = APIS[name], APIS[name]["tables"]
    lake = fresh_lake(baselines, name, tmp_path)
    before = {t: version(lake, t) for t in tables["downstream"]}
    auxiliary_before = {t: (f := pl.read_delta(str(lake / t))).sort(f.columns) for t in tables.get("auxiliary", [])}
    silver_before = pl.read_delta(str(lake / tables["silver"]))
    bronze_before = pl.read_delta(str(lake / tables["bronze"]))
    handler = FaultyApi(api["good"], fault, None)
    server = Api(handler, start=fault != "refused")
    try:
        result = api["run"](lake, api["url"](server.port), instance)
    finally:
        server.stop()
    assert not result.success
    text = failure_text(result, instance)
    assert api["path"].removeprefix("/v3") in text, text  # the failed request is named
    assert None not in before.values()
    assert {t: version(lake, t) for t in tables["downstream"]} == before  # no partial silver/gold write
    assert pl.read_delta(str(lake / tables["silver"])).equals(silver_before)
    for table, frame in auxiliary_before.items():
        assert pl.read_delta(str(lake / table)).sort(frame.columns).equals(frame), table

    answered = [entry for entry in handler.log if entry[1].startswith(api["path"])]
    if fault in ("refused", "timeout"):
        assert fault == "timeout" or not answered
        return  # no answer arrived: nothing to keep
    bronze = pl.read_delta(str(lake / tables["bronze"]))
    new = bronze.join(bronze_before.select("content_hash"), on="content_hash", how="anti")
    kept = new.filter(pl.col("problem").is_not_null())
    assert kept.height >= 1, f"the unusable answer was not kept in bronze ({name}, {fault})"
    body = kept["body"][0]
    status = kept["http_status"][0]
    assert status == answered[-1][2]
    if fault == "html":
        assert body == ERROR_PAGE
    elif fault == "empty":
        assert body == "{}"
    elif fault == "truncated":
        with pytest.raises(ValueError):
            json.loads(body)
    elif fault in ("429", "500", "502", "503"):
        assert "error" in json.loads(body) and status == int(fault)


@pytest.mark.parametrize("name", list(APIS))
def test_a_payload_with_extra_fields_is_used_and_the_extras_are_ignored(baselines, tmp_path, instance, name):
    api, tables = APIS[name], APIS[name]["tables"]
    lake = fresh_lake(baselines, name, tmp_path)
    silver_before = pl.read_delta(str(lake / tables["silver"]))
    server = Api(FaultyApi(api["good"], "extra", None))
    try:
        result = api["run"](lake, api["url"](server.port), instance)
    finally:
        server.stop()
    assert result.success, failure_text(result, instance)
    silver = pl.read_delta(str(lake / tables["silver"]))
    assert silver.columns == silver_before.columns and silver.height == silver_before.height
    bronze = pl.read_delta(str(lake / tables["bronze"]))
    assert bronze["body"].str.contains("someNewField").any()  # the raw answer, extras and all, is in bronze


# ---------------------------------------------------------------------------------------------- sensors
SENSOR_FAULTS = ["refused", "timeout", "429", "500", "503", "empty", "truncated", "html", "missing"]


def evaluate(sensor_def, resources, instance, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor_def(context)


def requested(outcome) -> list:
    if isinstance(outcome, SkipReason):
        return []
    assert isinstance(outcome, SensorResult)
    return list(outcome.run_requests or [])


def skip_message(outcome) -> str:
    if isinstance(outcome, SkipReason):
        return outcome.skip_message or ""
    skip = outcome.skip_reason
    return (skip.skip_message if isinstance(skip, SkipReason) else str(skip or "")) or ""


@pytest.mark.parametrize("name", list(APIS))
def test_the_sensor_skips_during_every_fault_and_requests_runs_once_the_api_recovers(instance, monkeypatch, name):
    monkeypatch.setenv("ELECTRICITY_MAPS_ZONES", "GR")
    api = APIS[name]
    handler = FaultyApi(api["good"], "none", None)
    server = Api(handler)
    url = api["url"](server.port)
    refused_url = api["url"](free_port())
    http = session(max_attempts=2, max_total_wait_s=0.3)
    if name == "neso":
        sensor_def = neso_carbon_intensity_poller
        make = lambda base: {"neso_poller": NesoClient(http=http, base_url=base)}  # noqa: E731
    else:
        sensor_def = EM_SENSOR
        make = lambda base: {"electricity_maps": ElectricityMapsResource(http=http, api_key=EM_KEY, base_url=base)}  # noqa: E731
    try:
        for fault in SENSOR_FAULTS:
            handler.set(fault if fault != "refused" else "none")
            outcome = evaluate(sensor_def, make(refused_url if fault == "refused" else url), instance)  # must not raise
            assert requested(outcome) == [], fault
            assert skip_message(outcome), fault  # the tick says why it did nothing
        handler.set("none")
        outcome = evaluate(sensor_def, make(url), instance)
        assert requested(outcome), "after the API recovered the sensor requests runs again"
    finally:
        server.stop()
