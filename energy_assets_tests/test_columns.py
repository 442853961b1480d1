"""Every column of every lake table is described (unit and meaning), in the UI and in the serving DuckDB file.

The descriptions are declared once per table (`energy_assets/<domain>/columns.py`) as each asset's
`dagster/column_schema`. Checked against what the code location really writes: the tables of a real
`energy-assets demo` run (a subprocess, as a user runs it), whose serving file must carry them as column
comments readable by the `duckdb` CLI, and whose instance must show them in each materialisation's schema.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from energy_assets import settings
from energy_assets.column_docs import COLUMN_SCHEMA, declared_descriptions, dtype_name
from energy_assets.definitions import defs
from energy_assets.lake.store import LAYERS


def lake_specs() -> dict[AssetKey, object]:
    """Every materialisable lake table of the code location (`<layer>/<table>`) and its spec."""
    specs = {}
    for assets_def in defs.assets or []:
        for spec in getattr(assets_def, "specs", []):
            if len(spec.key.path) == 2 and spec.key.path[0] in LAYERS:
                specs[spec.key] = spec
    return specs


def declared_schema(spec) -> dict[str, tuple[str, str]]:
    schema = (spec.metadata or {}).get(COLUMN_SCHEMA)
    schema = getattr(schema, "schema", schema)
    return {c.name: (c.type, c.description) for c in schema.columns} if schema is not None else {}


def test_every_lake_table_of_the_code_location_declares_described_columns():
    specs = lake_specs()
    assert len(specs) >= 30
    undeclared = sorted(k.to_user_string() for k, spec in specs.items() if not declared_schema(spec))
    assert not undeclared, f"lake tables without a dagster/column_schema: {undeclared}"
    blank = sorted(f"{k.to_user_string()}.{name}" for k, spec in specs.items() for name, (_t, text) in declared_schema(spec).items() if not (text or "").strip())
    assert not blank, f"columns without a description: {blank}"
    assert set(declared_descriptions(defs.assets or [])) == set(specs)


def duckdb_cli() -> str:
    found = shutil.which("duckdb") or str(Path(sys.executable).parent / "duckdb")
    if not Path(found).exists():
        pytest.skip("the duckdb CLI is not installed (pip install duckdb-cli)")
    return found


@pytest.fixture
def demo(demo_run) -> dict[str, Path]:
    """The shared real `energy-assets demo` run (conftest): its lake, serving file and Dagster instance."""
    return demo_run


@pytest.mark.xdist_group("demo")
def test_the_declared_columns_are_exactly_the_columns_the_demo_writes_with_their_types(demo):
    specs = lake_specs()
    written = {
        AssetKey([layer.name, table.name]): pl.read_delta(str(table)).schema
        for layer in sorted(demo["lake"].iterdir())
        for table in sorted(layer.iterdir())
        if (table / "_delta_log").exists()
    }
    assert set(written) == set(specs), "the demo writes every lake table of the code location"
    problems = []
    for key, schema in written.items():
        declared = declared_schema(specs[key])
        for name in schema.names():
            if name not in declared:
                problems.append(f"{key.to_user_string()}.{name}: written, not described")
            elif declared[name][0] != dtype_name(schema[name]):
                problems.append(f"{key.to_user_string()}.{name}: declared {declared[name][0]}, written {dtype_name(schema[name])}")
        problems += [f"{key.to_user_string()}.{name}: described, never written" for name in declared if name not in schema]
    assert not problems, "\n".join(problems)


@pytest.mark.xdist_group("demo")
def test_the_serving_file_carries_every_description_as_a_column_comment(demo):
    out = subprocess.run(
        [duckdb_cli(), "-readonly", str(demo["db"]), "-json", "-c",
         "select schema_name, table_name, column_name, comment from duckdb_columns() "
         f"where schema_name in ({', '.join(repr(layer) for layer in LAYERS)})"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    comments = {(r["schema_name"], r["table_name"], r["column_name"]): r["comment"] for r in pl.read_json(out.stdout.encode()).to_dicts()}
    expected = {
        (key.path[0], key.path[1], name): text for key, spec in lake_specs().items() for name, (_t, text) in declared_schema(spec).items()
    }
    assert comments == expected


@pytest.mark.xdist_group("demo")
def test_each_materialisation_reports_the_descriptions_in_its_schema(demo, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(demo["home"]))
    instance = DagsterInstance.get()
    try:
        for key, spec in lake_specs().items():
            event = instance.get_latest_materialization_event(key)
            assert event is not None, key.to_user_string()
            reported = event.asset_materialization.metadata[COLUMN_SCHEMA].schema
            declared = declared_schema(spec)
            assert {c.name: c.description for c in reported.columns} == {n: declared[n][1] for n in (c.name for c in reported.columns)}
    finally:
        instance.dispose()
