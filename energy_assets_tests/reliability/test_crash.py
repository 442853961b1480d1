"""A run killed with SIGKILL in the middle of a Delta write loses nothing and leaves nothing half-done.

The run executes in a subprocess whose write of `gold/wide` streams batches to delta-rs slowly; once half
of them are out (for an overwrite: data files are on disk, not yet committed; for a merge: delta-rs is
still reading its source) it signals the test, which SIGKILLs it.
Every table must then open at its previous version with its previous rows; a re-run completes and the lake
equals one built by the same runs without the crash.
"""

import json
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from energy_assets_tests.reliability._workers import run_crash_scenario

DAY = "2024-01-09"
DEADLINE_S = 120


def snapshot(lake_root) -> dict[str, tuple[int, pl.DataFrame]]:
    tables = {}
    for name in ("silver/source", "gold/wide"):
        table = DeltaTable(str(lake_root / name))
        frame = pl.from_arrow(table.to_pyarrow_table()).sort("day", *(["row"] if name == "gold/wide" else ["key"]))
        tables[name] = (table.version(), frame)
    return tables


def parquet_files(path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs if f.endswith(".parquet")}


def kill_mid_write(lake_root, tmp_path, value: int, wait_for_files: bool) -> dict:
    marker = tmp_path / f"mid-write-{value}.json"
    before = parquet_files(lake_root / "gold" / "wide")
    proc = subprocess.Popen(
        [sys.executable, "-m", "energy_assets_tests.reliability._workers", "crash", str(lake_root), DAY, str(value), str(marker)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before its write started: {proc.stderr.read().decode()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run never reached the middle of its Delta write")
            time.sleep(0.05)
        # an overwrite streams data files out as batches arrive: let it flush some (a merge only writes
        # once its source is consumed, so there the kill comes while delta-rs is still reading)
        flush_deadline = time.monotonic() + (20 if wait_for_files else 0)
        while not (parquet_files(lake_root / "gold" / "wide") - before) and time.monotonic() < flush_deadline:
            time.sleep(0.05)
        written = parquet_files(lake_root / "gold" / "wide") - before
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return {"uncommitted_files": written, **json.loads(marker.read_text())}


@pytest.mark.parametrize("gold_mode", ["overwrite", "merge"])
def test_sigkill_mid_write_keeps_previous_versions_and_rerun_equals_uninterrupted(tmp_path, monkeypatch, gold_mode):
    monkeypatch.setenv("CRASH_GOLD_MODE", gold_mode)
    crashed, reference = tmp_path / "crashed", tmp_path / "reference"

    # version 1 of both tables, in both lakes
    for lake in (crashed, reference):
        assert run_crash_scenario(str(lake), DAY, 1, None)
    before = snapshot(crashed)

    killed = kill_mid_write(crashed, tmp_path, value=2, wait_for_files=gold_mode == "overwrite")
    if gold_mode == "overwrite":
        assert killed["uncommitted_files"], "the kill must come after data files were written"

    after = snapshot(crashed)
    # gold/wide was being written: same version, same rows; its new data files are not part of the table
    assert after["gold/wide"][0] == before["gold/wide"][0]
    assert after["gold/wide"][1].equals(before["gold/wide"][1])
    live = set(pa.table(DeltaTable(str(crashed / "gold" / "wide")).get_add_actions(flatten=True)).column("path").to_pylist())
    assert not (live & killed["uncommitted_files"])
    # silver/source committed before the kill (one transaction per output): readable, complete, version 2
    assert after["silver/source"][1]["value"].unique().to_list() == [2]

    # re-run completes; result equals the same runs without a crash
    assert run_crash_scenario(str(crashed), DAY, 2, None)
    assert run_crash_scenario(str(reference), DAY, 2, None)
    final, expected = snapshot(crashed), snapshot(reference)
    for name in ("silver/source", "gold/wide"):
        assert final[name][1].equals(expected[name][1]), name
    assert final["gold/wide"][1]["version"].unique().to_list() == [2]
