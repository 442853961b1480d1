"""Hand-made smart-meter inputs: reading files in the utility's format and a SQLite database."""

import json
import sqlite3
from pathlib import Path

import pytest
from dagster_duckdb import DuckDBResource

from energy_assets.lake.io_manager import DeltaLakeIOManager
from energy_assets.lake.resource import LakeResource
from energy_assets.smart_meter.source import SmartMeterSource

COLUMNS = ["interval_start", "consumption_delta", "meterpoint_id"]


def write_readings(folder: Path, meterpoint_id: str, rows: list[list], columns: list[str] = COLUMNS, name: str | None = None) -> Path:
    """A split-orient file as pandas writes it; rows are [interval_start, consumption, meterpoint_id]."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{meterpoint_id}.json")
    path.write_text(json.dumps({"columns": columns, "data": rows}, separators=(",", ":")))
    return path


def day_rows(meterpoint_id: str, day: str, kwh: float = 0.5, hours: range = range(24)) -> list[list]:
    return [[f"{day} {h:02d}:{m:02d}:00", kwh, meterpoint_id] for h in hours for m in (0, 30)]


def write_db(path: Path, agreements: list[tuple], products: list[tuple], meterpoints: list[tuple]) -> Path:
    """agreements: (id, from, to|None, product_id, meterpoint_id, account); products: (name, is_variable, id, product_id);
    meterpoints: (region, meterpoint_id)."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE agreement (agreement_id INTEGER, agreement_valid_from DATE, agreement_valid_to DATE,
                                product_id TEXT, meterpoint_id TEXT, account_id TEXT);
        CREATE TABLE product (display_name TEXT, is_variable INTEGER, id INTEGER, product_id TEXT);
        CREATE TABLE meterpoint (region TEXT, meterpoint_id TEXT);
        """
    )
    con.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", agreements)
    con.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", products)
    con.executemany("INSERT INTO meterpoint VALUES (?, ?)", meterpoints)
    con.commit()
    con.close()
    return path


PRODUCTS = [
    ("Octopus 12M Fixed", 0, 1, "FIX-A"),
    ("Octopus 12M Fixed", 0, 2, "FIX-B"),  # same display name, another product
    ("Agile Octopus", 1, 3, "AGILE"),
]


@pytest.fixture
def drop(tmp_path):
    """A readings folder and database path for one test."""
    return {"readings": tmp_path / "readings", "db": tmp_path / "case_study.db"}


def smart_meter_resources(lake, drop) -> dict:
    """The smart-meter assets' resources over the lake folder `lake` and the drop (readings folder + database)."""
    lake_resource = LakeResource(root_uri=str(lake))
    return {
        "lake": lake_resource,
        "io_manager": DeltaLakeIOManager(lake=lake_resource),
        "smart_meter": SmartMeterSource(readings_dir=str(drop["readings"]), db_path=str(drop["db"])),
        "smart_meter_duckdb": DuckDBResource(database=":memory:"),
    }


@pytest.fixture
def sm_resources(tmp_path, drop):
    lake = tmp_path / "lake"
    lake.mkdir()
    drop["readings"].mkdir(parents=True, exist_ok=True)
    return smart_meter_resources(lake, drop)
