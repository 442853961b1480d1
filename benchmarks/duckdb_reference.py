"""The DuckDB reference query: parse every reading file, deduplicate, aggregate per half-hour. Context only.

It is the floor for "read ~380 MB of JSON on two cores": no agreements, no time-zone conversion, no writes.
The pipeline does all of that too and should not be far behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import Phases

QUERY = """
WITH raw AS (
    SELECT unnest(data) AS r
    FROM read_json(?, columns = {columns: 'VARCHAR[]', data: 'VARCHAR[][]'}, format = 'auto')
),
readings AS (
    SELECT r[3] AS meterpoint_id, r[1] AS interval_start, TRY_CAST(r[2] AS DOUBLE) AS consumption_kwh FROM raw
),
deduplicated AS (
    SELECT DISTINCT ON (meterpoint_id, interval_start) * FROM readings
)
SELECT interval_start, count(DISTINCT meterpoint_id) AS meterpoint_count, sum(consumption_kwh) AS total_consumption_kwh,
       count(*) AS readings
FROM deduplicated
GROUP BY interval_start
"""


def run(readings_dir: Path, phases: Phases, threads: int = 2) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    with phases.phase("duckdb: parse + dedupe + aggregate") as rec:
        result = con.execute(QUERY, [str(readings_dir / "*.json")]).to_arrow_table()
    readings = int(sum(result.column("readings").to_pylist()))
    rec["rows"] = readings
    return {"half_hours": result.num_rows, "deduplicated_readings": readings}
