"""Scale-out on one machine: parallel partition runs, each with the multiprocess step executor.

Two runs (two processes, two partitions of the same tables) start together; each runs its three steps in
separate processes with the multiprocess executor, limited to one step per API at a time by the
executor's `tag_concurrency_limits` on `energy_assets/api`. Every partition of every table lands; within a
run, steps of different APIs ran side by side, steps of one API never did.
"""

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import polars as pl

from energy_assets_tests.reliability._workers import run_scale_out_partition


def test_parallel_partition_runs_with_the_multiprocess_executor_and_per_api_limits(tmp_path):
    lake, markers = tmp_path / "lake", tmp_path / "inside"
    env = {"SCALE_OUT_LAKE": str(lake), "SCALE_OUT_MARKERS": str(markers)}
    days = ["2024-01-20", "2024-01-21"]
    homes = [tmp_path / f"dagster_home_{i}" for i in range(len(days))]
    for home in homes:
        home.mkdir()
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=len(days), mp_context=ctx) as executor:
        barrier = manager.Barrier(len(days))
        futures = [executor.submit(run_scale_out_partition, env, str(home), day, barrier) for home, day in zip(homes, days, strict=True)]
        results = [f.result(timeout=300) for f in futures]
    assert all(r["success"] for r in results)

    rows = pl.concat([pl.read_delta(str(lake / "bronze" / name)) for name in ("neso_intensity", "neso_generation", "em_intensity")])
    assert sorted(rows["day"].cast(pl.String).unique().to_list()) == days
    assert rows.height == 3 * len(days)  # every step of every partition landed, once
    assert rows["pid"].n_unique() == rows.height  # each step in its own process
    assert rows["most_same_api_inside"].to_list() == [1] * rows.height  # one step per API at a time
    assert rows.filter(pl.col("api") == "electricity_maps")["met_other_api"].all()  # APIs in parallel
