"""Hostile names and numbers: file names with traversal-looking or odd characters, zone keys with quotes or SQL,
huge numbers, NaN and infinities in API payloads and reading files.

Each is either used verbatim as data (a file name is only ever a value, never spliced into SQL or a path outside
the folder) or rejected/quarantined with a reason; no NaN, infinity or absurd magnitude reaches silver.
(Hostile partition keys at the lake layer: energy_assets_tests/lake/test_hostile_input.py.)
"""

import datetime as dt
import json
import math
import os
import re

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from energy_assets.devtools import electricity_maps_samples as samples
from energy_assets.electricity_maps.client import content_hash as em_hash
from energy_assets.electricity_maps.transforms import BRONZE_SCHEMA, build_silver
from energy_assets.neso import transforms as neso
from energy_assets.neso.client import FetchedResponse, usability_problem
from energy_assets.devtools.neso_fake_api import FakeNesoState, answer
from energy_assets import settings
from energy_assets.smart_meter.assets import ASSETS
from energy_assets.smart_meter.checks import CHECKS
from energy_assets_tests.smart_meter.conftest import PRODUCTS, day_rows, drop, sm_resources, write_db  # noqa: F401 (fixtures)

# Python's json writes NaN/Infinity (not strict JSON, but what a careless producer sends); 1e400 overflows to inf.
HOSTILE_NUMBERS = ["1e308", "NaN", "Infinity", "-Infinity", "1e400"]


@pytest.mark.parametrize(
    "zones",
    ["GR'; DROP TABLE silver; --", 'DE"', "GR OR 1=1", "../etc", "DE,FR'", "zone with space"],
)
def test_zone_keys_with_quotes_sql_or_paths_are_rejected_naming_the_key(zones):
    # zones shape the graph and are read once at load (settings.graph()); the parser is what refuses them
    with pytest.raises(settings.SettingError, match="ELECTRICITY_MAPS_ZONES") as err:
        settings.parse_zones(zones)
    bad = [z.strip() for z in zones.split(",") if not all(c.isalnum() or c == "-" for c in z.strip())][0]
    assert repr(bad) in str(err.value)


def test_plain_zone_keys_are_accepted():
    assert settings.parse_zones("GR, DE,US-CAR-DUK") == ("GR", "DE", "US-CAR-DUK")


def _with_numbers(text: str, member: str, field: str, numbers=HOSTILE_NUMBERS) -> str:
    """The payload with `field` of its first records replaced by `numbers`, as raw JSON text."""
    body = json.loads(text)
    marks = []
    for i, number in enumerate(numbers):
        target = body[member][i]
        for part in field.split(".")[:-1]:
            target = target[part]
        target[field.split(".")[-1]] = f"@@{i}@@"
        marks.append((f'"@@{i}@@"', number))
    out = json.dumps(body)
    for mark, number in marks:
        out = out.replace(mark, number)
    return out


def test_electricity_maps_quarantines_nan_infinities_and_huge_numbers():
    start = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)
    hours = samples.hours(start, start + dt.timedelta(days=1))

    def bronze(kind: str, field: str) -> pl.DataFrame:
        good = json.dumps(samples.past_range_body(kind, "GR", [samples.row(kind, "GR", h) for h in hours]))
        body = _with_numbers(good, "data", field)
        row = {"date": start.date(), "zone": "GR", "fetched_at": start, "endpoint": f"/{kind}/past-range", "request_kind": "past-range",
               "http_status": 200, "body": body, "content_hash": em_hash(body), "attempts": 1, "problem": None}  # fmt: skip
        return pl.DataFrame([row], schema=BRONZE_SCHEMA)

    silver = build_silver(bronze("carbon-intensity", "carbonIntensity"), bronze("power-breakdown", "powerConsumptionTotal"))
    bad_hours = {h.replace(tzinfo=None) for h in hours[: len(HOSTILE_NUMBERS)]}
    quarantined = silver.quarantine.filter(pl.col("reason").str.contains("NaN, an infinity or a value beyond 1e9"))
    assert quarantined.height == 2 * len(HOSTILE_NUMBERS)  # each hostile value, in each response, with its reason
    assert silver.stats["carbon_rows_parsed"] == silver.stats["carbon_hours_kept"] + silver.stats["carbon_rows_quarantined"]
    for column in ("carbon_intensity_gco2_per_kwh", "consumption_total_mw"):
        values = silver.energy[column].drop_nulls().to_list()
        assert values and all(math.isfinite(v) and abs(v) < 1e9 for v in values), column
    kept = {t.replace(tzinfo=None) for t in silver.energy.filter(pl.col("has_carbon_intensity"))["datetime"].to_list()}
    assert not kept & bad_hours


def test_neso_rejects_nan_and_infinities_and_quarantines_huge_numbers():
    path = "/intensity/2024-07-03T23:01Z/2024-07-04T23:00Z"
    _, _, good = answer(FakeNesoState(revise_every_s=0), path)
    now = dt.datetime(2024, 7, 5, tzinfo=dt.timezone.utc)

    def bronze(body: str) -> pl.DataFrame:
        problem = usability_problem(body)
        response = FetchedResponse("intensity", f"http://127.0.0.1{path}", (dt.date(2024, 7, 4),), now, 200, body, 1, problem)
        return neso.bronze_rows([response])

    # NaN / Infinity are not JSON, 1e400 overflows, 2**80 does not fit: the whole answer is unusable (kept in bronze
    # with the reason, never parsed: the silver parser would fail on it)
    for number, reason in [("NaN", "NaN is not a JSON number"), ("Infinity", "Infinity is not"), ("-Infinity", "-Infinity is not"),
                           ("1e400", "overflows"), (str(2**80), "does not fit")]:  # fmt: skip
        rows = bronze(re.sub(r'"forecast": \d+(?=[,\s}])', f'"forecast": {number}', good, count=1))
        assert reason in rows["problem"][0], rows["problem"][0]
        assert neso.parse_intensity(rows).height == 0
    # numbers that parse but are far outside the scale: those records are quarantined with a reason
    body = _with_numbers(good, "data", "intensity.forecast", ["1e308", "-1e308", "9223372036854775807", "1001"])
    rows = bronze(body)
    assert rows["problem"][0] is None
    records = neso.parse_intensity(rows)
    valid, quarantine = neso.split_intensity(records)
    assert quarantine.height == 4, quarantine
    assert quarantine["reason"].str.contains("outside|unparseable|missing").all()
    assert valid.height + quarantine.height == records.height == 48
    silver = neso.build_silver_intensity(valid)
    assert all(0 <= v <= 1000 for v in silver["forecast_gco2_per_kwh"].to_list())


HOSTILE_FILES = [
    "it's a \"quoted\" name.json",
    "with  spaces .json",
    "zoë-電気-ünïcode.json",
    "x'; DROP TABLE smart_meter_readings; --.json",
    "..%2F..%2Fetc%2Fpasswd.json",
    "....json",
    "$(touch pwned) `id`.json",
]


def test_hostile_file_names_are_data_and_hostile_numbers_are_quarantined(tmp_path, drop, sm_resources):
    day = "2021-03-26"
    meterpoints = [f"{i:010d}" for i in range(len(HOSTILE_FILES))]
    write_db(drop["db"], agreements=[(i, "2020-01-01", None, "FIX-A", mp, f"acc{i}") for i, mp in enumerate(meterpoints)],
             products=PRODUCTS, meterpoints=[("London", mp) for mp in meterpoints])  # fmt: skip
    folder = drop["readings"]
    for name, mp in zip(HOSTILE_FILES, meterpoints):
        (folder / name).write_text(json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": day_rows(mp, day)}))
    outside = tmp_path / "outside.json"  # a file a traversal would reach: never read
    outside.write_text(json.dumps({"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": day_rows("9999999999", day)}))
    numbers = ",".join(f'["{day} {h:02d}:00:00",{n},"nnnnnnnnnn"]' for h, n in enumerate(HOSTILE_NUMBERS))
    (folder / "nnnnnnnnnn.json").write_text('{"columns":["interval_start","consumption_delta","meterpoint_id"],"data":[' + numbers + "]}")
    os.utime(folder / "nnnnnnnnnn.json", ns=(1_616_716_800_000_000_000,) * 2)

    with DagsterInstance.ephemeral() as instance:
        result = materialize([*ASSETS, *CHECKS], resources=sm_resources, instance=instance, partition_key=day, raise_on_error=False)
    assert result.success, [str(e.event_specific_data.error) for e in result.get_step_failure_events()]
    lake = sm_resources["lake"].root_uri
    raw = pl.read_delta(f"{lake}/raw/smart_meter_readings")
    silver = pl.read_delta(f"{lake}/silver/smart_meter_readings")
    quarantine = pl.read_delta(f"{lake}/silver/smart_meter_quarantine")
    # every hostile name is kept verbatim as data, with all its rows; nothing outside the folder was read
    per_file = dict(raw.group_by("source_file").len().iter_rows())
    assert per_file == {**{name: 48 for name in HOSTILE_FILES}, "nnnnnnnnnn.json": len(HOSTILE_NUMBERS)}
    assert "9999999999" not in set(silver["meterpoint_id"].to_list())
    assert sorted(silver["meterpoint_id"].unique().to_list()) == meterpoints
    # every hostile number is quarantined with a reason; silver holds only finite, sane values
    bad = quarantine.filter(pl.col("source_file") == "nnnnnnnnnn.json")
    assert bad.height == len(HOSTILE_NUMBERS) and bad["reason"].is_not_null().all(), bad
    assert silver.select(pl.col(c) for c in silver.columns if c.endswith("_kwh")).to_series().map_elements(math.isfinite, return_dtype=pl.Boolean).all()
    assert raw.height == silver.height + quarantine.height
